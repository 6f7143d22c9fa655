//! A small deterministic harness: N nodes, a message queue with fixed latency, instant gossip,
//! a greedy test solver and a fixed-duration migration model. Larger scenarios live in dvms-sim.
//! Optional seeded chaos (message loss, latency jitter, unreachable reports) and crash/restart
//! support serve the stress test.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use crate::model::{
    Candidate, Constraint, HostSample, LoadSummary, Migration, MigrationId, NodeId, Plan, Problem,
    QueryId, Resources, SolveId, Unsolvable, VmId, VmLoad,
};
use crate::msg::{DissolveReason, Msg};
use crate::output::{Event, MigrationCmd, MigrationOutcome, Output};
use crate::{Config, Node, Time};

/// Something scheduled to happen to a node.
#[derive(Debug)]
enum Ev {
    Deliver {
        from: NodeId,
        to: NodeId,
        msg: Msg,
    },
    Timer {
        node: NodeId,
    },
    Plan {
        node: NodeId,
        life: u64,
        id: SolveId,
        result: Result<Plan, Unsolvable>,
    },
    Candidates {
        node: NodeId,
        life: u64,
        query: QueryId,
        list: Vec<Candidate>,
    },
    MigrationDone {
        node: NodeId,
        life: u64,
        dst_life: u64,
        cmd: MigrationCmd,
        refused: bool,
    },
    /// The actuator aborted a migration (after `Output::AbortMigration`).
    MigrationAborted {
        node: NodeId,
        life: u64,
        cmd: MigrationCmd,
    },
    Unreachable {
        node: NodeId,
        life: u64,
        peer: NodeId,
    },
}

/// Seeded network chaos.
pub(crate) struct Chaos {
    pub(crate) rng: ChaCha8Rng,
    /// Messages lost, per thousand.
    pub(crate) loss_permille: u64,
    /// Extra latency, uniform in `0..=jitter`.
    pub(crate) jitter: Duration,
    /// A message to a crashed host is reported unreachable to its sender, per thousand.
    pub(crate) unreachable_permille: u64,
    /// Messages between two hosts arrive in the order they were sent (jitter reorders only
    /// across links).
    pub(crate) fifo: bool,
    /// The latest delivery time scheduled on each link.
    last: BTreeMap<(NodeId, NodeId), Time>,
}

impl Chaos {
    pub(crate) fn new(seed: u64) -> Chaos {
        Chaos {
            rng: ChaCha8Rng::seed_from_u64(seed),
            loss_permille: 0,
            jitter: Duration::ZERO,
            unreachable_permille: 0,
            fifo: false,
            last: BTreeMap::new(),
        }
    }

    fn chance(&mut self, permille: u64) -> bool {
        permille > 0 && self.rng.next_u64() % 1000 < permille
    }
}

