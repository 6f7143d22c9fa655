//! Model types shared by the protocol core, the placement solver and the drivers.
//!
//! Identifiers are newtypes over integers: drivers keep the tables that map them to real names
//! (libp2p peer ids, libvirt domain UUIDs, scenario names). Resources are integers (thousandths
//! of a core, MiB) so that arithmetic is exact and deterministic.

use std::fmt;
use std::ops::{Add, AddAssign, Sub, SubAssign};

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

id_type!(
    /// A hypervisor host. Ordered: the total order on initiator ids that makes merges one-way.
    NodeId,
    "n"
);
id_type!(
    /// A virtual machine.
    VmId,
    "vm"
);
id_type!(
    /// A request to the solver, echoed by its answer.
    SolveId,
    "s"
);
id_type!(
    /// One live migration, echoed by its outcome.
    MigrationId,
    "m"
);
id_type!(
    /// A request for candidate hosts, echoed by the driver's answer.
    QueryId,
    "q"
);

/// A partition's identity: its initiator and a per-initiator sequence number.
///
/// Unique without coordination, and stable for the partition's whole life; changes of the
/// partition are told apart by its version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PartitionId {
    /// The host whose problem started the partition.
    pub initiator: NodeId,
    /// The initiator's event counter.
    pub seq: u32,
}

impl fmt::Display for PartitionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.initiator, self.seq)
    }
}

/// A leadership epoch: the fencing token of one leadership of a partition (`docs/protocol.md`
/// §7.6). Every change of leader (a join, a takeover) makes a new epoch with a larger `term`;
/// the leader's id breaks ties, so two hosts that became leader concurrently (a deposed leader
/// granting a join while the initiator takes over) never share an epoch. Members and migration
/// sources refuse commands from an epoch smaller than the one they know.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Epoch {
    /// Bumped by every change of leader.
    pub term: u32,
    /// The leader of this epoch.
    pub leader: NodeId,
}

impl Epoch {
    /// The first epoch of a partition started by `leader`.
    pub fn first(leader: NodeId) -> Epoch {
        Epoch { term: 0, leader }
    }

    /// The epoch of `leader` taking over after `self`.
    pub fn next(self, leader: NodeId) -> Epoch {
        Epoch {
            term: self.term.saturating_add(1),
            leader,
        }
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "e{}@{}", self.term, self.leader)
    }
}

/// An amount of CPU and memory.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Resources {
    /// CPU in thousandths of a core.
    pub cpu_milli: u64,
    /// Memory in MiB.
    pub mem_mib: u64,
}

impl Resources {
    /// Nothing.
    pub const ZERO: Resources = Resources {
        cpu_milli: 0,
        mem_mib: 0,
    };

    /// Builds an amount.
    pub const fn new(cpu_milli: u64, mem_mib: u64) -> Resources {
        Resources { cpu_milli, mem_mib }
    }

    /// True when both dimensions fit within `limit`.
    pub fn fits_in(self, limit: Resources) -> bool {
        self.cpu_milli <= limit.cpu_milli && self.mem_mib <= limit.mem_mib
    }

    /// Per-dimension subtraction that stops at zero.
    pub fn saturating_sub(self, other: Resources) -> Resources {
        Resources {
            cpu_milli: self.cpu_milli.saturating_sub(other.cpu_milli),
            mem_mib: self.mem_mib.saturating_sub(other.mem_mib),
        }
    }
}

impl Add for Resources {
    type Output = Resources;
    fn add(self, o: Resources) -> Resources {
        Resources {
            cpu_milli: self.cpu_milli.saturating_add(o.cpu_milli),
            mem_mib: self.mem_mib.saturating_add(o.mem_mib),
        }
    }
}

impl AddAssign for Resources {
    fn add_assign(&mut self, o: Resources) {
        *self = *self + o;
    }
}

impl Sub for Resources {
    type Output = Resources;
    fn sub(self, o: Resources) -> Resources {
        self.saturating_sub(o)
    }
}

impl SubAssign for Resources {
    fn sub_assign(&mut self, o: Resources) {
        *self = self.saturating_sub(o);
    }
}

impl std::iter::Sum for Resources {
    fn sum<I: Iterator<Item = Resources>>(iter: I) -> Resources {
        iter.fold(Resources::ZERO, Add::add)
    }
}

