//! dvms-host: what a hypervisor host and its VMs use, read straight from the kernel.
//!
//! [`Monitor`] discovers the QEMU domains libvirt runs from their cgroups (cgroup v2 under
//! systemd, cgroup v2 without systemd, cgroup v1/hybrid) and samples, for each VM, its CPU
//! use and CPU *demand* (use plus the run-queue wait of its vCPU threads), its memory, and
//! the host's capacity and pressure. Every root is configurable ([`MonitorConfig`]), so the
//! same code reads a fake hypervisor root written by [`fakeroot`]. See `docs/monitoring.md`
//! for the layouts and the estimator.
//!
//! Reading is cheap and allocation-free in steady state: buffers and open directory handles
//! are reused from one sample to the next.

mod discover;
pub mod fakeroot;
mod layout;
mod monitor;
pub mod names;
pub mod parse;
mod read;

pub use monitor::{MAX_VMS, Monitor};

use std::path::PathBuf;

/// Where the monitor reads, and what it keeps for the host itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorConfig {
    /// The cgroup mount point (default `/sys/fs/cgroup`).
    pub cgroup_root: PathBuf,
    /// The procfs mount point (default `/proc`).
    pub proc_root: PathBuf,
    /// The sysfs mount point (default `/sys`); online CPUs come from
    /// `devices/system/cpu/online` under it.
    pub sys_root: PathBuf,
    /// CPU kept for the host itself, milli-cores, subtracted from the capacity.
    pub reserve_cpu_milli: u64,
    /// Memory kept for the host itself, MiB, subtracted from the capacity.
    pub reserve_mem_mib: u64,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
            proc_root: PathBuf::from("/proc"),
            sys_root: PathBuf::from("/sys"),
            reserve_cpu_milli: 0,
            reserve_mem_mib: 0,
        }
    }
}

/// One reading of the host and its VMs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// The host's capacity and pressure.
    pub host: HostInfo,
    /// The VMs read completely, in directory order.
    pub vms: Vec<VmInfo>,
    /// VMs (and optional host files) that could not be read this time: vanished mid-read,
    /// half-written or malformed files. Normal on a busy host; never an error.
    pub skipped: u32,
}

/// The host's capacity (after the configured reserve) and pressure.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HostInfo {
    /// Online CPUs (or the VMs' cgroup `cpu.max`, when lower) minus the reserve, milli-cores.
    pub cpu_capacity_milli: u64,
    /// `MemTotal` minus the reserve, MiB.
    pub mem_capacity_mib: u64,
    /// `/proc/pressure/cpu` `some avg10`, percent; `None` without PSI.
    pub cpu_psi_some_avg10: Option<f32>,
    /// `/proc/pressure/memory` `some avg10`, percent; `None` without PSI.
    pub mem_psi_some_avg10: Option<f32>,
}

/// One VM as the monitor sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VmInfo {
    /// The libvirt domain name (from `-name guest=...`, or the cgroup directory name).
    pub name: String,
    /// The QEMU process id.
    pub pid: u32,
    /// vCPU count (libvirt `vcpuN` cgroups, else `-smp`, else `CPU n/KVM` threads).
    pub vcpus: u32,
    /// Configured memory (`-m`), MiB; 0 when the command line does not say.
    pub mem_size_mib: u64,
    /// `memory.current` minus the inactive file cache (or the v1 equivalents), MiB.
    pub mem_used_mib: u64,
    /// CPU used over the last period, milli-cores, capped at `vcpus * 1000`.
    pub cpu_use_milli: u64,
    /// CPU use plus the vCPU threads' run-queue wait over the last period, milli-cores,
    /// capped at `vcpus * 1000`.
    pub cpu_demand_milli: u64,
}

/// Why a sample could not be taken at all. VM-level problems are never errors: they are
/// counted in [`Sample::skipped`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MonitorError {
    /// A host file the capacity depends on could not be read (and no earlier value exists).
    #[error("cannot read host file {path}")]
    HostFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A host file the capacity depends on is malformed (and no earlier value exists).
    #[error("malformed host file {path}")]
    HostParse {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        #[source]
        source: parse::ParseError,
    },
    /// The configured reserve leaves no capacity.
    #[error("reserve of {reserve} {unit} leaves nothing of a host capacity of {capacity}")]
    ReserveTooLarge {
        /// The reserve configured.
        reserve: u64,
        /// What was read.
        capacity: u64,
        /// "milli-cores" or "MiB".
        unit: &'static str,
    },
}
