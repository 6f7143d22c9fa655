//! dvms-placement: the placement solver.
//!
//! A pure, deterministic function from a [`Problem`] (the hosts of a partition, their VMs,
//! placement constraints) to a [`Plan`] (ordered steps of parallel migrations) or the reason
//! there is none ([`Unsolvable`]), budgeted in work units, never wall time. No I/O, no clock:
//! the same input always gives the same output.
//!
//! # What the solver guarantees
//!
//! - **A viable final placement.** No host over its thresholds: CPU within
//!   [`HostSpec::limit`](dvms_core::model::HostSpec::limit), memory within both the threshold
//!   and the physical capacity.
//! - **Cheapest first.** Among the placements it finds, the one with the least memory moved
//!   (pivot migrations included), then the fewest migrations; VMs that need not move stay put;
//!   among equal costs, destinations with the most free room (which spreads a drained host).
//! - **Hard constraints** in BtrPlace's vocabulary (`ban`, `fence`, `spread`, `gather`,
//!   `among`, `root`) and the per-VM opt-out (`migratable == false`, which acts as `root`).
//!   A constraint the *pinned* VMs already break cannot be repaired, so it is never made worse
//!   instead: a `ban`/`fence` does not apply to a pinned VM; in a `spread`, a movable member
//!   shares its host with no other member; in a `gather` whose pinned members sit on several
//!   hosts, movable members join one of those hosts; in an `among` whose pinned members fit no
//!   single group, movable members stay within the groups' union. Every other constraint
//!   broken by the current placement is repaired. Ids in a constraint that are not in the
//!   problem are ignored (cluster-wide constraints given to a partition).
//! - **A safe plan.** At every step each destination's VMs still there (a source releases its
//!   resources only after the step) plus the VMs arriving fit its memory capacity and CPU
//!   limit; no host takes part in more than [`PlanOptions::max_per_host`] migrations of a step;
//!   dependency cycles go through a pivot host with room (an extra migration), and when there
//!   is none the solver picks another placement or reports the problem unsolvable.
//!   Constraints hold at every step: a VM only ever goes where it started or where its
//!   constraints let it end (`ban`/`fence`; the `gather`'s final host; a group of the `among`
//!   holding every member's final host), and no `spread` member arrives where another member
//!   is, even during a step. Pivot hosts are chosen under the same rules.
//!   [`validate_plan`], which shares no code with the solver, checks every returned plan; a
//!   plan that failed it would be returned as [`Unsolvable::Invalid`], never as a plan.
//!
//! # Algorithm
//!
//! Both modes first compile the problem (dense indices, per-VM domains from `ban`/`fence`,
//! group checks for `spread`/`gather`/`among`), find the violating hosts (over a threshold, or
//! holding a VM that breaks a constraint) and answer at once when there is none, when pinned
//! VMs alone overload a host, or when the demand exceeds the partition's total limits.
//!
//! [`Mode::Repair`]: only the VMs of violating hosts move. On each violating host, the subset
//! of its movable VMs that fits and keeps the most memory (then the most VMs) stays: a bounded
//! knapsack over VM *types* (equal demand), exact on VMPlaceS-like hosts. The others go, by
//! decreasing CPU, to the host with the most free room that fits them and that the constraints
//! allow, found through an ordered index of hosts by free room (worst fit, which spreads a
//! drained host's VMs); if that fails, the violating hosts' remaining room is used too.
//! `O((V + H) log H)` plus the knapsacks: for whole clusters.
//!
//! [`Mode::Full`]: the repair gives a first incumbent, and so do ejection chains
//! (`chain.rs`, issue 11: while a host is over, the move that removes most of its excess per
//! MiB, directly or after the destination sends one of its VMs to a third host; each move safe
//! when made; 40 % of the budget at most); then an Entropy-style depth-first branch
//! and bound decides each VM of the violating hosts (stay, or move to a host, most free room
//! first). Its lower bound is, per host whose VMs it decides, the least (memory, VMs) that
//! must still leave it: the exact knapsack above before the host is touched, a small exact
//! knapsack or a fractional one during the search. Identical unconstrained VMs of one host
//! are decided in a fixed order (symmetry breaking). An improving leaf gets a plan; a
//! placement that no plan can reach is skipped. Then neighbourhood searches (`lns.rs`, issue
//! 11) re-solve small subproblems exactly: without an incumbent, the violating hosts with one
//! healthy host; with one, pairs of hosts with every other VM where the incumbent puts it
//! (60 % of the budget at most; skipped when the incumbent meets the root bound over every
//! VM). When this finds nothing, a packing search
//! (all movable VMs, largest first, healthy destinations first, backjumping over leaves no
//! plan reaches) looks for any plan. Then, at any problem size, a search over **every**
//! movable VM of the partition (issue 11: the cheapest plan often moves a VM off a healthy
//! host to make room) runs by iterative deepening on the cost: each round explores every
//! placement whose cost plus lower bound is within a threshold, where the bound now also
//! counts what must leave each *receiving* host once VMs are decided onto it; the threshold
//! rises to the least cost cut (at least a quarter of the way to the incumbent). A round that
//! finds a plan finds the cheapest; reaching the incumbent's cost proves it optimal
//! ([`Outcome::optimal`]). This search gets 15 % of the budget when there is an incumbent,
//! the rest of the budget otherwise. The search over the violating hosts stops improving an
//! incumbent after 100,000 units without progress. On VMPlaceS-like partitions the incumbent
//! usually meets the bound at the root.
//!
//! Before any search, quick sound proofs answer [`Unsolvable`] at once: no movable VM has
//! room for a first migration anywhere its constraints allow (nothing can start), or a
//! `gather`/`among` that its members' domains cannot satisfy.
//!
//! The plan builder tries greedy steps, then steps in which arrivals wait for the
//! destination's own departures, then (up to 10 migrations) an exact search for a safe serial
//! order grouped into parallel steps, and only then pivots.
//!
//! # Work units
//!
//! One work unit is one elementary evaluation: a (VM, host) candidate tested for capacity,
//! domain and group constraints, a host scored when ordering candidates, a knapsack or search
//! node, a migration considered by the plan builder; compiling the problem and validating the
//! plan cost `n (1 + log2 n / 4)` units for `n` VMs, hosts, constraint ids and migrations (they
//! use ordered maps). Units track wall time within a factor of about three
//! (`docs/results.md, section 2`: 9 to 35 ns per unit on the benchmark machine, release
//! build), so drivers may model solve time from [`Outcome::work_units`].
//!
//! Full mode spends its whole budget when it finds no plan and cannot prove the problem
//! unsolvable: the budget is then the solve time. Repair mode on a whole cluster needs
//! about 10 units per VM (1.1 million for 10,000 hosts and 100,000 VMs): give it a budget to
//! match, the default suits partitions.
//!
//! # Layout
//!
//! - `lib.rs`: the public API and the mode dispatch.
//! - `model.rs`: the compiled, index-based problem and the partial-placement state.
//! - `greedy.rs`: the near-linear repair (and the full mode's first incumbent).
//! - `chain.rs`: the full mode's ejection chains (a first plan on tight partitions).
//! - `infeasible.rs`: quick proofs that no plan exists.
//! - `keep.rs`: which VMs of a host stay (a bounded knapsack over VM types).
//! - `search.rs`: the branch and bound and the iterative deepening of the full mode.
//! - `lns.rs`: the full mode's neighbourhood searches.
//! - `plan.rs`: the plan builder (steps, per-host cap, pivots).
//! - [`validate`]: the independent plan validator.
//! - [`instance`]: the JSON instance format of `dvms-sim solve` (the only reason this crate
//!   depends on `serde` and `serde_json`).

