//! The libvirt side: executes one [`Request`] through the `virt` bindings and builds its
//! [`Answer`]. Every libvirt failure becomes an [`Answer::Error`] carrying libvirt's error
//! verbatim; nothing here panics on what libvirt returns.

mod ffi;
mod inventory;
mod migrate;

use virt::connect::Connect;
use virt::domain::Domain;
use virt::error::{Error as VirtError, ErrorNumber};
use virt::sys;

use crate::protocol::{Answer, ErrorKind, JobStats, LibvirtError, Request, VERSION, VmState};

/// Executes a validated request and answers it.
///
/// Blocking: a migration returns when libvirt's migration call returns (at most about
/// `timeout_ms` plus the time libvirt takes to abort the job).
pub fn execute(request: &Request) -> Answer {
    // libvirt's default error handler prints every error on stdout, which carries our answer.
    virt::error::clear_error_callback();
    let conn = match Connect::open(Some(request.connect())) {
        Ok(c) => c,
        Err(e) => {
            return libvirt_error(
                ErrorKind::Connect,
                format!("cannot connect to libvirt at {}", request.connect()),
                &e,
            );
        }
    };
    // The connection closes when `conn` drops.
    match request {
        Request::Inventory { qemu_pid_dir, .. } => {
            inventory::inventory(&conn, qemu_pid_dir.as_deref())
        }
        Request::Migrate { .. } => migrate::migrate(&conn, request),
        Request::Abort { vm, .. } => migrate::abort(&conn, vm),
        Request::JobStatus { vm, .. } => migrate::job_status(&conn, vm),
    }
}

/// An error answer carrying libvirt's error.
fn libvirt_error(kind: ErrorKind, message: impl Into<String>, e: &VirtError) -> Answer {
    Answer::Error {
        version: VERSION,
        kind,
        message: message.into(),
        libvirt: Some(verbatim(e)),
        source_state: None,
    }
}

/// libvirt's error as it reported it.
fn verbatim(e: &VirtError) -> LibvirtError {
    LibvirtError {
        code: i64::from(e.code().to_raw()),
        domain: i64::from(e.domain().to_raw()),
        message: e.message().to_owned(),
    }
}

/// Looks a domain up by name; a missing domain is [`ErrorKind::NoSuchVm`].
fn lookup(conn: &Connect, vm: &str) -> Result<Domain, Box<Answer>> {
    conn.lookup_domain_by_name(vm).map_err(|e| {
        let kind = if e.code() == ErrorNumber::NoDomain.into() {
            ErrorKind::NoSuchVm
        } else {
            ErrorKind::Libvirt
        };
        Box::new(libvirt_error(kind, format!("cannot find domain {vm}"), &e))
    })
}

/// The domain's state (through `virDomainGetInfo`, which reports its errors).
fn state(dom: &Domain) -> Result<VmState, VirtError> {
    let info = dom.info()?;
    Ok(map_state(info.state.to_raw()))
}

/// Maps `virDomainState` onto [`VmState`].
fn map_state(raw: sys::virDomainState) -> VmState {
    match raw {
        sys::VIR_DOMAIN_RUNNING => VmState::Running,
        sys::VIR_DOMAIN_BLOCKED => VmState::Blocked,
        sys::VIR_DOMAIN_PAUSED => VmState::Paused,
        sys::VIR_DOMAIN_SHUTDOWN => VmState::Shutdown,
        sys::VIR_DOMAIN_SHUTOFF => VmState::Shutoff,
        sys::VIR_DOMAIN_CRASHED => VmState::Crashed,
        sys::VIR_DOMAIN_PMSUSPENDED => VmState::PmSuspended,
        _ => VmState::Unknown,
    }
}

/// The fields of libvirt's job statistics that the protocol carries.
fn job_stats(s: &virt::domain::JobStats) -> JobStats {
    JobStats {
        time_elapsed_ms: s.time_elapsed,
        downtime_ms: s.downtime,
        data_total_bytes: s.data_total,
        data_processed_bytes: s.data_processed,
        data_remaining_bytes: s.data_remaining,
        memory_bps: s.mem_bps,
    }
}
