//! What the engine and the schedulers let observers see, and the observers' interface.
//!
//! The engine and the drivers report what happens ([`Seen`]) and never call a check by name;
//! the invariant checker (`crate::invariants`) looks at it and the violations it finds go to
//! the metrics.

use std::time::Duration;

use dvms_core::model::{PartitionId, Plan, Problem};

use crate::engine::Sim;

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

impl Sim {
    /// Shows `seen` to the invariant checker and records the violations it found.
    // Bridge until the checker implements [`Observer`] (it lives in `crate::invariants`).
    pub(crate) fn observe(&mut self, seen: Seen<'_>) {
        match seen {
            Seen::Tick => self.checker.sweep(self.now, &mut self.metrics),
            Seen::Moved { vm, from, to } => crate::invariants::check_move(self, vm, from, to),
            Seen::Plan { problem, plan } => {
                crate::invariants::check_plan(self, problem, plan);
            }
            Seen::Lengthened { partition, by } => self.checker.extend_bound(partition, by),
            Seen::Gone { host } => self.checker.node_gone(host),
            Seen::End => crate::invariants::check_placement(self),
        }
    }

    /// No observer knows of anything in progress.
    pub(crate) fn observers_quiet(&self) -> bool {
        self.checker.alive_partitions() == 0
    }

    /// No observer knows partition `p` is gone.
    pub(crate) fn partition_alive(&self, p: PartitionId) -> bool {
        self.checker.is_alive(p)
    }

    /// Hosts some observer knows are in a partition.
    pub(crate) fn hosts_in_partition(&self) -> Vec<u32> {
        self.checker.hosts_in_partition()
    }
}
