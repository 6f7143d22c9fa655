//! `lab`: the dvms-lab hypervisor plays libvirt (CONTRACTS B).
//!
//! One request per connection on the lab's Unix socket, one JSON object per line:
//! `{"op":"migrate","vm":..,"from":..,"to":..}` answered when the migration ends with
//! `{"ok":true,"duration_ms":N}` or `{"ok":false,"error":".."}` (`"aborted"` when an abort
//! stopped it: the VM stayed on its source). `{"op":"abort","vm":..}` is answered at once with
//! `{"ok":true}` or `{"ok":false,"error":"not migrating"}`.

use std::path::PathBuf;

use dvms_core::MigrationOutcome;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::{AbortRequest, Actuator, MigrateRequest};

/// Longest answer line accepted from the lab.
const MAX_ANSWER: u64 = 4096;

/// A client of the lab's socket.
#[derive(Debug, Clone)]
pub struct Lab {
    socket: PathBuf,
}

/// The error the lab answers a migration stopped by `abort` with.
const ABORTED: &str = "aborted";

/// A request line (CONTRACTS B).
#[derive(Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum LabRequest<'a> {
    Migrate {
        vm: &'a str,
        from: &'a str,
        to: &'a str,
    },
    Abort {
        vm: &'a str,
    },
}

/// The lab's answer to `migrate`.
#[derive(Deserialize)]
struct Answer {
    ok: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    duration_ms: Option<u64>,
}

impl Lab {
    /// A client of the lab listening on `socket`.
    pub fn new(socket: PathBuf) -> Lab {
        Lab { socket }
    }

    async fn call(&self, req: &LabRequest<'_>) -> Result<Answer, String> {
        let mut stream = UnixStream::connect(&self.socket).await.map_err(|e| {
            format!(
                "cannot connect to lab socket {}: {e}",
                self.socket.display()
            )
        })?;
        let mut line =
            serde_json::to_vec(req).map_err(|e| format!("cannot encode request: {e}"))?;
        line.push(b'\n');
        stream
            .write_all(&line)
            .await
            .map_err(|e| format!("cannot send request to lab: {e}"))?;
        let (read, _write) = stream.into_split();
        let mut reader = BufReader::new(read).take(MAX_ANSWER);
        let mut answer = String::new();
        reader
            .read_line(&mut answer)
            .await
            .map_err(|e| format!("cannot read lab answer: {e}"))?;
        if !answer.ends_with('\n') {
            return Err(format!("lab answer truncated or over {MAX_ANSWER} bytes"));
        }
        serde_json::from_str(&answer)
            .map_err(|e| format!("bad lab answer {:?}: {e}", answer.trim()))
    }
}

impl Actuator for Lab {
    fn kind(&self) -> &'static str {
        "lab"
    }

    async fn migrate(&self, req: MigrateRequest) -> MigrationOutcome {
        let line = LabRequest::Migrate {
            vm: &req.vm,
            from: &req.from,
            to: &req.to,
        };
        match tokio::time::timeout(req.timeout, self.call(&line)).await {
            Ok(Ok(Answer {
                ok: true,
                duration_ms,
                ..
            })) => {
                tracing::debug!(vm = %req.vm, to = %req.to, duration_ms, "lab migration done");
                MigrationOutcome::Done
            }
            Ok(Ok(Answer { error: Some(e), .. })) if e == ABORTED => MigrationOutcome::Aborted,
            Ok(Ok(Answer { error, .. })) => MigrationOutcome::Failed {
                reason: error.unwrap_or_else(|| "lab refused without a reason".into()),
            },
            Ok(Err(reason)) => MigrationOutcome::Failed { reason },
            Err(_) => MigrationOutcome::Failed {
                reason: format!("no answer from the lab within {:?}", req.timeout),
            },
        }
    }

    async fn abort(&self, req: AbortRequest) -> Result<(), String> {
        let line = LabRequest::Abort { vm: &req.vm };
        match tokio::time::timeout(ABORT_ANSWER, self.call(&line)).await {
            Ok(Ok(Answer { ok: true, .. })) => Ok(()),
            Ok(Ok(Answer { error, .. })) => {
                Err(error.unwrap_or_else(|| "lab refused without a reason".into()))
            }
            Ok(Err(reason)) => Err(reason),
            Err(_) => Err(format!("no answer from the lab within {ABORT_ANSWER:?}")),
        }
    }
}

