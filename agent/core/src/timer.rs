//! The node's timers: one slot per purpose, the earliest deadline is what drivers wait for.

use crate::Time;

/// What a timer is for. Each purpose has one slot: setting it again replaces the deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Timer {
    /// The detector's next check (hysteresis hold, retry backoff).
    Detect,
    /// A member's lease (for the initiator: its leader-suspicion deadline).
    Lease,
    /// A leader's next lease renewal.
    Renew,
    /// A reserved host's wait for the leader's join reply.
    Reserve,
    /// The leader's current phase deadline (hop, solve, migration, blocked retry).
    Phase,
    /// A pending gossip publication held back by the rate limit.
    Gossip,
    /// The next deadline of a migration this host runs (reservation retry, abort, §9.4–§9.5).
    Outgoing,
    /// The next query about a reservation this host holds (§9.4).
    Incoming,
}

const SLOTS: usize = 8;

impl Timer {
    const ALL: [Timer; SLOTS] = [
        Timer::Detect,
        Timer::Lease,
        Timer::Renew,
        Timer::Reserve,
        Timer::Phase,
        Timer::Gossip,
        Timer::Outgoing,
        Timer::Incoming,
    ];

    fn slot(self) -> usize {
        self as usize
    }
}

/// Deadlines by purpose.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TimerTable {
    deadlines: [Option<Time>; SLOTS],
}

impl TimerTable {
    /// Arms `timer` at `at`, replacing any earlier deadline for it.
    pub(crate) fn set(&mut self, timer: Timer, at: Time) {
        self.deadlines[timer.slot()] = Some(at);
    }

    /// Disarms `timer`.
    pub(crate) fn stop(&mut self, timer: Timer) {
        self.deadlines[timer.slot()] = None;
    }

    /// The deadline of `timer`, if armed.
    #[cfg(test)]
    pub(crate) fn get(&self, timer: Timer) -> Option<Time> {
        self.deadlines[timer.slot()]
    }

    /// The earliest armed deadline.
    pub(crate) fn next_timeout(&self) -> Option<Time> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Disarms and returns the first timer whose deadline is at or before `now`.
    pub(crate) fn pop_expired(&mut self, now: Time) -> Option<Timer> {
        let t = Timer::ALL
            .into_iter()
            .find(|t| self.deadlines[t.slot()].is_some_and(|d| d <= now))?;
        self.deadlines[t.slot()] = None;
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_deadline_wins_and_expired_timers_pop_once() {
        let mut t = TimerTable::default();
        assert_eq!(t.next_timeout(), None);
        t.set(Timer::Lease, Time(30));
        t.set(Timer::Detect, Time(10));
        t.set(Timer::Detect, Time(20));
        assert_eq!(t.next_timeout(), Some(Time(20)));
        assert_eq!(t.pop_expired(Time(19)), None);
        assert_eq!(t.pop_expired(Time(30)), Some(Timer::Detect));
        assert_eq!(t.pop_expired(Time(30)), Some(Timer::Lease));
        assert_eq!(t.pop_expired(Time(30)), None);
        t.set(Timer::Phase, Time(5));
        t.stop(Timer::Phase);
        assert_eq!(t.get(Timer::Phase), None);
    }
}
