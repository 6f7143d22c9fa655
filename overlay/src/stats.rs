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
}

/// Records the current number of established connections and its peak.
pub(crate) fn set_connections(counters: &Counters, now: u32) {
    let now = u64::from(now);
    counters.connections.store(now, Ordering::Relaxed);
    counters.connections_peak.fetch_max(now, Ordering::Relaxed);
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
        }
    }
}
