//! `libvirt`: live migrations (and their abort) through the `dvms-libvirt` executable.
//!
//! dvmsd is static and never links libvirt: for each migration it runs `dvms-libvirt` (a
//! small program dynamically linked to `libvirt.so`), writes one JSON request on its stdin and
//! reads one JSON answer from its stdout ([`dvms_libvirt::protocol`], docs/libvirt.md). The
//! migration is live, peer to peer, persistent on the destination and undefined on the source;
//! `dvms-libvirt` aborts it through libvirt once it has run `timeout`. A failure is reported
//! with libvirt's own error (code, domain, message) in the log and in the outcome's reason,
//! which `dvmsctl events` shows.
//!
//! [`Inventory`] reads libvirt's list of domains periodically: a VM the monitor sees is only
//! migratable when libvirt lists it, running, with that QEMU pid, and its domain XML does not
//! opt out (`<dvms:policy migrate="never"/>`).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use dvms_core::MigrationOutcome;
use dvms_libvirt::protocol::{Answer, ErrorKind, Request, VERSION, Vm};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::{AbortRequest, Actuator, MigrateRequest};
use crate::config::LibvirtSettings;

/// Largest answer read from `dvms-libvirt` (an inventory of 4096 VMs fits).
const MAX_ANSWER: u64 = 4 << 20;
/// Most bytes of `dvms-libvirt`'s log (stderr) kept for dvmsd's log.
const MAX_STDERR: u64 = 16 << 10;
/// What `dvms-libvirt` may take beyond the migration timeout: it waits up to 120 s for
/// libvirt to end an aborted job (docs/libvirt.md), plus a margin.
const ABORT_GRACE: Duration = Duration::from_secs(130);
/// Longest an inventory, abort or job status may take.
const SHORT_CALL: Duration = Duration::from_secs(30);

/// The libvirt actuator.
#[derive(Debug)]
pub struct Libvirt {
    settings: Arc<LibvirtSettings>,
    /// What dvms-libvirt may take beyond the migration timeout ([`ABORT_GRACE`]).
    grace: Duration,
    /// VMs whose migration dvmsd asked to abort: their failure is reported `Aborted`.
    aborting: Mutex<BTreeSet<String>>,
}

/// What one run of `dvms-libvirt` gave.
#[derive(Debug)]
enum CallError {
    /// The executable could not be run, or its answer read.
    Run(String),
    /// No answer within the time allowed; the child was killed.
    Timeout(Duration),
    /// The answer is not a protocol answer.
    Garbage(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Run(e) => write!(f, "{e}"),
            CallError::Timeout(d) => write!(f, "dvms-libvirt gave no answer within {d:?}"),
            CallError::Garbage(e) => write!(f, "bad answer from dvms-libvirt: {e}"),
        }
    }
}

/// Runs `binary` with `req` on its stdin; the answer on its stdout, its log lines to ours.
async fn call(
    binary: &std::path::Path,
    req: &Request,
    limit: Duration,
) -> Result<Answer, CallError> {
    let body = serde_json::to_vec(req).map_err(|e| CallError::Run(format!("encode: {e}")))?;
    let mut child = Command::new(binary)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("DVMS_LOG", std::env::var("DVMS_LOG").unwrap_or_else(|_| "info".into()))
        // Peer to peer: a migration goes on without its dvms-libvirt; dvmsd stopping must not
        // kill it halfway through its own timeout and abort.
        .kill_on_drop(false)
        .spawn()
        .map_err(|e| CallError::Run(format!("cannot run {}: {e}", binary.display())))?;
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.start_kill();
        return Err(CallError::Run("dvms-libvirt's pipes are missing".into()));
    };
    let work = async {
        // A child that exits without reading its request is not an error here: its answer
        // says why.
        let _ = stdin.write_all(&body).await;
        drop(stdin);
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut stdout = stdout.take(MAX_ANSWER);
        let mut stderr = stderr.take(MAX_STDERR);
        let (o, e) = tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
        let status = child.wait().await;
        (o.and(e), out, err, status)
    };
    let Ok((read, out, err, status)) = tokio::time::timeout(limit, work).await else {
        return Err(CallError::Timeout(limit));
    };
    let log = String::from_utf8_lossy(&err);
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        tracing::debug!(target: "dvms_libvirt", op = op_name(req), "{line}");
    }
    read.map_err(|e| CallError::Run(format!("cannot read dvms-libvirt's answer: {e}")))?;
    let text = String::from_utf8_lossy(&out);
    serde_json::from_str::<Answer>(text.trim()).map_err(|e| {
        let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
        let last = log.lines().last().unwrap_or("").trim().to_owned();
        CallError::Garbage(format!(
            "{e} ({status}; answer {:?}; last log line {last:?})",
            text.chars().take(200).collect::<String>()
        ))
    })
}

