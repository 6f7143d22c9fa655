//! Who is who: the stable `NodeId` of each overlay peer, and each peer's node name.
//!
//! The core names hosts by [`NodeId`] (a `u64`), the overlay by libp2p `PeerId`. A host's
//! `NodeId` is the first 8 bytes (big-endian) of SHA-256 of its peer id's bytes: stable across
//! restarts (the peer id is persisted in `node.state_dir`) and computed alike by every host, so
//! no host needs to tell another its id. Two peers with the same `NodeId` (a 2^-64 chance per
//! pair) are detected: the second is refused and logged.
//!
//! Node names (the hypervisor's name for a host, needed as a migration's destination) travel
//! with the load summary every host gossips: the summary is the core's 34-byte fixed record
//! followed by the name's bytes (at most 30, so the whole stays within the overlay's 64-byte
//! summary limit). Peer-table sync carries the same bytes to joiners, so a host knows the name
//! of every host whose load it knows.

use std::collections::BTreeMap;

use dvms_core::model::{LoadSummary, NodeId, VmId};
use dvms_core::wire::{SUMMARY_BYTES, decode_summary, encode_summary};
use dvms_overlay::{Location, PeerId};
use sha2::{Digest, Sha256};

use crate::config::MAX_NODE_NAME;

/// The `NodeId` of a peer: first 8 bytes of SHA-256 of its id.
pub fn node_id_of(peer: &PeerId) -> NodeId {
    NodeId(hash64(&peer.to_bytes()))
}

/// The `VmId` of a VM: first 8 bytes of SHA-256 of its name (names are unique in a cluster).
pub fn vm_id_of(name: &str) -> VmId {
    VmId(hash64(name.as_bytes()))
}

fn hash64(bytes: &[u8]) -> u64 {
    let digest = Sha256::digest(bytes);
    let mut w = [0u8; 8];
    w.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(w)
}

/// Encodes this host's summary with its name for gossip.
pub fn encode(summary: &LoadSummary, name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(SUMMARY_BYTES + name.len());
    out.extend_from_slice(&encode_summary(summary));
    out.extend_from_slice(&name.as_bytes()[..name.len().min(MAX_NODE_NAME)]);
    out
}

/// Decodes a gossiped summary; the name is `None` when absent or not a valid node name.
pub fn decode(bytes: &[u8]) -> Option<(LoadSummary, Option<String>)> {
    let head = bytes.get(..SUMMARY_BYTES)?;
    let summary = decode_summary(head).ok()?;
    let name = std::str::from_utf8(&bytes[SUMMARY_BYTES..])
        .ok()
        .filter(|n| crate::config::typed_valid_name(n))
        .map(str::to_owned);
    Some((summary, name))
}

/// What this host knows of another.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// Its overlay id.
    pub peer: PeerId,
    /// Its node name, once a summary told us.
    pub name: Option<String>,
    /// Its announced location (for its overlay key).
    pub location: Option<Location>,
    /// Its latest summary.
    pub summary: Option<LoadSummary>,
    /// Monotonic seconds of the last time we heard of it.
    pub last_seen_s: u64,
}

/// Most peers remembered; the oldest is forgotten beyond it.
pub const MAX_PEERS: usize = 4096;

/// The table of known peers, keyed by `NodeId`.
#[derive(Debug, Default)]
pub struct Directory {
    /// This host's id and name (for labels).
    me: Option<(NodeId, String)>,
    peers: BTreeMap<NodeId, PeerInfo>,
    /// Peers refused because their `NodeId` collides with a known peer's.
    pub collisions: u64,
}

impl Directory {
    /// An empty table for the host `id` named `name`.
    pub fn new(id: NodeId, name: &str) -> Directory {
        Directory {
            me: Some((id, name.to_owned())),
            ..Directory::default()
        }
    }

