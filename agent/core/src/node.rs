//! The per-host protocol state machine: roles, inputs, outputs and the helpers the role modules
//! share. The member side lives in `member.rs`, the leader side in `leader.rs`.

use std::collections::{BTreeMap, VecDeque};

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use tracing::{debug, info};

use crate::Time;
use crate::config::Config;
use crate::cooldown::Cooldowns;
use crate::detector::Detector;
use crate::incoming::Incoming;
use crate::leader::Leader;
use crate::model::{
    Candidate, Epoch, HostSample, LoadSummary, MigrationId, NodeId, PartitionId, Plan, QueryId,
    Resources, SolveId, Unsolvable,
};
use crate::msg::{
    DissolveReason, EventKind, HostState, Msg, PartitionState, PartitionView, VmState,
};
use crate::output::{Event, MigrationCmd, MigrationOutcome, Output};
use crate::source::{RunState, Running};
use crate::stats::Stats;
use crate::timer::{Timer, TimerTable};

/// Protocol state and logic for one hypervisor host.
///
/// A `Node` never performs I/O, never reads a clock and never draws OS entropy. Drivers feed it
/// inputs with `handle_*` and, after **every** input, drain [`Node::poll_output`] until `None`,
/// then re-arm their timer from [`Node::poll_timeout`]. Inputs carry `now`; successive inputs must
/// have non-decreasing `now`. The same inputs always give the same outputs.
#[derive(Debug)]
pub struct Node {
    /// This host.
    pub(crate) id: NodeId,
    /// Validated settings.
    pub(crate) cfg: Config,
    /// Deterministic randomness (retry jitter), seeded by the driver.
    pub(crate) rng: ChaCha8Rng,
    /// Outputs not yet drained by the driver.
    outbox: VecDeque<Output>,
    /// Deadlines by purpose.
    pub(crate) timers: TimerTable,
    /// Counters.
    pub(crate) stats: Stats,
    /// The latest monitoring sample.
    pub(crate) sample: Option<HostSample>,
    /// Overload/underload hysteresis and retry backoff.
    pub(crate) detector: Detector,
    /// Move history of local VMs.
    pub(crate) cooldowns: Cooldowns,
    /// The operator asked to drain this host.
    pub(crate) draining: bool,
    /// Free, reserved, member or leader.
    pub(crate) role: Role,
    /// Sequence number of the next partition this host initiates.
    next_seq: u32,
    /// Counter for solve, query and migration ids.
    next_local: u64,
    /// Migrations this host runs as their source, by id.
    pub(crate) running: BTreeMap<MigrationId, Running>,
    /// The outcomes of the last migrations this host ran for a leader, oldest first, to answer
    /// a re-sent `Migrate` whose report was lost (§9.2); at most 16.
    pub(crate) reported: VecDeque<(MigrationId, PartitionId, Epoch, bool)>,
    /// Room reserved for VMs migrating to this host (§9.4).
    pub(crate) incoming: Incoming,
    /// The last summary published, and when.
    published: Option<(LoadSummary, Time)>,
    /// The event this host initiated, until it ends.
    pub(crate) own_event: Option<OwnEvent>,
}

/// The event a host initiated: it ends when the partition carrying it (its own, or the one that
/// absorbed it) dissolves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OwnEvent {
    /// The partition the event started.
    pub(crate) id: PartitionId,
    /// The problem.
    pub(crate) kind: EventKind,
    /// A plan was chosen for it.
    pub(crate) decided: bool,
}

/// What a host is doing in the protocol.
#[derive(Debug)]
pub(crate) enum Role {
    /// In no partition.
    Free,
    /// Received an ISP and asked its leader to take over (`docs/protocol.md` §4.2).
    Reserved {
        /// The partition offered.
        view: PartitionView,
        /// The members' states.
        hosts: Vec<HostState>,
    },
    /// A member that does not lead.
    Member(PartitionView),
    /// The leader.
    Leader(Box<Leader>),
}

// === impl Node: public API ===

