//! One host's files, written by `dvms_host::fakeroot` in the exact format the agent's monitor
//! reads (cgroup v2 under `machine.slice`, `/proc/<pid>/task/*/schedstat`, `meminfo`,
//! `pressure/*`, `devices/system/cpu/online`).

use std::path::{Path, PathBuf};

use dvms_host::fakeroot::{FakeRoot, FakeRootError};

/// The roots an agent's `[monitor]` section points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootPaths {
    /// `monitor.cgroup_root`.
    pub cgroup_root: PathBuf,
    /// `monitor.proc_root`.
    pub proc_root: PathBuf,
    /// `monitor.sys_root`.
    pub sys_root: PathBuf,
}

/// Window of the host's `some avg10` CPU pressure, seconds.
const AVG10_S: f64 = 10.0;

#[derive(Debug)]
pub(crate) struct HostRoot {
    root: FakeRoot,
    /// The host's CPU `some avg10`, percent.
    cpu_avg10: f64,
}

fn io(e: FakeRootError) -> std::io::Error {
    std::io::Error::other(e)
}

impl HostRoot {
    pub(crate) fn create(dir: &Path, cpu_milli: u64, mem_mib: u64) -> std::io::Result<HostRoot> {
        let cores = u32::try_from(cpu_milli / 1000)
            .map_err(|_| std::io::Error::other("core count out of range"))?;
        Ok(HostRoot {
            root: FakeRoot::create(dir, cores, mem_mib).map_err(io)?,
            cpu_avg10: 0.0,
        })
    }

    pub(crate) fn paths(&self) -> RootPaths {
        let m = self.root.monitor_config();
        RootPaths {
            cgroup_root: m.cgroup_root,
            proc_root: m.proc_root,
            sys_root: m.sys_root,
        }
    }

    pub(crate) fn add_vm(&mut self, name: &str, vcpus: u32, mem_mib: u64) -> std::io::Result<()> {
        self.root
            .add_vm(name, vcpus, mem_mib)
            .map(|_| ())
            .map_err(io)
    }

    pub(crate) fn advance(
        &mut self,
        name: &str,
        used_s: f64,
        waited_s: f64,
        mem_used_mib: u64,
    ) -> std::io::Result<()> {
        self.root
            .advance_vm(name, used_s, waited_s, mem_used_mib)
            .map_err(io)
    }

    /// Advances the host's CPU pressure by `secs`, with some task waiting throughout or not.
    pub(crate) fn advance_host(&mut self, secs: f64, waiting: bool) -> std::io::Result<()> {
        let decay = (-secs / AVG10_S).exp();
        let now = if waiting { 100.0 } else { 0.0 };
        self.cpu_avg10 = self.cpu_avg10 * decay + now * (1.0 - decay);
        let stall_us = if waiting {
            (secs * 1e6).round() as u64
        } else {
            0
        };
        self.root
            .set_host_pressure(self.cpu_avg10 as f32, stall_us, 0.0, 0)
            .map_err(io)
    }

    pub(crate) fn move_vm(&mut self, name: &str, to: &mut HostRoot) -> std::io::Result<()> {
        self.root.move_vm(name, &mut to.root).map_err(io)
    }

    /// The VMs whose cgroup scope is in this root's `machine.slice`, read from the files
    /// themselves (not from the writer's memory), with whether the process their
    /// `libvirt/cgroup.procs` names has its `/proc` directory in this root too.
    pub(crate) fn on_disk(&self) -> std::io::Result<Vec<(String, bool)>> {
        let paths = self.paths();
        let slice = paths.cgroup_root.join("machine.slice");
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&slice)? {
            let entry = entry?;
            let Some(dir) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if dir.starts_with('.') {
                continue;
            }
            let Some(m) = dvms_host::names::parse_machine_dir(&dir) else {
                continue;
            };
            // The QEMU pid, as libvirt's sub-cgroup lists it.
            let procs = std::fs::read_to_string(slice.join(&dir).join("libvirt/cgroup.procs"))
                .unwrap_or_default();
            let has_proc = procs
                .split_whitespace()
                .next()
                .and_then(|p| p.parse::<u32>().ok())
                .is_some_and(|pid| paths.proc_root.join(pid.to_string()).is_dir());
            found.push((m.name, has_proc));
        }
        Ok(found)
    }
}
