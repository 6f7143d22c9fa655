//! Plain counters a node keeps about itself (exported by drivers as metrics).

/// Counters of one node. Monotonic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages handed to the driver to send.
    pub messages_sent: u64,
    /// Messages received.
    pub messages_received: u64,
    /// Inputs ignored as stale or unexpected.
    pub ignored: u64,
    /// Events this host started.
    pub events_started: u64,
    /// Partitions this host led to a plan.
    pub plans_chosen: u64,
    /// Migrations this host ran that succeeded.
    pub migrations_ok: u64,
    /// Migrations this host ran that failed.
    pub migrations_failed: u64,
    /// Partitions this host absorbed.
    pub merges: u64,
    /// Takeovers after a lost leader or member.
    pub takeovers: u64,
}