impl Node {
    /// A free node. `seed` feeds its deterministic random stream and must differ between two
    /// lives of the same host (the agent draws it at start, the simulator per restart); `cfg`
    /// must have been validated.
    pub fn new(id: NodeId, cfg: Config, seed: u64, now: Time) -> Node {
        let _ = now;
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ id.0.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        // Partition ids must not repeat across restarts: each life starts its sequence at a
        // random point (drivers pass a fresh seed per life).
        let next_seq = rng.next_u32() >> 1;
        // Solve, query and migration ids: a plain counter from a random point per life. A
        // migration is always matched with its partition and epoch too (§9.2), so ids need only
        // be unique within one leadership, whatever the node ids.
        let next_local = rng.next_u64() >> 1;
        Node {
            id,
            cfg,
            rng,
            outbox: VecDeque::new(),
            timers: TimerTable::default(),
            stats: Stats::default(),
            sample: None,
            detector: Detector::default(),
            cooldowns: Cooldowns::default(),
            draining: false,
            role: Role::Free,
            next_seq,
            next_local,
            running: BTreeMap::new(),
            reported: VecDeque::new(),
            incoming: Incoming::default(),
            published: None,
            own_event: None,
        }
    }

    /// A message from another host.
    pub fn handle_message(&mut self, now: Time, from: NodeId, msg: Msg) {
        self.stats.messages_received += 1;
        self.incoming.source_answered(from);
        debug!(node = %self.id, peer = %from, kind = msg.kind(), "message received");
        self.on_message(now, from, msg);
        self.after_input(now);
    }

    /// A monitoring sample of this host.
    pub fn handle_sample(&mut self, now: Time, sample: HostSample) {
        self.detector.observe(now, &sample, &self.cfg);
        self.sample = Some(sample);
        self.after_input(now);
    }

    /// The operator asks to drain this host (`true`) or cancels the request (`false`).
    pub fn handle_evacuate(&mut self, now: Time, drain: bool) {
        if self.draining != drain {
            info!(node = %self.id, drain, "evacuation request changed");
        }
        self.draining = drain;
        self.after_input(now);
    }

    /// The overlay's answer to an [`Output::FindCandidates`], closest first.
    pub fn handle_candidates(&mut self, now: Time, query: QueryId, candidates: Vec<Candidate>) {
        self.on_candidates(now, query, candidates);
        self.after_input(now);
    }

    /// The solver's answer to an [`Output::Solve`].
    pub fn handle_plan(&mut self, now: Time, id: SolveId, result: Result<Plan, Unsolvable>) {
        self.on_plan(now, id, result);
        self.after_input(now);
    }

    /// The actuator's answer to an [`Output::Migrate`].
    pub fn handle_migration(&mut self, now: Time, id: MigrationId, outcome: MigrationOutcome) {
        self.on_migration(now, id, outcome);
        self.after_input(now);
    }

    /// The driver could not reach `peer` (request failed, connection lost).
    pub fn handle_unreachable(&mut self, now: Time, peer: NodeId) {
        self.on_unreachable(now, peer);
        self.after_input(now);
    }

    /// Timers may have expired; spurious calls are harmless.
    pub fn handle_timeout(&mut self, now: Time) {
        while let Some(timer) = self.timers.pop_expired(now) {
            self.on_timer(now, timer);
        }
        self.after_input(now);
    }

    /// The next action for the driver.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outbox.pop_front()
    }

    /// When [`Node::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.timers.next_timeout()
    }

    /// This host.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The node's settings.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The partition this host is in, if any (not while only reserved).
    pub fn partition(&self) -> Option<&PartitionView> {
        match &self.role {
            Role::Member(view) => Some(view),
            Role::Leader(l) => Some(&l.view),
            Role::Free | Role::Reserved { .. } => None,
        }
    }

    /// True while this host is in, or reserved for, a partition.
    pub fn is_busy(&self) -> bool {
        !matches!(self.role, Role::Free)
    }

    /// True while this host leads a partition.
    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader(_))
    }

    /// True while this host runs migrations as their source.
    pub fn is_migrating(&self) -> bool {
        !self.running.is_empty()
    }

    /// The summary this host would gossip now.
    pub fn summary(&self) -> LoadSummary {
        let (capacity, demand) = self.sample.as_ref().map_or(Default::default(), |s| {
            let arriving: Resources = self.incoming.pending(s).map(|(_, d)| d).sum();
            (s.capacity, s.demand() + arriving)
        });
        LoadSummary {
            capacity,
            demand,
            busy: self.is_busy(),
            blocked: self
                .partition()
                .is_some_and(|v| v.state == PartitionState::Blocked),
            migrating: self.is_migrating(),
            draining: self.draining,
        }
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}

