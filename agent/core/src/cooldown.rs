//! Migration cooldowns: a VM that just moved is not moved again for a while, and the while grows
//! with repeated moves (`docs/protocol.md` §10). This is what prevents ping-pong.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::Time;
use crate::model::VmId;
use crate::wire::MAX_VMS_PER_HOST;

/// The most move histories a host keeps: as many as the VMs a host may report.
const MAX_HISTORIES: usize = MAX_VMS_PER_HOST;

/// Move history of the VMs of this host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Cooldowns {
    /// For each recently moved VM: how many recent moves, and when it last arrived.
    recent: BTreeMap<VmId, (u8, Time)>,
}

impl Cooldowns {
    /// The cooldown after the `moves`-th recent move: `base * 2^(moves-1)`, capped.
    fn span(moves: u8, base: Duration, max: Duration) -> Duration {
        let doublings = u32::from(moves.saturating_sub(1)).min(20);
        base.saturating_mul(1 << doublings).min(max)
    }

    /// Recent moves of `vm` that still count: history older than `max` is forgotten.
    pub(crate) fn moves(&self, vm: VmId, now: Time, max: Duration) -> u8 {
        match self.recent.get(&vm) {
            Some(&(n, at)) if now < at + max => n,
            _ => 0,
        }
    }

    /// True while `vm` must not move.
    pub(crate) fn blocks(&self, vm: VmId, now: Time, base: Duration, max: Duration) -> bool {
        match self.recent.get(&vm) {
            Some(&(n, at)) => now < at + Self::span(n, base, max),
            None => false,
        }
    }

    /// `vm` arrived here at `now` after its `moves`-th recent move. Histories older than `max`
    /// are dropped first, and at most [`MAX_HISTORIES`] are kept (the oldest arrival goes):
    /// any peer may send a `Handoff`, so the table must not grow with them.
    pub(crate) fn record_arrival(&mut self, vm: VmId, moves: u8, now: Time, max: Duration) {
        self.prune(now, max);
        if self.recent.len() >= MAX_HISTORIES && !self.recent.contains_key(&vm) {
            let oldest = self
                .recent
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(v, _)| *v);
            if let Some(v) = oldest {
                self.recent.remove(&v);
            }
        }
        self.recent.insert(vm, (moves, now));
    }

    /// `vm` left this host: its history travels with it (see `Msg::Handoff`).
    pub(crate) fn forget(&mut self, vm: VmId) {
        self.recent.remove(&vm);
    }

    /// Drops histories older than `max`, keeping the table small.
    pub(crate) fn prune(&mut self, now: Time, max: Duration) {
        self.recent.retain(|_, &mut (_, at)| now < at + max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_secs(100);
    const MAX: Duration = Duration::from_secs(1000);

    // Reference: protocol.md §10 (cooldown grows with repeated moves).
    #[test]
    fn cooldown_doubles_with_each_move_and_is_capped() {
        let mut c = Cooldowns::default();
        let vm = VmId(1);
        assert!(!c.blocks(vm, Time::ZERO, BASE, MAX));
        c.record_arrival(vm, 1, Time::ZERO, MAX);
        assert!(c.blocks(vm, Time::from_secs(99), BASE, MAX));
        assert!(!c.blocks(vm, Time::from_secs(100), BASE, MAX));
        c.record_arrival(vm, 2, Time::ZERO, MAX);
        assert!(c.blocks(vm, Time::from_secs(199), BASE, MAX));
        assert!(!c.blocks(vm, Time::from_secs(200), BASE, MAX));
        c.record_arrival(vm, 9, Time::ZERO, MAX);
        assert!(c.blocks(vm, Time::from_secs(999), BASE, MAX));
        assert!(!c.blocks(vm, Time::from_secs(1000), BASE, MAX));
    }

    #[test]
    fn history_is_forgotten_after_the_maximum() {
        let mut c = Cooldowns::default();
        c.record_arrival(VmId(1), 3, Time::ZERO, MAX);
        assert_eq!(c.moves(VmId(1), Time::from_secs(999), MAX), 3);
        assert_eq!(c.moves(VmId(1), Time::from_secs(1000), MAX), 0);
        c.prune(Time::from_secs(1000), MAX);
        assert_eq!(c, Cooldowns::default());
    }

    #[test]
    fn histories_are_bounded_whatever_peers_send() {
        let mut c = Cooldowns::default();
        for i in 0..3000u64 {
            c.record_arrival(VmId(i), 1, Time(i), MAX);
        }
        assert_eq!(c.recent.len(), MAX_HISTORIES);
        assert!(c.recent.contains_key(&VmId(2999)), "the newest is kept");
        assert!(!c.recent.contains_key(&VmId(0)), "the oldest went");
        // Old histories are dropped on arrival, not only after a migration.
        c.record_arrival(VmId(1), 1, Time::ZERO + MAX + Duration::from_secs(1), MAX);
        assert_eq!(c.recent.len(), 1);
    }
}
