//! The greedy repair: near-linear, used alone in [`Mode::Repair`](crate::Mode::Repair) and as
//! the first incumbent of the branch and bound in [`Mode::Full`](crate::Mode::Full).
//!
//! 1. VMs outside the violating hosts stay where they are.
//! 2. On each violating host, keep the subset of its movable VMs with the most memory (then the
//!    most VMs) that fits, among those the constraints allow to stay; evict the others (a
//!    bounded knapsack over VM types, exact unless it needs more than [`KEEP_NODE_CAP`] nodes).
//! 3. Place the evicted VMs, largest CPU first, on the healthy host with the most free room
//!    (worst fit, which spreads a drained host's VMs) that fits them and that the constraints
//!    allow, found through an ordered index of hosts by free room.

use std::cmp::Reverse;
use std::collections::BTreeSet;

use dvms_core::model::Unsolvable;

use crate::keep;
use crate::model::{Model, NONE, State};
use crate::work::Work;

/// Search nodes allowed per host to choose the VMs that stay (see [`crate::keep`]).
pub(crate) const KEEP_NODE_CAP: u64 = 20_000;

/// The greedy's result: a target placement, or why it found none.
pub(crate) type GreedyResult = Result<Vec<usize>, Unsolvable>;

/// Runs the greedy repair. `movable[v]` says whether VM `v` may move; `violating` lists the
/// violating hosts (their VMs are the only ones the greedy moves). Evicted VMs go to healthy
/// hosts first; with `into_violating`, also into the room left on the other violating hosts
/// once they keep their chosen VMs (last resort: such plans can have cycles).
pub(crate) fn repair(
    m: &Model,
    movable: &[bool],
    violating: &[usize],
    into_violating: bool,
    work: &mut Work,
) -> GreedyResult {
    let mut st = State::new(m);
    let mut is_violating = vec![false; m.hosts.len()];
    for &h in violating {
        is_violating[h] = true;
    }
    for (v, vm) in m.vms.iter().enumerate() {
        if !movable[v] || !is_violating[vm.host] {
            st.place(m, v, vm.host);
        }
    }
    let mut evicted = Vec::new();
    for &h in violating {
        let mut residents: Vec<usize> = m.host_vms[h]
            .iter()
            .copied()
            .filter(|&v| st.at[v] == NONE)
            .collect();
        residents.sort_by_key(|&v| (Reverse(m.vms[v].mem), Reverse(m.vms[v].cpu), v));
        let (stayers, mut out): (Vec<usize>, Vec<usize>) =
            residents.iter().partition(|&&v| m.allowed(v, h));
        let room_cpu = m.hosts[h].cpu_limit.saturating_sub(st.cpu[h]);
        let room_mem = m.hosts[h].mem_limit.saturating_sub(st.mem[h]);
        if st.cpu[h] > m.hosts[h].cpu_limit || st.mem[h] > m.hosts[h].mem_limit {
            return Err(pinned_overload(m, h));
        }
        let keep = keep::best_keep(m, &stayers, room_cpu, room_mem, KEEP_NODE_CAP, work).keep;
        for (i, &v) in stayers.iter().enumerate() {
            if keep[i] && st.can_place(m, v, h) {
                st.place(m, v, h);
            } else {
                out.push(v);
            }
        }
        evicted.extend(out);
    }
    evicted.sort_by_key(|&v| (Reverse(m.vms[v].cpu), Reverse(m.vms[v].mem), v));
    let mut index: BTreeSet<(Reverse<u64>, usize)> = BTreeSet::new();
    for (h, _) in is_violating
        .iter()
        .enumerate()
        .filter(|(_, bad)| into_violating || !**bad)
    {
        index.insert((Reverse(free_score(m, &st, h)), h));
    }
    for &v in &evicted {
        let mut chosen = None;
        let mut blocked_by = None;
        for &(_, h) in &index {
            if !work.tick(1) {
                return Err(Unsolvable::BudgetExhausted {
                    host: m.hosts[m.vms[v].host].id,
                });
            }
            if h == m.vms[v].host || !st.fits(m, v, h) {
                continue;
            }
            if !m.allowed(v, h) {
                blocked_by = blocked_by.or(m.domains[v].as_ref().map(|d| d.by));
                continue;
            }
            if let Some(gi) = st.group_blocks(m, v, h) {
                blocked_by = blocked_by.or(Some(m.groups[gi].0));
                continue;
            }
            chosen = Some(h);
            break;
        }
        let home = m.hosts[m.vms[v].host].id;
        let Some(h) = chosen else {
            return Err(match blocked_by {
                Some(constraint) => Unsolvable::ConstraintBlocks {
                    host: home,
                    constraint,
                },
                None => Unsolvable::NotEnoughCapacity { host: home },
            });
        };
        index.remove(&(Reverse(free_score(m, &st, h)), h));
        st.place(m, v, h);
        index.insert((Reverse(free_score(m, &st, h)), h));
    }
    Ok(st.at)
}

/// The reason a host whose pinned VMs alone exceed its limits cannot be fixed.
pub(crate) fn pinned_overload(m: &Model, h: usize) -> Unsolvable {
    let host = m.hosts[h].id;
    match m.host_vms[h].iter().find_map(|&v| m.vms[v].root) {
        Some(constraint) => Unsolvable::ConstraintBlocks { host, constraint },
        None => Unsolvable::NotEnoughCapacity { host },
    }
}

/// Free room of `h` as a fraction (in millionths) of its limits, the scarcer resource counting.
pub(crate) fn free_score(m: &Model, st: &State, h: usize) -> u64 {
    let host = &m.hosts[h];
    let frac = |used: u64, limit: u64| {
        limit
            .saturating_sub(used)
            .saturating_mul(1_000_000)
            .checked_div(limit)
            .unwrap_or(0)
    };
    frac(st.cpu[h], host.cpu_limit).min(frac(st.mem[h], host.mem_limit))
}

/// [`repair`] into healthy hosts, then, if that finds no placement or no plan, also into the
/// violating hosts' remaining room. Returns the target and its plan.
pub(crate) fn repair_and_plan(
    m: &Model,
    movable: &[bool],
    violating: &[usize],
    max_per_host: usize,
    work: &mut Work,
) -> Result<(Vec<usize>, dvms_core::model::Plan), Unsolvable> {
    let mut first_err = None;
    for into_violating in [false, true] {
        match repair(m, movable, violating, into_violating, work) {
            Ok(target) => match crate::plan::build(m, &target, max_per_host, work) {
                Ok(plan) => return Ok((target, plan)),
                Err(crate::plan::PlanFail::Budget) => break,
                Err(crate::plan::PlanFail::NoPivot) => {
                    first_err.get_or_insert(Unsolvable::NotEnoughCapacity {
                        host: m.hosts[violating[0]].id,
                    });
                }
            },
            Err(e @ Unsolvable::BudgetExhausted { .. }) => return Err(e),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if work.exhausted() {
        return Err(Unsolvable::BudgetExhausted {
            host: m.hosts[violating[0]].id,
        });
    }
    Err(first_err.unwrap_or(Unsolvable::NotEnoughCapacity {
        host: m.hosts[violating[0]].id,
    }))
}
