//! Defences against hostile peers that hold the cluster key: per-peer rate limits, per-peer
//! caps, penalties through gossipsub peer scoring, and the subscription filter.
//!
//! libp2p bounds the transport and most protocol buffers (see `docs/overlay.md`, "Hostile
//! peers"); what it leaves open is *rate* and *fairness*: one peer may send as many requests,
//! sync requests, summaries and subscriptions as its connection carries, and fill the shared
//! queues (pending inbound requests, the event queue) that honest peers need. This module
//! caps those per peer. It is a plain value fed with `now`; the event loop drives it.
//!
//! Every table here is bounded: per-peer state exists only for connected peers (forgotten
//! on disconnect; at most `max_connections`), author rate state holds at most
//! [`MAX_AUTHORS`] entries, penalties at most [`MAX_PENALTIES`].

use std::{collections::HashMap, sync::Arc, time::Duration};

use libp2p::{
    PeerId,
    gossipsub::{self, TopicHash, TopicSubscriptionFilter},
};
use tokio::time::Instant;

use crate::stats::{Counters, bump};

/// Topics this overlay speaks start with this prefix (the load topic and any per-site topic
/// built from it); subscriptions to anything else are refused.
pub(crate) const TOPIC_PREFIX: &str = "dvms/";
/// Most author rate entries kept (one per summary author heard from recently).
pub(crate) const MAX_AUTHORS: usize = 4096;
/// Most penalised peers remembered (connected or not) at once.
pub(crate) const MAX_PENALTIES: usize = 1024;
/// Most subscriptions (after de-duplication) taken from one gossipsub RPC; an RPC with more
/// is refused whole.
pub(crate) const MAX_SUBSCRIPTIONS_PER_RPC: usize = 64;
/// Application score given to a penalised peer: below gossipsub's graylist threshold
/// (`GRAYLIST_THRESHOLD`), so gossipsub drops its RPCs before processing their messages.
const PENALTY_SCORE: f64 = -1000.0;
/// gossipsub score thresholds (the defaults of libp2p, named here because the penalty
/// depends on them).
const GRAYLIST_THRESHOLD: f64 = -80.0;

/// A rate: `per_sec` events per second on average, up to `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Sustained events per second (> 0).
    pub per_sec: u32,
    /// Events allowed back to back (> 0).
    pub burst: u32,
}

impl Rate {
    /// `per_sec` sustained, `burst` at once.
    #[must_use]
    pub const fn new(per_sec: u32, burst: u32) -> Self {
        Self { per_sec, burst }
    }

    /// Time one event costs.
    fn interval(self) -> Duration {
        Duration::from_secs(1)
            .checked_div(self.per_sec)
            .unwrap_or(Duration::MAX)
    }
}

/// Per-peer limits against hostile (or broken) peers that hold the cluster key. Part of
/// [`Config`](crate::Config) as `limits`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Inbound requests (`/dvms/rr/1`) accepted from one peer; more are refused.
    pub requests: Rate,
    /// Inbound requests of one peer awaiting the application's response at most; more are
    /// refused (so one peer cannot take all of `max_pending_inbound`).
    pub max_pending_inbound_per_peer: usize,
    /// Peer-table sync requests answered for one peer; more are refused.
    pub syncs: Rate,
    /// Gossip messages accepted from one connected peer (propagation source, whoever the
    /// author); more are ignored. It must cover what an honest peer forwards: every
    /// publishing host's summaries in the topic.
    pub gossip_per_source: Rate,
    /// Summaries accepted from one author (signer); more are ignored. Honest hosts publish
    /// at most one per `summary_min_interval`.
    pub summaries_per_author: Rate,
    /// Topics one peer may be subscribed to (as seen by this host); more are refused.
    pub max_topics_per_peer: usize,
    /// Offences (a request, sync or message over a limit, or a junk summary) after which a
    /// peer is penalised.
    pub offences_to_penalise: u32,
    /// How long a penalised peer stays penalised: all its requests and syncs are refused and
    /// gossipsub ignores its RPCs (graylisted by an application score below the threshold).
    pub penalty: Duration,
    /// Also close a penalised peer's connections and refuse new ones from its peer id for
    /// the penalty (after their handshake: the id is known only then). Stops the CPU cost of
    /// its traffic (gossipsub checks every message's signature even from a graylisted peer).
    pub disconnect_penalised: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            requests: Rate::new(500, 1000),
            max_pending_inbound_per_peer: 128,
            syncs: Rate::new(4, 16),
            gossip_per_source: Rate::new(2000, 4000),
            summaries_per_author: Rate::new(10, 20),
            max_topics_per_peer: 16,
            offences_to_penalise: 64,
            penalty: Duration::from_secs(30),
            disconnect_penalised: true,
        }
    }
}

