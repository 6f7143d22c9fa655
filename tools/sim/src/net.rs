//! The network model: latency, loss, cuts, and the failure notice of request-response.
//!
//! A message between two hosts of one site takes `--latency`; between sites,
//! `--inter-site-latency`, plus a jitter drawn uniformly in `0..=--jitter`. With `--reorder`, a
//! later message may overtake an earlier one on the same link (the agent's overlay opens one
//! stream per request, so this happens); without it, each link delivers in the order sent (a
//! message waits for the previous one on its link). A message is lost:
//! - silently, with probability `--loss` (drawn from the `Net` stream);
//! - when its destination is down or the pair is cut: then the sender is told the peer is
//!   unreachable after `request_timeout` (libp2p request-response's outbound failure).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use dvms_core::Time;
use rand_chacha::ChaCha8Rng;

use crate::config::NetParams;
use crate::rng;

/// Network state: parameters, the site of every host, and the cut pairs.
#[derive(Debug)]
pub struct Net {
    /// Parameters.
    pub params: NetParams,
    /// Site of every host.
    site: Vec<u32>,
    /// Host pairs `(low, high)` between which every message is lost.
    cuts: BTreeSet<(u32, u32)>,
    /// The loss stream.
    rng: ChaCha8Rng,
    /// With jitter and in-order links: the latest delivery scheduled on each link.
    last_on_link: BTreeMap<(u32, u32), Time>,
}

/// Links remembered for in-order delivery before the old ones are dropped.
const MAX_LINKS_KEPT: usize = 1 << 20;

/// What becomes of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Delivered after this delay.
    Deliver(Duration),
    /// Lost without notice.
    Lost,
    /// Lost; the sender learns it after this delay.
    Unreachable(Duration),
}

impl Net {
    /// A network over hosts with these sites.
    pub fn new(params: NetParams, site: Vec<u32>, seed: u64) -> Net {
        Net {
            params,
            site,
            cuts: BTreeSet::new(),
            rng: rng::stream(seed, rng::Stream::Net),
            last_on_link: BTreeMap::new(),
        }
    }

    /// True when `a` and `b` are on different sites.
    pub fn inter_site(&self, a: usize, b: usize) -> bool {
        self.site[a] != self.site[b]
    }

    /// Site of host `h`.
    pub fn site(&self, h: usize) -> u32 {
        self.site[h]
    }

    /// One-way latency from `a` to `b`.
    pub fn latency(&self, a: usize, b: usize) -> Duration {
        if self.inter_site(a, b) {
            self.params.inter_site_latency
        } else {
            self.params.latency
        }
    }

    /// Migration bandwidth from `a` to `b`, MiB/s.
    pub fn bandwidth_mib_s(&self, a: usize, b: usize) -> f64 {
        let mbs = if self.inter_site(a, b) {
            self.params.inter_site_bandwidth_mbs
        } else {
            self.params.bandwidth_mbs
        };
        mbs * 1e6 / (1024.0 * 1024.0)
    }

    fn pair(a: usize, b: usize) -> (u32, u32) {
        let (a, b) = (
            u32::try_from(a).unwrap_or(u32::MAX),
            u32::try_from(b).unwrap_or(u32::MAX),
        );
        (a.min(b), a.max(b))
    }

    /// True when messages between `a` and `b` are cut.
    pub fn is_cut(&self, a: usize, b: usize) -> bool {
        !self.cuts.is_empty() && self.cuts.contains(&Net::pair(a, b))
    }

    /// Cuts (or heals) every pair among `hosts`.
    pub fn set_cut(&mut self, hosts: &[usize], cut: bool) {
        for (i, &a) in hosts.iter().enumerate() {
            for &b in &hosts[i + 1..] {
                if a == b {
                    continue;
                }
                if cut {
                    self.cuts.insert(Net::pair(a, b));
                } else {
                    self.cuts.remove(&Net::pair(a, b));
                }
            }
        }
    }

    /// The fate of a message from `from` to `to`, whose destination is `to_up`.
    pub fn fate(&mut self, from: usize, to: usize, to_up: bool) -> Fate {
        if !to_up || self.is_cut(from, to) {
            return Fate::Unreachable(self.params.request_timeout);
        }
        if rng::chance(&mut self.rng, self.params.loss) {
            return Fate::Lost;
        }
        Fate::Deliver(self.latency(from, to))
    }
}

impl Net {
    /// The fate of a message sent at `now`, with jitter and (unless `reorder`) in-order links.
    /// Without jitter it is exactly [`Net::fate`] (no random draw is added).
    pub fn fate_at(&mut self, now: Time, from: usize, to: usize, to_up: bool) -> Fate {
        match self.fate(from, to, to_up) {
            Fate::Deliver(d) => Fate::Deliver(self.jittered(now, from, to, d)),
            other => other,
        }
    }

    fn jittered(&mut self, now: Time, from: usize, to: usize, d: Duration) -> Duration {
        let jitter = self.params.jitter;
        if jitter.is_zero() {
            return d;
        }
        let extra = jitter.mul_f64(rng::unit(&mut self.rng));
        let mut at = now + d + extra;
        if !self.params.reorder {
            if self.last_on_link.len() >= MAX_LINKS_KEPT {
                self.last_on_link.retain(|_, &mut t| t > now);
            }
            let link = (
                u32::try_from(from).unwrap_or(u32::MAX),
                u32::try_from(to).unwrap_or(u32::MAX),
            );
            let last = self.last_on_link.entry(link).or_insert(at);
            at = at.max(*last);
            *last = at;
        }
        at.saturating_since(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_pairs_are_unreachable_until_healed() {
        let mut net = Net::new(NetParams::default(), vec![0, 0, 1], 1);
        assert_eq!(
            net.fate(0, 1, true),
            Fate::Deliver(Duration::from_millis(1))
        );
        assert_eq!(
            net.fate(0, 2, true),
            Fate::Deliver(Duration::from_millis(10))
        );
        net.set_cut(&[0, 1], true);
        assert_eq!(
            net.fate(1, 0, true),
            Fate::Unreachable(Duration::from_secs(1))
        );
        net.set_cut(&[1, 0], false);
        assert!(matches!(net.fate(1, 0, true), Fate::Deliver(_)));
        assert!(matches!(net.fate(1, 0, false), Fate::Unreachable(_)));
    }

    fn deliveries(reorder: bool) -> Vec<u64> {
        let params = NetParams {
            jitter: Duration::from_millis(50),
            reorder,
            ..NetParams::default()
        };
        let mut net = Net::new(params, vec![0, 0], 7);
        (0..200u64)
            .map(|i| {
                let now = Time::from_micros(i * 100);
                match net.fate_at(now, 0, 1, true) {
                    Fate::Deliver(d) => (now + d).as_micros(),
                    other => panic!("{other:?}"),
                }
            })
            .collect()
    }

    #[test]
    fn jitter_reorders_a_link_only_when_asked() {
        let fifo = deliveries(false);
        assert!(
            fifo.windows(2).all(|w| w[0] <= w[1]),
            "in order without --reorder"
        );
        let mixed = deliveries(true);
        assert!(
            mixed.windows(2).any(|w| w[0] > w[1]),
            "some overtaking with --reorder"
        );
        assert!(
            mixed
                .iter()
                .zip(0..)
                .all(|(&t, i)| t >= i * 100 + 1000 && t <= i * 100 + 51_000)
        );
    }
}