/// How long the lab may take to answer an abort (it answers at once).
const ABORT_ANSWER: std::time::Duration = std::time::Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::net::UnixListener;

    fn req() -> MigrateRequest {
        MigrateRequest {
            vm: "vm-0001".into(),
            from: "h00".into(),
            to: "h01".into(),
            timeout: Duration::from_secs(30),
        }
    }

    /// A one-shot fake lab: checks the request line, sends `answer`.
    async fn fake_lab(
        answer: &'static str,
    ) -> (tempfile::TempDir, PathBuf, tokio::task::JoinHandle<String>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lab.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let task = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let (r, mut w) = s.into_split();
            let mut line = String::new();
            BufReader::new(r).read_line(&mut line).await.unwrap();
            w.write_all(answer.as_bytes()).await.unwrap();
            line
        });
        (dir, path, task)
    }

    #[tokio::test]
    async fn lab_migration_speaks_the_contract() {
        let (_dir, path, task) = fake_lab("{\"ok\":true,\"duration_ms\":1200}\n").await;
        let out = Lab::new(path).migrate(req()).await;
        assert_eq!(out, MigrationOutcome::Done);
        let line: serde_json::Value = serde_json::from_str(&task.await.unwrap()).unwrap();
        assert_eq!(
            line,
            serde_json::json!({"op":"migrate","vm":"vm-0001","from":"h00","to":"h01"})
        );
    }

    #[tokio::test]
    async fn lab_refusal_garbage_and_absence_are_failures() {
        let (_d, path, _t) = fake_lab("{\"ok\":false,\"error\":\"no room\"}\n").await;
        let out = Lab::new(path).migrate(req()).await;
        assert_eq!(
            out,
            MigrationOutcome::Failed {
                reason: "no room".into()
            }
        );
        let (_d, path, _t) = fake_lab("not json\n").await;
        assert!(
            matches!(Lab::new(path).migrate(req()).await, MigrationOutcome::Failed { reason } if reason.contains("bad lab answer"))
        );
        let out = Lab::new("/nonexistent/lab.sock".into())
            .migrate(req())
            .await;
        assert!(
            matches!(out, MigrationOutcome::Failed { reason } if reason.contains("cannot connect"))
        );
    }

    fn abort_req() -> AbortRequest {
        AbortRequest {
            vm: "vm-0001".into(),
            from: "h00".into(),
            to: "h01".into(),
        }
    }

    #[tokio::test]
    async fn lab_abort_speaks_the_contract() {
        let (_dir, path, task) = fake_lab("{\"ok\":true}\n").await;
        assert_eq!(Lab::new(path).abort(abort_req()).await, Ok(()));
        let line: serde_json::Value = serde_json::from_str(&task.await.unwrap()).unwrap();
        assert_eq!(line, serde_json::json!({"op":"abort","vm":"vm-0001"}));
        let (_d, path, _t) = fake_lab("{\"ok\":false,\"error\":\"not migrating\"}\n").await;
        assert_eq!(
            Lab::new(path).abort(abort_req()).await,
            Err("not migrating".into())
        );
        let out = Lab::new("/nonexistent/lab.sock".into())
            .abort(abort_req())
            .await;
        assert!(matches!(out, Err(reason) if reason.contains("cannot connect")));
    }

    #[tokio::test]
    async fn an_aborted_migration_is_reported_aborted() {
        let (_d, path, _t) = fake_lab("{\"ok\":false,\"error\":\"aborted\"}\n").await;
        assert_eq!(
            Lab::new(path).migrate(req()).await,
            MigrationOutcome::Aborted
        );
    }
}
