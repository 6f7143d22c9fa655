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
//! - [`cli`]: the command line (one subcommand per family: `cluster`, later `libvirt`).

pub mod cli;
pub mod cluster;
pub mod hv;
pub mod workload;