// === impl Node: shared helpers ===

impl Node {
    /// Queues a message for the driver.
    pub(crate) fn send(&mut self, to: NodeId, msg: Msg) {
        debug_assert_ne!(to, self.id, "a node never messages itself");
        self.stats.messages_sent += 1;
        self.outbox.push_back(Output::Send { to, msg });
    }

    /// Sends `msg` to every member of `members` but this host.
    pub(crate) fn broadcast(&mut self, members: &[NodeId], msg: &Msg) {
        for &m in members {
            if m != self.id {
                self.send(m, msg.clone());
            }
        }
    }

    /// Pushes `view` to its members (§5); `absorbed` names a partition it absorbed (§6).
    pub(crate) fn push_view(&mut self, view: &PartitionView, absorbed: Option<PartitionId>) {
        let msg = Msg::View {
            view: view.clone(),
            absorbed,
        };
        self.broadcast(&view.members, &msg);
    }

    /// Queues any other output.
    pub(crate) fn push(&mut self, out: Output) {
        self.outbox.push_back(out);
    }

    /// Reports a transition.
    pub(crate) fn emit(&mut self, ev: Event) {
        self.outbox.push_back(Output::Event(ev));
    }

    /// Counts and reports an ignored input.
    pub(crate) fn ignore(&mut self, reason: &'static str) {
        self.stats.ignored += 1;
        debug!(node = %self.id, reason, "input ignored");
        self.emit(Event::Ignored { reason });
    }

    /// A fresh id for a solve, query or migration: unique within this life of the node.
    pub(crate) fn fresh_id(&mut self) -> u64 {
        self.next_local = self.next_local.wrapping_add(1);
        self.next_local
    }

    /// This host's state for an ISP, or `None` before the first sample.
    pub(crate) fn own_state(&self, now: Time) -> Option<HostState> {
        let sample = self.sample.as_ref()?;
        let (base, max) = (self.cfg.cooldown_base, self.cfg.cooldown_max);
        let vms = sample
            .vms
            .iter()
            .map(|v| VmState {
                id: v.id,
                demand: v.demand,
                migratable: v.migratable
                    && !self.cooldowns.blocks(v.id, now, base, max)
                    && !self.running.values().any(|r| r.cmd.vm == v.id),
            })
            // A VM in flight counts where it is going (its destination reserved room for it),
            // not here: a leader that takes over must not fix this host's problem twice (§7.2).
            .filter(|v| {
                !self.running.values().any(|r| {
                    r.cmd.vm == v.id && !matches!(r.state, RunState::Reserving { .. })
                })
            })
            .collect();
        // VMs on their way here are reserved out of the capacity the solver may use (§9.4);
        // as VMs they would appear twice in a problem that also holds their source.
        let arriving: Resources = self.incoming.pending(sample).map(|(_, d)| d).sum();
        Some(HostState {
            id: self.id,
            capacity: sample.capacity.saturating_sub(arriving),
            thresholds: self.cfg.thresholds,
            draining: self.draining,
            vms,
        })
    }

    /// Leaves any partition. If this host's own event was in it (as its partition, or absorbed
    /// into this one by a merge), the event ends with `reason` (`Expired` when none is given).
    pub(crate) fn become_free(&mut self, now: Time, reason: Option<DissolveReason>) {
        self.role = Role::Free;
        for t in [Timer::Lease, Timer::Renew, Timer::Reserve, Timer::Phase] {
            self.timers.stop(t);
        }
        if let Some(own) = self.own_event.take() {
            let reason = reason.unwrap_or(DissolveReason::Expired);
            info!(node = %self.id, partition = %own.id, kind = %own.kind, %reason, "event ended");
            self.detector.event_ended(now, reason, &self.cfg);
            self.emit(Event::EventEnded {
                partition: own.id,
                kind: own.kind,
                reason,
            });
        }
    }