/// Per-resource thresholds, in percent of capacity, above which a host is overloaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Thresholds {
    /// CPU demand above `capacity.cpu_milli * cpu_pct / 100` is an overload.
    pub cpu_pct: u8,
    /// Memory above `capacity.mem_mib * mem_pct / 100` is an overload.
    pub mem_pct: u8,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            cpu_pct: 100,
            mem_pct: 100,
        }
    }
}

/// What the solver knows of one host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HostSpec {
    /// The host.
    pub id: NodeId,
    /// Its physical capacity.
    pub capacity: Resources,
    /// The share of capacity its VMs may use.
    pub thresholds: Thresholds,
}

impl HostSpec {
    /// The usable amount: capacity scaled by the thresholds.
    ///
    /// Never overflows, whatever the values (they may come from a peer): the product is taken in
    /// 128 bits, and a threshold above 100 % counts as 100 %.
    pub fn limit(&self) -> Resources {
        Resources {
            cpu_milli: scale_pct(self.capacity.cpu_milli, self.thresholds.cpu_pct),
            mem_mib: scale_pct(self.capacity.mem_mib, self.thresholds.mem_pct),
        }
    }
}

/// `value × pct / 100` without overflow, `pct` capped at 100.
pub fn scale_pct(value: u64, pct: u8) -> u64 {
    let scaled = u128::from(value) * u128::from(pct.min(100)) / 100;
    u64::try_from(scaled).unwrap_or(u64::MAX)
}

/// What the solver knows of one VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VmSpec {
    /// The VM.
    pub id: VmId,
    /// The host it runs on now.
    pub host: NodeId,
    /// Its measured CPU demand and its memory.
    pub demand: Resources,
    /// False when the VM must not move (operator opt-out, or a migration cooldown).
    pub migratable: bool,
}

/// A hard placement constraint, in BtrPlace's vocabulary.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Constraint {
    /// The VMs never run on these hosts.
    Ban {
        /// Constrained VMs.
        vms: Vec<VmId>,
        /// Forbidden hosts.
        hosts: Vec<NodeId>,
    },
    /// The VMs run only on these hosts.
    Fence {
        /// Constrained VMs.
        vms: Vec<VmId>,
        /// Allowed hosts.
        hosts: Vec<NodeId>,
    },
    /// The VMs run on pairwise distinct hosts.
    Spread {
        /// Constrained VMs.
        vms: Vec<VmId>,
    },
    /// The VMs run on one host.
    Gather {
        /// Constrained VMs.
        vms: Vec<VmId>,
    },
    /// The VMs run within one of the host groups.
    Among {
        /// Constrained VMs.
        vms: Vec<VmId>,
        /// Candidate host groups.
        groups: Vec<Vec<NodeId>>,
    },
    /// The VMs never move.
    Root {
        /// Constrained VMs.
        vms: Vec<VmId>,
    },
}

/// A placement problem: the hosts of a partition, their VMs and the constraints to respect.
///
/// The solver must end every threshold violation with the least memory moved, then the fewest
/// migrations; a `Ban` of a host's VMs on that host is how the core asks for a host to be
/// drained (evacuation, consolidation).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Problem {
    /// Hosts the VMs may use.
    pub hosts: Vec<HostSpec>,
    /// VMs on those hosts.
    pub vms: Vec<VmSpec>,
    /// Hard constraints.
    pub constraints: Vec<Constraint>,
}

/// One live migration of a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Migration {
    /// The VM to move.
    pub vm: VmId,
    /// Where it runs when the migration starts.
    pub from: NodeId,
    /// Where it runs when the migration ends.
    pub to: NodeId,
    /// Its memory, the main cost of a live migration.
    pub mem_mib: u64,
}

/// A migration plan: steps run in order, the migrations of one step in parallel.
///
/// An empty plan means no reconfiguration is needed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Plan {
    /// Ordered steps of parallel migrations.
    pub steps: Vec<Vec<Migration>>,
}

impl Plan {
    /// True when nothing needs to move.
    pub fn is_empty(&self) -> bool {
        self.steps.iter().all(Vec::is_empty)
    }

    /// All migrations, step by step.
    pub fn migrations(&self) -> impl Iterator<Item = &Migration> {
        self.steps.iter().flatten()
    }

    /// Total memory moved.
    pub fn moved_mib(&self) -> u64 {
        self.migrations()
            .fold(0u64, |acc, m| acc.saturating_add(m.mem_mib))
    }
}