pub(crate) struct Cluster {
    pub(crate) now: Time,
    nodes: Vec<Option<Node>>,
    /// The true VMs of each host (VMs on a crashed host stay there).
    pub(crate) hosts: Vec<HostSample>,
    queue: BTreeMap<(Time, u64), Ev>,
    seq: u64,
    armed: Vec<Option<Time>>,
    gossip: Vec<Option<LoadSummary>>,
    cfg: Config,
    pub(crate) latency: Duration,
    pub(crate) migration_time: Duration,
    pub(crate) fail_migrations: bool,
    /// The next message of each of these kinds is lost (each entry once).
    pub(crate) drop_once: Vec<&'static str>,
    /// Migrations of this VM fail at once (the hypervisor refuses them).
    pub(crate) fail_vm: Option<VmId>,
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Every event with its time and node.
    pub(crate) events: Vec<(Time, NodeId, Event)>,
    /// Every message sent, for assertions.
    pub(crate) sent: Vec<(NodeId, NodeId, &'static str)>,
    /// Seeded network chaos, off unless set.
    pub(crate) chaos: Option<Chaos>,
    /// How many times each host was (re)started; outputs of an older life are dropped.
    lives: Vec<u64>,
    /// When each host last restarted.
    restarted_at: Vec<Option<Time>>,
    /// Index into `events` where each host's current life began.
    pub(crate) life_began: Vec<usize>,
    /// Migrations started by a source whose own view did not hold both itself and the
    /// destination under the command's partition id.
    pub(crate) bad_migrations: Vec<String>,
    /// Migrations started towards a destination that did not itself believe it was a member of
    /// the command's partition.
    pub(crate) foreign_destinations: Vec<String>,
    /// Events processed since the start.
    pub(crate) steps: u64,
    /// Migrations handed to the actuator and not finished.
    in_flight: BTreeMap<MigrationId, MigrationCmd>,
    /// The destination's VMs' CPU when it granted a migration's reservation: it judged its room
    /// on these loads.
    room_seen: BTreeMap<MigrationId, BTreeMap<VmId, u64>>,
    /// The CPU each VM had reserved for it by its `Incoming`.
    reserved_cpu: BTreeMap<VmId, u64>,
    /// Migrations aborted by the actuator: their completion event is void.
    aborted: BTreeSet<MigrationId>,
    /// Capacity broken by a plan: a destination over its memory, or over its CPU with the loads
    /// as it saw them when it granted the reservation (drift since then excepted).
    pub(crate) capacity_violations: Vec<String>,
    /// Output::AbortMigration seen.
    pub(crate) aborts: u64,
    /// How long the actuator takes to confirm an abort.
    pub(crate) abort_latency: Duration,
}

impl Cluster {
    /// How the events `node` started have ended so far, in order.
    pub(super) fn ended(&self, node: u64) -> Vec<DissolveReason> {
        self.events
            .iter()
            .filter(|(_, n, _)| n.0 == node)
            .filter_map(|(_, _, e)| match e {
                Event::EventEnded { reason, .. } => Some(*reason),
                _ => None,
            })
            .collect()
    }

    /// `loads[i]` are the CPU demands (milli) of host i's VMs; hosts have 1,000 milli and 10 GiB.
    pub(crate) fn new(loads: &[&[u64]], cfg: Config) -> Cluster {
        Cluster::with_memory(loads, cfg, 10240, 1024)
    }

    /// Like [`Cluster::new`] with `host_mib` of memory per host and `vm_mib` per VM.
    pub(crate) fn with_memory(
        loads: &[&[u64]],
        cfg: Config,
        host_mib: u64,
        vm_mib: u64,
    ) -> Cluster {
        let cfg = cfg.validate().expect("test config is valid");
        let mut next_vm = 0;
        let hosts: Vec<HostSample> = loads
            .iter()
            .map(|vms| HostSample {
                capacity: Resources::new(1000, host_mib),
                vms: vms
                    .iter()
                    .map(|&cpu| {
                        next_vm += 1;
                        VmLoad {
                            id: VmId(next_vm),
                            demand: Resources::new(cpu, vm_mib),
                            migratable: true,
                        }
                    })
                    .collect(),
            })
            .collect();
        let n = hosts.len();
        let mut c = Cluster {
            now: Time::ZERO,
            nodes: (0..n)
                .map(|i| Some(Node::new(NodeId(i as u64), cfg.clone(), 7, Time::ZERO)))
                .collect(),
            hosts,
            queue: BTreeMap::new(),
            seq: 0,
            armed: vec![None; n],
            gossip: vec![None; n],
            cfg,
            latency: Duration::from_millis(1),
            migration_time: Duration::from_millis(100),
            fail_migrations: false,
            fail_vm: None,
            drop_once: Vec::new(),
            cut: BTreeSet::new(),
            events: Vec::new(),
            sent: Vec::new(),
            chaos: None,
            lives: vec![0; n],
            life_began: vec![0; n],
            restarted_at: vec![None; n],
            bad_migrations: Vec::new(),
            foreign_destinations: Vec::new(),
            steps: 0,
            in_flight: BTreeMap::new(),
            room_seen: BTreeMap::new(),
            reserved_cpu: BTreeMap::new(),
            aborted: BTreeSet::new(),
            capacity_violations: Vec::new(),
            aborts: 0,
            abort_latency: Duration::from_millis(1),
        };
        for i in 0..n {
            c.resample(NodeId(i as u64));
        }
        c
    }