    /// Reports, once, that a plan was chosen for this host's own event (§5.6).
    pub(crate) fn note_decided(&mut self, view: &PartitionView) {
        if view.state != PartitionState::Finishing {
            return;
        }
        if let Some(own) = self.own_event.as_mut().filter(|o| !o.decided) {
            own.decided = true;
            let partition = own.id;
            self.emit(Event::EventDecided { partition });
        }
    }

    /// Starts an event if a problem is due and this host is free (`docs/protocol.md` §1, §3).
    fn maybe_start_event(&mut self, now: Time) {
        if self.is_busy() || self.is_migrating() {
            return;
        }
        let has_vms = self.sample.as_ref().is_some_and(|s| !s.vms.is_empty());
        let Some(kind) = self.detector.due(now, &self.cfg, self.draining, has_vms) else {
            return;
        };
        let Some(state) = self.own_state(now) else {
            return;
        };
        self.next_seq = self.next_seq.wrapping_add(1);
        let view = PartitionView {
            id: PartitionId {
                initiator: self.id,
                seq: self.next_seq,
            },
            version: 0,
            epoch: Epoch::first(self.id),
            leader: self.id,
            members: vec![self.id],
            state: PartitionState::Growing,
            kind,
        };
        info!(node = %self.id, partition = %view.id, %kind, "event started");
        self.stats.events_started += 1;
        self.own_event = Some(OwnEvent {
            id: view.id,
            kind,
            decided: false,
        });
        self.emit(Event::EventStarted {
            partition: view.id,
            kind,
        });
        let leader = Leader::new(view, vec![state]);
        self.leader_start(now, leader);
    }

    /// Bookkeeping after every input: detection, gossip, detector timer.
    fn after_input(&mut self, now: Time) {
        self.maybe_start_event(now);
        match self.outgoing_deadline() {
            Some(t) => self.timers.set(Timer::Outgoing, t.max(now)),
            None => self.timers.stop(Timer::Outgoing),
        }
        match self.incoming.next_deadline() {
            Some(t) => self.timers.set(Timer::Incoming, t.max(now)),
            None => self.timers.stop(Timer::Incoming),
        }
        // A check due now that could not start (migrating) is retried by the input that ends
        // the obstacle, never by a timer at `now`, which would spin.
        match self.detector.next_check(&self.cfg, self.draining) {
            Some(t) if t > now && !self.is_busy() => self.timers.set(Timer::Detect, t),
            _ => self.timers.stop(Timer::Detect),
        }
        self.maybe_publish(now);
    }

    /// Publishes the summary if it changed, at most once per `gossip_min_interval`.
    fn maybe_publish(&mut self, now: Time) {
        let summary = self.summary();
        match self.published {
            Some((last, _)) if last == summary => self.timers.stop(Timer::Gossip),
            Some((_, at)) if now < at + self.cfg.gossip_min_interval => {
                self.timers
                    .set(Timer::Gossip, at + self.cfg.gossip_min_interval);
            }
            _ => {
                self.published = Some((summary, now));
                self.timers.stop(Timer::Gossip);
                self.push(Output::Publish(summary));
            }
        }
    }

    fn on_timer(&mut self, now: Time, timer: Timer) {
        match timer {
            // Detection and gossip run in `after_input`.
            Timer::Detect | Timer::Gossip => {}
            Timer::Lease => self.on_lease_expired(now),
            Timer::Reserve => self.on_reserve_expired(now),
            Timer::Renew => self.leader_renew(now),
            Timer::Phase => self.leader_phase_timeout(now),
            Timer::Outgoing => self.on_outgoing_timer(now),
            Timer::Incoming => self.on_incoming_timer(now),
        }
    }

