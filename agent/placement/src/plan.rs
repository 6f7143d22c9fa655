//! The plan builder: orders the migrations from the current to a target placement in steps.
//!
//! Every step is a set of migrations that may run in parallel: at each destination the VMs
//! still there plus the VMs arriving in the step fit (memory against the physical capacity, CPU
//! against the threshold limit), a source's resources are released only after the step, and
//! no host takes part in more than `max_per_host` migrations of a step.
//!
//! The order matters: an early arrival can take the room that a later one needs to break a
//! chain of departures. So the builder tries, in turn, cheapest first:
//! 1. greedy steps (every pending migration that fits, in VM order);
//! 2. greedy steps where arrivals wait for the destination's own departures when they can;
//! 3. for at most [`EXACT_ORDER_MAX`] migrations, an exact search for a safe serial order (over
//!    the subsets of migrations done), grouped into parallel steps afterwards;
//! 4. greedy steps that, when nothing can run (every pending destination waits for a departure
//!    that itself waits), send one VM through a pivot host with room: an extra migration.

use dvms_core::model::{Migration, Plan};

use crate::model::{Group, Model};
use crate::work::Work;

/// Plans with at most this many migrations get the exact serial-order search.
pub(crate) const EXACT_ORDER_MAX: usize = 10;

/// Why no plan was built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PlanFail {
    /// A dependency cycle with no pivot host.
    NoPivot,
    /// The work budget ran out.
    Budget,
}

/// The placement while a plan runs: where each VM is and each host's usage.
#[derive(Clone, Debug)]
struct Sim {
    at: Vec<usize>,
    cpu: Vec<u64>,
    mem: Vec<u64>,
}

impl Sim {
    fn new(m: &Model) -> Sim {
        let mut cpu = vec![0u64; m.hosts.len()];
        let mut mem = vec![0u64; m.hosts.len()];
        for v in &m.vms {
            cpu[v.host] += v.cpu;
            mem[v.host] += v.mem;
        }
        Sim {
            at: m.vms.iter().map(|v| v.host).collect(),
            cpu,
            mem,
        }
    }

    /// Moves `v` to `to` and records the migration.
    fn apply(&mut self, m: &Model, v: usize, to: usize, out: &mut Vec<Migration>) {
        let (from, vm) = (self.at[v], &m.vms[v]);
        self.cpu[from] -= vm.cpu;
        self.mem[from] -= vm.mem;
        self.cpu[to] += vm.cpu;
        self.mem[to] += vm.mem;
        self.at[v] = to;
        out.push(Migration {
            vm: vm.id,
            from: m.hosts[from].id,
            to: m.hosts[to].id,
            mem_mib: vm.mem,
        });
    }

    /// True when `extra_cpu`, `extra_mem` more fit on `h` during the plan.
    fn room(&self, m: &Model, h: usize, extra_cpu: u64, extra_mem: u64) -> bool {
        self.cpu[h] + extra_cpu <= m.hosts[h].cpu_limit
            && self.mem[h] + extra_mem <= m.hosts[h].mem_cap
    }
}

/// Builds a plan from the model's current placement to `target` (a host index per VM).
pub(crate) fn build(
    m: &Model,
    target: &[usize],
    max_per_host: usize,
    work: &mut Work,
) -> Result<Plan, PlanFail> {
    let cap = max_per_host.max(1);
    let pending: Vec<usize> = (0..m.vms.len())
        .filter(|&v| target[v] != m.vms[v].host)
        .collect();
    for strategy in [Strategy::Greedy, Strategy::DeparturesFirst] {
        match greedy(m, target, cap, &pending, strategy, work, None) {
            Err(PlanFail::NoPivot) => {}
            other => return other,
        }
    }
    if pending.len() <= EXACT_ORDER_MAX {
        match serial_order(m, target, &pending, work) {
            Ok(order) => return Ok(group(m, target, cap, &order)),
            Err(PlanFail::Budget) => return Err(PlanFail::Budget),
            Err(PlanFail::NoPivot) => {}
        }
    }
    greedy(m, target, cap, &pending, Strategy::Pivots, work, None)
}

