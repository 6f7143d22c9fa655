//! The overlay as the nodes see it: publishing summaries (into the per-host gossip views of
//! [`crate::gossip`]) and candidate queries.
//!
//! A candidate query (`FindCandidates { near, exclude, count }`) is a Kademlia lookup: it
//! returns the `count` hosts closest to `near` by XOR of overlay keys ([`crate::keys`]),
//! excluding `exclude` and the asker (Kademlia never returns the local peer), and counting a
//! crashed host as present until `failure_detection` after its crash. The answer arrives
//! after the round trips of the lookup: `ceil(log_k(hosts))` rounds with Kademlia's bucket
//! size `k` = [`KADEMLIA_K`], each one round trip at the asker's latency (the inter-site one
//! as soon as there are several sites). Each candidate carries the summary the *asking host's*
//! view holds of it, which may be stale or absent; a stale "free" sends the ISP to a host that
//! is in fact busy, which answers busy. The report counts how often a returned summary was
//! stale (not the candidate's latest publication, or the candidate is down).

use std::time::Duration;

use dvms_core::model::{Candidate, LoadSummary, NodeId, QueryId};

use crate::engine::{Ev, Sim};
use crate::sched::SchedEv;

/// Kademlia's bucket size: each lookup round narrows the search by about this factor.
pub const KADEMLIA_K: usize = 20;

/// Round trips of a Kademlia lookup among `n` hosts.
pub fn lookup_rounds(n: usize) -> u32 {
    let r = ((n.max(2) as f64).ln() / (KADEMLIA_K as f64).ln()).ceil();
    (r as u32).max(1)
}

impl Sim {
    /// One-way latency for overlay traffic from `a`: the inter-site one when there are sites.
    fn overlay_latency(&self) -> Duration {
        if self.setup.sites.len() > 1 {
            self.net.params.inter_site_latency
        } else {
            self.net.params.latency
        }
    }

    /// Host `h` publishes its summary: it reaches the views that keep `h`.
    pub(crate) fn publish(&mut self, h: usize, summary: LoadSummary) {
        let net = &self.net;
        self.gossip
            .publish(h, self.now, summary, |a, b| net.latency(a, b));
    }

    /// Host `h` asks for candidates; the answer comes after the lookup's round trips.
    pub(crate) fn find_candidates(
        &mut self,
        h: usize,
        query: QueryId,
        near: NodeId,
        exclude: &[NodeId],
        count: usize,
    ) {
        let near = usize::try_from(near.0)
            .ok()
            .filter(|&i| i < self.hosts.len())
            .unwrap_or(h);
        let mut excl: Vec<u64> = exclude.iter().map(|n| n.0).collect();
        excl.sort_unstable();
        let now = self.now;
        let detect = self.cfg.net.failure_detection;
        let hosts = &self.hosts;
        let picked = self.keys.closest(near, count, |c| {
            c != h
                && excl.binary_search(&(c as u64)).is_err()
                && hosts[c].down_since.is_none_or(|t| now < t + detect)
        });
        let mut list = Vec::with_capacity(picked.len());
        for c in picked {
            let c = c as usize;
            let summary = self.gossip.view_of(h, c, now);
            match summary {
                Some(s) => {
                    self.metrics.candidates_with_summary += 1;
                    if !self.hosts[c].up || self.gossip.latest(c) != Some(s) {
                        self.metrics.candidates_stale += 1;
                    }
                }
                None => self.metrics.candidates_unknown += 1,
            }
            list.push(Candidate {
                id: NodeId(c as u64),
                summary,
            });
        }
        let rtt = self.overlay_latency() * 2;
        let delay = rtt * lookup_rounds(self.hosts.len());
        let epoch = self.hosts[h].epoch;
        self.schedule(
            now + delay,
            Ev::Sched(SchedEv::Candidates {
                host: h as u32,
                epoch,
                query,
                list,
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_take_a_few_rounds_growing_with_the_log() {
        assert_eq!(lookup_rounds(2), 1);
        assert_eq!(lookup_rounds(128), 2);
        assert_eq!(lookup_rounds(1_000), 3);
        assert_eq!(lookup_rounds(10_000), 4);
        assert_eq!(lookup_rounds(100_000), 4);
    }
}
