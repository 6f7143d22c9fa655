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

use dvms_core::model::{HostSpec, Migration, NodeId, Problem, Resources, VmSpec};
use dvms_placement::Mode;

use crate::config::Scheduler;
use crate::engine::{Ev, Owner, Sim};

/// How many least-loaded hosts the oracle offers an overloaded host.
pub const ORACLE_HELPERS: usize = 16;

/// The computation time charged to one Entropy run on `hosts` hosts (see the module doc):
/// VMPlaceS's time limit `min(30, hosts / 8)` seconds, integer division as in `Entropy2RP`.
pub fn entropy_time(hosts: usize) -> std::time::Duration {
    std::time::Duration::from_secs((hosts / 8).min(30) as u64)
}

/// A baseline's plan being applied step by step.
#[derive(Clone, Debug)]
pub(crate) struct PlanRun {
    steps: Vec<Vec<Migration>>,
    step: usize,
    pending: usize,
    central: bool,
}

impl Sim {
    fn host_spec(&self, h: usize) -> HostSpec {
        HostSpec {
            id: NodeId(h as u64),
            capacity: self.hosts[h].capacity,
            thresholds: self.cfg.protocol.thresholds,
        }
    }

    fn problem_of(&self, hosts: &[usize]) -> Problem {
        let mut p = Problem::default();
        for &h in hosts {
            p.hosts.push(self.host_spec(h));
            for &v in &self.hosts[h].vms {
                let vm = &self.vms[v as usize];
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

    fn add_run(&mut self, run: PlanRun) -> u32 {
        if let Some(i) = self.runs.iter().position(Option::is_none) {
            self.runs[i] = Some(run);
            i as u32
        } else {
            self.runs.push(Some(run));
            (self.runs.len() - 1) as u32
        }
    }

    /// Solves `problem` for a baseline, records decisions, and applies the plan after `delay`
    /// (or at once). Returns false when the solver found no plan.
    fn baseline_solve(&mut self, problem: &Problem, mode: Mode, central: bool) -> bool {
        let (result, mut charged) = self.solve(problem, mode);
        if self.cfg.scheduler == Scheduler::Entropy {
            // Entropy's time replaces our solver's in the accounts.
            let entropy = entropy_time(problem.hosts.len());
            let m = &mut self.metrics;
            m.solver_charged_s += entropy.as_secs_f64() - charged.as_secs_f64();
            if let Some(last) = m.computation.last_mut() {
                *last = entropy.as_secs_f64();
            }
            charged = entropy;
        }
        let delay = if central {
            charged
        } else {
            std::time::Duration::ZERO
        };
        let Ok(plan) = result else {
            for h in &problem.hosts {
                let h = h.id.0 as usize;
                if let Some(ep) = self.hosts[h].episode.as_mut() {
                    ep.unsolvable = true;
                }
            }
            if central {
                let run = self.add_run(PlanRun {
                    steps: Vec::new(),
                    step: 0,
                    pending: 0,
                    central,
                });
                self.schedule(self.now + delay, Ev::ApplyPlan { run });
            }
            return false;
        };
        crate::invariants::check_plan(self, problem, &plan);
        let steps: Vec<Vec<Migration>> = plan.steps.into_iter().filter(|s| !s.is_empty()).collect();
        if steps.is_empty() && !central {
            return true;
        }
        let run = self.add_run(PlanRun {
            steps,
            step: 0,
            pending: 0,
            central,
        });
        if central {
            self.schedule(self.now + delay, Ev::ApplyPlan { run });
        } else {
            // The oracle acts at once, so the next decision sees these migrations in flight.
            self.run_next_step(run);
        }
        true
    }

    /// Starts the next step of run `run`, or ends it.
    pub(crate) fn run_next_step(&mut self, run: u32) {
        let Some(r) = self.runs.get(run as usize).and_then(Option::as_ref) else {
            return;
        };
        let now = self.now;
        if r.step == 0 {
            // The plan is chosen now: that is the decision for every source's occurrence.
            let sources: Vec<usize> = r
                .steps
                .iter()
                .flatten()
                .map(|m| m.from.0 as usize)
                .collect();
            for h in sources {
                if let Some(ep) = self.hosts[h].episode.as_mut() {
                    if !ep.decided {
                        ep.decided = true;
                        let d = now.saturating_since(ep.start).as_secs_f64();
                        self.metrics.time_to_decide.push(d);
                    }
                }
            }
        }
        let Some(r) = self.runs.get(run as usize).and_then(Option::as_ref) else {
            return;
        };
        let Some(step) = r.steps.get(r.step).cloned() else {
            let central = r.central;
            self.runs[run as usize] = None;
            if central {
                self.central_done();
            }
            return;
        };
        let mut started = 0;
        for m in step {
            let (v, from, to) = (m.vm.0 as usize, m.from.0 as usize, m.to.0 as usize);
            let valid = v < self.vms.len()
                && to < self.hosts.len()
                && self.vms[v].host as usize == from
                && !self.vms[v].migrating
                && self.hosts[from].up
                && self.hosts[to].up;
            if valid {
                self.start_migration(v, to, Owner::Run(run));
                started += 1;
            }
        }
        if let Some(r) = self.runs[run as usize].as_mut() {
            r.step += 1;
            r.pending = started;
        }
        if started == 0 {
            self.schedule(self.now, Ev::ApplyPlan { run });
        }
    }

    pub(crate) fn run_migration_done(&mut self, run: u32, from: usize, ok: bool) {
        let _ = ok;
        let Some(r) = self.runs.get_mut(run as usize).and_then(Option::as_mut) else {
            return;
        };
        r.pending = r.pending.saturating_sub(1);
        if r.pending == 0 {
            self.schedule(self.now, Ev::ApplyPlan { run });
        }
        if self.cfg.scheduler == Scheduler::Oracle {
            self.oracle_trigger(from);
        }
    }

    // === centralized ===

    pub(crate) fn central_round(&mut self) {
        self.central_started = self.now;
        if self.cfg.scheduler == Scheduler::Entropy && self.n_overloaded == 0 {
            // A viable configuration: Entropy reports that no reconfiguration is needed.
            self.central_done();
            return;
        }
        let up: Vec<usize> = (0..self.hosts.len())
            .filter(|&h| self.hosts[h].up)
            .collect();
        let problem = self.problem_of(&up);
        self.baseline_solve(&problem, Mode::Repair, true);
    }

    fn central_done(&mut self) {
        let next = (self.central_started + self.cfg.central_period).max(self.now);
        self.schedule(next, Ev::CentralRound);
    }

    // === oracle ===

    /// Solves host `h`'s overload at once if it has one and nothing is moving for it.
    pub(crate) fn oracle_trigger(&mut self, h: usize) {
        if self.cfg.scheduler != Scheduler::Oracle {
            return;
        }
        let host = &self.hosts[h];
        if !host.up || !host.overloaded || host.outgoing > 0 || host.incoming > 0 {
            return;
        }
        let mut hosts = vec![h];
        for &(_, c) in &self.by_load {
            if hosts.len() > ORACLE_HELPERS {
                break;
            }
            let c = c as usize;
            let ch = &self.hosts[c];
            if c != h && ch.up && ch.outgoing == 0 && ch.incoming == 0 && !ch.overloaded {
                hosts.push(c);
            }
        }
        let problem = self.problem_of(&hosts);
        self.baseline_solve(&problem, Mode::Full, false);
    }
}