fn op_name(req: &Request) -> &'static str {
    match req {
        Request::Inventory { .. } => "inventory",
        Request::Migrate { .. } => "migrate",
        Request::Abort { .. } => "abort",
        Request::JobStatus { .. } => "job-status",
        _ => "other",
    }
}

/// One line for logs and `dvmsctl events`: the kind, the message and libvirt's error.
fn describe(answer: &Answer) -> String {
    match answer {
        Answer::Error {
            kind,
            message,
            libvirt,
            source_state,
            ..
        } => {
            let kind = serde_json::to_value(kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| format!("{kind:?}"));
            let mut s = format!("{kind}: {message}");
            if let Some(l) = libvirt {
                s.push_str(&format!(
                    "; libvirt error {} (domain {}): {}",
                    l.code, l.domain, l.message
                ));
            }
            if let Some(st) = source_state {
                s.push_str(&format!("; source state {st:?}"));
            }
            s
        }
        other => format!("unexpected answer {other:?}"),
    }
}

impl Libvirt {
    /// The actuator with these settings.
    pub fn new(settings: LibvirtSettings) -> Libvirt {
        Libvirt {
            settings: Arc::new(settings),
            grace: ABORT_GRACE,
            aborting: Mutex::new(BTreeSet::new()),
        }
    }

    /// The same with another grace beyond the timeout (tests of a stuck `dvms-libvirt`).
    #[cfg(test)]
    fn with_grace(mut self, grace: Duration) -> Libvirt {
        self.grace = grace;
        self
    }

    /// The settings.
    pub fn settings(&self) -> &LibvirtSettings {
        &self.settings
    }

    /// Asks libvirt to abort the migration of `vm` running from this host (`virDomainAbortJob`).
    /// The pending [`Actuator::migrate`] of that VM then ends `Aborted` if the abort took (the
    /// VM stays here), `Done` if the migration had finished first.
    ///
    /// # Errors
    /// libvirt's error, or why `dvms-libvirt` could not be run; `not-migrating` when no job runs.
    pub async fn abort(&self, vm: &str) -> Result<(), String> {
        self.aborting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(vm.to_owned());
        let req = Request::Abort {
            version: VERSION,
            connect: self.settings.connect.clone(),
            vm: vm.to_owned(),
        };
        match call(&self.settings.binary, &req, SHORT_CALL).await {
            Ok(Answer::Aborted { .. }) => {
                tracing::info!(vm = %vm, event = "migration_abort", "libvirt aborted the migration job");
                Ok(())
            }
            Ok(answer) => {
                let why = describe(&answer);
                tracing::warn!(vm = %vm, reason = %why, "abort refused");
                Err(why)
            }
            Err(e) => {
                tracing::warn!(vm = %vm, error = %e, "abort failed");
                Err(e.to_string())
            }
        }
    }

    fn take_aborting(&self, vm: &str) -> bool {
        self.aborting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(vm)
    }
}

