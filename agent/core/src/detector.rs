//! Problem detection with hysteresis (`docs/protocol.md` §1): a threshold must hold for a while
//! before an event starts, and an event that ended unsolved is retried only after a backoff.

use crate::Time;
use crate::config::Config;
use crate::model::{HostSample, HostSpec, NodeId};
use crate::msg::{DissolveReason, EventKind};

/// What the detector knows of the host's recent samples and past events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Detector {
    /// Since when the host has been continuously overloaded.
    over_since: Option<Time>,
    /// Since when the host has been continuously underloaded.
    under_since: Option<Time>,
    /// No event starts before this instant (backoff after an unsolved event).
    retry_at: Time,
    /// Consecutive events that ended without a fix.
    failures: u32,
}

impl Detector {
    /// Takes a new sample into account.
    pub(crate) fn observe(&mut self, now: Time, sample: &HostSample, cfg: &Config) {
        let spec = HostSpec {
            id: NodeId(0),
            capacity: sample.capacity,
            thresholds: cfg.thresholds,
        };
        let demand = sample.demand();
        let over = !demand.fits_in(spec.limit());
        self.over_since = if over {
            self.over_since.or(Some(now))
        } else {
            None
        };
        let under_limit = crate::model::scale_pct(sample.capacity.cpu_milli, cfg.underload_cpu_pct);
        let under =
            cfg.underload_enabled && !sample.vms.is_empty() && demand.cpu_milli < under_limit;
        self.under_since = if under {
            self.under_since.or(Some(now))
        } else {
            None
        };
    }

    /// The problem to raise now, if any. `draining` and `has_vms` describe evacuation.
    pub(crate) fn due(
        &self,
        now: Time,
        cfg: &Config,
        draining: bool,
        has_vms: bool,
    ) -> Option<EventKind> {
        if now < self.retry_at {
            return None;
        }
        if draining && has_vms {
            return Some(EventKind::Evacuate);
        }
        if self.over_since.is_some_and(|t| now >= t + cfg.detect_hold) {
            return Some(EventKind::Overload);
        }
        if self
            .under_since
            .is_some_and(|t| now >= t + cfg.underload_hold)
        {
            return Some(EventKind::Underload);
        }
        None
    }

    /// The next instant at which [`Detector::due`] may change without a new sample.
    pub(crate) fn next_check(&self, cfg: &Config, draining: bool) -> Option<Time> {
        let candidates = [
            draining.then_some(self.retry_at),
            self.over_since
                .map(|t| (t + cfg.detect_hold).max(self.retry_at)),
            self.under_since
                .map(|t| (t + cfg.underload_hold).max(self.retry_at)),
        ];
        candidates.into_iter().flatten().min()
    }

    /// An event this host initiated ended: reset or extend the backoff.
    pub(crate) fn event_ended(&mut self, now: Time, reason: DissolveReason, cfg: &Config) {
        match reason {
            DissolveReason::Solved | DissolveReason::NotNeeded => {
                self.failures = 0;
                // Let the monitor see the new placement before judging it.
                self.retry_at = now + cfg.detect_hold;
            }
            _ => {
                self.failures = self.failures.saturating_add(1);
                let factor = 1u32 << (self.failures - 1).min(16);
                let backoff = cfg
                    .retry_backoff
                    .saturating_mul(factor)
                    .min(cfg.retry_backoff_max);
                self.retry_at = now + backoff;
            }
        }
    }

    /// The current backoff deadline.
    #[cfg(test)]
    pub(crate) fn retry_at(&self) -> Time {
        self.retry_at
    }
}

/// How long a detected problem must hold (exposed for tests and docs).
#[cfg(test)]
pub(crate) fn hold(cfg: &Config) -> std::time::Duration {
    cfg.detect_hold
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Resources, VmId, VmLoad};

    fn sample(cpu: u64) -> HostSample {
        HostSample {
            capacity: Resources::new(1000, 1000),
            vms: vec![VmLoad {
                id: VmId(1),
                demand: Resources::new(cpu, 10),
                migratable: true,
            }],
        }
    }

    // Reference: protocol.md §1 (hysteresis).
    #[test]
    fn overload_must_hold_before_an_event() {
        let cfg = Config::default();
        let mut d = Detector::default();
        d.observe(Time::ZERO, &sample(1500), &cfg);
        assert_eq!(d.due(Time::from_secs(1), &cfg, false, true), None);
        assert_eq!(d.next_check(&cfg, false), Some(Time::ZERO + hold(&cfg)));
        // A dip below the threshold restarts the hold.
        d.observe(Time::from_secs(2), &sample(500), &cfg);
        d.observe(Time::from_secs(2), &sample(1500), &cfg);
        assert_eq!(d.due(Time::from_secs(3), &cfg, false, true), None);
        assert_eq!(
            d.due(Time::from_secs(5), &cfg, false, true),
            Some(EventKind::Overload)
        );
    }

    // Reference: protocol.md §1 (retry backoff doubles, success resets it).
    #[test]
    fn unsolved_events_back_off_exponentially() {
        let cfg = Config::default();
        let mut d = Detector::default();
        d.event_ended(Time::ZERO, DissolveReason::Unsolvable, &cfg);
        assert_eq!(d.retry_at(), Time::ZERO + cfg.retry_backoff);
        d.event_ended(Time::ZERO, DissolveReason::GaveUp, &cfg);
        assert_eq!(d.retry_at(), Time::ZERO + cfg.retry_backoff * 2);
        for _ in 0..10 {
            d.event_ended(Time::ZERO, DissolveReason::Expired, &cfg);
        }
        assert_eq!(d.retry_at(), Time::ZERO + cfg.retry_backoff_max);
        d.event_ended(Time::ZERO, DissolveReason::Solved, &cfg);
        assert_eq!(d.retry_at(), Time::ZERO + cfg.detect_hold);
    }

    #[test]
    fn underload_only_when_enabled() {
        let mut cfg = Config::default();
        let mut d = Detector::default();
        d.observe(Time::ZERO, &sample(10), &cfg);
        assert_eq!(d.due(Time::from_secs(3600), &cfg, false, true), None);
        cfg.underload_enabled = true;
        d.observe(Time::ZERO, &sample(10), &cfg);
        assert_eq!(d.due(Time::from_secs(59), &cfg, false, true), None);
        assert_eq!(
            d.due(Time::from_secs(60), &cfg, false, true),
            Some(EventKind::Underload)
        );
    }

    #[test]
    fn draining_host_with_vms_raises_evacuation_at_once() {
        let cfg = Config::default();
        let d = Detector::default();
        assert_eq!(
            d.due(Time::ZERO, &cfg, true, true),
            Some(EventKind::Evacuate)
        );
        assert_eq!(d.due(Time::ZERO, &cfg, true, false), None);
    }
}