/// Why the solver found no plan.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum Unsolvable {
    /// The hosts together lack the capacity to fix this host.
    #[error("not enough capacity to fix host {host}")]
    NotEnoughCapacity {
        /// A host that stays over its thresholds.
        host: NodeId,
    },
    /// A constraint forbids every fix for this host.
    #[error("constraint {constraint} blocks every fix of host {host}")]
    ConstraintBlocks {
        /// A host that stays over its thresholds, or breaks a constraint.
        host: NodeId,
        /// Index of the blocking constraint in `Problem::constraints`.
        constraint: usize,
    },
    /// The work budget ran out before a plan was found.
    #[error("budget exhausted before host {host} was fixed")]
    BudgetExhausted {
        /// A host still unfixed.
        host: NodeId,
    },
    /// The problem itself is inconsistent (a VM on a host not in the problem, duplicate ids).
    #[error("invalid problem: {reason}")]
    Invalid {
        /// What is wrong.
        reason: String,
    },
}

/// The load of one VM as the local monitor measures it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VmLoad {
    /// The VM.
    pub id: VmId,
    /// CPU demand and memory.
    pub demand: Resources,
    /// False when the operator pinned the VM (never migrate it).
    pub migratable: bool,
}

/// One monitoring sample of a host: its capacity and its VMs' loads.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HostSample {
    /// The host's capacity.
    pub capacity: Resources,
    /// Its running VMs.
    pub vms: Vec<VmLoad>,
}

impl HostSample {
    /// The sum of the VMs' demands.
    pub fn demand(&self) -> Resources {
        self.vms.iter().map(|v| v.demand).sum()
    }
}

/// A compact load summary a host gossips, and that candidate selection returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LoadSummary {
    /// Capacity of the host.
    pub capacity: Resources,
    /// Demand of its VMs.
    pub demand: Resources,
    /// In a partition (or reserved for one).
    pub busy: bool,
    /// Its partition is `Blocked`: a candidate for a merge.
    pub blocked: bool,
    /// Running or receiving migrations.
    pub migrating: bool,
    /// Being evacuated: it must receive no VM.
    pub draining: bool,
}

/// A host that candidate selection returned, with what gossip last said of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Candidate {
    /// The host.
    pub id: NodeId,
    /// Its latest gossiped summary, if any arrived.
    pub summary: Option<LoadSummary>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_scales_capacity_by_thresholds() {
        let h = HostSpec {
            id: NodeId(1),
            capacity: Resources::new(7000, 32768),
            thresholds: Thresholds {
                cpu_pct: 90,
                mem_pct: 100,
            },
        };
        assert_eq!(h.limit(), Resources::new(6300, 32768));
    }

    // Reference: protocol.md §11 (issue 10, finding 6: a capacity sent by a peer overflowed
    // `limit`).
    #[test]
    fn finding6_limit_of_any_capacity_never_overflows() {
        let huge = HostSpec {
            id: NodeId(1),
            capacity: Resources::new(u64::MAX, u64::MAX),
            thresholds: Thresholds {
                cpu_pct: 255,
                mem_pct: 50,
            },
        };
        assert_eq!(huge.limit(), Resources::new(u64::MAX, u64::MAX / 2));
    }

    #[test]
    fn epochs_order_by_term_then_leader() {
        let a = Epoch::first(NodeId(9));
        let b = a.next(NodeId(1));
        let c = a.next(NodeId(2));
        assert!(
            a < b && b < c,
            "a later term wins; the leader id breaks ties"
        );
        assert_ne!(b, c, "concurrent leaderships never share an epoch");
    }

    #[test]
    fn resources_arithmetic_saturates() {
        let a = Resources::new(5, 5);
        let b = Resources::new(7, 1);
        assert_eq!(a - b, Resources::new(0, 4));
        assert!(!b.fits_in(a));
        assert!(Resources::new(5, 4).fits_in(a));
        assert_eq!([a, b].into_iter().sum::<Resources>(), Resources::new(12, 6));
    }

    #[test]
    fn plan_counts_moved_memory() {
        let m = |vm, mem| Migration {
            vm: VmId(vm),
            from: NodeId(1),
            to: NodeId(2),
            mem_mib: mem,
        };
        let plan = Plan {
            steps: vec![vec![m(1, 1024)], vec![m(2, 512), m(3, 2048)]],
        };
        assert_eq!(plan.moved_mib(), 3584);
        assert_eq!(plan.migrations().count(), 3);
        assert!(!plan.is_empty());
        assert!(Plan::default().is_empty());
    }
}