/// The migrations still pending when greedy steps (without pivots) deadlock on the way to
/// `target`: the VMs of the blocking cycle and those waiting on it. Empty if none deadlock.
pub(crate) fn stuck(
    m: &Model,
    target: &[usize],
    max_per_host: usize,
    work: &mut Work,
) -> Vec<usize> {
    let pending: Vec<usize> = (0..m.vms.len())
        .filter(|&v| target[v] != m.vms[v].host)
        .collect();
    let mut out = Vec::new();
    // Only the deadlock matters here, not the plan.
    let _ = greedy(
        m,
        target,
        max_per_host.max(1),
        &pending,
        Strategy::Greedy,
        work,
        Some(&mut out),
    );
    out
}

/// How [`greedy`] picks a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Strategy {
    /// Everything that fits.
    Greedy,
    /// Arrivals at hosts with pending departures only when nothing else can run.
    DeparturesFirst,
    /// Everything that fits; pivots when nothing does.
    Pivots,
}

fn greedy(
    m: &Model,
    target: &[usize],
    cap: usize,
    pending: &[usize],
    strategy: Strategy,
    work: &mut Work,
    mut stuck: Option<&mut Vec<usize>>,
) -> Result<Plan, PlanFail> {
    let mut sim = Sim::new(m);
    let mut pending = pending.to_vec();
    let mut pivoted = vec![false; m.vms.len()];
    let mut touches = vec![0usize; m.hosts.len()];
    let mut in_cpu = vec![0u64; m.hosts.len()];
    let mut in_mem = vec![0u64; m.hosts.len()];
    let mut departing = vec![0usize; m.hosts.len()];
    let mut plan = Plan::default();
    while !pending.is_empty() {
        departing.iter_mut().for_each(|d| *d = 0);
        for &v in &pending {
            departing[sim.at[v]] += 1;
        }
        let mut step: Vec<usize> = Vec::new();
        let passes: &[bool] = if strategy == Strategy::DeparturesFirst {
            &[true, false]
        } else {
            &[false]
        };
        for &patient in passes {
            for &v in &pending {
                if !work.tick(1) {
                    return Err(PlanFail::Budget);
                }
                let (a, b, vm) = (sim.at[v], target[v], &m.vms[v]);
                if patient && departing[b] > 0 {
                    continue;
                }
                if touches[a] < cap
                    && touches[b] < cap
                    && !step.contains(&v)
                    && sim.room(m, b, in_cpu[b] + vm.cpu, in_mem[b] + vm.mem)
                    && spread_clear(m, v, b, |u| sim.at[u], &step, target)
                {
                    touches[a] += 1;
                    touches[b] += 1;
                    in_cpu[b] += vm.cpu;
                    in_mem[b] += vm.mem;
                    step.push(v);
                }
            }
            if !step.is_empty() {
                break;
            }
        }
        let moves: Vec<(usize, usize)> = if step.is_empty() {
            if strategy != Strategy::Pivots {
                if let Some(out) = stuck.as_deref_mut() {
                    out.clone_from(&pending);
                }
                return Err(PlanFail::NoPivot);
            }
            let Some((v, p)) = find_pivot(m, &pending, &pivoted, &sim, target, work) else {
                return Err(if work.exhausted() {
                    PlanFail::Budget
                } else {
                    PlanFail::NoPivot
                });
            };
            pivoted[v] = true;
            vec![(v, p)]
        } else {
            step.iter().map(|&v| (v, target[v])).collect()
        };
        let mut migrations = Vec::with_capacity(moves.len());
        for &(v, to) in &moves {
            let from = sim.at[v];
            touches[from] = 0;
            touches[to] = 0;
            in_cpu[to] = 0;
            in_mem[to] = 0;
            sim.apply(m, v, to, &mut migrations);
        }
        plan.steps.push(migrations);
        pending.retain(|&v| sim.at[v] != target[v]);
    }
    Ok(plan)
}

