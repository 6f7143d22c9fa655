//! The host's load each period, from dvms-host's kernel monitor, as the core's `HostSample`.
//!
//! VMs are named by the hypervisor; the core knows them by [`VmId`], a stable hash of the name
//! ([`crate::directory::vm_id_of`]). This module keeps the id-to-name map of the VMs of the
//! latest sample, so migrations and `dvmsctl` can name them. A VM's memory for placement is its
//! configured size (what a destination must hold), or what it uses when the size is unknown.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use dvms_core::model::{HostSample, Resources, VmId, VmLoad};
use dvms_host::{Monitor, MonitorConfig, MonitorError, VmInfo};

use crate::actuator::Inventory;
use crate::config::Config;
use crate::control::proto::{Load, VmRow};
use crate::directory::vm_id_of;

/// The monitor and what its latest sample saw.
#[derive(Debug)]
pub struct HostMonitor {
    inner: Monitor,
    /// VMs of the latest sample, by id.
    vms: BTreeMap<VmId, VmInfo>,
    /// The latest sample's totals.
    load: Load,
    /// libvirt's inventory (libvirt actuator): a VM is migratable only when it says so.
    inventory: Option<Arc<Inventory>>,
    /// VMs of the latest sample that may not be migrated.
    pinned: BTreeSet<VmId>,
}

impl HostMonitor {
    /// Opens the monitor on the configured roots.
    ///
    /// # Errors
    /// When the roots cannot be read at all.
    pub fn new(cfg: &Config) -> Result<HostMonitor, MonitorError> {
        let inner = Monitor::new(MonitorConfig {
            cgroup_root: cfg.cgroup_root.clone(),
            proc_root: cfg.proc_root.clone(),
            sys_root: cfg.sys_root.clone(),
            reserve_cpu_milli: cfg.reserve_cpu_milli,
            reserve_mem_mib: cfg.reserve_mem_mib,
        })?;
        Ok(HostMonitor {
            inner,
            vms: BTreeMap::new(),
            load: Load::default(),
            inventory: None,
            pinned: BTreeSet::new(),
        })
    }

    /// Marks VMs migratable only as libvirt's inventory allows (named there, running with the
    /// QEMU pid the monitor read, not opted out by `<dvms:policy migrate="never"/>`).
    pub fn set_inventory(&mut self, inventory: Arc<Inventory>) {
        self.inventory = Some(inventory);
    }

    /// Takes one sample; logs VMs that appear and vanish.
    ///
    /// # Errors
    /// When the host itself cannot be read (VMs vanishing mid-read are skipped, not errors).
    pub fn sample(&mut self) -> Result<HostSample, MonitorError> {
        let sample = self.inner.sample()?;
        let mut vms = BTreeMap::new();
        let mut loads = Vec::with_capacity(sample.vms.len());
        for vm in &sample.vms {
            let id = vm_id_of(&vm.name);
            if let Some(other) = vms.get(&id).map(|o: &VmInfo| o.name.clone()) {
                tracing::error!(vm = %vm.name, other = %other, "vm id collision: vm ignored");
                continue;
            }
            if !self.vms.contains_key(&id) {
                tracing::info!(vm = %vm.name, vm_id = %format_args!("{:016x}", id.0), vcpus = vm.vcpus, mem_mib = vm.mem_size_mib, event = "vm_seen", "vm discovered");
            }
            let mem = if vm.mem_size_mib > 0 {
                vm.mem_size_mib
            } else {
                vm.mem_used_mib
            };
            let migratable = self
                .inventory
                .as_ref()
                .is_none_or(|inv| inv.migratable(&vm.name, vm.pid));
            if migratable == self.pinned.contains(&id) {
                tracing::info!(vm = %vm.name, migratable, event = "vm_policy", "vm migratable as libvirt's inventory says");
            }
            if migratable {
                self.pinned.remove(&id);
            } else {
                self.pinned.insert(id);
            }
            loads.push(VmLoad {
                id,
                demand: Resources::new(vm.cpu_demand_milli, mem),
                migratable,
            });
            vms.insert(id, vm.clone());
        }
        for (id, old) in &self.vms {
            if !vms.contains_key(id) {
                tracing::info!(vm = %old.name, event = "vm_gone", "vm no longer on this host");
            }
        }
        if sample.skipped > 0 {
            tracing::debug!(skipped = sample.skipped, "entries skipped while sampling");
        }
        self.pinned.retain(|id| vms.contains_key(id));
        self.vms = vms;
        let out = HostSample {
            capacity: Resources::new(sample.host.cpu_capacity_milli, sample.host.mem_capacity_mib),
            vms: loads,
        };
        let demand = out.demand();
        self.load = Load {
            cpu_capacity_milli: out.capacity.cpu_milli,
            cpu_demand_milli: demand.cpu_milli,
            mem_capacity_mib: out.capacity.mem_mib,
            mem_demand_mib: demand.mem_mib,
        };
        Ok(out)
    }

    /// The name of a VM of the latest sample.
    pub fn name(&self, id: VmId) -> Option<&str> {
        self.vms.get(&id).map(|v| v.name.as_str())
    }

    /// The latest sample's totals.
    pub fn load(&self) -> Load {
        self.load
    }

    /// Number of VMs in the latest sample.
    pub fn vm_count(&self) -> usize {
        self.vms.len()
    }

    /// The latest sample's VMs for `dvmsctl vms`; `migrating` gives a VM's destination name.
    pub fn rows(&self, migrating: impl Fn(VmId) -> Option<String>) -> Vec<VmRow> {
        self.vms
            .iter()
            .map(|(id, v)| VmRow {
                name: v.name.clone(),
                id: format!("{:016x}", id.0),
                vcpus: v.vcpus,
                cpu_use_milli: v.cpu_use_milli,
                cpu_demand_milli: v.cpu_demand_milli,
                mem_used_mib: v.mem_used_mib,
                mem_size_mib: v.mem_size_mib,
                migrating_to: migrating(*id),
            })
            .collect()
    }
}