impl Actuator for Libvirt {
    fn kind(&self) -> &'static str {
        "libvirt"
    }

    async fn abort(&self, req: AbortRequest) -> Result<(), String> {
        Libvirt::abort(self, &req.vm).await
    }

    async fn migrate(&self, req: MigrateRequest) -> MigrationOutcome {
        let timeout = req.timeout.min(self.settings.timeout);
        let request = self.settings.migrate_request(&req.vm, &req.to, timeout);
        if let Err(e) = request.validate() {
            return MigrationOutcome::Failed {
                reason: format!("cannot ask dvms-libvirt: {e}"),
            };
        }
        let answer = call(
            &self.settings.binary,
            &request,
            timeout.saturating_add(self.grace),
        )
        .await;
        let aborting = self.take_aborting(&req.vm);
        match answer {
            Ok(Answer::Migrated {
                duration_ms, stats, ..
            }) => {
                let downtime_ms = stats.as_ref().and_then(|s| s.downtime_ms);
                let total_ms = stats.as_ref().and_then(|s| s.time_elapsed_ms);
                tracing::info!(vm = %req.vm, to = %req.to, duration_ms, libvirt_time_ms = total_ms, downtime_ms, "libvirt live migration done");
                MigrationOutcome::Done
            }
            Ok(answer @ Answer::Error { .. }) => {
                let reason = describe(&answer);
                let Answer::Error {
                    kind,
                    libvirt,
                    source_state,
                    ..
                } = answer
                else {
                    return MigrationOutcome::Failed { reason };
                };
                let (code, domain, message) = libvirt.as_ref().map_or((None, None, None), |l| {
                    (Some(l.code), Some(l.domain), Some(l.message.as_str()))
                });
                tracing::warn!(vm = %req.vm, to = %req.to, ?kind, libvirt_code = code, libvirt_domain = domain, libvirt_message = message, ?source_state, "libvirt live migration failed");
                let here = source_state.is_some_and(|s| s.is_active());
                if !here && kind != ErrorKind::OptedOut && kind != ErrorKind::BadRequest {
                    // The VM no longer runs here after a failure: it may have landed on the
                    // destination as the abort raced the switch-over. The next sample (here
                    // and there) tells; the core keeps its reservation until then.
                    tracing::error!(vm = %req.vm, to = %req.to, ?source_state, "migration failed but the vm is not running here any more");
                }
                if aborting && here && kind == ErrorKind::MigrationFailed {
                    MigrationOutcome::Aborted
                } else {
                    MigrationOutcome::Failed { reason }
                }
            }
            Ok(other) => MigrationOutcome::Failed {
                reason: format!("unexpected answer from dvms-libvirt: {other:?}"),
            },
            Err(e) => {
                tracing::error!(vm = %req.vm, to = %req.to, error = %e, "dvms-libvirt failed; aborting any job left");
                if matches!(e, CallError::Timeout(_)) {
                    // A stuck child: make sure libvirt's job stops (the VM then stays here).
                    let _ = self.abort(&req.vm).await;
                    self.take_aborting(&req.vm);
                }
                MigrationOutcome::Failed {
                    reason: e.to_string(),
                }
            }
        }
    }
}

/// libvirt's view of this host's domains, refreshed by [`Inventory::run`].
#[derive(Debug)]
pub struct Inventory {
    settings: Arc<LibvirtSettings>,
    /// The latest inventory, by domain name; `None` until the first one is read.
    latest: RwLock<Option<BTreeMap<String, Vm>>>,
}

impl Inventory {
    /// An inventory not read yet.
    pub fn new(settings: LibvirtSettings) -> Arc<Inventory> {
        Arc::new(Inventory {
            settings: Arc::new(settings),
            latest: RwLock::new(None),
        })
    }

    /// Reads libvirt's inventory once and keeps it.
    ///
    /// # Errors
    /// Why it could not be read (the previous one is kept).
    pub async fn refresh(&self) -> Result<usize, String> {
        let req = Request::Inventory {
            version: VERSION,
            connect: self.settings.connect.clone(),
            qemu_pid_dir: None,
        };
        match call(&self.settings.binary, &req, SHORT_CALL).await {
            Ok(Answer::Inventory { vms, .. }) => {
                let n = vms.len();
                let map = vms.into_iter().map(|v| (v.name.clone(), v)).collect();
                *self.latest.write().unwrap_or_else(PoisonError::into_inner) = Some(map);
                Ok(n)
            }
            Ok(other) => Err(describe(&other)),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Refreshes every `inventory_period`, forever; logs when reading starts or stops failing.
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.settings.inventory_period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tick.tick().await;
            match self.refresh().await {
                Ok(n) if failing => {
                    failing = false;
                    tracing::info!(vms = n, "libvirt inventory read again");
                }
                Ok(_) => {}
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "cannot read libvirt's inventory: no vm is migrated until it can");
                }
                Err(_) => {}
            }
        }
    }

    /// Whether the VM `name` with QEMU `pid` may be migrated: libvirt lists it running (with
    /// that pid, when libvirt knows it) and its policy does not opt out. Unknown: no.
    pub fn migratable(&self, name: &str, pid: u32) -> bool {
        let latest = self.latest.read().unwrap_or_else(PoisonError::into_inner);
        let Some(vm) = latest.as_ref().and_then(|m| m.get(name)) else {
            return false;
        };
        vm.migratable && vm.state.is_active() && vm.qemu_pid.is_none_or(|p| p == pid)
    }

    /// libvirt's record of the VM `name`, if the latest inventory lists it.
    pub fn get(&self, name: &str) -> Option<Vm> {
        let latest = self.latest.read().unwrap_or_else(PoisonError::into_inner);
        latest.as_ref().and_then(|m| m.get(name).cloned())
    }
}

#[cfg(test)]
#[path = "libvirt_tests.rs"]
mod tests;