/// A safe serial order of `pending` (each migration alone fits its destination), by a
/// depth-first search over the subsets of migrations done.
fn serial_order(
    m: &Model,
    target: &[usize],
    pending: &[usize],
    work: &mut Work,
) -> Result<Vec<usize>, PlanFail> {
    let k = pending.len();
    let full = (1usize << k) - 1;
    let mut seen = vec![false; full + 1];
    // Per subset reached, the migration that reached it (to rebuild the order).
    let mut via = vec![usize::MAX; full + 1];
    let mut stack = vec![0usize];
    seen[0] = true;
    let base = Sim::new(m);
    let mut index = vec![usize::MAX; m.vms.len()];
    for (i, &v) in pending.iter().enumerate() {
        index[v] = i;
    }
    while let Some(done) = stack.pop() {
        if done == full {
            let mut order = Vec::with_capacity(k);
            let mut s = full;
            while s != 0 {
                let i = via[s];
                order.push(pending[i]);
                s &= !(1 << i);
            }
            order.reverse();
            return Ok(order);
        }
        let mut sim = base.clone();
        for (i, &v) in pending.iter().enumerate() {
            if done & (1 << i) != 0 {
                let (from, to, vm) = (m.vms[v].host, target[v], &m.vms[v]);
                sim.cpu[from] -= vm.cpu;
                sim.mem[from] -= vm.mem;
                sim.cpu[to] += vm.cpu;
                sim.mem[to] += vm.mem;
            }
        }
        for (i, &v) in pending.iter().enumerate() {
            if !work.tick(1) {
                return Err(PlanFail::Budget);
            }
            let next = done | (1 << i);
            let at = |u: usize| {
                if index[u] != usize::MAX && done & (1 << index[u]) != 0 {
                    target[u]
                } else {
                    m.vms[u].host
                }
            };
            if next != done
                && !seen[next]
                && sim.room(m, target[v], m.vms[v].cpu, m.vms[v].mem)
                && spread_clear(m, v, target[v], at, &[], target)
            {
                seen[next] = true;
                via[next] = i;
                stack.push(next);
            }
        }
    }
    Err(PlanFail::NoPivot)
}

/// Groups a safe serial order into parallel steps: a migration joins the current step while
/// the step stays safe and within the cap, else starts the next one.
/// Groups a safe serial `order` of the migrations to `target` (each VM once) into parallel
/// steps: a migration joins the current step while it fits there.
pub(crate) fn group(m: &Model, target: &[usize], cap: usize, order: &[usize]) -> Plan {
    let mut sim = Sim::new(m);
    let mut plan = Plan::default();
    let mut step: Vec<usize> = Vec::new();
    let fits = |sim: &Sim, step: &[usize], v: usize| -> bool {
        let (a, b) = (sim.at[v], target[v]);
        let touching = |h: usize| {
            step.iter()
                .filter(|&&u| sim.at[u] == h || target[u] == h)
                .count()
        };
        let (in_cpu, in_mem) = step
            .iter()
            .filter(|&&u| target[u] == b)
            .fold((0, 0), |(c, mm), &u| (c + m.vms[u].cpu, mm + m.vms[u].mem));
        touching(a) < cap
            && touching(b) < cap
            && sim.room(m, b, in_cpu + m.vms[v].cpu, in_mem + m.vms[v].mem)
            && spread_clear(m, v, b, |u| sim.at[u], step, target)
    };
    for &v in order {
        if !step.is_empty() && !fits(&sim, &step, v) {
            let mut migrations = Vec::with_capacity(step.len());
            for &u in &step {
                sim.apply(m, u, target[u], &mut migrations);
            }
            plan.steps.push(migrations);
            step.clear();
        }
        step.push(v);
    }
    if !step.is_empty() {
        let mut migrations = Vec::with_capacity(step.len());
        for &u in &step {
            sim.apply(m, u, target[u], &mut migrations);
        }
        plan.steps.push(migrations);
    }
    plan
}

/// True when `v` may arrive at `b` as far as its `spread`s say: no other member is on `b`
/// (`at`, which counts a member leaving `b` in the same step) or arriving there with `step`.
fn spread_clear(
    m: &Model,
    v: usize,
    b: usize,
    at: impl Fn(usize) -> usize,
    step: &[usize],
    target: &[usize],
) -> bool {
    m.vm_groups[v].iter().all(|&gi| match &m.groups[gi].1 {
        Group::Spread { members } => members
            .iter()
            .all(|&u| u == v || (at(u) != b && !(target[u] == b && step.contains(&u)))),
        _ => true,
    })
}

/// True when `v` may wait on pivot host `p` as far as its `gather`s and `among`s say: never
/// for a gather (its members only go where they end), only inside a group that holds every
/// member's target for an among (the validator's rules; domains are checked apart).
fn pivot_allowed(m: &Model, v: usize, p: usize, target: &[usize]) -> bool {
    m.vm_groups[v].iter().all(|&gi| match &m.groups[gi].1 {
        Group::Spread { .. } => true,
        Group::Gather { .. } => false,
        Group::Among { members, groups } => groups
            .iter()
            .any(|g| g[p] && members.iter().all(|&u| g[target[u]])),
    })
}

