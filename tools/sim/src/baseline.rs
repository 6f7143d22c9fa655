//! The baselines: `entropy` (the seed's), `centralized` (our solver, periodic), `oracle` (instant decisions
//! with perfect knowledge) and `none`.
//!
//! Events for the baselines are overload occurrences: one starts when an up host's true CPU
//! demand goes above its limit and ends when it goes back below (or the host crashes). An
//! occurrence ends *solved* if a plan moving a VM off the host was chosen during it (then
//! `time_to_decide` is onset to that plan, `time_to_solve` onset to the end), *unsolvable* if
//! the solver was asked while the host was overloaded and found no plan, *expired* otherwise (the
//! workload ended it first, or its host crashed).
//!
//! - `centralized`: every `--central-period` (30 s) it builds one problem with every up host and
//!   its VMs (true loads), solves it in `Repair` mode, charges the solve time, then applies the
//!   plan step by step with the migration model. The next round starts a period after the
//!   previous one started, or when it finished if that is later (VMPlaceS's wait reduced by the
//!   previous duration).
//! - `entropy`: the seed's baseline, as VMPlaceS ran it (`DVMS-REFERENCE.md` §2.4, §6): the
//!   same loop as `centralized`, but each computation is charged the time the original Entropy
//!   took, [`entropy_time`]: VMPlaceS charged Entropy's measured time, under a limit of
//!   `min(30 s, hosts / 8 s)` (integer division); we charge that limit whenever the cluster has
//!   an overloaded host (a non-viable configuration: Entropy's constraint solver in repair
//!   mode searched until its limit on clusters of this size). That is an upper bound of what
//!   the seed's runs were charged. A viable cluster needs no computation (Entropy's
//!   "no reconfiguration needed"). The plan is our solver's (`Repair` mode), applied as
//!   Entropy's was: step by step, each step's migrations in parallel once the previous
//!   step's ended, on the loads of the round's start.
//! - `oracle`: whenever a host is overloaded and has no migration in flight, it solves at once
//!   (zero solve time) the problem made of that host and the [`ORACLE_HELPERS`] least-loaded up
//!   hosts without migrations in flight, in `Full` mode; only migrations take time. Retried on
//!   every change of the host.

use std::collections::BTreeSet;
use std::time::Duration;

use dvms_core::Time;
use dvms_core::model::{HostSpec, Migration, NodeId, Problem, Resources, VmSpec};
use dvms_placement::Mode;

use crate::engine::{Episode, Ev, Owner, Sim};
use crate::observe::Seen;
use crate::sched::{Call, Driver, Ended, SchedEv};

/// How many least-loaded hosts the oracle offers an overloaded host.
pub const ORACLE_HELPERS: usize = 16;

/// The computation time charged to one Entropy run on `hosts` hosts (see the module doc):
/// VMPlaceS's time limit `min(30, hosts / 8)` seconds, integer division as in `Entropy2RP`.
pub fn entropy_time(hosts: usize) -> Duration {
    Duration::from_secs((hosts / 8).min(30) as u64)
}

/// A baseline's plan being applied step by step.
#[derive(Clone, Debug)]
struct PlanRun {
    steps: Vec<Vec<Migration>>,
    step: usize,
    pending: usize,
}

/// The plans a baseline is applying.
#[derive(Debug, Default)]
struct Runs {
    runs: Vec<Option<PlanRun>>,
}

impl Runs {
    fn add(&mut self, run: PlanRun) -> u32 {
        if let Some(i) = self.runs.iter().position(Option::is_none) {
            self.runs[i] = Some(run);
            i as u32
        } else {
            self.runs.push(Some(run));
            (self.runs.len() - 1) as u32
        }
    }

    fn idle(&self) -> bool {
        self.runs.iter().all(Option::is_none)
    }

    /// Starts the next step of run `run`; returns true when the run has ended.
    fn next_step(&mut self, sim: &mut Sim, run: u32) -> bool {
        let Some(r) = self.runs.get(run as usize).and_then(Option::as_ref) else {
            return false;
        };
        if r.step == 0 {
            // The plan is chosen now: that is the decision for every source's occurrence.
            let sources: Vec<usize> = r
                .steps
                .iter()
                .flatten()
                .map(|m| m.from.0 as usize)
                .collect();
            for h in sources {
                decide(sim, h);
            }
        }
        let Some(r) = self.runs.get(run as usize).and_then(Option::as_ref) else {
            return false;
        };
        let Some(step) = r.steps.get(r.step).cloned() else {
            self.runs[run as usize] = None;
            return true;
        };
        let mut started = 0;
        for m in step {
            let (v, from, to) = (m.vm.0 as usize, m.from.0 as usize, m.to.0 as usize);
            let valid = v < sim.vms.len()
                && to < sim.hosts.len()
                && sim.vms[v].host as usize == from
                && !sim.vms[v].migrating
                && sim.hosts[from].up
                && sim.hosts[to].up;
            if valid {
                sim.start_migration(v, to, Owner::Run(run));
                started += 1;
            }
        }
        if let Some(r) = self.runs[run as usize].as_mut() {
            r.step += 1;
            r.pending = started;
        }
        if started == 0 {
            sim.schedule(sim.now, Ev::Sched(SchedEv::Apply { run }));
        }
        false
    }

