//! Reservations for VMs migrating *to* this host (`docs/protocol.md` §9.4).
//!
//! A destination does not see a VM in its samples until the live migration has finished. Until
//! then, a plan computed from its state alone (after a takeover, or in another partition once
//! this one dissolved) could fill the room the arriving VM needs. The source therefore announces
//! each migration; the destination counts the VM in the state it reports and the load it gossips
//! until the source's `Handoff` (success) or `IncomingCancelled` (failure), or until the
//! migration deadline passes (the source may have crashed). A stale reservation only makes the
//! host look fuller than it is: it errs on the safe side.

use std::collections::BTreeMap;

use crate::Time;
use crate::model::{HostSample, Resources, VmId};

/// The most reservations kept; further announcements are ignored (a host never receives that
/// many VMs at once; the bound keeps a misbehaving peer from growing the table).
pub(crate) const MAX_INCOMING: usize = 256;

/// VMs announced as arriving, with their demand and the deadline of their reservation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Incoming {
    entries: BTreeMap<VmId, (Resources, Time)>,
}

impl Incoming {
    /// Reserves room for `vm` until `deadline`.
    pub(crate) fn announce(&mut self, vm: VmId, demand: Resources, deadline: Time) {
        if self.entries.len() < MAX_INCOMING || self.entries.contains_key(&vm) {
            self.entries.insert(vm, (demand, deadline));
        }
    }

    /// The migration of `vm` ended (arrived or failed): its reservation goes.
    pub(crate) fn clear(&mut self, vm: VmId) {
        self.entries.remove(&vm);
    }

    /// Drops reservations past their deadline.
    pub(crate) fn prune(&mut self, now: Time) {
        self.entries.retain(|_, &mut (_, deadline)| now < deadline);
    }

    /// Reserved VMs that the sample does not show yet.
    pub(crate) fn pending<'a>(
        &'a self,
        sample: &'a HostSample,
    ) -> impl Iterator<Item = (VmId, Resources)> + 'a {
        self.entries
            .iter()
            .filter(|(vm, _)| !sample.vms.iter().any(|v| v.id == **vm))
            .map(|(&vm, &(demand, _))| (vm, demand))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::VmLoad;

    fn sample(ids: &[u64]) -> HostSample {
        HostSample {
            capacity: Resources::new(1000, 1000),
            vms: ids
                .iter()
                .map(|&id| VmLoad {
                    id: VmId(id),
                    demand: Resources::new(100, 100),
                    migratable: true,
                })
                .collect(),
        }
    }

    // Reference: protocol.md §9.4.
    #[test]
    fn reservation_counts_until_the_vm_shows_up_or_the_deadline() {
        let mut inc = Incoming::default();
        inc.announce(VmId(7), Resources::new(300, 512), Time::from_secs(10));
        let pending: Vec<_> = inc.pending(&sample(&[1])).collect();
        assert_eq!(pending, vec![(VmId(7), Resources::new(300, 512))]);
        // Once the sample shows the VM it is not counted twice.
        assert_eq!(inc.pending(&sample(&[1, 7])).count(), 0);
        inc.prune(Time::from_secs(9));
        assert_eq!(inc.pending(&sample(&[1])).count(), 1);
        inc.prune(Time::from_secs(10));
        assert_eq!(inc.pending(&sample(&[1])).count(), 0);
    }

    #[test]
    fn table_is_bounded() {
        let mut inc = Incoming::default();
        for vm in 0..(MAX_INCOMING as u64 + 10) {
            inc.announce(VmId(vm), Resources::new(1, 1), Time::from_secs(1));
        }
        assert_eq!(inc.pending(&sample(&[])).count(), MAX_INCOMING);
        inc.clear(VmId(0));
        assert_eq!(inc.pending(&sample(&[])).count(), MAX_INCOMING - 1);
    }
}
