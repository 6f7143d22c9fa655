//! What a [`Node`](crate::Node) asks its driver to do, and the transitions it reports.

use serde::{Deserialize, Serialize};

use crate::model::{
    Epoch, LoadSummary, MigrationId, NodeId, PartitionId, Problem, QueryId, SolveId, VmId,
};
use crate::msg::{DissolveReason, EventKind, Msg};

/// An action for the driver. Drain with [`Node::poll_output`](crate::Node::poll_output) after
/// every input.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Send a message to one host (request-response).
    Send {
        /// Destination.
        to: NodeId,
        /// The message.
        msg: Msg,
    },
    /// Publish this host's load summary (gossip).
    Publish(LoadSummary),
    /// Ask the overlay for the hosts closest to `near`, not in `exclude`, with their summaries;
    /// answer with [`Node::handle_candidates`](crate::Node::handle_candidates).
    FindCandidates {
        /// Echoed by the answer.
        query: QueryId,
        /// The key to be close to (the partition's initiator).
        near: NodeId,
        /// Hosts to leave out (the partition's members).
        exclude: Vec<NodeId>,
        /// How many to return at most.
        count: usize,
    },
    /// Run the placement solver; answer with [`Node::handle_plan`](crate::Node::handle_plan).
    Solve {
        /// Echoed by the answer.
        id: SolveId,
        /// The problem.
        problem: Problem,
    },
    /// Live-migrate a local VM; answer with
    /// [`Node::handle_migration`](crate::Node::handle_migration). Emitted only once the
    /// destination has acknowledged a reservation for the VM (§9.4).
    Migrate(MigrationCmd),
    /// Abort a migration started by an earlier [`Output::Migrate`] that has outlasted
    /// `migrate_timeout` (§9.5): the actuator cancels the hypervisor's job (libvirt
    /// `virDomainAbortJob`). The migration still ends with
    /// [`Node::handle_migration`](crate::Node::handle_migration): `Aborted` if the abort took
    /// (the VM stays on the source), `Done` if it had finished first, `Failed` otherwise. Until
    /// that answer the destination keeps the VM's room reserved.
    AbortMigration {
        /// The migration, as in its [`MigrationCmd`].
        id: MigrationId,
        /// The VM being moved.
        vm: VmId,
        /// Its destination.
        to: NodeId,
    },
    /// An observable transition, for logs, metrics and tests.
    Event(Event),
}

/// One live migration for the local actuator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MigrationCmd {
    /// Echoed by the outcome.
    pub id: MigrationId,
    /// The partition whose plan asked for it.
    pub partition: PartitionId,
    /// The epoch of the leader that asked for it.
    pub epoch: Epoch,
    /// The local VM to move.
    pub vm: VmId,
    /// The destination host.
    pub to: NodeId,
    /// The VM's memory.
    pub mem_mib: u64,
}

/// The outcome of a live migration, from the actuator.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MigrationOutcome {
    /// The VM runs on the destination.
    Done,
    /// The migration failed; the VM still runs on the source.
    Failed {
        /// The hypervisor's error, for logs.
        reason: String,
    },
    /// The migration was aborted after an [`Output::AbortMigration`]; the VM still runs on the
    /// source.
    Aborted,
}

/// An observable transition of a node.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// This host detected a problem and started a partition for it.
    EventStarted {
        /// The new partition.
        partition: PartitionId,
        /// The problem.
        kind: EventKind,
    },
    /// This host joined a partition and leads it.
    BecameLeader {
        /// The partition.
        partition: PartitionId,
        /// Its version after the join.
        version: u32,
        /// Its size after the join.
        size: usize,
    },
    /// A plan was chosen for the event this host initiated (seen by the initiator, also when its
    /// partition was absorbed by a merge): the end of "time to decide".
    EventDecided {
        /// The partition the event started.
        partition: PartitionId,
    },
    /// This host's partition found no free host and is now blocked.
    Blocked {
        /// The partition.
        partition: PartitionId,
    },
    /// This leader's partition absorbed another one.
    Merged {
        /// The absorbing partition.
        partition: PartitionId,
        /// The absorbed one.
        absorbed: PartitionId,
        /// The size after the merge.
        size: usize,
    },
    /// This leader took over after losing the previous leader or a member.
    TookOver {
        /// The partition.
        partition: PartitionId,
        /// The host lost.
        lost: NodeId,
    },
    /// This leader chose a plan and starts applying it.
    PlanChosen {
        /// The partition.
        partition: PartitionId,
        /// Its size.
        size: usize,
        /// Number of migrations.
        migrations: usize,
        /// Memory to move.
        moved_mib: u64,
    },
    /// This leader dissolved its partition.
    Dissolved {
        /// The partition.
        partition: PartitionId,
        /// Why.
        reason: DissolveReason,
        /// Its size at the end.
        size: usize,
    },
    /// The event this host initiated ended (seen by the initiator, also when its partition was
    /// absorbed by a merge: then `partition` is still the one the event started).
    EventEnded {
        /// The partition.
        partition: PartitionId,
        /// The problem.
        kind: EventKind,
        /// How it ended.
        reason: DissolveReason,
    },
    /// A migration this host ran finished.
    MigrationFinished {
        /// The migration.
        migration: MigrationId,
        /// The VM.
        vm: VmId,
        /// The destination.
        to: NodeId,
        /// True on success.
        ok: bool,
    },
    /// A migration this host runs outlasted `migrate_timeout`: it asked the actuator to abort it
    /// (§9.5).
    MigrationAborting {
        /// The migration.
        migration: MigrationId,
        /// The VM.
        vm: VmId,
        /// The destination.
        to: NodeId,
    },
    /// An input was ignored (stale, unexpected, from an unknown peer).
    Ignored {
        /// Why.
        reason: &'static str,
    },
}
