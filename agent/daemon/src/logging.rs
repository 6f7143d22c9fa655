//! Log output: journald with structured fields under systemd, plain text on stderr elsewhere.
//!
//! `DVMS_LOG` sets the filter (default `info,libp2p=warn`); `DVMS_LOG_FORMAT` picks the output:
//! `auto` (journald when `JOURNAL_STREAM` is set and the journal socket answers), `journald`,
//! `plain` or `json`. A journald that cannot be reached falls back to plain stderr, never fails.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The output chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// systemd's journal, fields prefixed `F_` and upper-cased (`F_VM=vm-0042`).
    Journald,
    /// Human-readable text on stderr.
    Plain,
    /// One JSON object per line on stderr.
    Json,
}

/// Installs the global subscriber; returns the format in use (and a note when the requested
/// one was not available).
pub fn init() -> (Format, Option<String>) {
    let filter = || {
        EnvFilter::try_from_env("DVMS_LOG").unwrap_or_else(|_| EnvFilter::new("info,libp2p=warn"))
    };
    let wanted = std::env::var("DVMS_LOG_FORMAT").unwrap_or_else(|_| "auto".into());
    let mut note = None;
    let want_journal = match wanted.as_str() {
        "journald" => true,
        "auto" | "" => std::env::var_os("JOURNAL_STREAM").is_some(),
        "plain" | "json" => false,
        other => {
            note = Some(format!(
                "DVMS_LOG_FORMAT={other:?} unknown (auto|journald|plain|json): plain"
            ));
            false
        }
    };
    if want_journal {
        match tracing_journald::layer() {
            Ok(layer) => {
                let layer = layer.with_syslog_identifier("dvmsd".into());
                tracing_subscriber::registry()
                    .with(layer.with_filter(filter()))
                    .init();
                return (Format::Journald, note);
            }
            Err(e) => note = Some(format!("journald unavailable ({e}): logging to stderr")),
        }
    }
    if wanted == "json" {
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr)
                    .with_filter(filter()),
            )
            .init();
        return (Format::Json, note);
    }
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .with_filter(filter()),
        )
        .init();
    (Format::Plain, note)
}
