//! The table of known peers behind candidate selection.
//!
//! Kademlia's own routing table is keyed by `SHA-256(PeerId)` and cannot hold topology-aware
//! keys, so the overlay keeps this second, small table: every peer it has heard of through
//! identify (connected peers, which announce site and rack in their agent version) or through
//! a valid gossiped summary (any peer in the cluster, which carries site and rack in the
//! envelope). Each entry has the peer's overlay key and its latest summary.
//! [`PeerTable::candidates`] sorts entries by XOR distance to a target key. Peers whose
//! position is not yet known are not candidates. A peer is forgotten when its last
//! connection fails or the remote closes it while it was in use (recent traffic, or in the
//! gossip mesh), or when it is not connected and sent no summary for `peer_ttl`. An idle
//! close, local or by the remote trimming its connections, does not forget a peer: under the
//! connection limits most peers are known through gossip and sync, not through a connection.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use libp2p::{Multiaddr, PeerId};
use tokio::time::Instant;

use crate::{
    config::Location,
    key::{OverlayKey, flat_key, overlay_key, xor_distance},
};

/// A host returned by [`Handle::candidates`](crate::Handle::candidates).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Candidate {
    /// The host.
    pub peer: PeerId,
    /// Its overlay key.
    pub key: OverlayKey,
    /// Its announced site and rack, `None` for a flat key.
    pub location: Option<Location>,
    /// Its latest gossiped summary, if one arrived.
    pub summary: Option<Vec<u8>>,
    /// Time since that summary arrived.
    pub summary_age: Option<Duration>,
    /// Whether this host currently has a connection to it.
    pub connected: bool,
}

#[derive(Debug)]
struct Entry {
    /// Announced position (`None` inside = flat) and the overlay key it gives, cached
    /// because candidate selection sorts by it; `None` until identify, a summary or a sync
    /// tells us.
    position: Option<(Option<Location>, OverlayKey)>,
    /// Latest summary and its arrival time.
    summary: Option<(Vec<u8>, Instant)>,
    /// Open connections to this peer.
    connections: u32,
    /// Last time we heard anything from it.
    last_seen: Instant,
    /// A listen address (from identify or a sync), so requests can reach it unconnected.
    addr: Option<Multiaddr>,
}

/// Known peers with their position and latest summary.
#[derive(Debug, Default)]
pub(crate) struct PeerTable {
    entries: BTreeMap<PeerId, Entry>,
}

/// The overlay key of `peer` at `position` (`None` = flat).
pub(crate) fn key_of(peer: &PeerId, position: Option<Location>) -> OverlayKey {
    let id = peer.to_bytes();
    match position {
        Some(l) => overlay_key(l.site, l.rack, &id),
        None => flat_key(&id),
    }
}

impl PeerTable {
    fn entry(&mut self, peer: PeerId, now: Instant) -> &mut Entry {
        let e = self.entries.entry(peer).or_insert(Entry {
            position: None,
            summary: None,
            connections: 0,
            last_seen: now,
            addr: None,
        });
        e.last_seen = now;
        e
    }

    /// A connection opened; returns true if it is the first one.
    pub(crate) fn connected(&mut self, peer: PeerId, now: Instant) -> bool {
        let e = self.entry(peer, now);
        e.connections += 1;
        e.connections == 1
    }

    /// A connection closed; `remaining` is libp2p's count of connections left. When none
    /// are left and the connection failed (`failed`: an error or a remote close, not a local
    /// idle timeout), the peer is forgotten at once; after an idle close it stays until
    /// `peer_ttl` passes without news from it.
    pub(crate) fn disconnected(&mut self, peer: &PeerId, remaining: u32, failed: bool) {
        if remaining == 0 && failed {
            self.entries.remove(peer);
        } else if let Some(e) = self.entries.get_mut(peer) {
            e.connections = remaining;
        }
    }

    /// Identify told us where a peer is, and possibly where it listens. Returns true if its
    /// position was unknown.
    pub(crate) fn identified(
        &mut self,
        peer: PeerId,
        position: Option<Location>,
        addr: Option<Multiaddr>,
        now: Instant,
    ) -> bool {
        let e = self.entry(peer, now);
        let new = e.position.is_none();
        e.position = Some((position, key_of(&peer, position)));
        if addr.is_some() {
            e.addr = addr;
        }
        new
    }

    /// Up to `count` unconnected peers with a known address, closest to `target` first.
    pub(crate) fn dialable(
        &self,
        target: &OverlayKey,
        count: usize,
        now: Instant,
    ) -> Vec<(PeerId, Multiaddr)> {
        self.candidates(target, &BTreeSet::new(), usize::MAX, now)
            .into_iter()
            .filter(|c| !c.connected)
            .filter_map(|c| Some((c.peer, self.addr(&c.peer)?)))
            .take(count)
            .collect()
    }

