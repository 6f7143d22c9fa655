//! `migrate`, `abort` and `job-status`.
//!
//! A migration is peer to peer (`VIR_MIGRATE_PEER2PEER`): the source libvirtd connects to the
//! destination's daemon itself, so the migration goes on if this process dies; dvmsd can then
//! abort it with an `abort` request. A failed or aborted migration leaves the domain running on
//! the source (libvirt's rollback); the answer reads its state back to say so.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use virt::connect::Connect;
use virt::domain::{Domain, MigrateParameters};
use virt::error::ErrorNumber;
use virt::sys;

use super::{ffi, job_stats, libvirt_error, lookup, state, verbatim};
use crate::protocol::{Answer, ErrorKind, Request, VERSION};
use crate::template;

/// How long to wait for libvirt's migration call to return once the job was asked to abort.
const ABORT_GRACE: Duration = Duration::from_secs(120);

pub(super) fn migrate(conn: &Connect, request: &Request) -> Answer {
    let Request::Migrate {
        vm,
        destination,
        dest_uri_template,
        migrate_uri_template,
        bandwidth_mib_s,
        max_downtime_ms,
        timeout_ms,
        allow_unsafe,
        ..
    } = request
    else {
        return Answer::error(ErrorKind::BadRequest, "not a migrate request");
    };
    let dom = match lookup(conn, vm) {
        Ok(d) => d,
        Err(answer) => return *answer,
    };
    match state(&dom) {
        Ok(s) if s.is_active() => {}
        Ok(s) => {
            return Answer::error(
                ErrorKind::NotRunning,
                format!("domain {vm} is {s:?}, not running"),
            );
        }
        Err(e) => {
            return libvirt_error(
                ErrorKind::Libvirt,
                format!("cannot read the state of {vm}"),
                &e,
            );
        }
    }
    match super::inventory::read_policy(&dom) {
        Ok(p) if p.migratable => {}
        Ok(_) => {
            return Answer::error(
                ErrorKind::OptedOut,
                format!("domain {vm} has dvms policy migrate=\"never\""),
            );
        }
        Err(why) => {
            return Answer::error(
                ErrorKind::OptedOut,
                format!("domain {vm}: {why}; not migrating it"),
            );
        }
    }
    let render = |t: &str| template::render(t, &destination.name, &destination.address);
    let dest_uri = match render(dest_uri_template) {
        Ok(u) => u,
        Err(why) => {
            return Answer::error(ErrorKind::BadRequest, format!("dest_uri_template: {why}"));
        }
    };
    let migrate_uri = match migrate_uri_template.as_deref().map(render).transpose() {
        Ok(u) => u,
        Err(why) => {
            return Answer::error(
                ErrorKind::BadRequest,
                format!("migrate_uri_template: {why}"),
            );
        }
    };
    let mut flags = sys::VIR_MIGRATE_LIVE
        | sys::VIR_MIGRATE_PEER2PEER
        | sys::VIR_MIGRATE_PERSIST_DEST
        | sys::VIR_MIGRATE_UNDEFINE_SOURCE;
    if *allow_unsafe {
        flags |= sys::VIR_MIGRATE_UNSAFE;
    }
    if let Some(ms) = max_downtime_ms {
        if let Err(e) = dom.migrate_set_max_downtime(*ms, 0) {
            return libvirt_error(
                ErrorKind::Libvirt,
                format!("cannot set the maximum downtime of {vm}"),
                &e,
            );
        }
    }
    let params = MigrateParameters {
        bandwidth: *bandwidth_mib_s,
        uri: migrate_uri,
        ..MigrateParameters::default()
    };
    tracing::info!(vm = %vm, to = %destination.name, dest_uri = %dest_uri, "migration started");
    let dest_uri_for_worker = dest_uri.clone();
    let started = Instant::now();
    let timeout = Duration::from_millis(*timeout_ms);
    // The migration call blocks; it runs on its own thread (with its own handle on the domain) so
    // that this one can abort the job at the deadline. The thread is not joined: if libvirt does
    // not return within ABORT_GRACE of the abort, we answer and exit, which ends it.
    let worker_dom = match lookup(conn, vm) {
        Ok(d) => d,
        Err(answer) => return *answer,
    };
    let (tx, rx) = mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("migrate".into())
        .spawn(move || {
            let r = worker_dom.migrate_to_uri3(Some(&dest_uri_for_worker), params, flags);
            // The receiver may have given up (ABORT_GRACE); nothing is left to tell then.
            let _ = tx.send(r);
        });
    if let Err(e) = spawned {
        return Answer::error(
            ErrorKind::Libvirt,
            format!("cannot start the migration thread: {e}"),
        );
    }
    let (result, timed_out) = match rx.recv_timeout(timeout) {
        Ok(r) => (Some(r), false),
        Err(_) => {
            tracing::warn!(vm = %vm, timeout_ms, "migration timed out; aborting the job");
            if let Err(e) = ffi::abort_job(&dom) {
                tracing::warn!(vm = %vm, error = %e, "aborting the migration job failed");
            }
            (rx.recv_timeout(ABORT_GRACE).ok(), true)
        }
    };
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match result {
        Some(Ok(())) => {
            tracing::info!(vm = %vm, to = %destination.name, elapsed_ms = duration_ms, "migration finished");
            Answer::Migrated {
                version: VERSION,
                vm: vm.clone(),
                destination: destination.name.clone(),
                duration_ms,
                stats: completed_stats(&dest_uri, vm),
            }
        }
        Some(Err(e)) => {
            let kind = if timed_out {
                ErrorKind::MigrationTimedOut
            } else {
                ErrorKind::MigrationFailed
            };
            tracing::warn!(vm = %vm, to = %destination.name, error = %e, "migration failed");
            Answer::Error {
                version: VERSION,
                kind,
                message: if timed_out {
                    format!(
                        "live migration of {vm} to {} aborted after {timeout_ms} ms",
                        destination.name
                    )
                } else {
                    format!("live migration of {vm} to {} failed", destination.name)
                },
                libvirt: Some(verbatim(&e)),
                source_state: source_state(conn, vm),
            }
        }
        None => Answer::Error {
            version: VERSION,
            kind: ErrorKind::MigrationTimedOut,
            message: format!(
                "live migration of {vm} to {} did not end within {} s of its abort",
                destination.name,
                ABORT_GRACE.as_secs()
            ),
            libvirt: None,
            source_state: source_state(conn, vm),
        },
    }
}

