//! The gossip model: what other hosts know of a host's load summary.
//!
//! One global table, not a copy per receiver (100,000 hosts would make that quadratic): a host's
//! publication at `t` becomes visible to everyone at `t + phase + latency`, where `phase` is
//! uniform in one gossip heartbeat period (when the next heartbeat carries it) and `latency` is
//! the inter-site latency when there are several sites (the slowest receivers), else the
//! intra-site one. With `--loss p`,
//! a publication is missed with probability `p`, drawn once: the previous summary stays visible.
//! A publication made while the previous one is still in flight replaces it; the visible one
//! then stays the older until the newer arrives.

use std::time::Duration;

use dvms_core::Time;
use dvms_core::model::LoadSummary;
use rand_chacha::ChaCha8Rng;

use crate::rng;

#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    visible: Option<LoadSummary>,
    pending: Option<(LoadSummary, Time)>,
}

/// The gossiped summaries of every host.
#[derive(Debug)]
pub struct Gossip {
    entries: Vec<Entry>,
    period: Duration,
    loss: f64,
    rng: ChaCha8Rng,
    /// Publications made.
    pub published: u64,
}

impl Gossip {
    /// An empty table for `n` hosts.
    pub fn new(n: usize, period: Duration, loss: f64, seed: u64) -> Gossip {
        Gossip {
            entries: vec![Entry::default(); n],
            period,
            loss,
            rng: rng::stream(seed, rng::Stream::Gossip),
            published: 0,
        }
    }

    /// Host `h` publishes `s` at `now`; it reaches the others after `latency` and the heartbeat.
    pub fn publish(&mut self, h: usize, now: Time, s: LoadSummary, latency: Duration) {
        self.published += 1;
        if rng::chance(&mut self.rng, self.loss) {
            return;
        }
        let phase = self.period.mul_f64(rng::unit(&mut self.rng));
        let e = &mut self.entries[h];
        if let Some((old, at)) = e.pending {
            if at <= now {
                e.visible = Some(old);
            }
        }
        e.pending = Some((s, now + phase + latency));
    }

    /// What the others know of host `h` at `now`.
    pub fn visible(&mut self, h: usize, now: Time) -> Option<LoadSummary> {
        let e = &mut self.entries[h];
        if let Some((s, at)) = e.pending {
            if at <= now {
                e.visible = Some(s);
                e.pending = None;
            }
        }
        e.visible
    }

    /// Forgets host `h` (it restarted: a fresh node publishes anew).
    pub fn forget(&mut self, h: usize) {
        self.entries[h] = Entry::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_become_visible_after_the_delay() {
        let mut g = Gossip::new(2, Duration::from_secs(1), 0.0, 1);
        let s = LoadSummary {
            busy: true,
            ..LoadSummary::default()
        };
        g.publish(0, Time::ZERO, s, Duration::from_millis(1));
        assert_eq!(g.visible(0, Time::ZERO), None);
        assert_eq!(g.visible(0, Time::from_secs(2)), Some(s));
        assert_eq!(g.visible(1, Time::from_secs(2)), None);
    }
}
