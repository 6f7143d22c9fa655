//! Counters of what the overlay dropped or carried, readable at any time through
//! [`Handle::stats`](crate::Handle::stats).

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the overlay's counters (monotonic since start, except `connections`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Request-response frames received with a length above [`MAX_FRAME_LEN`](crate::MAX_FRAME_LEN).
    pub frames_oversized: u64,
    /// Request-response frames received with an unknown version byte.
    pub frames_unknown_version: u64,
    /// Request-response frames that were truncated or otherwise malformed.
    pub frames_malformed: u64,
    /// Peer-table sync messages (or entries) refused as malformed.
    pub sync_rejected: u64,
    /// Gossip messages rejected by validation (bad envelope, size, version or author).
    pub gossip_rejected: u64,
    /// Events dropped because the event queue was full.
    pub events_dropped: u64,
    /// Inbound requests refused because too many were awaiting a response.
    pub inbound_refused: u64,
    /// Requests received and handed to the application.
    pub requests_received: u64,
    /// Requests sent.
    pub requests_sent: u64,
    /// Summaries published on the load topic.
    pub summaries_published: u64,
    /// Valid summaries received from other hosts.
    pub summaries_received: u64,
    /// Connections established now (a gauge, not a counter).
    pub connections: u64,
    /// Most connections established at once since start.
    pub connections_peak: u64,
    /// Hostile-peer defences (`Config::limits`), by cause. Inbound requests refused because
    /// their peer was over its rate or penalised.
    pub requests_rate_limited: u64,
    /// Inbound requests refused because their peer already had
    /// `limits.max_pending_inbound_per_peer` awaiting a response.
    pub requests_peer_pending_full: u64,
    /// Peer-table sync requests refused (peer over its rate or penalised).
    pub syncs_rate_limited: u64,
    /// Gossip messages ignored because their forwarder or author was over its rate, or the
    /// forwarder was penalised (not forwarded, not delivered).
    pub gossip_rate_limited: u64,
    /// Gossip subscriptions refused: not an overlay topic (`dvms/…`). Subscriptions over the
    /// per-peer or per-message caps are refused by libp2p uncounted (see `peer_topics_peak`).
    pub subscriptions_refused: u64,
    /// Outbound gossip messages gossipsub dropped because a peer's send queue was full or
    /// they waited too long (its `SlowPeer` reports).
    pub gossip_send_dropped: u64,
    /// Penalties given to peers (too many offences: each penalised peer's requests and syncs
    /// are refused and gossipsub ignores its RPCs for `limits.penalty`).
    pub peers_penalised: u64,
    /// Inbound connections refused because their peer is penalised
    /// (`limits.disconnect_penalised`).
    pub connections_blocked: u64,
    /// Inbound requests awaiting the application's response now (a gauge).
    pub pending_inbound: u64,
    /// Most inbound requests awaiting a response at once since start.
    pub pending_inbound_peak: u64,
    /// Most topics any one connected peer was subscribed to since start, sampled at each
    /// housekeeping pass (bounded by `limits.max_topics_per_peer`).
    pub peer_topics_peak: u64,
    /// Entries in the per-peer limit tables (connected peers, recent authors, penalties) as
    /// of the last housekeeping pass (a gauge).
    pub guard_entries: u64,
}

/// Shared atomic counters behind [`Stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) frames_oversized: AtomicU64,
    pub(crate) frames_unknown_version: AtomicU64,
    pub(crate) frames_malformed: AtomicU64,
    pub(crate) sync_rejected: AtomicU64,
    pub(crate) gossip_rejected: AtomicU64,
    pub(crate) events_dropped: AtomicU64,
    pub(crate) inbound_refused: AtomicU64,
    pub(crate) requests_received: AtomicU64,
    pub(crate) requests_sent: AtomicU64,
    pub(crate) summaries_published: AtomicU64,
    pub(crate) summaries_received: AtomicU64,
    pub(crate) connections: AtomicU64,
    pub(crate) connections_peak: AtomicU64,
    pub(crate) requests_rate_limited: AtomicU64,
    pub(crate) requests_peer_pending_full: AtomicU64,
    pub(crate) syncs_rate_limited: AtomicU64,
    pub(crate) gossip_rate_limited: AtomicU64,
    pub(crate) subscriptions_refused: AtomicU64,
    pub(crate) gossip_send_dropped: AtomicU64,
    pub(crate) peers_penalised: AtomicU64,
    pub(crate) connections_blocked: AtomicU64,
    pub(crate) pending_inbound: AtomicU64,
    pub(crate) pending_inbound_peak: AtomicU64,
    pub(crate) peer_topics_peak: AtomicU64,
    pub(crate) guard_entries: AtomicU64,
}

/// Records the current number of established connections and its peak.
pub(crate) fn set_connections(counters: &Counters, now: u32) {
    let now = u64::from(now);
    counters.connections.store(now, Ordering::Relaxed);
    counters.connections_peak.fetch_max(now, Ordering::Relaxed);
}

/// Records the number of inbound requests awaiting a response and its peak.
pub(crate) fn set_pending_inbound(counters: &Counters, now: usize) {
    let now = u64::try_from(now).unwrap_or(u64::MAX);
    counters.pending_inbound.store(now, Ordering::Relaxed);
    counters
        .pending_inbound_peak
        .fetch_max(now, Ordering::Relaxed);
}

/// Raises a peak to `value`.
pub(crate) fn raise(peak: &AtomicU64, value: usize) {
    peak.fetch_max(u64::try_from(value).unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// Sets a gauge.
pub(crate) fn set(gauge: &AtomicU64, value: usize) {
    gauge.store(u64::try_from(value).unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// Adds `n` to a counter.
pub(crate) fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            frames_oversized: get(&self.frames_oversized),
            frames_unknown_version: get(&self.frames_unknown_version),
            frames_malformed: get(&self.frames_malformed),
            sync_rejected: get(&self.sync_rejected),
            gossip_rejected: get(&self.gossip_rejected),
            events_dropped: get(&self.events_dropped),
            inbound_refused: get(&self.inbound_refused),
            requests_received: get(&self.requests_received),
            requests_sent: get(&self.requests_sent),
            summaries_published: get(&self.summaries_published),
            summaries_received: get(&self.summaries_received),
            connections: get(&self.connections),
            connections_peak: get(&self.connections_peak),
            requests_rate_limited: get(&self.requests_rate_limited),
            requests_peer_pending_full: get(&self.requests_peer_pending_full),
            syncs_rate_limited: get(&self.syncs_rate_limited),
            gossip_rate_limited: get(&self.gossip_rate_limited),
            subscriptions_refused: get(&self.subscriptions_refused),
            gossip_send_dropped: get(&self.gossip_send_dropped),
            peers_penalised: get(&self.peers_penalised),
            connections_blocked: get(&self.connections_blocked),
            pending_inbound: get(&self.pending_inbound),
            pending_inbound_peak: get(&self.pending_inbound_peak),
            peer_topics_peak: get(&self.peer_topics_peak),
            guard_entries: get(&self.guard_entries),
        }
    }
}