/// The domain's state on the source, read back after a failure (None when it is not there).
fn source_state(conn: &Connect, vm: &str) -> Option<crate::protocol::VmState> {
    let dom = conn.lookup_domain_by_name(vm).ok()?;
    state(&dom).ok()
}

/// libvirt keeps the statistics of a completed incoming migration on the destination's domain;
/// the source's domain is undefined by then. Best effort: `None` when they cannot be read.
fn completed_stats(dest_uri: &str, vm: &str) -> Option<crate::protocol::JobStats> {
    let dconn = Connect::open(Some(dest_uri)).ok()?;
    let dom = dconn.lookup_domain_by_name(vm).ok()?;
    let stats = dom.job_stats(sys::VIR_DOMAIN_JOB_STATS_COMPLETED).ok()?;
    Some(job_stats(&stats))
}

pub(super) fn abort(conn: &Connect, vm: &str) -> Answer {
    let dom = match lookup(conn, vm) {
        Ok(d) => d,
        Err(answer) => return *answer,
    };
    match ffi::abort_job(&dom) {
        Ok(()) => {
            tracing::info!(vm = %vm, "migration job aborted");
            Answer::Aborted {
                version: VERSION,
                vm: vm.to_owned(),
            }
        }
        Err(e) if e.code() == ErrorNumber::OperationInvalid.into() => libvirt_error(
            ErrorKind::NotMigrating,
            format!("no job is running on {vm}"),
            &e,
        ),
        Err(e) => libvirt_error(
            ErrorKind::Libvirt,
            format!("cannot abort the job of {vm}"),
            &e,
        ),
    }
}

pub(super) fn job_status(conn: &Connect, vm: &str) -> Answer {
    let dom: Domain = match lookup(conn, vm) {
        Ok(d) => d,
        Err(answer) => return *answer,
    };
    match dom.job_stats(0) {
        Ok(s) => {
            let active = s.r#type != i32::try_from(sys::VIR_DOMAIN_JOB_NONE).unwrap_or(0);
            Answer::Job {
                version: VERSION,
                vm: vm.to_owned(),
                active,
                stats: active.then(|| job_stats(&s)),
            }
        }
        // An inactive domain has no job.
        Err(e) if e.code() == ErrorNumber::OperationInvalid.into() => Answer::Job {
            version: VERSION,
            vm: vm.to_owned(),
            active: false,
            stats: None,
        },
        Err(e) => libvirt_error(
            ErrorKind::Libvirt,
            format!("cannot read the job of {vm}"),
            &e,
        ),
    }
}