impl Limits {
    /// The first zero field, if any.
    pub(crate) fn zero_field(&self) -> Option<&'static str> {
        let rates = [
            ("limits.requests", self.requests),
            ("limits.syncs", self.syncs),
            ("limits.gossip_per_source", self.gossip_per_source),
            ("limits.summaries_per_author", self.summaries_per_author),
        ];
        for (field, r) in rates {
            if r.per_sec == 0 || r.burst == 0 {
                return Some(field);
            }
        }
        if self.max_pending_inbound_per_peer == 0 {
            return Some("limits.max_pending_inbound_per_peer");
        }
        if self.max_topics_per_peer == 0 {
            return Some("limits.max_topics_per_peer");
        }
        if self.offences_to_penalise == 0 {
            return Some("limits.offences_to_penalise");
        }
        if self.penalty.is_zero() {
            return Some("limits.penalty");
        }
        None
    }
}

/// Generic cell rate algorithm: one "theoretical arrival time" per limited stream.
#[derive(Clone, Copy, Debug, Default)]
struct Gcra {
    tat: Option<Instant>,
}

impl Gcra {
    /// Whether one more event is within `rate` at `now` (and, if so, counts it).
    fn allow(&mut self, rate: Rate, now: Instant) -> bool {
        let interval = rate.interval();
        let tat = self.tat.map_or(now, |t| t.max(now));
        let slack = interval.saturating_mul(rate.burst.saturating_sub(1));
        let limit = now.checked_add(slack).unwrap_or(tat);
        if tat > limit {
            return false;
        }
        self.tat = Some(tat.checked_add(interval).unwrap_or(tat));
        true
    }

    /// Whether this stream has no debt left at `now` (its state equals a fresh one).
    fn idle(&self, now: Instant) -> bool {
        self.tat.is_none_or(|t| t <= now)
    }
}

/// What a connected peer has used.
#[derive(Debug, Default)]
struct PeerState {
    requests: Gcra,
    syncs: Gcra,
    gossip: Gcra,
    pending_inbound: usize,
    offences: u32,
}

/// Why an inbound item was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Over the peer's rate.
    Rate,
    /// Over the rate of the message's author (who may not be the peer that forwarded it).
    AuthorRate,
    /// The peer is penalised.
    Penalised,
    /// The peer has too many requests awaiting a response.
    Pending,
}

/// A penalty to apply (or lift) in gossipsub's peer score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ScoreChange {
    /// The peer.
    pub(crate) peer: PeerId,
    /// Its new application score.
    pub(crate) score: f64,
}

/// The per-peer limits, driven by the event loop.
#[derive(Debug)]
pub(crate) struct Guard {
    limits: Limits,
    counters: Arc<Counters>,
    peers: HashMap<PeerId, PeerState>,
    authors: HashMap<PeerId, Gcra>,
    /// Penalised peers and when their penalty ends.
    penalties: HashMap<PeerId, Instant>,
}

impl Guard {
    pub(crate) fn new(limits: Limits, counters: Arc<Counters>) -> Self {
        Self {
            limits,
            counters,
            peers: HashMap::new(),
            authors: HashMap::new(),
            penalties: HashMap::new(),
        }
    }

    fn penalised(&self, peer: &PeerId, now: Instant) -> bool {
        self.penalties.get(peer).is_some_and(|until| now < *until)
    }

