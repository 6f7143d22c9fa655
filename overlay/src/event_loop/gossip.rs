//! Load-summary gossip: strict validation of what arrives on the load topic.

use super::*;
use crate::guard::Kind;

impl EventLoop {
    pub(super) fn handle_gossip(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                let now = Instant::now();
                self.active(propagation_source, now);
                if let Err(refusal) = self.guard.inbound_gossip(propagation_source, now) {
                    self.ignore(&message_id, propagation_source);
                    self.refuse(Kind::Gossip, refusal, propagation_source, now);
                    return;
                }
                let verdict = self.validate_summary(&message);
                if let Ok((author, ..)) = &verdict
                    && let Err(refusal) = self.guard.summary_author(*author, now)
                {
                    // Ignored, not rejected: the summary is valid, and the forwarder of a busy
                    // author is not at fault unless it is the author.
                    self.ignore(&message_id, propagation_source);
                    self.refuse(Kind::Gossip, refusal, propagation_source, now);
                    if *author == propagation_source {
                        self.offence(propagation_source, now);
                    }
                    return;
                }
                let acceptance = if verdict.is_ok() {
                    gossipsub::MessageAcceptance::Accept
                } else {
                    gossipsub::MessageAcceptance::Reject
                };
                let gossip = &mut self.swarm.behaviour_mut().gossipsub;
                gossip.report_message_validation_result(
                    &message_id,
                    &propagation_source,
                    acceptance,
                );
                match verdict {
                    Ok((peer, location, summary)) => {
                        bump(&self.counters.summaries_received);
                        if self.peers.addr(&peer).is_none() {
                            // Gossip carries no address: sync soon, so a request to this
                            // peer can dial it.
                            self.sync.interval = SYNC_MIN_INTERVAL;
                            self.sync.next = self.sync.next.min(Instant::now());
                        }
                        self.peers
                            .summary(peer, location, summary.clone(), Instant::now());
                        self.emit(Event::SummaryReceived {
                            peer,
                            location,
                            summary,
                        });
                    }
                    Err(reason) => {
                        bump(&self.counters.gossip_rejected);
                        self.offence(propagation_source, Instant::now());
                        if let Some(suppressed) = self.warn.bad_gossip.allow(Instant::now()) {
                            warn!(peer = %propagation_source, error = %reason, suppressed, "invalid summary rejected");
                        }
                    }
                }
            }
            gossipsub::Event::SlowPeer {
                peer_id,
                failed_messages: f,
            } => {
                let dropped = f
                    .priority
                    .saturating_add(f.non_priority)
                    .saturating_add(f.timeout);
                crate::stats::add(&self.counters.gossip_send_dropped, dropped);
                debug!(peer = %peer_id, dropped, "gossip messages to a slow peer dropped");
            }
            gossipsub::Event::Subscribed { peer_id, topic } => {
                // No republish here: with many joiners it becomes a storm. Joiners get our
                // summary through peer-table sync.
                debug!(peer = %peer_id, %topic, "peer subscribed");
                self.sample_peer_topics();
            }
            _ => {}
        }
    }

    /// Tells gossipsub not to forward or penalise a message we did not take.
    fn ignore(&mut self, message_id: &gossipsub::MessageId, source: PeerId) {
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(
                message_id,
                &source,
                gossipsub::MessageAcceptance::Ignore,
            );
    }

    fn validate_summary(
        &self,
        message: &gossipsub::Message,
    ) -> Result<(PeerId, Option<crate::Location>, Vec<u8>), GossipReject> {
        if message.topic != self.topic.hash() {
            return Err(GossipReject::Topic);
        }
        let author = message.source.ok_or(GossipReject::NoAuthor)?;
        if author == *self.swarm.local_peer_id() {
            return Err(GossipReject::OwnMessage);
        }
        let (location, summary) =
            wire::decode_envelope(&message.data).map_err(GossipReject::Envelope)?;
        Ok((author, location, summary.to_vec()))
    }
}

/// Why a gossip message was rejected.
#[derive(Debug, thiserror::Error)]
pub(super) enum GossipReject {
    #[error("unexpected topic")]
    Topic,
    #[error("message has no author")]
    NoAuthor,
    #[error("message claims to be ours")]
    OwnMessage,
    #[error("bad envelope")]
    Envelope(#[source] wire::DecodeError),
}
