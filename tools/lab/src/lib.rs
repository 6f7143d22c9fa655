//! dvms-lab: a real `dvmsd` cluster on one machine.
//!
//! - [`hv`]: the fake hypervisor. It owns one root per host in the kernel's format (cgroup v2
//!   under `machine.slice`, `/proc`, `/sys`), advances every VM's counters from its demand with
//!   use capped at the host's capacity and the rest shown as waiting, and serves the `lab`
//!   actuator protocol (migrate with a modelled duration, abort, status) on a Unix socket. It
//!   keeps the ground truth of where each VM is.
//! - [`workload`]: what drives the VMs' demand in real time (`vmplaces`, `planetlab:DIR`), with
//!   the simulator's generators.
//! - [`cluster`]: `dvms-lab cluster`: N real `dvmsd` processes on loopback, one per host root,
//!   a run of a given duration and its report.
//! - [`libvirt`]: `dvms-lab libvirt`: the same on real KVM guests: libvirt hosts in namespaces
//!   (`tools/libvirt-lab/lab.sh`), duty-cycle guests whose CPU demand follows the workload, a
//!   `dvmsd` per host with the libvirt actuator.
//! - [`cli`]: the command line (one subcommand per family: `cluster`, `libvirt`).

/// Writes a line to stderr, ignoring errors (a closed stderr must not stop a run that has
/// agents to stop).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod cli;
pub mod cluster;
pub mod hv;
pub mod libvirt;
pub mod workload;
