//! The gossip model: what each host knows of the others' load summaries.
//!
//! Every host has its own **view**: the summaries gossip delivered to it, possibly stale. A
//! view is bounded: host `w` keeps the summaries of its `view_size` closest hosts by overlay
//! key (XOR), the hosts its candidate queries are about (a query asks for the hosts closest to
//! the partition's initiator, and a leader is itself close to it). Summaries of hosts outside
//! the view are not kept: a candidate outside it comes back with no summary. Memory is
//! `hosts × view_size` entries (about 100 bytes each), whatever the cluster size.
//!
//! A publication by host `p` at `t` reaches each host `w` that keeps `p` in its view at
//! `t + phase + hops × latency(p, w)`: `phase` is uniform in one gossip heartbeat (drawn once
//! per publication: the heartbeat that carries it), `hops` is
//! `ceil(log_F(hosts))` for a mesh of degree `F` (`--gossip-fanout`), the hops of an epidemic
//! broadcast. With `--loss p` each delivery is missed with probability `p`, independently for
//! each receiver (the receiver keeps the previous summary; gossipsub's redundancy is not
//! modelled, so this errs on the stale side). A publication made while the previous one is
//! still on its way to `w` replaces it there; `w` keeps showing the older until the newer
//! arrives.

use std::time::Duration;

use dvms_core::Time;
use dvms_core::model::LoadSummary;
use rand_chacha::ChaCha8Rng;

use crate::keys::Keys;
use crate::rng;

#[derive(Clone, Copy, Debug)]
struct Entry {
    /// The host this entry is about.
    peer: u32,
    visible: Option<LoadSummary>,
    pending: Option<(LoadSummary, Time)>,
}

impl Entry {
    fn resolve(&mut self, now: Time) -> Option<LoadSummary> {
        if let Some((s, at)) = self.pending {
            if at <= now {
                self.visible = Some(s);
                self.pending = None;
            }
        }
        self.visible
    }
}

/// Every host's view of the others.
#[derive(Debug)]
pub struct Gossip {
    /// `stride` entries per host, sorted by peer.
    entries: Vec<Entry>,
    stride: usize,
    /// For each publisher, the indices in `entries` of its watchers' entries about it
    /// (compressed rows: `watch[watch_start[p]..watch_start[p + 1]]`).
    watch_start: Vec<u32>,
    watch: Vec<u32>,
    /// Each host's latest publication (the truth staleness is measured against).
    latest: Vec<Option<LoadSummary>>,
    period: Duration,
    loss: f64,
    hops: u32,
    rng: ChaCha8Rng,
    /// Publications made.
    pub published: u64,
    /// Deliveries made to views (publications × receivers, minus losses).
    pub delivered: u64,
}

/// Hops of an epidemic broadcast to `n` hosts over a mesh of degree `fanout`.
pub fn broadcast_hops(n: usize, fanout: usize) -> u32 {
    let f = fanout.max(2) as f64;
    let h = ((n.max(2) as f64).ln() / f.ln()).ceil();
    (h as u32).max(1)
}

impl Gossip {
    /// Views of `view_size` closest hosts by `keys`, for every host.
    pub fn new(
        keys: &Keys,
        view_size: usize,
        period: Duration,
        loss: f64,
        fanout: usize,
        seed: u64,
    ) -> Gossip {
        let n = keys.len();
        let stride = view_size.min(n.saturating_sub(1));
        let mut entries = Vec::with_capacity(n * stride);
        let mut counts = vec![0u32; n + 1];
        for w in 0..n {
            let mut peers = keys.closest(w, stride, |c| c != w);
            peers.sort_unstable();
            // Every host has at least `stride` others, so the row is full.
            for &p in &peers {
                counts[p as usize] += 1;
                entries.push(Entry {
                    peer: p,
                    visible: None,
                    pending: None,
                });
            }
        }
        let mut watch_start = Vec::with_capacity(n + 1);
        let mut acc = 0u32;
        for c in &counts[..n] {
            watch_start.push(acc);
            acc += c;
        }
        watch_start.push(acc);
        let mut fill = watch_start.clone();
        let mut watch = vec![0u32; acc as usize];
        for (i, e) in entries.iter().enumerate() {
            let p = e.peer as usize;
            watch[fill[p] as usize] = u32::try_from(i).unwrap_or(u32::MAX);
            fill[p] += 1;
        }
        Gossip {
            entries,
            stride,
            watch_start,
            watch,
            latest: vec![None; n],
            period,
            loss,
            hops: broadcast_hops(n, fanout),
            rng: rng::stream(seed, rng::Stream::Gossip),
            published: 0,
            delivered: 0,
        }
    }