    /// An inbound request from `peer` arrived: accept it (counting it pending until
    /// [`Self::request_done`]) or refuse it.
    pub(crate) fn inbound_request(&mut self, peer: PeerId, now: Instant) -> Result<(), Refusal> {
        if self.penalised(&peer, now) {
            return Err(Refusal::Penalised);
        }
        let limits = &self.limits;
        let state = self.peers.entry(peer).or_default();
        if state.pending_inbound >= limits.max_pending_inbound_per_peer {
            return Err(Refusal::Pending);
        }
        if !state.requests.allow(limits.requests, now) {
            return Err(Refusal::Rate);
        }
        state.pending_inbound += 1;
        Ok(())
    }

    /// An inbound request of `peer` accepted earlier was answered, failed or dropped.
    pub(crate) fn request_done(&mut self, peer: &PeerId) {
        if let Some(state) = self.peers.get_mut(peer) {
            state.pending_inbound = state.pending_inbound.saturating_sub(1);
        }
    }

    /// A peer-table sync request from `peer` arrived.
    pub(crate) fn inbound_sync(&mut self, peer: PeerId, now: Instant) -> Result<(), Refusal> {
        if self.penalised(&peer, now) {
            return Err(Refusal::Penalised);
        }
        let rate = self.limits.syncs;
        let state = self.peers.entry(peer).or_default();
        if state.syncs.allow(rate, now) {
            Ok(())
        } else {
            Err(Refusal::Rate)
        }
    }

    /// A gossip message forwarded by `source` arrived (checked before validation).
    pub(crate) fn inbound_gossip(&mut self, source: PeerId, now: Instant) -> Result<(), Refusal> {
        if self.penalised(&source, now) {
            return Err(Refusal::Penalised);
        }
        let rate = self.limits.gossip_per_source;
        if self
            .peers
            .entry(source)
            .or_default()
            .gossip
            .allow(rate, now)
        {
            Ok(())
        } else {
            Err(Refusal::Rate)
        }
    }

    /// A valid summary signed by `author` arrived (checked after validation).
    pub(crate) fn summary_author(&mut self, author: PeerId, now: Instant) -> Result<(), Refusal> {
        if !self.authors.contains_key(&author) && self.authors.len() >= MAX_AUTHORS {
            // Make room: an author without debt is the same as a fresh one.
            self.authors.retain(|_, g| !g.idle(now));
            if self.authors.len() >= MAX_AUTHORS {
                return Err(Refusal::AuthorRate);
            }
        }
        let rate = self.limits.summaries_per_author;
        if self.authors.entry(author).or_default().allow(rate, now) {
            Ok(())
        } else {
            Err(Refusal::AuthorRate)
        }
    }

    /// `peer` broke a limit or sent junk. Returns the score change when this offence
    /// penalises it.
    pub(crate) fn offence(&mut self, peer: PeerId, now: Instant) -> Option<ScoreChange> {
        if self.penalised(&peer, now) {
            return None;
        }
        let state = self.peers.entry(peer).or_default();
        state.offences = state.offences.saturating_add(1);
        if state.offences < self.limits.offences_to_penalise {
            return None;
        }
        state.offences = 0;
        if self.penalties.len() >= MAX_PENALTIES {
            self.penalties.retain(|_, until| now < *until);
            if self.penalties.len() >= MAX_PENALTIES {
                // Every slot holds a live penalty: refuse this one rather than grow.
                return None;
            }
        }
        let until = now.checked_add(self.limits.penalty).unwrap_or(now);
        self.penalties.insert(peer, until);
        bump(&self.counters.peers_penalised);
        Some(ScoreChange {
            peer,
            score: PENALTY_SCORE,
        })
    }

    /// The last connection to `peer` closed: forget its usage (not its penalty).
    pub(crate) fn forget(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
    }

    /// Lifts expired penalties; returns the score changes to apply.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<ScoreChange> {
        let mut lifted = Vec::new();
        self.penalties.retain(|peer, until| {
            let live = now < *until;
            if !live {
                lifted.push(ScoreChange {
                    peer: *peer,
                    score: 0.0,
                });
            }
            live
        });
        self.authors.retain(|_, g| !g.idle(now));
        lifted
    }

    /// Entries in the guard's tables (peers, authors, penalties), for [`Stats`](crate::Stats).
    pub(crate) fn size(&self) -> usize {
        self.peers
            .len()
            .saturating_add(self.authors.len())
            .saturating_add(self.penalties.len())
    }
}