    fn schedule(&mut self, at: Time, ev: Ev) {
        self.seq += 1;
        self.queue.insert((at, self.seq), ev);
    }

    pub(crate) fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes[id.0 as usize].as_ref()
    }

    /// Runs `f` on a live node, then drains its outputs and re-arms its timer.
    fn with_node(&mut self, id: NodeId, f: impl FnOnce(&mut Node)) {
        let Some(node) = self.nodes[id.0 as usize].as_mut() else {
            return;
        };
        f(node);
        let mut outs = Vec::new();
        while let Some(o) = node.poll_output() {
            outs.push(o);
        }
        let deadline = node.poll_timeout();
        for o in outs {
            self.dispatch(id, o);
        }
        if let Some(t) = deadline {
            if self.armed[id.0 as usize] != Some(t) {
                self.armed[id.0 as usize] = Some(t);
                self.schedule(t.max(self.now), Ev::Timer { node: id });
            }
        }
    }

    fn dispatch(&mut self, from: NodeId, out: Output) {
        match out {
            Output::Send { to, msg } => {
                self.sent.push((from, to, msg.kind()));
                match &msg {
                    Msg::Incoming { vm, demand, .. } => {
                        self.reserved_cpu.insert(*vm, demand.cpu_milli);
                    }
                    Msg::IncomingAck {
                        migration,
                        granted: true,
                        ..
                    } => {
                        // The destination judged its room on its loads now (a re-sent ack of
                        // an earlier grant judged nothing new).
                        let seen = self.hosts[from.0 as usize]
                            .vms
                            .iter()
                            .map(|v| (v.id, v.demand.cpu_milli))
                            .collect();
                        self.room_seen.entry(*migration).or_insert(seen);
                    }
                    _ => {}
                }
                let mut lost = self.cut.contains(&(from, to)) || self.cut.contains(&(to, from));
                if let Some(k) = self.drop_once.iter().position(|&k| k == msg.kind()) {
                    self.drop_once.remove(k);
                    lost = true;
                }
                let mut at = self.now + self.latency;
                let down = self.nodes[to.0 as usize].is_none();
                let mut report = false;
                if let Some(ch) = self.chaos.as_mut() {
                    lost |= ch.chance(ch.loss_permille);
                    let j = u64::try_from(ch.jitter.as_micros()).expect("small");
                    at = at + Duration::from_micros(ch.rng.next_u64() % (j + 1));
                    if ch.fifo {
                        let last = ch.last.entry((from, to)).or_insert(at);
                        at = at.max(*last);
                        *last = at;
                    }
                    report = down && ch.chance(ch.unreachable_permille);
                }
                if report {
                    let life = self.lives[from.0 as usize];
                    let ev = Ev::Unreachable {
                        node: from,
                        life,
                        peer: to,
                    };
                    self.schedule(at + self.latency, ev);
                } else if !lost {
                    self.schedule(at, Ev::Deliver { from, to, msg });
                }
            }
            Output::Publish(s) => self.gossip[from.0 as usize] = Some(s),
            Output::FindCandidates {
                query,
                near,
                exclude,
                count,
            } => {
                let mut ids: Vec<NodeId> = (0..self.nodes.len() as u64)
                    .map(NodeId)
                    .filter(|n| !exclude.contains(n))
                    .collect();
                ids.sort_by_key(|n| (n.0.abs_diff(near.0), n.0));
                let list = ids
                    .into_iter()
                    .take(count)
                    .map(|id| Candidate {
                        id,
                        summary: self.gossip[id.0 as usize],
                    })
                    .collect();
                self.schedule(
                    self.now,
                    Ev::Candidates {
                        node: from,
                        life: self.lives[from.0 as usize],
                        query,
                        list,
                    },
                );
            }
            Output::Solve { id, problem } => {
                let result = greedy_solve(&problem);
                self.schedule(
                    self.now + Duration::from_millis(2),
                    Ev::Plan {
                        node: from,
                        life: self.lives[from.0 as usize],
                        id,
                        result,
                    },
                );
            }
            Output::AbortMigration { id, .. } => {
                self.aborts += 1;
                if let Some(cmd) = self.in_flight.remove(&id) {
                    self.aborted.insert(id);
                    let life = self.lives[from.0 as usize];
                    let ev = Ev::MigrationAborted {
                        node: from,
                        life,
                        cmd,
                    };
                    self.schedule(self.now + self.abort_latency, ev);
                }
            }
            Output::Migrate(cmd) => {
                self.check_migration_start(from, cmd);
                self.in_flight.insert(cmd.id, cmd);
                let (life, dst_life) = (self.lives[from.0 as usize], self.lives[cmd.to.0 as usize]);
                let refused = self.fail_vm == Some(cmd.vm);
                let after = if refused {
                    self.latency
                } else {
                    self.migration_time
                };
                self.schedule(
                    self.now + after,
                    Ev::MigrationDone {
                        node: from,
                        life,
                        dst_life,
                        cmd,
                        refused,
                    },
                );
            }
            Output::Event(ev) => self.events.push((self.now, from, ev)),
        }
    }

