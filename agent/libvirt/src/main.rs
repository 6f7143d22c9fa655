//! `dvms-libvirt`: reads one JSON request on stdin, executes it through libvirt, writes one JSON
//! answer on stdout. Exit status: 0 answered, 1 the answer is an error, 64 bad request,
//! 69 libvirt unreachable. Logs go to stderr (`DVMS_LOG` filter, default `info`).

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;

use dvms_libvirt::backend;
use dvms_libvirt::protocol::{Answer, ErrorKind, MAX_REQUEST_BYTES, Request, RequestError};

const EX_USAGE: u8 = 64;
const EX_UNAVAILABLE: u8 = 69;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        None => {}
        Some("--version") => {
            println!(
                "dvms-libvirt {} (protocol {})",
                env!("CARGO_PKG_VERSION"),
                dvms_libvirt::protocol::VERSION
            );
            return ExitCode::SUCCESS;
        }
        Some(_) => {
            eprintln!(
                "usage: dvms-libvirt < request.json   (one JSON request; see docs/libvirt.md)"
            );
            return ExitCode::from(EX_USAGE);
        }
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DVMS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let answer = match read_request() {
        Ok(request) => backend::execute(&request),
        Err(answer) => *answer,
    };
    let code = match &answer {
        Answer::Error {
            kind: ErrorKind::BadRequest | ErrorKind::UnsupportedVersion,
            ..
        } => EX_USAGE,
        Answer::Error {
            kind: ErrorKind::Connect,
            ..
        } => EX_UNAVAILABLE,
        Answer::Error { .. } => 1,
        _ => 0,
    };
    let text = match serde_json::to_string(&answer) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("dvms-libvirt: cannot encode the answer: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}").and_then(|()| out.flush()) {
        eprintln!("dvms-libvirt: cannot write the answer: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::from(code)
}

/// Reads, parses and validates the request; a bad one becomes its error answer.
fn read_request() -> Result<Request, Box<Answer>> {
    let mut buf = Vec::new();
    let limit = u64::try_from(MAX_REQUEST_BYTES)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    std::io::stdin()
        .lock()
        .take(limit)
        .read_to_end(&mut buf)
        .map_err(|e| {
            Box::new(Answer::error(
                ErrorKind::BadRequest,
                format!("cannot read stdin: {e}"),
            ))
        })?;
    if buf.len() > MAX_REQUEST_BYTES {
        return Err(Box::new(Answer::error(
            ErrorKind::BadRequest,
            format!("request longer than {MAX_REQUEST_BYTES} bytes"),
        )));
    }
    let request: Request = serde_json::from_slice(&buf).map_err(|e| {
        Box::new(Answer::error(
            ErrorKind::BadRequest,
            format!("request: {e}"),
        ))
    })?;
    request.validate().map_err(|e| {
        let kind = match e {
            RequestError::Version { .. } => ErrorKind::UnsupportedVersion,
            _ => ErrorKind::BadRequest,
        };
        Box::new(Answer::error(kind, e.to_string()))
    })?;
    Ok(request)
}