    /// Host `p` publishes `s` at `now`; `latency(p, w)` is the one-way latency to `w`.
    pub fn publish(
        &mut self,
        p: usize,
        now: Time,
        s: LoadSummary,
        latency: impl Fn(usize, usize) -> Duration,
    ) {
        self.published += 1;
        self.latest[p] = Some(s);
        let (a, b) = (
            self.watch_start[p] as usize,
            self.watch_start[p + 1] as usize,
        );
        for k in a..b {
            let i = self.watch[k] as usize;
            if rng::chance(&mut self.rng, self.loss) {
                continue;
            }
            let phase = self.period.mul_f64(rng::unit(&mut self.rng));
            let w = i / self.stride.max(1);
            let delay = phase + latency(p, w) * self.hops;
            let e = &mut self.entries[i];
            e.resolve(now);
            e.pending = Some((s, now + delay));
            self.delivered += 1;
        }
    }

    /// What host `w` knows of host `c` at `now` (`None`: nothing arrived, or `c` is outside
    /// `w`'s view).
    pub fn view_of(&mut self, w: usize, c: usize, now: Time) -> Option<LoadSummary> {
        let row = w * self.stride;
        let slice = self.entries.get(row..row + self.stride)?;
        let k = slice.binary_search_by_key(&(c as u32), |e| e.peer).ok()?;
        self.entries[row + k].resolve(now)
    }

    /// Host `c`'s latest publication.
    pub fn latest(&self, c: usize) -> Option<LoadSummary> {
        self.latest.get(c).copied().flatten()
    }

    /// Host `w` restarted: its fresh node knows nothing, and has published nothing. (The others
    /// keep what they had of it until its next publication reaches them.)
    pub fn reset(&mut self, w: usize) {
        let row = w * self.stride;
        if let Some(slice) = self.entries.get_mut(row..row + self.stride) {
            for e in slice {
                e.visible = None;
                e.pending = None;
            }
        }
        if let Some(l) = self.latest.get_mut(w) {
            *l = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeysMode;

    fn busy() -> LoadSummary {
        LoadSummary {
            busy: true,
            ..LoadSummary::default()
        }
    }

    #[test]
    fn summaries_reach_only_the_hosts_that_keep_them_after_the_delay() {
        let keys = Keys::new(&[0; 50], KeysMode::Random);
        let mut g = Gossip::new(&keys, 4, Duration::from_secs(1), 0.0, 6, 1);
        let lat = |_, _| Duration::from_millis(1);
        g.publish(0, Time::ZERO, busy(), lat);
        let watchers: Vec<usize> = (1..50)
            .filter(|&w| keys.closest(w, 4, |c| c != w).contains(&0))
            .collect();
        assert!(!watchers.is_empty());
        let w = watchers[0];
        assert_eq!(g.view_of(w, 0, Time::ZERO), None);
        assert_eq!(g.view_of(w, 0, Time::from_secs(2)), Some(busy()));
        let outsider = (1..50).find(|w| !watchers.contains(w)).unwrap();
        assert_eq!(g.view_of(outsider, 0, Time::from_secs(2)), None);
        assert_eq!(g.latest(0), Some(busy()));
        assert_eq!(g.delivered as usize, watchers.len());
    }

    #[test]
    fn a_view_is_stale_until_the_next_publication_arrives() {
        let keys = Keys::new(&[0; 10], KeysMode::Random);
        let mut g = Gossip::new(&keys, 9, Duration::from_secs(1), 0.0, 6, 1);
        let lat = |_, _| Duration::from_millis(1);
        g.publish(3, Time::ZERO, busy(), lat);
        g.publish(3, Time::from_secs(5), LoadSummary::default(), lat);
        // Just after the second publication, host 0 still sees the first.
        assert_eq!(g.view_of(0, 3, Time::from_secs(5)), Some(busy()));
        assert_eq!(g.latest(3), Some(LoadSummary::default()));
        assert_eq!(
            g.view_of(0, 3, Time::from_secs(7)),
            Some(LoadSummary::default())
        );
        g.reset(0);
        assert_eq!(g.view_of(0, 3, Time::from_secs(7)), None);
    }

    #[test]
    fn losses_leave_views_empty_and_memory_is_bounded() {
        let keys = Keys::new(&[0; 200], KeysMode::Random);
        let mut g = Gossip::new(&keys, 8, Duration::from_secs(1), 1.0, 6, 1);
        g.publish(1, Time::ZERO, busy(), |_, _| Duration::ZERO);
        assert_eq!(g.delivered, 0);
        assert_eq!(g.entries.len(), 200 * 8);
        assert_eq!(broadcast_hops(10_000, 6), 6);
        assert_eq!(broadcast_hops(2, 6), 1);
    }
}