/// Counts a refusal in the counter of its kind.
pub(crate) fn count_refusal(counters: &Counters, kind: Kind, refusal: Refusal) {
    let counter = match (kind, refusal) {
        (Kind::Request, Refusal::Pending) => &counters.requests_peer_pending_full,
        (Kind::Request, _) => &counters.requests_rate_limited,
        (Kind::Sync, _) => &counters.syncs_rate_limited,
        (Kind::Gossip, _) => &counters.gossip_rate_limited,
    };
    bump(counter);
}

/// What was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An inbound request.
    Request,
    /// A peer-table sync request.
    Sync,
    /// A gossip message.
    Gossip,
}

/// gossipsub peer scoring as the overlay uses it: only the application score (set by
/// [`Guard`]), invalid messages on the load topic (P4, see [`load_topic_params`]), and a mild
/// behaviour penalty count. The scores that assume a busy topic (time in mesh, message
/// deliveries) are off: summaries are rare, so honest peers would be penalised for silence;
/// so is IP colocation (tests and benches run many hosts on one address).
pub(crate) fn score_params(load_topic: TopicHash) -> gossipsub::PeerScoreParams {
    let mut topics = HashMap::new();
    topics.insert(load_topic, load_topic_params());
    gossipsub::PeerScoreParams {
        topics,
        app_specific_weight: 1.0,
        ip_colocation_factor_weight: 0.0,
        behaviour_penalty_weight: -1.0,
        behaviour_penalty_threshold: 6.0,
        // Bounds gossipsub's per-peer score memory after a disconnect: entries live this
        // long, so at most (new peer ids per second) x this.
        retain_score: Duration::from_secs(300),
        ..gossipsub::PeerScoreParams::default()
    }
}

/// Score thresholds (libp2p's defaults; the graylist threshold is what a penalty crosses).
pub(crate) fn score_thresholds() -> gossipsub::PeerScoreThresholds {
    gossipsub::PeerScoreThresholds {
        graylist_threshold: GRAYLIST_THRESHOLD,
        ..gossipsub::PeerScoreThresholds::default()
    }
}

/// Topic score parameters for a load-summary topic: only invalid messages count (weight
/// −10 × count², so nine rejected messages cross the graylist threshold; the count decays
/// by 10 % per second). Give every summary topic the same parameters.
pub(crate) fn load_topic_params() -> gossipsub::TopicScoreParams {
    gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.0,
        first_message_deliveries_weight: 0.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -10.0,
        invalid_message_deliveries_decay: 0.9,
        ..gossipsub::TopicScoreParams::default()
    }
}

/// gossipsub subscription filter: only overlay topics ([`TOPIC_PREFIX`]; refusals counted
/// in `Stats::subscriptions_refused`), inside libp2p's count filter: at most `max_topics`
/// per peer and [`MAX_SUBSCRIPTIONS_PER_RPC`] per RPC (an RPC over either is refused whole;
/// libp2p gives no hook to count those, see `Stats::peer_topics_peak` for the effect).
pub(crate) type SubscriptionFilter = gossipsub::MaxCountSubscriptionFilter<PrefixFilter>;

/// Builds the [`SubscriptionFilter`].
pub(crate) fn subscription_filter(
    counters: Arc<Counters>,
    max_topics: usize,
) -> SubscriptionFilter {
    gossipsub::MaxCountSubscriptionFilter {
        filter: PrefixFilter { counters },
        max_subscribed_topics: max_topics,
        max_subscriptions_per_request: MAX_SUBSCRIPTIONS_PER_RPC,
    }
}

/// Allows only overlay topics, counting refusals.
#[derive(Debug, Clone)]
pub(crate) struct PrefixFilter {
    counters: Arc<Counters>,
}

