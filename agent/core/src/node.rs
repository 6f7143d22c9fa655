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
    Candidate, HostSample, LoadSummary, MigrationId, NodeId, PartitionId, Plan, QueryId, Resources,
    SolveId, Unsolvable,
};
use crate::msg::{
    DissolveReason, EventKind, HostState, Msg, PartitionState, PartitionView, VmState,
};
use crate::output::{Event, MigrationCmd, MigrationOutcome, Output};
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
    /// a re-sent `Migrate` whose report was lost (§9.2); at most [`REPORTED_KEPT`].
    reported: VecDeque<(MigrationId, PartitionId, bool)>,
    /// Room reserved for VMs migrating to this host (§9.4).
    pub(crate) incoming: Incoming,
    /// The last summary published, and when.
    published: Option<(LoadSummary, Time)>,
    /// The event this host initiated, until it ends.
    pub(crate) own_event: Option<OwnEvent>,
}

/// How many migration outcomes a source remembers for re-sent requests.
const REPORTED_KEPT: usize = 16;

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

/// A migration this host runs as source, on behalf of a leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Running {
    /// The leader to report to.
    pub(crate) leader: NodeId,
    /// The command.
    pub(crate) cmd: MigrationCmd,
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
            next_local: 0,
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

    /// A fresh id for a solve, query or migration, unique across hosts.
    pub(crate) fn fresh_id(&mut self) -> u64 {
        self.next_local += 1;
        (self.id.0 << 24) ^ self.next_local
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
        self.incoming.prune(now);
        self.maybe_start_event(now);
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
            Msg::Renew { partition, version } => self.on_renew(now, from, partition, version),
            Msg::Dissolve { partition, reason } => self.on_dissolve(now, from, partition, reason),
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
                migration,
                vm,
                to,
                mem_mib,
            } => {
                let cmd = MigrationCmd {
                    id: migration,
                    partition,
                    vm,
                    to,
                    mem_mib,
                };
                self.on_migrate_request(now, from, cmd);
            }
            Msg::MigrateDone {
                partition,
                migration,
                ok,
            } => {
                self.leader_on_migrate_done(now, from, partition, migration, ok);
            }
            Msg::Leave { partition } => self.leader_on_member_lost(now, from, Some(partition)),
            Msg::StateRequest { partition, version } => {
                self.on_state_request(now, from, partition, version);
            }
            Msg::State {
                partition,
                version,
                host,
            } => self.leader_on_state(now, from, partition, version, host),
            Msg::Incoming { vm, demand } => {
                let deadline = now + self.cfg.migrate_timeout;
                self.incoming.announce(vm, demand, deadline);
            }
            Msg::IncomingCancelled { vm } => self.incoming.clear(vm),
            Msg::Handoff { vm, moves } => {
                self.incoming.clear(vm);
                let max = self.cfg.cooldown_max;
                self.cooldowns.record_arrival(vm, moves, now, max);
            }
        }
    }

    fn on_unreachable(&mut self, now: Time, peer: NodeId) {
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

    /// A migration this host ran finished: report to its leader, hand the history over.
    fn on_migration(&mut self, now: Time, id: MigrationId, outcome: MigrationOutcome) {
        let Some(run) = self.running.remove(&id) else {
            return self.ignore("unknown migration");
        };
        let ok = matches!(outcome, MigrationOutcome::Done);
        let cmd = run.cmd;
        if ok {
            self.stats.migrations_ok += 1;
            info!(node = %self.id, vm = %cmd.vm, to = %cmd.to, partition = %cmd.partition, "migration finished");
            let moves = self
                .cooldowns
                .moves(cmd.vm, now, self.cfg.cooldown_max)
                .saturating_add(1);
            self.cooldowns.forget(cmd.vm);
            self.send(cmd.to, Msg::Handoff { vm: cmd.vm, moves });
        } else {
            self.stats.migrations_failed += 1;
            self.send(cmd.to, Msg::IncomingCancelled { vm: cmd.vm });
            if let MigrationOutcome::Failed { reason } = &outcome {
                tracing::warn!(node = %self.id, vm = %cmd.vm, to = %cmd.to, error = %reason, "migration failed, vm stays");
            }
        }
        self.emit(Event::MigrationFinished {
            migration: id,
            vm: cmd.vm,
            to: cmd.to,
            ok,
        });
        self.cooldowns.prune(now, self.cfg.cooldown_max);
        if run.leader == self.id {
            self.leader_on_migrate_done(now, self.id, cmd.partition, id, ok);
        } else {
            if self.reported.len() >= REPORTED_KEPT {
                self.reported.pop_front();
            }
            self.reported.push_back((id, cmd.partition, ok));
            self.send(
                run.leader,
                Msg::MigrateDone {
                    partition: cmd.partition,
                    migration: id,
                    ok,
                },
            );
        }
    }

    /// A leader asks this host to migrate one of its VMs (`docs/protocol.md` §9).
    pub(crate) fn on_migrate_request(&mut self, now: Time, from: NodeId, cmd: MigrationCmd) {
        // The leader re-sends unreported migrations (§9.2): one under way will report by
        // itself, one already finished reports its outcome again.
        let same = |id: MigrationId, p: PartitionId| id == cmd.id && p == cmd.partition;
        if self
            .running
            .values()
            .any(|r| same(r.cmd.id, r.cmd.partition))
        {
            return self.ignore("duplicate migration request");
        }
        if let Some(&(_, _, ok)) = self.reported.iter().find(|r| same(r.0, r.1)) {
            let done = Msg::MigrateDone {
                partition: cmd.partition,
                migration: cmd.id,
                ok,
            };
            return self.send(from, done);
        }
        let member_of = self
            .partition()
            .is_some_and(|v| v.id == cmd.partition && v.leader == from);
        let local = self
            .sample
            .as_ref()
            .is_some_and(|s| s.vms.iter().any(|v| v.id == cmd.vm));
        let busy_vm = self.running.values().any(|r| r.cmd.vm == cmd.vm);
        let target_member = self.partition().is_some_and(|v| v.contains(cmd.to));
        if !(member_of && local && !busy_vm && target_member) {
            self.ignore("migration request refused");
            let done = Msg::MigrateDone {
                partition: cmd.partition,
                migration: cmd.id,
                ok: false,
            };
            if from == self.id {
                return self.leader_on_migrate_done(now, self.id, cmd.partition, cmd.id, false);
            }
            return self.send(from, done);
        }
        self.start_migration(from, cmd);
    }

    /// Runs a migration of a local VM for `leader`: announce it to the destination (§9.4), then
    /// hand it to the actuator.
    pub(crate) fn start_migration(&mut self, leader: NodeId, cmd: MigrationCmd) {
        let demand = self
            .sample
            .as_ref()
            .and_then(|s| s.vms.iter().find(|v| v.id == cmd.vm))
            .map_or(Resources::new(0, cmd.mem_mib), |v| v.demand);
        self.send(cmd.to, Msg::Incoming { vm: cmd.vm, demand });
        self.running.insert(cmd.id, Running { leader, cmd });
        info!(node = %self.id, vm = %cmd.vm, to = %cmd.to, partition = %cmd.partition, "migration started");
        self.push(Output::Migrate(cmd));
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