    /// Records a migration whose source or destination is not in the command's partition.
    fn check_migration_start(&mut self, src: NodeId, cmd: MigrationCmd) {
        let in_partition = |n: Option<&Node>, who: NodeId| {
            n.and_then(Node::partition)
                .is_some_and(|v| v.id == cmd.partition && v.contains(who))
        };
        let src_node = self.nodes[src.0 as usize].as_ref();
        // §7.6: a source acts only for the leadership it follows.
        let same_epoch = src_node
            .and_then(Node::partition)
            .is_some_and(|v| v.epoch == cmd.epoch);
        if !(in_partition(src_node, src) && in_partition(src_node, cmd.to) && same_epoch) {
            let view = src_node.and_then(Node::partition);
            self.bad_migrations.push(format!(
                "t={:?} {src} -> {} for {}: source view {view:?}",
                self.now, cmd.to, cmd.partition
            ));
        }
        // A destination that crashed, or restarted within a lease, cannot be known to the
        // leader yet: the migration fails, or the restarted host answers the next renewal with
        // `Leave` (§7.5); only a live destination with an older life is checked.
        // Right after a merge the destination may still hold the absorbed partition's view,
        // which already names the absorbing leader: held by the same leader, it counts.
        let leader = src_node.and_then(Node::partition).map(|v| v.leader);
        let dst_node = self.nodes[cmd.to.0 as usize].as_ref();
        let same_leader = dst_node
            .and_then(Node::partition)
            .is_some_and(|v| Some(v.leader) == leader);
        let fresh = self.restarted_recently(cmd.to.0);
        if dst_node.is_some() && !fresh && !same_leader && !in_partition(dst_node, cmd.to) {
            let view = dst_node.and_then(Node::partition);
            self.foreign_destinations.push(format!(
                "t={:?} {src} -> {} for {}: destination view {view:?}",
                self.now, cmd.to, cmd.partition
            ));
        }
    }

    fn resample(&mut self, id: NodeId) {
        let sample = self.hosts[id.0 as usize].clone();
        let now = self.now;
        self.with_node(id, |n| n.handle_sample(now, sample));
    }

    /// Sets the CPU demand of the `k`-th VM of `host`.
    pub(crate) fn set_load(&mut self, host: u64, k: usize, cpu: u64) {
        self.hosts[host as usize].vms[k].demand.cpu_milli = cpu;

        self.resample(NodeId(host));
    }