    /// The peer's known listen address, if any.
    pub(crate) fn addr(&self, peer: &PeerId) -> Option<Multiaddr> {
        self.entries.get(peer)?.addr.clone()
    }

    /// A valid summary arrived.
    pub(crate) fn summary(
        &mut self,
        peer: PeerId,
        position: Option<Location>,
        summary: Vec<u8>,
        now: Instant,
    ) {
        let e = self.entry(peer, now);
        e.position = Some((position, key_of(&peer, position)));
        e.summary = Some((summary, now));
    }

    /// Hearsay from a sync response: `peer` was last heard of `age` ago by the answerer.
    /// Adds unknown peers; for known ones, only fills in what is missing or newer. Ignores
    /// news older than `ttl`. Returns true if the peer was new or its address was.
    #[allow(clippy::too_many_arguments, reason = "one sync entry, unpacked")]
    pub(crate) fn learned(
        &mut self,
        peer: PeerId,
        position: Option<Location>,
        summary: Option<Vec<u8>>,
        addr: Option<Multiaddr>,
        age: Duration,
        ttl: Duration,
        now: Instant,
    ) -> bool {
        if age >= ttl {
            return false;
        }
        let at = now.checked_sub(age).unwrap_or(now);
        let new = !self.entries.contains_key(&peer);
        let e = self.entries.entry(peer).or_insert(Entry {
            position: None,
            summary: None,
            connections: 0,
            last_seen: at,
            addr: None,
        });
        let new_addr = e.addr.is_none() && addr.is_some();
        if e.addr.is_none() {
            e.addr = addr;
        }
        if e.position.is_none() {
            e.position = Some((position, key_of(&peer, position)));
        }
        if let Some(summary) = summary {
            if e.summary.as_ref().is_none_or(|(_, old)| *old < at) {
                e.summary = Some((summary, at));
            }
        }
        e.last_seen = e.last_seen.max(at);
        new || new_addr
    }

    /// The `count` positioned peers closest to `target`, as sync entries.
    pub(crate) fn sync_entries(
        &self,
        target: &OverlayKey,
        count: usize,
        now: Instant,
    ) -> Vec<crate::wire::SyncEntry> {
        self.candidates(target, &BTreeSet::new(), count, now)
            .into_iter()
            .filter_map(|c| {
                let e = self.entries.get(&c.peer)?;
                let age = if e.connections > 0 {
                    Duration::ZERO
                } else {
                    now.saturating_duration_since(e.last_seen)
                };
                Some(crate::wire::SyncEntry {
                    id: c.peer.to_bytes(),
                    location: c.location,
                    age_ms: u32::try_from(age.as_millis()).unwrap_or(u32::MAX),
                    summary: c.summary,
                    addr: e.addr.as_ref().map(Multiaddr::to_vec),
                })
            })
            .collect()
    }

    /// Forgets unconnected peers not heard from within `ttl`; returns how many.
    pub(crate) fn expire(&mut self, now: Instant, ttl: Duration) -> usize {
        let before = self.entries.len();
        self.entries
            .retain(|_, e| e.connections > 0 || now.saturating_duration_since(e.last_seen) < ttl);
        before - self.entries.len()
    }

    /// Number of peers with a known position.
    #[cfg(test)]
    pub(crate) fn positioned(&self) -> usize {
        self.entries
            .values()
            .filter(|e| e.position.is_some())
            .count()
    }

