//! `inventory`: every domain of the connection with its state, QEMU pid, size and dvms policy.

use std::path::Path;

use virt::connect::Connect;
use virt::domain::Domain;
use virt::error::ErrorNumber;
use virt::sys;

use super::{libvirt_error, state};
use crate::policy::{self, Policy};
use crate::procfs;
use crate::protocol::{Answer, ErrorKind, VERSION, Vm};

/// Most domains reported; a host with more is refused rather than answered partially.
const MAX_VMS: usize = 10_000;

pub(super) fn inventory(conn: &Connect, pid_dir: Option<&str>) -> Answer {
    let hostname = match conn.hostname() {
        Ok(h) => h,
        Err(e) => return libvirt_error(ErrorKind::Libvirt, "cannot read the host name", &e),
    };
    let flags = sys::VIR_CONNECT_LIST_DOMAINS_ACTIVE | sys::VIR_CONNECT_LIST_DOMAINS_INACTIVE;
    let domains = match conn.list_all_domains(flags) {
        Ok(d) => d,
        Err(e) => return libvirt_error(ErrorKind::Libvirt, "cannot list domains", &e),
    };
    if domains.len() > MAX_VMS {
        return Answer::error(
            ErrorKind::Libvirt,
            format!(
                "{} domains is more than the {MAX_VMS} an inventory reports",
                domains.len()
            ),
        );
    }
    let pid_dir = Path::new(pid_dir.unwrap_or(procfs::DEFAULT_PID_DIR));
    let mut vms = Vec::with_capacity(domains.len());
    for dom in &domains {
        match describe(dom, pid_dir) {
            Ok(vm) => vms.push(vm),
            // A domain that vanished while we listed (undefined, migrated away) is skipped.
            Err(e) if e.code() == ErrorNumber::NoDomain.into() => {
                tracing::debug!(error = %e, "domain vanished during the inventory");
            }
            Err(e) => return libvirt_error(ErrorKind::Libvirt, "cannot describe a domain", &e),
        }
    }
    vms.sort_by(|a, b| a.name.cmp(&b.name));
    Answer::Inventory {
        version: VERSION,
        hostname,
        vms,
    }
}

fn describe(dom: &Domain, pid_dir: &Path) -> Result<Vm, virt::error::Error> {
    let name = dom.name()?;
    let uuid = dom.uuid_string()?;
    let info = dom.info()?;
    let vm_state = state(dom)?;
    let persistent = dom.is_persistent()?;
    let (policy, policy_error) = match read_policy(dom) {
        Ok(p) => (p, None),
        Err(why) => (Policy { migratable: false }, Some(why)),
    };
    let proc_root = Path::new("/proc");
    let qemu_pid = if vm_state.is_active() {
        procfs::qemu_pid(pid_dir, proc_root, &name, &uuid)
    } else {
        None
    };
    Ok(Vm {
        cgroup: qemu_pid.and_then(|pid| procfs::cgroup(proc_root, pid)),
        name,
        uuid,
        state: vm_state,
        qemu_pid,
        vcpus: info.nr_virt_cpu,
        memory_mib: info.memory / 1024,
        max_memory_mib: info.max_mem / 1024,
        persistent,
        migratable: policy.migratable,
        policy_error,
    })
}

/// The domain's dvms policy; no element means the default (migratable).
pub(super) fn read_policy(dom: &Domain) -> Result<Policy, String> {
    let kind = i32::try_from(sys::VIR_DOMAIN_METADATA_ELEMENT).unwrap_or(2);
    match dom.metadata(kind, Some(policy::NAMESPACE), 0) {
        Ok(xml) => policy::parse(&xml),
        Err(e) if e.code() == ErrorNumber::NoDomainMetadata.into() => Ok(Policy::default()),
        Err(e) => Err(format!("cannot read the dvms metadata: {}", e.message())),
    }
}