    /// Sets the CPU demand and memory of the `k`-th VM of `host` before the run starts.
    pub(crate) fn set_vm(&mut self, host: u64, k: usize, cpu: u64, mem_mib: u64) {
        self.hosts[host as usize].vms[k].demand = Resources::new(cpu, mem_mib);

        self.resample(NodeId(host));
    }

    /// Asks host `host` to drain.
    pub(crate) fn evacuate(&mut self, host: u64) {
        self.set_draining(host, true);
    }

    /// Asks host `host` to drain, or cancels the request.
    pub(crate) fn set_draining(&mut self, host: u64, drain: bool) {
        let now = self.now;
        self.with_node(NodeId(host), |n| n.handle_evacuate(now, drain));
    }

    /// Crashes a host: its node state is lost, messages to it vanish.
    pub(crate) fn crash(&mut self, host: u64) {
        self.nodes[host as usize] = None;
        self.armed[host as usize] = None;
        self.lives[host as usize] += 1;
        if std::env::var("STRESS_TRACE").is_ok() {
            eprintln!("{:?} n{host} CRASH", self.now);
        }
    }

    /// Restarts a crashed host: a fresh node (new seed) with a fresh sample.
    pub(crate) fn restart(&mut self, host: u64, seed: u64) {
        let i = host as usize;
        assert!(self.nodes[i].is_none(), "restart of a live host");
        self.lives[i] += 1;
        self.life_began[i] = self.events.len();
        self.restarted_at[i] = Some(self.now);
        if std::env::var("STRESS_TRACE").is_ok() {
            eprintln!("{:?} n{host} RESTART", self.now);
        }
        let node = Node::new(NodeId(host), self.cfg.clone(), seed, self.now);
        self.nodes[i] = Some(node);
        self.resample(NodeId(host));
    }

    /// True if `host` restarted less than a lease ago: its old leaders may still count it.
    pub(crate) fn restarted_recently(&self, host: u64) -> bool {
        self.restarted_at[host as usize].is_some_and(|t| self.now < t + self.cfg.lease)
    }

    /// All hosts, live or crashed.
    pub(crate) fn size(&self) -> usize {
        self.nodes.len()
    }

    /// Tells `to` that `peer` is unreachable (the overlay noticed).
    pub(crate) fn report_unreachable(&mut self, to: u64, peer: u64) {
        let now = self.now;
        self.with_node(NodeId(to), |n| n.handle_unreachable(now, NodeId(peer)));
    }

    /// Loses every message between `a` and `b` from now on.
    pub(crate) fn cut(&mut self, a: u64, b: u64) {
        self.cut.insert((NodeId(a), NodeId(b)));
    }

    /// Processes events until `until` (inclusive) or until nothing is left.
    pub(crate) fn run_until(&mut self, until: Time) {
        let mut steps = 0u64;
        while let Some((&(at, seq), _)) = self.queue.first_key_value() {
            steps += 1;
            assert!(
                steps < 200_000,
                "no quiescence: last events {:?}",
                &self.events[self.events.len().saturating_sub(8)..]
            );
            if at > until {
                break;
            }
            let ev = self.queue.remove(&(at, seq)).expect("key just seen");
            self.now = at;
            self.apply(ev);
        }
        self.now = until;
    }

    /// Delivers messages between `a` and `b` again.
    pub(crate) fn uncut(&mut self, a: u64, b: u64) {
        self.cut.remove(&(NodeId(a), NodeId(b)));
        self.cut.remove(&(NodeId(b), NodeId(a)));
    }

    /// Processes the next event if it is due at or before `until`; false when none is.
    pub(crate) fn step_until(&mut self, until: Time) -> bool {
        let Some((&(at, seq), _)) = self.queue.first_key_value() else {
            return false;
        };
        if at > until {
            return false;
        }
        let ev = self.queue.remove(&(at, seq)).expect("key just seen");
        self.now = at;
        self.steps += 1;
        self.apply(ev);
        true
    }

