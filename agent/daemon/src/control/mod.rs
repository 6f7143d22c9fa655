//! The control socket `dvmsctl` talks to: a Unix socket (mode 0660), one JSON request line
//! and one JSON response line per connection.
//!
//! Connections are served one at a time (with a 5 s limit each): requests are rare, and the
//! answer comes from the driver's task, which owns the state, through a small bounded queue.

pub mod proto;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

use proto::{MAX_LINE, Request, Response};

/// A request waiting for the driver's answer.
#[derive(Debug)]
pub struct Call {
    /// The request.
    pub request: Request,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Response>,
}

/// Calls queued for the driver at most.
pub const QUEUE: usize = 16;

/// Binds the socket (replacing a stale one) with mode 0660.
///
/// # Errors
/// When the directory cannot be created or the socket bound.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    Ok(listener)
}

/// Serves `listener`, forwarding each request to the driver on `calls`.
pub async fn serve(listener: UnixListener, calls: mpsc::Sender<Call>, path: PathBuf) {
    tracing::debug!(path = %path.display(), "control socket listening");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let calls = calls.clone();
        let _ = tokio::time::timeout(Duration::from_secs(5), async move {
            let (read, mut write) = stream.into_split();
            let mut line = String::new();
            let mut reader = BufReader::new(read).take(MAX_LINE as u64);
            if reader.read_line(&mut line).await.is_err() {
                return;
            }
            let response = match serde_json::from_str::<Request>(line.trim()) {
                Ok(request) => {
                    let (reply, rx) = oneshot::channel();
                    if calls.send(Call { request, reply }).await.is_err() {
                        Response::Error {
                            message: "agent is stopping".into(),
                        }
                    } else {
                        rx.await.unwrap_or(Response::Error {
                            message: "agent is stopping".into(),
                        })
                    }
                }
                Err(e) => Response::Error {
                    message: format!("bad request: {e}"),
                },
            };
            let mut out = serde_json::to_vec(&response).unwrap_or_else(|_| b"{}".to_vec());
            out.push(b'\n');
            let _ = write.write_all(&out).await;
            let _ = write.shutdown().await;
        })
        .await;
    }
}
