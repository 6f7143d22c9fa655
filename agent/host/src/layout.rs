//! The cgroup layouts libvirt creates, and the directories where VMs are listed.
//!
//! | layout | VMs listed in | CPU | memory | vCPU threads |
//! |---|---|---|---|---|
//! | v2, systemd | `machine.slice/machine-qemu\x2d<id>\x2d<name>.scope/` | `cpu.stat` | `memory.current`, `memory.stat` | `libvirt/vcpuN/cgroup.threads` (libvirt >= 7.1) or `vcpuN/cgroup.threads` |
//! | v2, no systemd | `machine/qemu-<id>-<name>.libvirt-qemu/` | same | same | `vcpuN/cgroup.threads` |
//! | v1 / hybrid | `cpuacct/machine[.slice]/<vm>/` | `cpuacct.usage` | `memory/machine[.slice]/<vm>/memory.usage_in_bytes`, `memory.stat` | `vcpuN/tasks` |
//! | hybrid, `cpuacct` unused | `unified/machine[.slice]/<vm>/` | `cpu.stat` (v2 core) | as v1 | `vcpuN/cgroup.threads` |
//!
//! The last row: on a hybrid host whose `cpu` and `cpuacct` hierarchies are mounted apart,
//! libvirt leaves VMs out of `cpuacct`; their v2 `unified/` cgroups (no controllers) still
//! count CPU time in `cpu.stat` and list their threads, and memory is in the v1 `memory`
//! hierarchy. That layout is read only where `cpuacct/machine[.slice]` does not exist, so no
//! VM is counted twice.

use std::path::{Path, PathBuf};

use std::os::fd::OwnedFd;

use rustix::fs::{Mode, OFlags};

/// The cgroup version of a scanned directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// Unified hierarchy.
    V2,
    /// Legacy per-controller hierarchies.
    V1,
    /// CPU and threads from the unified hierarchy, memory from the v1 `memory` one.
    Hybrid,
}

impl Version {
    /// The file listing a cgroup's threads.
    pub(crate) fn threads_file(self) -> &'static [u8] {
        match self {
            Version::V2 | Version::Hybrid => b"cgroup.threads",
            Version::V1 => b"tasks",
        }
    }
}

/// A directory where VM cgroups appear, with its descriptor kept open between samples:
/// re-listing it (seek to 0, `getdents64` into a caller's buffer) allocates nothing.
#[derive(Debug)]
pub(crate) struct Scanner {
    /// The cgroup version.
    pub(crate) version: Version,
    /// Where the VM directories (and their CPU files) are.
    pub(crate) cpu_dir: PathBuf,
    /// Where their memory files are (the same as `cpu_dir` on v2).
    pub(crate) mem_dir: PathBuf,
    /// A file whose presence says the mount is of this version.
    marker: PathBuf,
    /// A directory whose presence says another scanner lists these VMs (hybrid only).
    unless: Option<PathBuf>,
    dir: Option<OwnedFd>,
}

impl Scanner {
    /// Every directory where libvirt may put VMs under a cgroup mount point.
    pub(crate) fn all(cg: &Path) -> Vec<Scanner> {
        let mk = |version, cpu: PathBuf, mem: PathBuf| {
            let marker = match version {
                Version::V2 | Version::Hybrid => "cgroup.controllers",
                Version::V1 => "cpuacct.usage",
            };
            let marker = cpu.parent().map_or_else(PathBuf::new, |p| p.join(marker));
            Scanner {
                version,
                cpu_dir: cpu,
                mem_dir: mem,
                marker,
                unless: None,
                dir: None,
            }
        };
        let mut v = Vec::with_capacity(6);
        for slice in ["machine.slice", "machine"] {
            v.push(mk(Version::V2, cg.join(slice), cg.join(slice)));
        }
        for slice in ["machine.slice", "machine"] {
            v.push(mk(
                Version::V1,
                cg.join("cpuacct").join(slice),
                cg.join("memory").join(slice),
            ));
        }
        for slice in ["machine.slice", "machine"] {
            let mut s = mk(
                Version::Hybrid,
                cg.join("unified").join(slice),
                cg.join("memory").join(slice),
            );
            s.unless = Some(cg.join("cpuacct").join(slice));
            v.push(s);
        }
        v
    }

    /// The open directory, opened now if it was not. A v2 directory is only used where the
    /// mount is a v2 one (its `cgroup.controllers` exists); a v1 one where `cpuacct.usage`
    /// exists.
    pub(crate) fn open(&mut self) -> Option<(&OwnedFd, &Path, &Path)> {
        if self.dir.is_none() {
            // A missing marker costs one failed stat per sample, no allocation.
            if !self.marker.exists() || self.unless.as_ref().is_some_and(|u| u.exists()) {
                return None;
            }
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
            self.dir = rustix::fs::open(self.cpu_dir.as_path(), flags, Mode::empty()).ok();
        }
        let Scanner {
            cpu_dir,
            mem_dir,
            dir,
            ..
        } = self;
        dir.as_ref()
            .map(|d| (d, cpu_dir.as_path(), mem_dir.as_path()))
    }

    /// Forgets the directory handle (when the directory was removed), so the next sample
    /// opens it again.
    pub(crate) fn close(&mut self) {
        self.dir = None;
    }
}
