//! Hostile-peer limits in the event loop: refusals counted by cause, offences turned into
//! gossipsub penalties, penalties lifted in housekeeping (the rules are in `crate::guard`).

use super::*;
use crate::{
    guard::{Kind, Refusal, ScoreChange, count_refusal},
    stats::{self, set_pending_inbound},
};

impl EventLoop {
    /// Counts a refusal of `kind` from `peer`; a refusal for going over a rate is also an
    /// offence of `peer`.
    pub(super) fn refuse(&mut self, kind: Kind, refusal: Refusal, peer: PeerId, now: Instant) {
        count_refusal(&self.counters, kind, refusal);
        if refusal == Refusal::Rate {
            self.offence(peer, now);
        }
        if let Some(suppressed) = self.warn.hostile.allow(now) {
            warn!(%peer, ?kind, ?refusal, suppressed, "peer over its limits, message refused");
        }
    }

    /// Records an offence of `peer` (a limit broken, junk sent), penalising it in gossipsub
    /// when it has too many.
    pub(super) fn offence(&mut self, peer: PeerId, now: Instant) {
        if let Some(change) = self.guard.offence(peer, now) {
            self.apply_score(change);
            warn!(%peer, disconnect = self.cfg.limits.disconnect_penalised, "peer penalised: its requests are refused and its gossip ignored");
        }
    }

    fn apply_score(&mut self, change: ScoreChange) {
        let behaviour = self.swarm.behaviour_mut();
        // `false` when gossipsub no longer holds any score for the peer: nothing to do.
        let _ = behaviour
            .gossipsub
            .set_application_score(&change.peer, change.score);
        if change.score < 0.0 {
            if self.cfg.limits.disconnect_penalised {
                // Closes its connections now; refuses new ones until lifted.
                behaviour.blocked.block_peer(change.peer);
            }
        } else {
            behaviour.blocked.unblock_peer(change.peer);
        }
    }

    /// Lifts expired penalties and refreshes the gauges of bounded structures.
    pub(super) fn limits_housekeeping(&mut self, now: Instant) {
        for change in self.guard.expire(now) {
            debug!(peer = %change.peer, "penalty lifted");
            self.apply_score(change);
        }
        self.sample_peer_topics();
        stats::set(&self.counters.guard_entries, self.guard.size());
    }

    /// Raises `peer_topics_peak` to the most topics any connected peer holds now (at most
    /// `max_connections` x `limits.max_topics_per_peer` entries to walk).
    pub(super) fn sample_peer_topics(&mut self) {
        let topics_max = self
            .swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .map(|(_, topics)| topics.len())
            .max()
            .unwrap_or(0);
        stats::raise(&self.counters.peer_topics_peak, topics_max);
    }

    /// Forgets an inbound request of `peer` that is no longer pending.
    pub(super) fn inbound_done(&mut self, peer: &PeerId) {
        self.guard.request_done(peer);
        set_pending_inbound(&self.counters, self.pending_in.len());
    }
}