mod chain;
mod greedy;
mod ids;
mod infeasible;
pub mod instance;
mod keep;
mod lns;
mod model;
mod plan;
mod search;
pub mod validate;
mod work;

use dvms_core::model::{Plan, Problem, Unsolvable};

pub use validate::{PlanError, validate_plan};

use crate::model::Model;
use crate::work::Work;

/// How much work the solver may do, in abstract work units (never wall time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Work units allowed.
    pub work_units: u64,
}

/// Which VMs the solver may move.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// Any migratable VM (partitions of tens of hosts).
    #[default]
    Full,
    /// Only VMs on hosts that violate a threshold or constraint: near-linear on a whole cluster.
    Repair,
}

/// Solver options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Work budget.
    pub budget: Budget,
    /// Search mode.
    pub mode: Mode,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            budget: Budget {
                work_units: 1_000_000,
            },
            mode: Mode::Full,
        }
    }
}

/// A solver answer with the work it took (drivers model solve time from it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The plan, or why there is none.
    pub result: Result<Plan, Unsolvable>,
    /// Work units spent.
    pub work_units: u64,
    /// True when the plan is proved the cheapest (memory moved, then migrations) among the
    /// plans the solver builds: full mode's search over every movable VM finished within the
    /// budget. Also true for an empty plan; false in repair mode and for unsolvable answers.
    pub optimal: bool,
}

