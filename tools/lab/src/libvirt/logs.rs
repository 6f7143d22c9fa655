//! What the agents' JSON logs (`DVMS_LOG_FORMAT=json`) say about migrations: when each one
//! started on which host, libvirt's duration and downtime of each one done, failures and
//! aborts.

use std::path::Path;
use std::time::SystemTime;

use serde_json::Value;

/// The most bytes of one agent log read.
const MAX_LOG_BYTES: u64 = 256 << 20;

/// Migration facts from one or more agent logs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Migrations {
    /// `(host, time)` of every `migration_started`.
    pub started: Vec<(String, SystemTime)>,
    /// Migrations done (`migration_done`).
    pub done: u64,
    /// Migrations failed (`migration_failed`).
    pub failed: u64,
    /// Migrations aborted (`migration_aborted`).
    pub aborted: u64,
    /// Duration of each libvirt live migration done, ms (dvms-libvirt's call).
    pub duration_ms: Vec<f64>,
    /// Downtime of each, ms, as libvirt's job statistics report it.
    pub downtime_ms: Vec<f64>,
    /// Migrations started at the same time on one host, at most (from the logs' order).
    pub max_parallel: u64,
}

/// The field `k` of a log line, at top level or under `fields`.
fn field<'a>(v: &'a Value, k: &str) -> Option<&'a Value> {
    v.get("fields").and_then(|f| f.get(k)).or_else(|| v.get(k))
}

fn number(v: Option<&Value>) -> Option<f64> {
    let v = v?;
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .filter(|x: &f64| x.is_finite() && *x >= 0.0)
}

impl Migrations {
    /// Adds the lines of `host`'s log text.
    pub fn add_text(&mut self, host: &str, text: &str) {
        let mut running: u64 = 0;
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let event = field(&v, "event").and_then(Value::as_str).unwrap_or("");
            let message = field(&v, "message").and_then(Value::as_str).unwrap_or("");
            match event {
                "migration_started" => {
                    running = running.saturating_add(1);
                    self.max_parallel = self.max_parallel.max(running);
                    let ts = v
                        .get("timestamp")
                        .and_then(Value::as_str)
                        .and_then(|t| humantime::parse_rfc3339_weak(t).ok());
                    if let Some(t) = ts {
                        self.started.push((host.to_owned(), t));
                    }
                }
                "migration_done" => {
                    running = running.saturating_sub(1);
                    self.done = self.done.saturating_add(1);
                }
                "migration_failed" => {
                    running = running.saturating_sub(1);
                    self.failed = self.failed.saturating_add(1);
                }
                "migration_aborted" => {
                    running = running.saturating_sub(1);
                    self.aborted = self.aborted.saturating_add(1);
                }
                _ => {}
            }
            if message == "libvirt live migration done" {
                if let Some(d) = number(field(&v, "duration_ms")) {
                    self.duration_ms.push(d);
                }
                if let Some(d) = number(field(&v, "downtime_ms")) {
                    self.downtime_ms.push(d);
                }
            }
        }
    }

    /// Adds `host`'s log file (at most its first 256 MiB); a missing file adds nothing.
    pub fn add_file(&mut self, host: &str, path: &Path) {
        use std::io::Read as _;
        let Ok(f) = std::fs::File::open(path) else {
            return;
        };
        let mut text = String::new();
        if f.take(MAX_LOG_BYTES).read_to_string(&mut text).is_err() {
            // not UTF-8 throughout: read what is, lossily
            let bytes = std::fs::read(path).unwrap_or_default();
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        self.add_text(host, &text);
    }

    /// The first migration started from `host` in `[from, to]`.
    pub fn first_from(&self, host: &str, from: SystemTime, to: SystemTime) -> Option<SystemTime> {
        self.started
            .iter()
            .filter(|(h, t)| h == host && *t >= from && *t <= to)
            .map(|(_, t)| *t)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const LOG: &str = r#"{"timestamp":"2026-12-01T04:00:00.500000Z","level":"INFO","fields":{"message":"migration started","event":"migration_started","vm":"a"},"target":"dvmsd"}
{"timestamp":"2026-12-01T04:00:00.600000Z","level":"INFO","fields":{"message":"migration started","event":"migration_started","vm":"b"},"target":"dvmsd"}
not json at all
{"timestamp":"2026-12-01T04:00:01Z","level":"INFO","fields":{"message":"libvirt live migration done","vm":"a","duration_ms":420,"downtime_ms":12},"target":"dvmsd"}
{"timestamp":"2026-12-01T04:00:01Z","level":"INFO","fields":{"message":"migration done","event":"migration_done","vm":"a"},"target":"dvmsd"}
{"timestamp":"2026-12-01T04:00:02Z","level":"WARN","fields":{"message":"x","event":"migration_aborted","vm":"b"},"target":"dvmsd"}
{"timestamp":"2026-12-01T04:00:03Z","level":"INFO","fields":{"message":"migration started","event":"migration_started","vm":"c"},"target":"dvmsd"}
{"timestamp":"2026-12-01T04:00:04Z","level":"INFO","fields":{"message":"libvirt live migration done","vm":"c","duration_ms":"380","downtime_ms":-3},"target":"dvmsd"}
{"timestamp":"2026-12-01T04:00:04Z","level":"INFO","fields":{"message":"m","event":"migration_failed","vm":"c"},"target":"dvmsd"}
"#;

    #[test]
    fn the_log_is_read_line_by_line() {
        let mut m = Migrations::default();
        m.add_text("h00", LOG);
        assert_eq!(m.started.len(), 3);
        assert_eq!((m.done, m.aborted, m.failed), (1, 1, 1));
        assert_eq!(m.duration_ms, [420.0, 380.0]);
        assert_eq!(m.downtime_ms, [12.0], "a negative downtime is not a number");
        assert_eq!(m.max_parallel, 2);
        let t0 = humantime::parse_rfc3339_weak("2026-12-01T04:00:00Z").expect("t0");
        let first = m.first_from("h00", t0, t0 + Duration::from_secs(10));
        assert_eq!(first, Some(t0 + Duration::from_millis(500)));
        assert_eq!(m.first_from("h01", t0, t0 + Duration::from_secs(10)), None);
        let later = m.first_from("h00", t0 + Duration::from_secs(1), t0 + Duration::from_secs(10));
        assert_eq!(later, Some(t0 + Duration::from_secs(3)));
    }
}
