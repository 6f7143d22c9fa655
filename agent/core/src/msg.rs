//! The messages hosts exchange during an ISP (`docs/protocol.md` §2), and the partition view
//! they carry.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{
    Epoch, HostSpec, MigrationId, NodeId, PartitionId, Resources, Thresholds, VmId,
};

/// The life-cycle state of a partition (`docs/protocol.md` §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PartitionState {
    /// Looking for one more free host, or solving.
    Growing,
    /// No free host could be found: waiting for one, or for a merge.
    Blocked,
    /// A plan was chosen and is being applied; late updates must not rebook freed hosts.
    Finishing,
}

/// What kind of problem started a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventKind {
    /// A host above its thresholds.
    Overload,
    /// A host worth emptying (consolidation).
    Underload,
    /// An operator asked to drain a host.
    Evacuate,
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EventKind::Overload => "overload",
            EventKind::Underload => "underload",
            EventKind::Evacuate => "evacuate",
        })
    }
}

/// A partition as its members know it: identity, version, roles and members.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PartitionView {
    /// Stable identity.
    pub id: PartitionId,
    /// Bumped by every change; stale updates carry a lower one. Views are ordered by
    /// `(epoch, version)`: versions of two concurrent leaderships may fork, epochs never do.
    pub version: u32,
    /// The leadership this view comes from (the fencing token, §7.6).
    pub epoch: Epoch,
    /// The host this member follows: the epoch's leader, or, during a hand-over (§4.2, §6), the
    /// host it was handed to.
    pub leader: NodeId,
    /// Members in joining order; the initiator first.
    pub members: Vec<NodeId>,
    /// Life-cycle state.
    pub state: PartitionState,
    /// The problem that started it.
    pub kind: EventKind,
}

impl PartitionView {
    /// The host whose problem started the partition.
    pub fn initiator(&self) -> NodeId {
        self.id.initiator
    }

    /// True if `n` is a member.
    pub fn contains(&self, n: NodeId) -> bool {
        self.members.contains(&n)
    }
}

/// The state of one member, carried by the ISP so the leader can build the placement problem.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HostState {
    /// The host.
    pub id: NodeId,
    /// Its capacity.
    pub capacity: Resources,
    /// Its overload thresholds.
    pub thresholds: Thresholds,
    /// Being evacuated: its VMs must leave and none may arrive.
    pub draining: bool,
    /// Its VMs.
    pub vms: Vec<VmState>,
}

impl HostState {
    /// What the solver needs of this host.
    pub fn spec(&self) -> HostSpec {
        HostSpec {
            id: self.id,
            capacity: self.capacity,
            thresholds: self.thresholds,
        }
    }
}

/// One VM as its host reports it in an ISP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VmState {
    /// The VM.
    pub id: VmId,
    /// CPU demand and memory.
    pub demand: Resources,
    /// False when pinned by the operator or still in its migration cooldown.
    pub migratable: bool,
}

/// Why a host refused an ISP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RefuseReason {
    /// It is in (or reserved for) another partition.
    Busy,
    /// It is running migrations.
    Migrating,
    /// It is being evacuated.
    Draining,
    /// The ISP is stale or malformed.
    Invalid,
    /// It has no monitoring sample yet.
    NotReady,
}

/// Why a partition ended (`docs/protocol.md` §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DissolveReason {
    /// The plan was applied.
    Solved,
    /// The solver found nothing to do: the problem had gone.
    NotNeeded,
    /// The plan's gain was below the improvement margin.
    NotWorthIt,
    /// No plan at the largest allowed size, or a constraint blocks every fix.
    Unsolvable,
    /// Blocked for longer than the budget.
    GaveUp,
    /// A lease ran out.
    Expired,
    /// The initiator was lost.
    InitiatorLost,
    /// A migration of the plan failed; the VM stayed where it was.
    MigrationFailed,
}

impl fmt::Display for DissolveReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DissolveReason::Solved => "solved",
            DissolveReason::NotNeeded => "not_needed",
            DissolveReason::NotWorthIt => "not_worth_it",
            DissolveReason::Unsolvable => "unsolvable",
            DissolveReason::GaveUp => "gave_up",
            DissolveReason::Expired => "expired",
            DissolveReason::InitiatorLost => "initiator_lost",
            DissolveReason::MigrationFailed => "migration_failed",
        })
    }
}