    /// A migration of run `run` ended: go on once the step's last one has.
    fn migration_done(&mut self, sim: &mut Sim, run: u32) {
        let Some(r) = self.runs.get_mut(run as usize).and_then(Option::as_mut) else {
            return;
        };
        r.pending = r.pending.saturating_sub(1);
        if r.pending == 0 {
            sim.schedule(sim.now, Ev::Sched(SchedEv::Apply { run }));
        }
    }
}

/// Records the decision for host `h`'s overload occurrence (once).
fn decide(sim: &mut Sim, h: usize) {
    let now = sim.now;
    if let Some(ep) = sim.hosts[h].episode.as_mut() {
        if !ep.decided {
            ep.decided = true;
            let d = now.saturating_since(ep.start).as_secs_f64();
            sim.metrics.time_to_decide.push(d);
        }
    }
}

/// Baselines count an event per overload occurrence of an up host.
fn overload_changed(sim: &mut Sim, h: usize, over: bool) {
    if over {
        sim.metrics.events_started += 1;
        sim.hosts[h].episode = Some(Episode {
            start: sim.now,
            decided: false,
            unsolvable: false,
        });
    } else if let Some(ep) = sim.hosts[h].episode.take() {
        let m = &mut sim.metrics;
        if ep.decided && sim.hosts[h].up {
            m.events_solved += 1;
            m.time_to_solve
                .push(sim.now.saturating_since(ep.start).as_secs_f64());
        } else if ep.unsolvable {
            m.events_unsolvable += 1;
        } else {
            m.events_expired += 1;
        }
    }
}

/// Overload occurrences still going on.
fn open_episodes(sim: &Sim) -> u64 {
    sim.hosts.iter().filter(|h| h.episode.is_some()).count() as u64
}

fn host_spec(sim: &Sim, h: usize) -> HostSpec {
    HostSpec {
        id: NodeId(h as u64),
        capacity: sim.hosts[h].capacity,
        thresholds: sim.cfg.protocol.thresholds,
    }
}

/// The problem made of `hosts` and their VMs, true loads.
fn problem_of(sim: &Sim, hosts: &[usize]) -> Problem {
    let mut p = Problem::default();
    for &h in hosts {
        p.hosts.push(host_spec(sim, h));
        for &v in &sim.hosts[h].vms {
            let vm = &sim.vms[v as usize];
            p.vms.push(VmSpec {
                id: Sim::vm_id(v as usize),
                host: NodeId(h as u64),
                demand: Resources::new(vm.cpu, vm.mem),
                migratable: !vm.migrating,
            });
        }
    }
    p
}

/// Marks every overloaded host of `problem` as having met an unsolvable computation.
fn mark_unsolvable(sim: &mut Sim, problem: &Problem) {
    for h in &problem.hosts {
        if let Some(ep) = sim.hosts[h.id.0 as usize].episode.as_mut() {
            ep.unsolvable = true;
        }
    }
}

/// `entropy` and `centralized`: the whole cluster, every period.
#[derive(Debug)]
pub(crate) struct Central {
    /// Charge Entropy's time rather than our solver's.
    entropy: bool,
    runs: Runs,
    /// When the current round started.
    started: Time,
}

impl Central {
    pub(crate) fn new(entropy: bool) -> Central {
        Central {
            entropy,
            runs: Runs::default(),
            started: Time::ZERO,
        }
    }

    fn round(&mut self, sim: &mut Sim) {
        self.started = sim.now;
        if self.entropy && sim.n_overloaded == 0 {
            // A viable configuration: Entropy reports that no reconfiguration is needed.
            self.done(sim);
            return;
        }
        let up: Vec<usize> = (0..sim.hosts.len()).filter(|&h| sim.hosts[h].up).collect();
        let problem = problem_of(sim, &up);
        let (result, mut charged) = sim.solve(&problem, Mode::Repair);
        if self.entropy {
            // Entropy's time replaces our solver's in the accounts.
            let entropy = entropy_time(problem.hosts.len());
            let m = &mut sim.metrics;
            m.solver_charged_s += entropy.as_secs_f64() - charged.as_secs_f64();
            if let Some(last) = m.computation.last_mut() {
                *last = entropy.as_secs_f64();
            }
            charged = entropy;
        }
        let steps = match result {
            Ok(plan) => {
                sim.observe(Seen::Plan {
                    problem: &problem,
                    plan: &plan,
                });
                plan.steps.into_iter().filter(|s| !s.is_empty()).collect()
            }
            Err(_) => {
                mark_unsolvable(sim, &problem);
                Vec::new()
            }
        };
        let run = self.runs.add(PlanRun {
            steps,
            step: 0,
            pending: 0,
        });
        // The plan is applied once the computation's time has passed.
        sim.schedule(sim.now + charged, Ev::Sched(SchedEv::Apply { run }));
    }

