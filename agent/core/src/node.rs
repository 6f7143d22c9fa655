//! The per-host protocol state machine (API skeleton; the protocol fills it in).

use std::collections::VecDeque;

use crate::Time;
use crate::config::Config;
use crate::model::{
    Candidate, HostSample, LoadSummary, MigrationId, NodeId, Plan, QueryId, SolveId, Unsolvable,
};
use crate::msg::{Msg, PartitionView};
use crate::output::{MigrationOutcome, Output};
use crate::stats::Stats;

/// Protocol state and logic for one hypervisor host.
///
/// A `Node` never performs I/O, never reads a clock and never draws OS entropy. Drivers feed it
/// inputs with `handle_*` and, after **every** input, drain [`Node::poll_output`] until `None`,
/// then re-arm their timer from [`Node::poll_timeout`]. Inputs carry `now`; successive inputs must
/// have non-decreasing `now`.
#[derive(Debug)]
pub struct Node {
    id: NodeId,
    cfg: Config,
    outbox: VecDeque<Output>,
    stats: Stats,
}

impl Node {
    /// A free node. `seed` feeds its deterministic random stream.
    pub fn new(id: NodeId, cfg: Config, seed: u64, now: Time) -> Node {
        let _ = (seed, now);
        Node {
            id,
            cfg,
            outbox: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    /// A message from another host.
    pub fn handle_message(&mut self, now: Time, from: NodeId, msg: Msg) {
        let _ = (now, from, msg);
    }

    /// A monitoring sample of this host.
    pub fn handle_sample(&mut self, now: Time, sample: HostSample) {
        let _ = (now, sample);
    }

    /// The operator asks to drain this host (`true`) or cancels the request (`false`).
    pub fn handle_evacuate(&mut self, now: Time, drain: bool) {
        let _ = (now, drain);
    }

    /// The overlay's answer to an [`Output::FindCandidates`], closest first.
    pub fn handle_candidates(&mut self, now: Time, query: QueryId, candidates: Vec<Candidate>) {
        let _ = (now, query, candidates);
    }

    /// The solver's answer to an [`Output::Solve`].
    pub fn handle_plan(&mut self, now: Time, id: SolveId, result: Result<Plan, Unsolvable>) {
        let _ = (now, id, result);
    }

    /// The actuator's answer to an [`Output::Migrate`].
    pub fn handle_migration(&mut self, now: Time, id: MigrationId, outcome: MigrationOutcome) {
        let _ = (now, id, outcome);
    }

    /// The driver could not reach `peer` (request failed, connection lost).
    pub fn handle_unreachable(&mut self, now: Time, peer: NodeId) {
        let _ = (now, peer);
    }

    /// Timers may have expired; spurious calls are harmless.
    pub fn handle_timeout(&mut self, now: Time) {
        let _ = now;
    }

    /// The next action for the driver.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outbox.pop_front()
    }

    /// When [`Node::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Time> {
        None
    }

    /// This host.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The node's settings.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The partition this host is in, if any.
    pub fn partition(&self) -> Option<&PartitionView> {
        None
    }

    /// True while this host is in, or reserved for, a partition.
    pub fn is_busy(&self) -> bool {
        false
    }

    /// The summary this host would gossip now.
    pub fn summary(&self) -> LoadSummary {
        LoadSummary::default()
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}
