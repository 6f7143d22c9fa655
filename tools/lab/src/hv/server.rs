//! The Unix socket server of the lab actuator protocol, and a small client.
//!
//! One thread accepts; each connection gets a thread that reads one request line (bounded,
//! with a read timeout), answers and closes. A `migrate` connection waits for the migration's
//! end; the migration itself is run by the engine thread, so a client that disconnects changes
//! nothing (as with libvirt, the hypervisor owns a migration once it started).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use super::Shared;
use super::proto::{MAX_LINE, Request, Response};

/// Connections served at once; more are answered "busy".
pub const MAX_CONNECTIONS: usize = 256;
/// How long a client may take to send its request line.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Accepts until the hypervisor stops.
pub(crate) fn serve(listener: UnixListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "lab socket accept failed");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let busy = shared.connections.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS;
        let sh = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("lab-conn".into())
            .spawn(move || {
                handle(stream, &sh, busy);
                sh.connections.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            shared.connections.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!(error = %e, "cannot start a connection thread");
        }
    }
}

fn handle(mut stream: UnixStream, shared: &Shared, busy: bool) {
    let answer = if busy {
        Response::error("busy: too many connections")
    } else {
        match read_line(&stream) {
            Ok(line) => match Request::parse(&line) {
                Ok(req) => answer(shared, req),
                Err(e) => Response::error(e),
            },
            Err(e) => Response::error(e),
        }
    };
    let mut line = answer.to_line();
    line.push('\n');
    // The client may have gone (a disconnected migrate): nothing to do about it.
    let _ = stream.write_all(line.as_bytes());
}

fn read_line(stream: &UnixStream) -> Result<String, String> {
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .map_err(|e| format!("cannot set a read timeout: {e}"))?;
    let mut reader = BufReader::new(stream.take(MAX_LINE as u64 + 1));
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .map_err(|e| format!("bad request: cannot read a line: {e}"))?;
    if line.len() > MAX_LINE {
        return Err(format!("bad request: longer than {MAX_LINE} bytes"));
    }
    if line.trim().is_empty() {
        return Err("bad request: empty".to_owned());
    }
    Ok(line)
}

fn answer(shared: &Shared, req: Request) -> Response {
    match req {
        Request::Migrate { vm, from, to } => {
            let (tx, rx) = sync_channel(1);
            {
                let Ok(mut st) = shared.state.lock() else {
                    return Response::error("lab state poisoned");
                };
                if let Err(e) = st.start_migration(Instant::now(), &vm, &from, &to, tx) {
                    return Response::error(e);
                }
            }
            tracing::info!(vm = %vm, from = %from, to = %to, "migration started");
            shared.wake.notify_all();
            match rx.recv() {
                Ok(Ok(took)) => {
                    Response::migrated(u64::try_from(took.as_millis()).unwrap_or(u64::MAX))
                }
                Ok(Err(e)) => Response::error(e),
                Err(_) => Response::error("lab stopped before the migration ended"),
            }
        }
        Request::Abort { vm } => {
            let Ok(mut st) = shared.state.lock() else {
                return Response::error("lab state poisoned");
            };
            match st.abort(&vm) {
                Ok(()) => {
                    tracing::info!(vm = %vm, "migration aborted");
                    Response::ok()
                }
                Err(e) => Response::error(e),
            }
        }
        Request::Status { vm } => {
            let Ok(st) = shared.state.lock() else {
                return Response::error("lab state poisoned");
            };
            match st.migrating_to(&vm) {
                Ok(to) => Response::status(to),
                Err(e) => Response::error(e),
            }
        }
    }
}

/// Sends one request to a lab socket and reads the answer (what an agent's `lab` actuator
/// does; used by tests and tools).
pub fn request(socket: &Path, req: &Request) -> std::io::Result<Response> {
    let mut stream = UnixStream::connect(socket)?;
    let mut line = req.to_line();
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    let mut reader = BufReader::new(stream.take(MAX_LINE as u64 + 1));
    let mut answer = String::new();
    reader.read_line(&mut answer)?;
    serde_json::from_str(answer.trim()).map_err(std::io::Error::other)
}