    /// The `count` peers closest to `target` by XOR distance, skipping `exclude` and peers
    /// whose position is unknown. Ties (impossible for distinct peer ids) break by peer id.
    pub(crate) fn candidates(
        &self,
        target: &OverlayKey,
        exclude: &BTreeSet<PeerId>,
        count: usize,
        now: Instant,
    ) -> Vec<Candidate> {
        let mut all: Vec<(OverlayKey, Candidate)> = self
            .entries
            .iter()
            .filter(|(p, _)| !exclude.contains(p))
            .filter_map(|(peer, e)| {
                let (position, key) = e.position?;
                let c = Candidate {
                    peer: *peer,
                    key,
                    location: position,
                    summary: e.summary.as_ref().map(|(s, _)| s.clone()),
                    summary_age: e
                        .summary
                        .as_ref()
                        .map(|(_, at)| now.saturating_duration_since(*at)),
                    connected: e.connections > 0,
                };
                Some((xor_distance(target, &key), c))
            })
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.peer.cmp(&b.1.peer)));
        all.into_iter().take(count).map(|(_, c)| c).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(site: u16, rack: u16) -> Option<Location> {
        Some(Location { site, rack })
    }

    #[test]
    fn candidates_prefer_same_rack_then_same_site_and_honour_exclude() {
        let now = Instant::now();
        let mut t = PeerTable::default();
        let peers: Vec<PeerId> = (0..9).map(|_| PeerId::random()).collect();
        for (i, p) in peers.iter().enumerate() {
            let i = u16::try_from(i).unwrap();
            t.summary(*p, loc(i / 3, i % 3), vec![u8::try_from(i).unwrap()], now);
        }
        let target = key_of(&PeerId::random(), loc(1, 1));
        let c = t.candidates(&target, &BTreeSet::new(), 3, now);
        assert_eq!(c[0].location, loc(1, 1), "same rack first");
        assert_eq!(c[0].peer, peers[4]);
        assert!(c[1..].iter().all(|c| c.location.unwrap().site == 1));
        assert_eq!(c[0].summary.as_deref(), Some(&[4u8][..]));

        let exclude: BTreeSet<PeerId> = [peers[4]].into();
        let c = t.candidates(&target, &exclude, 9, now);
        assert_eq!(c.len(), 8);
        assert!(c.iter().all(|c| c.peer != peers[4]));
        assert_eq!(c[0].location.unwrap().site, 1);
        assert_eq!(c[1].location.unwrap().site, 1);
    }

    #[test]
    fn hearsay_adds_unknown_peers_but_never_overrides_fresher_news() {
        let now = Instant::now() + Duration::from_secs(1000);
        let ttl = Duration::from_secs(90);
        let mut t = PeerTable::default();
        let p = PeerId::random();
        assert!(t.learned(
            p,
            loc(1, 1),
            Some(vec![1]),
            None,
            Duration::from_secs(5),
            ttl,
            now
        ));
        let c = t.candidates(&[0; 32], &BTreeSet::new(), 5, now);
        assert_eq!(c[0].summary_age, Some(Duration::from_secs(5)));
        // Older hearsay does not replace it; fresher does.
        assert!(!t.learned(
            p,
            loc(1, 1),
            Some(vec![2]),
            None,
            Duration::from_secs(9),
            ttl,
            now
        ));
        assert_eq!(
            t.candidates(&[0; 32], &BTreeSet::new(), 5, now)[0].summary,
            Some(vec![1])
        );
        t.learned(
            p,
            loc(1, 1),
            Some(vec![3]),
            Some("/memory/7".parse().unwrap()),
            Duration::from_secs(1),
            ttl,
            now,
        );
        assert_eq!(
            t.candidates(&[0; 32], &BTreeSet::new(), 5, now)[0].summary,
            Some(vec![3])
        );
        // Stale hearsay is ignored.
        assert!(!t.learned(PeerId::random(), None, None, None, ttl, ttl, now));
        assert_eq!(t.addr(&p), Some("/memory/7".parse().unwrap()));
        let e = t.sync_entries(&[0; 32], 10, now);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].id, p.to_bytes());
        assert_eq!(e[0].age_ms, 1000);
    }

    #[test]
    fn unpositioned_peers_are_not_candidates() {
        let now = Instant::now();
        let mut t = PeerTable::default();
        let p = PeerId::random();
        t.connected(p, now);
        assert!(t.candidates(&[0; 32], &BTreeSet::new(), 5, now).is_empty());
        assert!(t.identified(p, None, None, now));
        let c = t.candidates(&[0; 32], &BTreeSet::new(), 5, now);
        assert_eq!(c.len(), 1);
        assert!(c[0].connected);
        assert_eq!(c[0].key, flat_key(&p.to_bytes()));
    }

    #[test]
    fn disconnect_forgets_and_ttl_expires_only_unconnected() {
        let now = Instant::now();
        let mut t = PeerTable::default();
        let (a, b) = (PeerId::random(), PeerId::random());
        assert!(t.connected(a, now));
        assert!(!t.connected(a, now));
        t.identified(a, None, None, now);
        t.summary(b, None, vec![1], now);
        let later = now + Duration::from_secs(100);
        assert_eq!(t.expire(later, Duration::from_secs(90)), 1);
        assert_eq!(t.positioned(), 1);
        t.disconnected(&a, 1, true);
        assert_eq!(t.positioned(), 1);
        t.disconnected(&a, 0, false);
        assert_eq!(t.positioned(), 1, "idle close keeps the peer");
        assert!(!t.candidates(&[0; 32], &BTreeSet::new(), 5, later)[0].connected);
        assert_eq!(
            t.expire(later + Duration::from_secs(100), Duration::from_secs(90)),
            1
        );
        t.identified(a, None, None, now);
        t.disconnected(&a, 0, true);
        assert_eq!(t.positioned(), 0, "failed connection forgets the peer");
    }
}