    /// Number of known peers.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// True when no peer is known.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Records that `peer` exists; returns its `NodeId`, or `None` on a collision.
    pub fn learn(&mut self, peer: PeerId, now_s: u64) -> Option<NodeId> {
        let id = node_id_of(&peer);
        if let Some(info) = self.peers.get_mut(&id) {
            if info.peer != peer {
                self.collisions = self.collisions.saturating_add(1);
                tracing::error!(peer = %peer, known = %info.peer, node = id.0, "node id collision: peer ignored");
                return None;
            }
            info.last_seen_s = now_s;
            return Some(id);
        }
        if self.peers.len() >= MAX_PEERS {
            let oldest = self
                .peers
                .iter()
                .min_by_key(|(_, i)| i.last_seen_s)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.peers.remove(&k);
            }
        }
        self.peers.insert(
            id,
            PeerInfo {
                peer,
                name: None,
                location: None,
                summary: None,
                last_seen_s: now_s,
            },
        );
        Some(id)
    }

    /// Records a peer's gossiped summary bytes (and its name and location).
    pub fn learn_summary(
        &mut self,
        peer: PeerId,
        location: Option<Location>,
        bytes: &[u8],
        now_s: u64,
    ) -> Option<(NodeId, LoadSummary)> {
        let id = self.learn(peer, now_s)?;
        let (summary, name) = decode(bytes)?;
        let info = self.peers.get_mut(&id)?;
        info.summary = Some(summary);
        if location.is_some() {
            info.location = location;
        }
        if let Some(name) = name {
            if info.name.as_deref() != Some(name.as_str()) {
                tracing::info!(peer = %peer, node = id.0, peer_name = %name, "peer name learnt");
                info.name = Some(name);
            }
        }
        Some((id, summary))
    }

    /// The peer behind `id`.
    pub fn get(&self, id: NodeId) -> Option<&PeerInfo> {
        self.peers.get(&id)
    }

    /// All known peers.
    pub fn iter(&self) -> impl Iterator<Item = (&NodeId, &PeerInfo)> {
        self.peers.iter()
    }

    /// The name of `id`, or its id in hex when unknown (for logs).
    pub fn label(&self, id: NodeId) -> String {
        if let Some((me, name)) = &self.me {
            if *me == id {
                return name.clone();
            }
        }
        self.peers
            .get(&id)
            .and_then(|i| i.name.clone())
            .unwrap_or_else(|| format!("{:016x}", id.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dvms_core::model::Resources;

    #[test]
    fn summary_with_name_round_trips_within_the_overlay_limit() {
        let s = LoadSummary {
            capacity: Resources::new(8000, 16384),
            demand: Resources::new(9000, 4096),
            busy: true,
            ..LoadSummary::default()
        };
        let name = "h".repeat(MAX_NODE_NAME);
        let bytes = encode(&s, &name);
        assert!(bytes.len() <= dvms_overlay::MAX_SUMMARY_LEN);
        assert_eq!(decode(&bytes), Some((s, Some(name))));
        // A bad name is dropped, the load kept; a short record is refused.
        let mut bad = encode(&s, "h01");
        bad.push(b' ');
        assert_eq!(decode(&bad), Some((s, None)));
        assert_eq!(decode(&bytes[..10]), None);
    }

    #[test]
    fn ids_are_stable_and_collisions_refused() {
        let a = PeerId::random();
        assert_eq!(node_id_of(&a), node_id_of(&a));
        assert_eq!(vm_id_of("vm-0001"), vm_id_of("vm-0001"));
        assert_ne!(vm_id_of("vm-0001"), vm_id_of("vm-0002"));
        let mut d = Directory::default();
        let id = d.learn(a, 1).unwrap();
        assert_eq!(d.learn(a, 2), Some(id));
        // Forge a collision: another peer under the same key.
        let b = PeerId::random();
        d.peers.get_mut(&id).unwrap().peer = b;
        assert_eq!(d.learn(a, 3), None);
        assert_eq!(d.collisions, 1);
    }
}
