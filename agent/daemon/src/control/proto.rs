//! The control protocol between `dvmsctl` and `dvmsd`: one JSON request line, one JSON
//! response line, per connection.

use serde::{Deserialize, Serialize};

/// Longest request or response line accepted.
pub const MAX_LINE: usize = 1 << 20;

/// A request from `dvmsctl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Request {
    /// This host, its load and its role.
    Status,
    /// The VMs the monitor sees.
    Vms,
    /// The hosts the overlay knows.
    Peers,
    /// Recent events and decisions, oldest first.
    Events,
    /// The latest plan and the migrations of this host.
    Plan,
    /// Evacuate this host (maintenance).
    Drain,
    /// Cancel an evacuation.
    Undrain,
}

/// The agent's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Response {
    /// For [`Request::Status`].
    Status(Status),
    /// For [`Request::Vms`].
    Vms(Vec<VmRow>),
    /// For [`Request::Peers`].
    Peers(Vec<PeerRow>),
    /// For [`Request::Events`].
    Events(Vec<EventRow>),
    /// For [`Request::Plan`].
    Plan(PlanView),
    /// An action was taken.
    Done {
        /// What happened.
        message: String,
    },
    /// The request was refused.
    Error {
        /// Why.
        message: String,
    },
}

/// CPU and memory figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Load {
    /// Capacity, thousandths of a core.
    pub cpu_capacity_milli: u64,
    /// The VMs' demand, thousandths of a core.
    pub cpu_demand_milli: u64,
    /// Capacity, MiB.
    pub mem_capacity_mib: u64,
    /// The VMs' memory, MiB.
    pub mem_demand_mib: u64,
}

/// The partition this host is in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRow {
    /// `initiator#seq`.
    pub id: String,
    /// Its version.
    pub version: u32,
    /// `Growing`, `Blocked` or `Finishing`.
    pub state: String,
    /// The problem that started it.
    pub kind: String,
    /// The leader's name.
    pub leader: String,
    /// Members' names, the initiator first.
    pub members: Vec<String>,
}

/// `dvmsctl status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// `node.name`.
    pub name: String,
    /// The core's id of this host, hex.
    pub node_id: String,
    /// The overlay peer id.
    pub peer_id: String,
    /// dvmsd's version.
    pub version: String,
    /// Seconds since start.
    pub uptime_s: u64,
    /// Addresses the overlay listens on.
    pub listen: Vec<String>,
    /// `observe` or `lab`.
    pub actuator: String,
    /// True once the overlay listens and the first sample was taken.
    pub ready: bool,
    /// `free`, `member` or `leader`.
    pub role: String,
    /// Being evacuated on the operator's request.
    pub draining: bool,
    /// Above a threshold in the latest sample.
    pub overloaded: bool,
    /// The latest sample's totals.
    pub load: Load,
    /// The partition, if any.
    pub partition: Option<PartitionRow>,
    /// VMs in the latest sample.
    pub vms: usize,
    /// Peers known.
    pub peers: usize,
    /// Migrations this host runs now.
    pub migrations_running: usize,
    /// Samples taken since start.
    pub samples: u64,
    /// Sample failures since start.
    pub sample_errors: u64,
    /// The core's counters.
    pub stats: Counters,
}

/// A subset of the core's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Messages sent.
    pub messages_sent: u64,
    /// Messages received.
    pub messages_received: u64,
    /// Events this host started.
    pub events_started: u64,
    /// Plans chosen as leader.
    pub plans_chosen: u64,
    /// Migrations run and succeeded.
    pub migrations_ok: u64,
    /// Migrations run and failed.
    pub migrations_failed: u64,
}

/// One VM (`dvmsctl vms`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmRow {
    /// The hypervisor's name.
    pub name: String,
    /// The core's id, hex.
    pub id: String,
    /// vCPUs.
    pub vcpus: u32,
    /// CPU used, thousandths of a core.
    pub cpu_use_milli: u64,
    /// CPU demand (use + run-queue wait), thousandths of a core.
    pub cpu_demand_milli: u64,
    /// Memory used, MiB.
    pub mem_used_mib: u64,
    /// Configured memory, MiB.
    pub mem_size_mib: u64,
    /// Destination name while it migrates.
    pub migrating_to: Option<String>,
}

/// One known host (`dvmsctl peers`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRow {
    /// Its node name, when known.
    pub name: Option<String>,
    /// The core's id, hex.
    pub node_id: String,
    /// The overlay peer id.
    pub peer_id: String,
    /// Its latest gossiped load.
    pub load: Option<Load>,
    /// In a partition.
    pub busy: bool,
    /// Being evacuated.
    pub draining: bool,
    /// Seconds since we last heard of it.
    pub seen_s_ago: u64,
}

/// One event or decision (`dvmsctl events`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRow {
    /// Wall-clock time, RFC 3339.
    pub at: String,
    /// `event_started`, `plan_chosen`, `unsolvable`, `dissolved`, `migration` ...
    pub event: String,
    /// The partition, when there is one.
    pub partition: Option<String>,
    /// The VM, when there is one.
    pub vm: Option<String>,
    /// What happened and why, in words.
    pub detail: String,
}

/// One migration of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanMove {
    /// Step number (migrations of a step run in parallel).
    pub step: usize,
    /// VM (name when local, id otherwise).
    pub vm: String,
    /// Source host.
    pub from: String,
    /// Destination host.
    pub to: String,
    /// Memory to move.
    pub mem_mib: u64,
}

/// `dvmsctl plan`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanView {
    /// The actuator: with `observe`, nothing is carried out.
    pub actuator: String,
    /// The latest plan this host computed as a leader, if any.
    pub latest: Option<LatestPlan>,
    /// Migrations this host runs now.
    pub running: Vec<PlanMove>,
}

/// The latest solver answer on this host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatestPlan {
    /// When, RFC 3339.
    pub at: String,
    /// The partition.
    pub partition: Option<String>,
    /// Hosts in the problem.
    pub hosts: usize,
    /// The migrations, empty when unsolvable.
    pub moves: Vec<PlanMove>,
    /// Why there is no plan, when there is none.
    pub unsolvable: Option<String>,
}
