//! Reservations for VMs migrating *to* this host (`docs/protocol.md` §9.4).
//!
//! A destination does not see a VM in its samples until the live migration has finished. Until
//! then, a plan computed from its state alone (after a takeover, or in another partition once
//! this one dissolved) could fill the room the arriving VM needs. The source therefore asks the
//! destination to reserve the room before it starts (and starts only once the destination has
//! acknowledged); the destination counts the VM in the state it reports and the load it gossips
//! until the migration has ended: the source's `Handoff` (success) or `IncomingCancelled`
//! (failure, abort), or the source's answer to a periodic `IncomingQuery` saying it no longer
//! runs it, or the source reported unreachable three times in a row (a host that is gone
//! migrates nothing). Never on a clock: a reservation outlives any partition and any timeout.

use std::collections::BTreeMap;

use crate::Time;
use crate::model::{HostSample, MigrationId, NodeId, Resources, VmId};

/// The most reservations kept; further announcements are refused (a host never receives that
/// many VMs at once; the bound keeps a misbehaving peer from growing the table).
pub(crate) const MAX_INCOMING: usize = 256;

/// One reserved arrival.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reservation {
    /// The VM's CPU demand and memory.
    pub(crate) demand: Resources,
    /// The source host.
    pub(crate) source: NodeId,
    /// The migration, as the source knows it.
    pub(crate) migration: MigrationId,
    /// When to ask the source again whether the migration still runs.
    pub(crate) next_query: Time,
    /// Requests to the source reported failed since its last answer.
    pub(crate) failures: u8,
}

/// A source whose requests failed this many times in a row, queries included, is gone: a host
/// that is gone migrates nothing.
pub(crate) const SOURCE_GONE_AFTER: u8 = 3;

/// VMs announced as arriving.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Incoming {
    entries: BTreeMap<VmId, Reservation>,
}

impl Incoming {
    /// The reservation of `vm`, if any.
    pub(crate) fn get(&self, vm: VmId) -> Option<&Reservation> {
        self.entries.get(&vm)
    }

    /// True when one more reservation may be added.
    pub(crate) fn has_room(&self) -> bool {
        self.entries.len() < MAX_INCOMING
    }

    /// Reserves room for `vm` (replacing an older reservation of the same VM).
    pub(crate) fn reserve(&mut self, vm: VmId, r: Reservation) {
        if self.entries.len() < MAX_INCOMING || self.entries.contains_key(&vm) {
            self.entries.insert(vm, r);
        }
    }

    /// The migration `migration` of `vm` from `source` ended: its reservation goes. A late
    /// message about an earlier migration of the same VM releases nothing (§7.7).
    pub(crate) fn release(&mut self, vm: VmId, source: NodeId, migration: MigrationId) {
        let matches = self
            .entries
            .get(&vm)
            .is_some_and(|r| r.source == source && r.migration == migration);
        if matches {
            self.entries.remove(&vm);
        }
    }

    /// A request to `source` failed: after [`SOURCE_GONE_AFTER`] failures in a row its
    /// reservations go.
    pub(crate) fn source_unreachable(&mut self, source: NodeId) {
        for r in self.entries.values_mut().filter(|r| r.source == source) {
            r.failures = r.failures.saturating_add(1);
        }
        self.entries
            .retain(|_, r| r.source != source || r.failures < SOURCE_GONE_AFTER);
    }

    /// `source` answered: it is not gone.
    pub(crate) fn source_answered(&mut self, source: NodeId) {
        for r in self.entries.values_mut().filter(|r| r.source == source) {
            r.failures = 0;
        }
    }

    /// Reservations whose source is due a query at `now`; their next query moves to `next`.
    pub(crate) fn due_queries(
        &mut self,
        now: Time,
        next: Time,
    ) -> Vec<(NodeId, MigrationId, VmId)> {
        let mut due = Vec::new();
        for (&vm, r) in &mut self.entries {
            if r.next_query <= now {
                r.next_query = next;
                due.push((r.source, r.migration, vm));
            }
        }
        due
    }

    /// The earliest query due.
    pub(crate) fn next_deadline(&self) -> Option<Time> {
        self.entries.values().map(|r| r.next_query).min()
    }

    /// True when nothing is reserved.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Reserved VMs that the sample does not show yet.
    pub(crate) fn pending<'a>(
        &'a self,
        sample: &'a HostSample,
    ) -> impl Iterator<Item = (VmId, Resources)> + 'a {
        self.entries
            .iter()
            .filter(|(vm, _)| !sample.vms.iter().any(|v| v.id == **vm))
            .map(|(&vm, r)| (vm, r.demand))
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

    fn res(source: u64, migration: u64) -> Reservation {
        Reservation {
            demand: Resources::new(300, 512),
            source: NodeId(source),
            migration: MigrationId(migration),
            next_query: Time::from_secs(5),
            failures: 0,
        }
    }

    // Reference: protocol.md §9.4 (a reservation ends with the migration, never on a clock).
    #[test]
    fn reservation_counts_until_its_source_says_the_migration_ended() {
        let mut inc = Incoming::default();
        inc.reserve(VmId(7), res(3, 1));
        let pending: Vec<_> = inc.pending(&sample(&[1])).collect();
        assert_eq!(pending, vec![(VmId(7), Resources::new(300, 512))]);
        // Once the sample shows the VM it is not counted twice.
        assert_eq!(inc.pending(&sample(&[1, 7])).count(), 0);
        // Time alone never releases it: queries come due instead.
        assert_eq!(inc.next_deadline(), Some(Time::from_secs(5)));
        let due = inc.due_queries(Time::from_secs(3600), Time::from_secs(3605));
        assert_eq!(due, vec![(NodeId(3), MigrationId(1), VmId(7))]);
        assert_eq!(inc.pending(&sample(&[1])).count(), 1);
        // Only its own source (and migration) releases it.
        inc.release(VmId(7), NodeId(4), MigrationId(1));
        inc.release(VmId(7), NodeId(3), MigrationId(2));
        assert_eq!(inc.pending(&sample(&[1])).count(), 1);
        inc.release(VmId(7), NodeId(3), MigrationId(1));
        assert!(inc.is_empty());
        // A source is gone only after several failed requests in a row.
        inc.reserve(VmId(8), res(3, 1));
        inc.source_unreachable(NodeId(3));
        inc.source_unreachable(NodeId(3));
        inc.source_answered(NodeId(3));
        inc.source_unreachable(NodeId(3));
        inc.source_unreachable(NodeId(3));
        assert!(!inc.is_empty());
        inc.source_unreachable(NodeId(3));
        assert!(inc.is_empty());
    }

    #[test]
    fn table_is_bounded() {
        let mut inc = Incoming::default();
        for vm in 0..(MAX_INCOMING as u64 + 10) {
            inc.reserve(VmId(vm), res(1, vm));
        }
        assert!(!inc.has_room());
        assert_eq!(inc.pending(&sample(&[])).count(), MAX_INCOMING);
        inc.release(VmId(0), NodeId(1), MigrationId(0));
        assert_eq!(inc.pending(&sample(&[])).count(), MAX_INCOMING - 1);
    }
}
