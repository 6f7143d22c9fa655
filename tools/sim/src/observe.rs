//! What the engine and the schedulers let observers see, and the observers' interface.
//!
//! The invariant checker (`crate::invariants`) is an observer: the engine and the drivers
//! report what happens ([`Seen`]) and never call a check by name. An observer answers with
//! the violations it found; the engine records them in the metrics.

use std::time::Duration;

use dvms_core::MigrationCmd;
use dvms_core::model::{Epoch, MigrationId, NodeId, PartitionId, Plan, Problem};

use crate::engine::Sim;

/// A node's partition as it sees it: id, leader and members.
pub(crate) type NodeView = (PartitionId, Epoch, NodeId, Vec<NodeId>);

/// Something an observer may check.
#[derive(Debug)]
pub(crate) enum Seen<'a> {
    /// A simulated second passed.
    Tick,
    /// A completed migration moved VM `vm` from `from` to `to`.
    Moved { vm: usize, from: usize, to: usize },
    /// A solver returned `plan` for `problem` (before it is applied).
    Plan {
        problem: &'a Problem,
        plan: &'a Plan,
    },
    /// Host `host`'s node handled an input; `view` is its partition now.
    Node { host: usize, view: Option<NodeView> },
    /// Leader `host` asks the solver about its partition.
    Solve { host: usize },
    /// Host `host` emits a migration command; `view` is its partition.
    Migrate {
        host: usize,
        cmd: &'a MigrationCmd,
        view: Option<NodeView>,
    },
    /// A source asks `dest` to reserve room for VM `vm` (the destination judges its room on
    /// the loads of now).
    Reserve {
        migration: MigrationId,
        vm: u64,
        dest: usize,
    },
    /// A migration of `partition` will take `by` longer than expected so far.
    Lengthened {
        partition: PartitionId,
        by: Duration,
    },
    /// Host `host`'s node is gone (crash).
    Gone { host: usize },
    /// The run ends.
    End,
}

/// Something that watches a run.
pub(crate) trait Observer: std::fmt::Debug {
    /// Looks at `seen`; pushes a description of every violation found.
    fn observe(&mut self, sim: &Sim, seen: &Seen<'_>, violations: &mut Vec<String>);
    /// True when the observer knows of nothing in progress (no partition alive).
    fn quiet(&self) -> bool {
        true
    }
    /// False when the observer knows partition `p` is gone.
    fn partition_alive(&self, _p: PartitionId) -> bool {
        true
    }
    /// Hosts the observer knows are in a partition (scenario reports).
    fn hosts_in_partition(&self) -> Vec<u32> {
        Vec::new()
    }
}

/// The observers of every run: the invariant checker.
pub(crate) fn observers_for(cfg: &crate::config::SimConfig) -> Vec<Box<dyn Observer>> {
    vec![Box::new(crate::invariants::Checker::new(&cfg.protocol))]
}

impl Sim {
    /// Shows `seen` to every observer and records the violations they found.
    pub(crate) fn observe(&mut self, seen: Seen<'_>) {
        let mut observers = std::mem::take(&mut self.observers);
        let mut found = Vec::new();
        for o in &mut observers {
            o.observe(self, &seen, &mut found);
        }
        self.observers = observers;
        for v in found {
            self.metrics.violation(self.now, v);
        }
    }

    /// No observer knows of anything in progress.
    pub(crate) fn observers_quiet(&self) -> bool {
        self.observers.iter().all(|o| o.quiet())
    }

    /// No observer knows partition `p` is gone.
    pub(crate) fn partition_alive(&self, p: PartitionId) -> bool {
        self.observers.iter().all(|o| o.partition_alive(p))
    }

    /// Hosts some observer knows are in a partition.
    pub(crate) fn hosts_in_partition(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .observers
            .iter()
            .flat_map(|o| o.hosts_in_partition())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}