    /// Runs for `d` more.
    pub(crate) fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    fn apply(&mut self, ev: Ev) {
        let now = self.now;
        match ev {
            Ev::Deliver { from, to, msg } => {
                self.with_node(to, |n| n.handle_message(now, from, msg));
            }
            Ev::Timer { node } => {
                self.armed[node.0 as usize] = None;
                self.with_node(node, |n| n.handle_timeout(now));
            }
            Ev::Plan {
                node,
                life,
                id,
                result,
            } if self.lives[node.0 as usize] == life => {
                self.with_node(node, |n| n.handle_plan(now, id, result));
            }
            Ev::Candidates {
                node,
                life,
                query,
                list,
            } if self.lives[node.0 as usize] == life => {
                self.with_node(node, |n| n.handle_candidates(now, query, list));
            }
            Ev::Unreachable { node, life, peer } if self.lives[node.0 as usize] == life => {
                self.with_node(node, |n| n.handle_unreachable(now, peer));
            }
            Ev::MigrationDone {
                node,
                life,
                dst_life,
                cmd,
                refused,
            } if self.lives[node.0 as usize] == life && !self.aborted.remove(&cmd.id) => {
                let ok = !refused && self.lives[cmd.to.0 as usize] == dst_life;
                self.finish_migration(node, cmd, ok);
            }
            Ev::MigrationAborted { node, life, cmd } if self.lives[node.0 as usize] == life => {
                self.with_node(node, |n| {
                    n.handle_migration(now, cmd.id, MigrationOutcome::Aborted);
                });
            }
            // The host crashed since: its pending answers are lost, its migrations did not
            // happen (the VM stays on the crashed source).
            Ev::Plan { .. }
            | Ev::Candidates { .. }
            | Ev::Unreachable { .. }
            | Ev::MigrationAborted { .. }
            | Ev::MigrationDone { .. } => {}
        }
    }

    fn finish_migration(&mut self, src: NodeId, cmd: MigrationCmd, possible: bool) {
        self.in_flight.remove(&cmd.id);
        let seen = self.room_seen.remove(&cmd.id).unwrap_or_default();
        let dst_up = possible && self.nodes[cmd.to.0 as usize].is_some();
        let outcome = if dst_up && !self.fail_migrations {
            let vms = &mut self.hosts[src.0 as usize].vms;
            let k = vms
                .iter()
                .position(|v| v.id == cmd.vm)
                .expect("migrated vm is on its source");
            let vm = vms.remove(k);
            let dst = &mut self.hosts[cmd.to.0 as usize];
            dst.vms.push(vm);
            let (used, cap) = (dst.demand(), dst.capacity);
            // The CPU as the destination judged it: its VMs' loads when it granted the room,
            // the reserved loads of VMs that arrived since.
            let planned: u64 = dst
                .vms
                .iter()
                .map(|v| {
                    seen.get(&v.id)
                        .or_else(|| self.reserved_cpu.get(&v.id))
                        .copied()
                        .unwrap_or(v.demand.cpu_milli)
                })
                .sum();
            if used.mem_mib > cap.mem_mib || planned > cap.cpu_milli {
                self.capacity_violations.push(format!(
                    "t={:?} {} received {} from {src}: {used:?} on {cap:?}",
                    self.now, cmd.to, cmd.vm
                ));
            }
            self.resample(src);
            self.resample(cmd.to);
            MigrationOutcome::Done
        } else {
            MigrationOutcome::Failed {
                reason: "destination unavailable".into(),
            }
        };
        let now = self.now;
        self.with_node(src, |n| n.handle_migration(now, cmd.id, outcome));
    }

    /// Hosts currently in, or reserved for, a partition.
    pub(crate) fn busy_hosts(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .flatten()
            .filter(|n| n.is_busy())
            .map(|n| n.id().0)
            .collect()
    }