/// A protocol message between two hosts.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Msg {
    /// The ISP: a leader offers its partition to a free host (§4.1).
    Isp {
        /// The partition as the leader knows it.
        view: PartitionView,
        /// The members' states, in `view.members` order.
        hosts: Vec<HostState>,
    },
    /// A host declines an ISP (§4.3).
    IspRefused {
        /// The partition offered.
        partition: PartitionId,
        /// Its version.
        version: u32,
        /// Why.
        reason: RefuseReason,
    },
    /// A free host that received an ISP asks the leader whether it may take over (§4.2).
    JoinRequest {
        /// The partition offered.
        partition: PartitionId,
        /// Its version.
        version: u32,
    },
    /// The leader's answer to a join request.
    JoinReply {
        /// The partition.
        partition: PartitionId,
        /// Its version.
        version: u32,
        /// True: the requester is the new leader.
        granted: bool,
    },
    /// A new view of the partition, pushed by its leader to every member (§5).
    View {
        /// The view.
        view: PartitionView,
        /// Set when this view absorbed another partition: its members accept the new id (§6).
        absorbed: Option<PartitionId>,
    },
    /// The leader renews its members' leases (§7).
    Renew {
        /// The partition.
        partition: PartitionId,
        /// The leader's epoch.
        epoch: Epoch,
        /// Its version.
        version: u32,
    },
    /// The partition ends; members become free (§8).
    Dissolve {
        /// The partition.
        partition: PartitionId,
        /// The leader's epoch: a member ignores a dissolution from an older leadership.
        epoch: Epoch,
        /// Why.
        reason: DissolveReason,
    },
    /// A blocked partition's leader asks another blocked partition's leader to be absorbed (§6).
    MergeRequest {
        /// The absorbing partition.
        absorber: PartitionId,
        /// The partition to absorb.
        target: PartitionId,
        /// The version of the target the absorber saw.
        target_version: u32,
    },
    /// The answer to a merge request.
    MergeReply {
        /// The absorbing partition.
        absorber: PartitionId,
        /// The partition to absorb.
        target: PartitionId,
        /// True: the target's leader stepped down and waits for the merged view.
        accepted: bool,
    },
    /// The leader asks a member to live-migrate one of its VMs (§9); re-sent with every renewal
    /// until reported, so the source answers duplicates idempotently (§9.2).
    Migrate {
        /// The partition.
        partition: PartitionId,
        /// The leader's epoch: a source that knows a later one refuses (§7.6).
        epoch: Epoch,
        /// The migration's id, echoed by the outcome.
        migration: MigrationId,
        /// The VM.
        vm: VmId,
        /// The destination, a member of the partition.
        to: NodeId,
        /// The VM's memory.
        mem_mib: u64,
    },
    /// A member reports the outcome of a migration to its leader.
    MigrateDone {
        /// The partition.
        partition: PartitionId,
        /// The epoch of the request.
        epoch: Epoch,
        /// The migration.
        migration: MigrationId,
        /// True if the VM now runs on the destination.
        ok: bool,
    },
    /// A host tells a leader that still renews it that it is no longer in the partition (its
    /// lease ran out, it restarted, or it is in another partition) (§7.5).
    Leave {
        /// The partition.
        partition: PartitionId,
    },
    /// A leader that took over asks a member for its current state (§7).
    StateRequest {
        /// The partition.
        partition: PartitionId,
        /// The epoch of the takeover.
        epoch: Epoch,
        /// The version of the takeover.
        version: u32,
    },
    /// A member's answer to a state request.
    State {
        /// The partition.
        partition: PartitionId,
        /// The version asked about.
        version: u32,
        /// The member's state.
        host: HostState,
    },
    /// A source asks a destination to reserve room for a VM before it starts migrating it
    /// (§9.4); re-sent until answered by [`Msg::IncomingAck`].
    Incoming {
        /// The partition whose plan moves the VM.
        partition: PartitionId,
        /// The epoch of the leader that ordered the migration.
        epoch: Epoch,
        /// The migration.
        migration: MigrationId,
        /// The VM.
        vm: VmId,
        /// Its CPU demand and memory.
        demand: Resources,
    },
    /// A destination's answer to [`Msg::Incoming`]: the room is reserved (`granted`) until the
    /// migration ends, or refused (not a member of that leadership, or no room).
    IncomingAck {
        /// The migration.
        migration: MigrationId,
        /// The VM.
        vm: VmId,
        /// True: reserved.
        granted: bool,
    },
    /// A destination asks the source whether a migration it holds room for still runs (§9.4).
    IncomingQuery {
        /// The migration.
        migration: MigrationId,
        /// The VM.
        vm: VmId,
    },
    /// The source's answer to [`Msg::IncomingQuery`].
    IncomingStatus {
        /// The migration.
        migration: MigrationId,
        /// The VM.
        vm: VmId,
        /// False: the migration ended (or the source never ran it); the room is released.
        running: bool,
    },
    /// A source tells a destination that an announced migration failed or was aborted (§9.4).
    IncomingCancelled {
        /// The migration, as in its `Incoming`: a late cancellation of an earlier migration of
        /// the same VM (reordering, §7.7) must not release a newer reservation.
        migration: MigrationId,
        /// The VM.
        vm: VmId,
    },
    /// A source tells a destination the move history of a VM it just received (cooldown, §10).
    Handoff {
        /// The migration that brought the VM, as in its `Incoming`.
        migration: MigrationId,
        /// The VM.
        vm: VmId,
        /// How many recent moves the VM has made, this one included.
        moves: u8,
    },
}

impl Msg {
    /// A short constant name, for logs and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Msg::Isp { .. } => "isp",
            Msg::IspRefused { .. } => "isp_refused",
            Msg::JoinRequest { .. } => "join_request",
            Msg::JoinReply { .. } => "join_reply",
            Msg::View { .. } => "view",
            Msg::Renew { .. } => "renew",
            Msg::Dissolve { .. } => "dissolve",
            Msg::MergeRequest { .. } => "merge_request",
            Msg::MergeReply { .. } => "merge_reply",
            Msg::Migrate { .. } => "migrate",
            Msg::MigrateDone { .. } => "migrate_done",
            Msg::Leave { .. } => "leave",
            Msg::StateRequest { .. } => "state_request",
            Msg::State { .. } => "state",
            Msg::Incoming { .. } => "incoming",
            Msg::IncomingAck { .. } => "incoming_ack",
            Msg::IncomingQuery { .. } => "incoming_query",
            Msg::IncomingStatus { .. } => "incoming_status",
            Msg::IncomingCancelled { .. } => "incoming_cancelled",
            Msg::Handoff { .. } => "handoff",
        }
    }
}
