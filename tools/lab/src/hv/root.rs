//! One host's files. TEMPORARY in-memory stand-in until `dvms_host::fakeroot` lands.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

#[derive(Debug)]
pub(crate) struct HostRoot {
    dir: PathBuf,
    vms: BTreeMap<String, (f64, f64)>,
}

impl HostRoot {
    pub(crate) fn create(dir: &Path, _cpu_milli: u64, _mem_mib: u64) -> std::io::Result<HostRoot> {
        Ok(HostRoot {
            dir: dir.to_owned(),
            vms: BTreeMap::new(),
        })
    }

    pub(crate) fn paths(&self) -> RootPaths {
        RootPaths {
            cgroup_root: self.dir.join("cgroup"),
            proc_root: self.dir.join("proc"),
            sys_root: self.dir.join("sys"),
        }
    }

    pub(crate) fn add_vm(&mut self, name: &str, _vcpus: u32, _mem_mib: u64) -> std::io::Result<()> {
        self.vms.insert(name.to_owned(), (0.0, 0.0));
        Ok(())
    }

    pub(crate) fn advance(
        &mut self,
        name: &str,
        used_s: f64,
        waited_s: f64,
        _mem_used_mib: u64,
    ) -> std::io::Result<()> {
        let v = self
            .vms
            .get_mut(name)
            .ok_or_else(|| std::io::Error::other("no such vm"))?;
        v.0 += used_s;
        v.1 += waited_s;
        Ok(())
    }

    pub(crate) fn advance_host(&mut self, _secs: f64, _waiting: bool) -> std::io::Result<()> {
        Ok(())
    }

    pub(crate) fn move_vm(&mut self, name: &str, to: &mut HostRoot) -> std::io::Result<()> {
        let v = self
            .vms
            .remove(name)
            .ok_or_else(|| std::io::Error::other("no such vm"))?;
        to.vms.insert(name.to_owned(), v);
        Ok(())
    }

    pub(crate) fn holds(&self, name: &str) -> bool {
        self.vms.contains_key(name)
    }
}
