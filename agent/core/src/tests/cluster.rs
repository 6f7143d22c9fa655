//! A small deterministic harness: N nodes, a message queue with fixed latency, instant gossip,
//! a greedy test solver and a fixed-duration migration model. Larger scenarios live in dvms-sim.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::model::{
    Candidate, Constraint, HostSample, LoadSummary, Migration, NodeId, Plan, Problem, QueryId,
    Resources, SolveId, Unsolvable, VmId, VmLoad,
};
use crate::msg::Msg;
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
        id: SolveId,
        result: Result<Plan, Unsolvable>,
    },
    Candidates {
        node: NodeId,
        query: QueryId,
        list: Vec<Candidate>,
    },
    MigrationDone {
        node: NodeId,
        cmd: MigrationCmd,
    },
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
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Every event with its time and node.
    pub(crate) events: Vec<(Time, NodeId, Event)>,
    /// Every message sent, for assertions.
    pub(crate) sent: Vec<(NodeId, NodeId, &'static str)>,
}

impl Cluster {
    /// `loads[i]` are the CPU demands (milli) of host i's VMs; hosts have 1,000 milli and 10 GiB.
    pub(crate) fn new(loads: &[&[u64]], cfg: Config) -> Cluster {
        let cfg = cfg.validate().expect("test config is valid");
        let mut next_vm = 0;
        let hosts: Vec<HostSample> = loads
            .iter()
            .map(|vms| HostSample {
                capacity: Resources::new(1000, 10240),
                vms: vms
                    .iter()
                    .map(|&cpu| {
                        next_vm += 1;
                        VmLoad {
                            id: VmId(next_vm),
                            demand: Resources::new(cpu, 1024),
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
            cut: BTreeSet::new(),
            events: Vec::new(),
            sent: Vec::new(),
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
                let lost = self.cut.contains(&(from, to)) || self.cut.contains(&(to, from));
                if !lost {
                    self.schedule(self.now + self.latency, Ev::Deliver { from, to, msg });
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
                        id,
                        result,
                    },
                );
            }
            Output::Migrate(cmd) => {
                self.schedule(
                    self.now + self.migration_time,
                    Ev::MigrationDone { node: from, cmd },
                );
            }
            Output::Event(ev) => self.events.push((self.now, from, ev)),
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
        let now = self.now;
        self.with_node(NodeId(host), |n| n.handle_evacuate(now, true));
    }

    /// Crashes a host: its node state is lost, messages to it vanish.
    pub(crate) fn crash(&mut self, host: u64) {
        self.nodes[host as usize] = None;
        self.armed[host as usize] = None;
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
            Ev::Plan { node, id, result } => {
                self.with_node(node, |n| n.handle_plan(now, id, result));
            }
            Ev::Candidates { node, query, list } => {
                self.with_node(node, |n| n.handle_candidates(now, query, list));
            }
            Ev::MigrationDone { node, cmd } => self.finish_migration(node, cmd),
        }
    }

    fn finish_migration(&mut self, src: NodeId, cmd: MigrationCmd) {
        let dst_up = self.nodes[cmd.to.0 as usize].is_some();
        let outcome = if dst_up && !self.fail_migrations {
            let vms = &mut self.hosts[src.0 as usize].vms;
            let k = vms
                .iter()
                .position(|v| v.id == cmd.vm)
                .expect("migrated vm is on its source");
            let vm = vms.remove(k);
            self.hosts[cmd.to.0 as usize].vms.push(vm);
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