/// Wall time of one work unit measured by the benchmark on the team's 2-core VM (release build,
/// typical partitions; 9 to 35 ns across cases, see `docs/results.md, section 2`). Drivers that
/// model solve time from [`Outcome::work_units`] may use it as their factor.
pub const MEASURED_NS_PER_WORK_UNIT: u64 = 20;

/// The default cap on migrations a host takes part in (in or out) during one step.
pub const DEFAULT_MAX_PER_HOST: usize = 2;

/// How plans are shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanOptions {
    /// The most migrations (in plus out) a host takes part in during one step; at least 1.
    pub max_per_host: usize,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            max_per_host: DEFAULT_MAX_PER_HOST,
        }
    }
}

/// Solves a placement problem with the default [`PlanOptions`].
pub fn solve(problem: &Problem, opts: &Options) -> Outcome {
    solve_with(problem, opts, &PlanOptions::default())
}

/// Solves a placement problem with explicit [`PlanOptions`].
pub fn solve_with(problem: &Problem, opts: &Options, plan_opts: &PlanOptions) -> Outcome {
    let mut work = Work::new(opts.budget.work_units);
    let mut optimal = false;
    let result = solve_inner(problem, opts, plan_opts, &mut work).and_then(|(plan, proved)| {
        optimal = proved;
        if plan.is_empty() {
            return Ok(plan);
        }
        // The validator's own work, charged after the fact (it always runs).
        let moves = plan.migrations().count();
        work.tick(map_work(
            problem.vms.len() + problem.hosts.len() + 2 * moves,
        ));
        match validate_plan(problem, &plan, plan_opts.max_per_host) {
            Ok(()) => Ok(plan),
            Err(e) => Err(Unsolvable::Invalid {
                reason: format!("internal error, plan rejected: {e}"),
            }),
        }
    });
    Outcome {
        optimal: optimal && result.is_ok(),
        result,
        work_units: work.used,
    }
}

fn solve_inner(
    problem: &Problem,
    opts: &Options,
    plan_opts: &PlanOptions,
    work: &mut Work,
) -> Result<(Plan, bool), Unsolvable> {
    let members: usize = problem.constraints.iter().map(constraint_size).sum();
    work.tick(map_work(problem.vms.len() + problem.hosts.len() + members));
    let m = Model::compile(problem)?;
    let violating = m.violating_hosts();
    if violating.is_empty() {
        return Ok((Plan::default(), true));
    }
    check_capacity(&m, &violating)?;
    match opts.mode {
        Mode::Repair => {
            infeasible::check(&m, &violating, work)?;
            let movable: Vec<bool> = m.vms.iter().map(|v| !v.pinned).collect();
            greedy::repair_and_plan(&m, &movable, &violating, plan_opts.max_per_host, work)
                .map(|(_, plan)| (plan, false))
        }
        Mode::Full => match infeasible::check(&m, &violating, work)
            .and_then(|()| search::full(&m, &violating, plan_opts.max_per_host, work))
        {
            Err(
                e @ (Unsolvable::NotEnoughCapacity { .. } | Unsolvable::ConstraintBlocks { .. }),
            ) if !problem.constraints.is_empty() => {
                let host = m.hosts[violating[0]].id;
                Err(blame(problem, host, plan_opts.max_per_host, work).unwrap_or(e))
            }
            other => other,
        },
    }
}