    fn on_message(&mut self, now: Time, from: NodeId, msg: Msg) {
        if from == self.id {
            return self.ignore("message from self");
        }
        match msg {
            Msg::Isp { view, hosts } => self.on_isp(now, from, view, hosts),
            Msg::IspRefused {
                partition,
                version,
                reason,
            } => {
                self.leader_on_refused(now, from, partition, version, reason);
            }
            Msg::JoinRequest { partition, version } => {
                self.leader_on_join_request(now, from, partition, version);
            }
            Msg::JoinReply {
                partition,
                version,
                granted,
            } => {
                self.on_join_reply(now, from, partition, version, granted);
            }
            Msg::View { view, absorbed } => self.on_view(now, from, view, absorbed),
            Msg::Renew {
                partition,
                epoch,
                version,
            } => self.on_renew(now, from, partition, epoch, version),
            Msg::Dissolve {
                partition,
                epoch,
                reason,
            } => self.on_dissolve(now, from, partition, epoch, reason),
            Msg::MergeRequest {
                absorber,
                target,
                target_version,
            } => {
                self.leader_on_merge_request(now, from, absorber, target, target_version);
            }
            Msg::MergeReply {
                absorber,
                target,
                accepted,
            } => {
                self.leader_on_merge_reply(now, from, absorber, target, accepted);
            }
            Msg::Migrate {
                partition,
                epoch,
                migration,
                vm,
                to,
                mem_mib,
            } => {
                let cmd = MigrationCmd {
                    id: migration,
                    partition,
                    epoch,
                    vm,
                    to,
                    mem_mib,
                };
                self.on_migrate_request(now, from, cmd);
            }
            Msg::MigrateDone {
                partition,
                epoch,
                migration,
                ok,
            } => {
                self.leader_on_migrate_done(now, from, partition, epoch, migration, ok);
            }
            Msg::Leave { partition } => self.leader_on_member_lost(now, from, Some(partition)),
            Msg::StateRequest {
                partition,
                epoch,
                version,
            } => {
                self.on_state_request(now, from, partition, epoch, version);
            }
            Msg::State {
                partition,
                version,
                host,
            } => self.leader_on_state(now, from, partition, version, host),
            Msg::Incoming {
                partition,
                epoch,
                migration,
                vm,
                demand,
            } => self.on_incoming(now, from, partition, epoch, migration, vm, demand),
            Msg::IncomingAck {
                migration,
                vm,
                granted,
            } => self.on_incoming_ack(now, from, migration, vm, granted),
            Msg::IncomingQuery { migration, vm } => self.on_incoming_query(from, migration, vm),
            Msg::IncomingStatus {
                migration,
                vm,
                running,
            } => {
                if !running {
                    self.incoming.release(vm, from, migration);
                }
            }
            Msg::IncomingCancelled { migration, vm } => {
                self.incoming.release(vm, from, migration);
            }
            Msg::Handoff {
                migration,
                vm,
                moves,
            } => {
                self.incoming.release(vm, from, migration);
                let max = self.cfg.cooldown_max;
                self.cooldowns.record_arrival(vm, moves, now, max);
            }
        }
    }

    fn on_unreachable(&mut self, now: Time, peer: NodeId) {
        self.migrations_on_unreachable(now, peer);
        match &self.role {
            Role::Free => {}
            Role::Reserved { view, .. } => {
                if view.leader == peer {
                    self.become_free(now, None);
                }
            }
            Role::Member(view) => {
                if view.leader == peer && view.initiator() == self.id {
                    self.take_over(now, peer);
                }
            }
            Role::Leader(_) => self.leader_on_member_lost(now, peer, None),
        }
    }

    /// A fresh query id.
    pub(crate) fn fresh_query(&mut self) -> QueryId {
        QueryId(self.fresh_id())
    }

    /// The kind-specific largest partition.
    pub(crate) fn max_size(&self, kind: EventKind) -> usize {
        match kind {
            EventKind::Underload => self.cfg.max_consolidation_size,
            EventKind::Overload | EventKind::Evacuate => self.cfg.max_partition_size,
        }
    }
}