    /// Hosts whose VMs' demand exceeds their capacity.
    pub(crate) fn overloaded(&self) -> Vec<u64> {
        (0..self.hosts.len())
            .filter(|&i| self.hosts[i].demand().cpu_milli > self.hosts[i].capacity.cpu_milli)
            .map(|i| i as u64)
            .collect()
    }

    /// The host each VM is on.
    pub(crate) fn placement(&self) -> BTreeMap<VmId, u64> {
        let mut at = BTreeMap::new();
        for (i, h) in self.hosts.iter().enumerate() {
            for v in &h.vms {
                assert!(at.insert(v.id, i as u64).is_none(), "{} on two hosts", v.id);
            }
        }
        at
    }

    /// Events matching `f`.
    pub(crate) fn count(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.events.iter().filter(|(_, _, e)| f(e)).count()
    }

    /// When an overload present from the start raises its event: after the hysteresis hold.
    pub(crate) fn start(&self) -> Time {
        Time::ZERO + self.cfg.detect_hold
    }

    /// Hosts whose true memory exceeds their capacity.
    pub(crate) fn memory_overfull(&self) -> Vec<u64> {
        (0..self.hosts.len())
            .filter(|&i| self.hosts[i].demand().mem_mib > self.hosts[i].capacity.mem_mib)
            .map(|i| i as u64)
            .collect()
    }

    /// The config the nodes run with.
    pub(crate) fn cfg(&self) -> &Config {
        &self.cfg
    }
}

/// A simple correct solver for tests: moves the smallest VMs off overloaded (or banned) hosts to
/// the host with most room, in one step. Honours `Ban` and `migratable` (pinned VMs are skipped).
pub(crate) fn greedy_solve(p: &Problem) -> Result<Plan, Unsolvable> {
    let mut banned: BTreeSet<(VmId, NodeId)> = BTreeSet::new();
    for c in &p.constraints {
        if let Constraint::Ban { vms, hosts } = c {
            for v in vms {
                for h in hosts {
                    banned.insert((*v, *h));
                }
            }
        }
    }
    let mut used: BTreeMap<NodeId, Resources> =
        p.hosts.iter().map(|h| (h.id, Resources::ZERO)).collect();
    for v in &p.vms {
        *used.get_mut(&v.host).expect("vm on a known host") += v.demand;
    }
    let limit: BTreeMap<NodeId, Resources> = p.hosts.iter().map(|h| (h.id, h.limit())).collect();
    let mut moves = Vec::new();
    let mut vms: Vec<_> = p.vms.clone();
    vms.sort_by_key(|v| (v.demand.cpu_milli, v.id));
    for v in &vms {
        let must = banned.contains(&(v.id, v.host)) || !used[&v.host].fits_in(limit[&v.host]);
        if !must {
            continue;
        }
        if !v.migratable {
            continue;
        }
        let dest = p
            .hosts
            .iter()
            .filter(|h| h.id != v.host && !banned.contains(&(v.id, h.id)))
            .filter(|h| (used[&h.id] + v.demand).fits_in(limit[&h.id]))
            .max_by_key(|h| {
                (
                    limit[&h.id].cpu_milli.saturating_sub(used[&h.id].cpu_milli),
                    std::cmp::Reverse(h.id),
                )
            });
        let Some(dest) = dest else {
            return Err(Unsolvable::NotEnoughCapacity { host: v.host });
        };
        *used.get_mut(&v.host).expect("known") -= v.demand;
        *used.get_mut(&dest.id).expect("known") += v.demand;
        moves.push(Migration {
            vm: v.id,
            from: v.host,
            to: dest.id,
            mem_mib: v.demand.mem_mib,
        });
    }
    let still = p.hosts.iter().find(|h| !used[&h.id].fits_in(h.limit()));
    if let Some(h) = still {
        return Err(Unsolvable::NotEnoughCapacity { host: h.id });
    }
    Ok(Plan {
        steps: if moves.is_empty() {
            vec![]
        } else {
            vec![moves]
        },
    })
}