    /// The next round starts a period after this one started, or now if that has passed.
    fn done(&mut self, sim: &mut Sim) {
        let next = (self.started + sim.cfg.central_period).max(sim.now);
        sim.schedule(next, Ev::Sched(SchedEv::Round));
    }
}

impl Driver for Central {
    fn call(&mut self, sim: &mut Sim, call: Call) {
        match call {
            Call::Start => {
                let first = Time::ZERO + sim.cfg.central_period;
                sim.schedule(first, Ev::Sched(SchedEv::Round));
            }
            Call::Event(SchedEv::Round) => self.round(sim),
            Call::Event(SchedEv::Apply { run }) if self.runs.next_step(sim, run) => self.done(sim),
            Call::Overload(h, over) => overload_changed(sim, h, over),
            Call::MigrationEnded(Ended {
                owner: Owner::Run(run),
                ..
            }) => self.runs.migration_done(sim, run),
            _ => {}
        }
    }

    fn open_events(&self, sim: &Sim) -> u64 {
        open_episodes(sim)
    }

    fn idle(&self) -> bool {
        self.runs.idle()
    }
}

/// `oracle`: every overload solved at once with the least-loaded hosts.
#[derive(Debug, Default)]
pub(crate) struct Oracle {
    runs: Runs,
    /// Up hosts by CPU demand, and the demand each is filed under.
    by_load: BTreeSet<(u64, u32)>,
    filed: Vec<Option<u64>>,
}

impl Oracle {
    /// Files host `h` under its current load (or removes it when down).
    fn refile(&mut self, sim: &Sim, h: usize) {
        if self.filed.len() < sim.hosts.len() {
            self.filed.resize(sim.hosts.len(), None);
        }
        if let Some(old) = self.filed[h].take() {
            self.by_load.remove(&(old, h as u32));
        }
        if sim.hosts[h].up {
            let cpu = sim.hosts[h].cpu;
            self.by_load.insert((cpu, h as u32));
            self.filed[h] = Some(cpu);
        }
    }

    /// Solves host `h`'s overload at once if it has one and nothing is moving for it.
    fn trigger(&mut self, sim: &mut Sim, h: usize) {
        let host = &sim.hosts[h];
        if !host.up || !host.overloaded || host.outgoing > 0 || host.incoming > 0 {
            return;
        }
        let mut hosts = vec![h];
        for &(_, c) in &self.by_load {
            if hosts.len() > ORACLE_HELPERS {
                break;
            }
            let c = c as usize;
            let ch = &sim.hosts[c];
            if c != h && ch.up && ch.outgoing == 0 && ch.incoming == 0 && !ch.overloaded {
                hosts.push(c);
            }
        }
        let problem = problem_of(sim, &hosts);
        let (result, _) = sim.solve(&problem, Mode::Full);
        let Ok(plan) = result else {
            mark_unsolvable(sim, &problem);
            return;
        };
        sim.observe(Seen::Plan {
            problem: &problem,
            plan: &plan,
        });
        let steps: Vec<Vec<Migration>> = plan.steps.into_iter().filter(|s| !s.is_empty()).collect();
        if steps.is_empty() {
            return;
        }
        let run = self.runs.add(PlanRun {
            steps,
            step: 0,
            pending: 0,
        });
        // The oracle acts at once, so the next decision sees these migrations in flight.
        self.runs.next_step(sim, run);
    }
}

impl Driver for Oracle {
    fn call(&mut self, sim: &mut Sim, call: Call) {
        match call {
            Call::Start => {
                for h in 0..sim.hosts.len() {
                    self.refile(sim, h);
                }
                for h in 0..sim.hosts.len() {
                    self.trigger(sim, h);
                }
            }
            Call::Event(SchedEv::Apply { run }) => {
                self.runs.next_step(sim, run);
            }
            Call::Event(_) => {}
            Call::HostChanged(h) | Call::Restarted(h) => {
                self.refile(sim, h);
                self.trigger(sim, h);
            }
            Call::Crashed(h) => self.refile(sim, h),
            Call::Overload(h, over) => overload_changed(sim, h, over),
            Call::MigrationEnded(e) => {
                if let Owner::Run(run) = e.owner {
                    self.runs.migration_done(sim, run);
                }
                self.trigger(sim, e.from);
            }
        }
    }

    fn open_events(&self, sim: &Sim) -> u64 {
        open_episodes(sim)
    }

    fn idle(&self) -> bool {
        self.runs.idle()
    }
}

/// `none`: the floor.
#[derive(Debug)]
pub(crate) struct Idle;

impl Driver for Idle {
    fn call(&mut self, sim: &mut Sim, call: Call) {
        if let Call::Overload(h, over) = call {
            overload_changed(sim, h, over);
        }
    }

    fn open_events(&self, sim: &Sim) -> u64 {
        open_episodes(sim)
    }

    fn idle(&self) -> bool {
        true
    }
}
