//! Peer-table sync (`/dvms/sync/1`): a host asks a peer for the hosts it knows closest to
//! its key, so it learns the cluster without waiting for gossip.

use super::*;

impl EventLoop {
    /// Asks `peer` for its known peers closest to our key, if one is due.
    pub(super) fn maybe_sync(&mut self, peer: PeerId, now: Instant) {
        if self.sync.pending.is_some() || now < self.sync.next {
            return;
        }
        let key = crate::peers::key_of(self.swarm.local_peer_id(), self.cfg.location);
        let id = self
            .swarm
            .behaviour_mut()
            .sync
            .send_request(&peer, Frame(key.to_vec()));
        self.sync.pending = Some(id);
        self.sync.next = now + self.sync.interval;
    }

    pub(super) fn handle_sync(&mut self, event: request_response::Event<Frame, Frame>) {
        use request_response::{Event as E, Message};
        let now = Instant::now();
        self.active(rr_peer(&event), now);
        match event {
            E::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                if let Err(refusal) = self.guard.inbound_sync(peer, now) {
                    self.refuse(crate::guard::Kind::Sync, refusal, peer, now);
                    return;
                }
                let Ok(target) = <[u8; 32]>::try_from(request.0.as_slice()) else {
                    bump(&self.counters.sync_rejected);
                    self.offence(peer, now);
                    debug!(%peer, bytes = request.0.len(), "malformed sync request dropped");
                    return;
                };
                let entries = self
                    .peers
                    .sync_entries(&target, wire::SYNC_MAX_ENTRIES, now);
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, Frame(wire::encode_sync(&entries)));
            }
            E::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if self.sync.pending == Some(request_id) {
                    self.sync.pending = None;
                }
                let entries = match wire::decode_sync(&response.0) {
                    Ok(e) => e,
                    Err(error) => {
                        bump(&self.counters.sync_rejected);
                        if let Some(suppressed) = self.warn.bad_frame.allow(now) {
                            warn!(%peer, %error, suppressed, "malformed sync response dropped");
                        }
                        return;
                    }
                };
                let local = *self.swarm.local_peer_id();
                let mut new = 0usize;
                for e in entries {
                    let Ok(id) = PeerId::from_bytes(&e.id) else {
                        bump(&self.counters.sync_rejected);
                        continue;
                    };
                    if id == local {
                        continue;
                    }
                    let age = Duration::from_millis(u64::from(e.age_ms));
                    let addr = e.addr.and_then(|a| Multiaddr::try_from(a).ok());
                    if self.peers.learned(
                        id,
                        e.location,
                        e.summary,
                        addr,
                        age,
                        self.cfg.peer_ttl,
                        now,
                    ) {
                        new += 1;
                    }
                }
                self.sync.interval = if new > 0 {
                    SYNC_MIN_INTERVAL
                } else {
                    (self.sync.interval * 2).min(SYNC_MAX_INTERVAL)
                };
                self.sync.next = now + self.sync.interval;
                debug!(%peer, new, "peer table synced");
            }
            E::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if self.sync.pending == Some(request_id) {
                    self.sync.pending = None;
                }
                debug!(%peer, %error, "sync request failed");
            }
            E::InboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "sync request from peer failed");
            }
            E::ResponseSent { .. } => {}
        }
    }
}