/// Why a problem the full search proved unsolvable is so: not enough capacity when it stays
/// unsolvable without its constraints, else the constraint whose addition to those before it
/// leaves no solution (a binary search over prefixes of the constraint list). None when the
/// budget runs out first.
fn blame(
    problem: &Problem,
    host: dvms_core::model::NodeId,
    max_per_host: usize,
    work: &mut Work,
) -> Option<Unsolvable> {
    let solvable = |k: usize, work: &mut Work| -> Option<bool> {
        let mut p = problem.clone();
        p.constraints.truncate(k);
        let m = Model::compile(&p).ok()?;
        let violating = m.violating_hosts();
        if violating.is_empty() {
            return Some(true);
        }
        if check_capacity(&m, &violating).is_err()
            || infeasible::check(&m, &violating, work).is_err()
        {
            return Some(false);
        }
        match search::full(&m, &violating, max_per_host, work) {
            Ok(_) => Some(true),
            Err(Unsolvable::BudgetExhausted { .. }) => None,
            Err(_) => Some(false),
        }
    };
    if !solvable(0, work)? {
        return Some(Unsolvable::NotEnoughCapacity { host });
    }
    // Invariant: the first `lo` constraints leave a solution, the first `hi` do not.
    let (mut lo, mut hi) = (0, problem.constraints.len());
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if solvable(mid, work)? {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(Unsolvable::ConstraintBlocks {
        host,
        constraint: hi - 1,
    })
}

/// Work units for `n` operations on ordered maps of `n` entries (compiling the problem,
/// validating the plan): `n (1 + log2(n) / 4)`, so that units keep tracking wall time when
/// the maps outgrow the caches on whole clusters.
fn map_work(n: usize) -> u64 {
    let n = n as u64;
    n + n * u64::from(n.max(1).ilog2()) / 4
}

/// How many ids a constraint lists (its share of the compile work).
fn constraint_size(c: &dvms_core::model::Constraint) -> usize {
    use dvms_core::model::Constraint;
    match c {
        Constraint::Ban { vms, hosts } | Constraint::Fence { vms, hosts } => {
            vms.len() + hosts.len()
        }
        Constraint::Spread { vms } | Constraint::Gather { vms } | Constraint::Root { vms } => {
            vms.len()
        }
        Constraint::Among { vms, groups } => vms.len() + groups.iter().map(Vec::len).sum::<usize>(),
        _ => 1,
    }
}

/// Quick proofs of unsolvability: pinned VMs alone over a host's limits, or more demand than
/// the hosts' limits together.
fn check_capacity(m: &Model, violating: &[usize]) -> Result<(), Unsolvable> {
    let mut cpu = vec![0u64; m.hosts.len()];
    let mut mem = vec![0u64; m.hosts.len()];
    for v in m.vms.iter().filter(|v| v.pinned) {
        cpu[v.host] += v.cpu;
        mem[v.host] += v.mem;
    }
    for (h, host) in m.hosts.iter().enumerate() {
        if cpu[h] > host.cpu_limit || mem[h] > host.mem_limit {
            return Err(greedy::pinned_overload(m, h));
        }
    }
    let demand_cpu: u64 = m.vms.iter().map(|v| v.cpu).sum();
    let demand_mem: u64 = m.vms.iter().map(|v| v.mem).sum();
    let limit_cpu: u64 = m.hosts.iter().map(|h| h.cpu_limit).sum();
    let limit_mem: u64 = m.hosts.iter().map(|h| h.mem_limit).sum();
    if demand_cpu > limit_cpu || demand_mem > limit_mem {
        return Err(Unsolvable::NotEnoughCapacity {
            host: m.hosts[violating[0]].id,
        });
    }
    Ok(())
}
