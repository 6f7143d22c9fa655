//! One request, one answer over the agent's control socket.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use dvms_agent::control::proto::{MAX_LINE, Request, Response};

/// Why the agent could not be asked.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// No agent listens on the socket.
    NotRunning {
        /// The socket.
        socket: String,
        /// The system's reason.
        reason: String,
    },
    /// The agent answered something unreadable, or nothing.
    Protocol(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::NotRunning { socket, reason } => write!(
                f,
                "dvmsd is not running (no agent on {socket}: {reason}); start it with `systemctl start dvmsd`, or pass --socket"
            ),
            ClientError::Protocol(m) => write!(f, "unexpected answer from dvmsd: {m}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// Sends `request` to the agent on `socket` and returns its answer.
///
/// # Errors
/// [`ClientError`].
pub fn ask(socket: &Path, request: &Request) -> Result<Response, ClientError> {
    let not_running = |e: std::io::Error| ClientError::NotRunning {
        socket: socket.display().to_string(),
        reason: e.to_string(),
    };
    let mut stream = UnixStream::connect(socket).map_err(not_running)?;
    let timeout = Some(Duration::from_secs(10));
    stream
        .set_read_timeout(timeout)
        .and_then(|()| stream.set_write_timeout(timeout))
        .map_err(not_running)?;
    let mut line = serde_json::to_vec(request).map_err(|e| ClientError::Protocol(e.to_string()))?;
    line.push(b'\n');
    stream.write_all(&line).map_err(not_running)?;
    let mut answer = String::new();
    BufReader::new(stream.take(MAX_LINE as u64))
        .read_line(&mut answer)
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    if answer.trim().is_empty() {
        return Err(ClientError::Protocol(
            "empty answer (is the agent stopping?)".into(),
        ));
    }
    serde_json::from_str(&answer).map_err(|e| ClientError::Protocol(e.to_string()))
}