/// Picks a pending VM and a pivot host for it: the first pending VM (not pivoted before) with a
/// host that has room now, is in its domain, holds none of its spread peers and keeps its
/// gathers and amongs (see [`pivot_allowed`]); the host with the most free room wins.
fn find_pivot(
    m: &Model,
    pending: &[usize],
    pivoted: &[bool],
    sim: &Sim,
    target: &[usize],
    work: &mut Work,
) -> Option<(usize, usize)> {
    for &v in pending {
        if pivoted[v] {
            continue;
        }
        let vm = &m.vms[v];
        let mut best: Option<(u64, usize)> = None;
        for (p, host) in m.hosts.iter().enumerate() {
            if !work.tick(1) {
                return None;
            }
            if p == sim.at[v]
                || p == target[v]
                || !m.allowed(v, p)
                || !sim.room(m, p, vm.cpu, vm.mem)
            {
                continue;
            }
            if !spread_clear(m, v, p, |u| sim.at[u], &[], target) || !pivot_allowed(m, v, p, target)
            {
                continue;
            }
            let free = frac(host.cpu_limit - sim.cpu[p] - vm.cpu, host.cpu_limit)
                .min(frac(host.mem_cap - sim.mem[p] - vm.mem, host.mem_cap));
            if best.is_none_or(|(f, _)| free > f) {
                best = Some((free, p));
            }
        }
        if let Some((_, p)) = best {
            return Some((v, p));
        }
    }
    None
}

fn frac(free: u64, limit: u64) -> u64 {
    free.saturating_mul(1_000_000)
        .checked_div(limit)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use dvms_core::model::{HostSpec, NodeId, Problem, Resources, Thresholds, VmId, VmSpec};

    use super::*;
    use crate::validate_plan;

    /// Hosts of the given memory (CPU is ample), VMs as (host, memory).
    fn problem(hosts: &[u64], vms: &[(u64, u64)]) -> Problem {
        Problem {
            hosts: hosts
                .iter()
                .enumerate()
                .map(|(i, &mem)| HostSpec {
                    id: NodeId(i as u64),
                    capacity: Resources::new(100_000, mem),
                    thresholds: Thresholds::default(),
                })
                .collect(),
            vms: vms
                .iter()
                .enumerate()
                .map(|(i, &(host, mem))| VmSpec {
                    id: VmId(i as u64),
                    host: NodeId(host),
                    demand: Resources::new(100, mem),
                    migratable: true,
                })
                .collect(),
            constraints: vec![],
        }
    }

    #[test]
    fn an_early_arrival_that_would_deadlock_waits() {
        // x: a->b, w: b->c, z: c->b. Greedy runs x first and fills b; z must go first.
        let p = problem(&[2, 4, 2], &[(0, 2), (1, 2), (2, 2)]);
        let m = Model::compile(&p).expect("valid");
        let plan = build(&m, &[1, 2, 1], 2, &mut Work::new(10_000)).expect("a plan");
        assert_eq!(validate_plan(&p, &plan, 2), Ok(()));
        assert_eq!(plan.migrations().count(), 3, "no pivot needed: {plan:?}");
        assert_eq!(plan.steps[0][0].vm, VmId(2));
    }

    #[test]
    fn a_swap_goes_through_a_pivot() {
        let p = problem(&[2, 2, 2], &[(0, 2), (1, 2)]);
        let m = Model::compile(&p).expect("valid");
        let plan = build(&m, &[1, 0], 2, &mut Work::new(10_000)).expect("a plan");
        assert_eq!(validate_plan(&p, &plan, 2), Ok(()));
        assert_eq!(plan.migrations().count(), 3);
    }

    #[test]
    fn a_swap_without_room_has_no_plan() {
        let p = problem(&[2, 2], &[(0, 2), (1, 2)]);
        let m = Model::compile(&p).expect("valid");
        assert_eq!(
            build(&m, &[1, 0], 2, &mut Work::new(10_000)),
            Err(PlanFail::NoPivot)
        );
        assert_eq!(
            build(&m, &[1, 0], 2, &mut Work::new(1)),
            Err(PlanFail::Budget)
        );
    }
}