impl TopicSubscriptionFilter for PrefixFilter {
    fn can_subscribe(&mut self, topic_hash: &TopicHash) -> bool {
        let ok = topic_hash.as_str().starts_with(TOPIC_PREFIX);
        if !ok {
            bump(&self.counters.subscriptions_refused);
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(limits: Limits) -> (Guard, Arc<Counters>) {
        let c = Arc::new(Counters::default());
        (Guard::new(limits, c.clone()), c)
    }

    #[test]
    fn gcra_allows_burst_then_rate() {
        let mut g = Gcra::default();
        let rate = Rate::new(10, 5);
        let t0 = Instant::now();
        let burst = (0..20).filter(|_| g.allow(rate, t0)).count();
        assert_eq!(burst, 5);
        // 100 ms later one more token (10/s).
        let t1 = t0 + Duration::from_millis(100);
        assert!(g.allow(rate, t1));
        assert!(!g.allow(rate, t1));
        // Over 10 s at one event per ms, about 10/s pass.
        let mut passed = 0;
        for ms in 0..10_000u64 {
            if g.allow(rate, t1 + Duration::from_millis(ms)) {
                passed += 1;
            }
        }
        assert!((99..=102).contains(&passed), "{passed}");
    }

    #[test]
    fn one_peer_cannot_hold_more_than_its_pending_share() {
        let limits = Limits {
            max_pending_inbound_per_peer: 3,
            ..Limits::default()
        };
        let (mut g, _) = guard(limits);
        let now = Instant::now();
        let bad = PeerId::random();
        let good = PeerId::random();
        for _ in 0..3 {
            assert_eq!(g.inbound_request(bad, now), Ok(()));
        }
        assert_eq!(g.inbound_request(bad, now), Err(Refusal::Pending));
        assert_eq!(g.inbound_request(good, now), Ok(()));
        g.request_done(&bad);
        assert_eq!(g.inbound_request(bad, now), Ok(()));
    }

    #[test]
    fn offences_penalise_then_penalty_expires() {
        let limits = Limits {
            offences_to_penalise: 3,
            penalty: Duration::from_secs(5),
            ..Limits::default()
        };
        let (mut g, c) = guard(limits);
        let now = Instant::now();
        let p = PeerId::random();
        assert_eq!(g.offence(p, now), None);
        assert_eq!(g.offence(p, now), None);
        let change = g.offence(p, now).expect("third offence penalises");
        assert!(change.score < GRAYLIST_THRESHOLD);
        assert_eq!(g.inbound_request(p, now), Err(Refusal::Penalised));
        assert_eq!(g.inbound_sync(p, now), Err(Refusal::Penalised));
        assert_eq!(g.inbound_gossip(p, now), Err(Refusal::Penalised));
        assert!(g.expire(now + Duration::from_secs(4)).is_empty());
        let lifted = g.expire(now + Duration::from_secs(5));
        assert_eq!(lifted.len(), 1);
        assert!((lifted[0].score - 0.0).abs() < f64::EPSILON);
        assert_eq!(g.inbound_request(p, now + Duration::from_secs(5)), Ok(()));
        assert_eq!(c.snapshot().peers_penalised, 1);
    }

    #[test]
    fn author_table_is_bounded() {
        let limits = Limits {
            summaries_per_author: Rate::new(1, 1),
            ..Limits::default()
        };
        let (mut g, _) = guard(limits);
        let now = Instant::now();
        let mut refused = 0;
        for _ in 0..MAX_AUTHORS + 100 {
            if g.summary_author(PeerId::random(), now).is_err() {
                refused += 1;
            }
        }
        assert_eq!(
            refused, 100,
            "authors beyond the table are refused, not stored"
        );
        assert!(g.size() <= MAX_AUTHORS);
        // Once their debt is paid, entries are dropped and new authors fit again.
        g.expire(now + Duration::from_secs(2));
        assert_eq!(g.size(), 0);
        assert!(
            g.summary_author(PeerId::random(), now + Duration::from_secs(2))
                .is_ok()
        );
    }

    #[test]
    fn subscription_filter_allows_only_overlay_topics() {
        let c = Arc::new(Counters::default());
        let mut f = subscription_filter(c.clone(), 2);
        assert!(f.can_subscribe(&TopicHash::from_raw("dvms/load/1")));
        assert!(!f.can_subscribe(&TopicHash::from_raw("other/x")));
        assert!(!f.can_subscribe(&TopicHash::from_raw("")));
        assert_eq!(c.snapshot().subscriptions_refused, 2);
    }
}
