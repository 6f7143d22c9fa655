//! The greedy repair: near-linear, used alone in [`Mode::Repair`](crate::Mode::Repair) and as
//! the first incumbent of the branch and bound in [`Mode::Full`](crate::Mode::Full).
//!
//! 1. VMs outside the violating hosts stay where they are.
//! 2. On each violating host, keep the subset of its movable VMs with the most memory (then the
//!    most VMs) that fits, among those the constraints allow to stay; evict the others. The
//!    subset is exact for hosts of up to [`EXACT_KEEP_MAX`] movable VMs, first-fit beyond.
//! 3. Place the evicted VMs, largest CPU first, on the healthy host with the most free room
//!    (worst fit, which spreads a drained host's VMs) that fits them and that the constraints
//!    allow, found through an ordered index of hosts by free room.

use std::cmp::Reverse;
use std::collections::BTreeSet;

use dvms_core::model::Unsolvable;

use crate::model::{Model, NONE, State};
use crate::work::Work;

/// Hosts with more movable VMs than this choose which to keep first-fit instead of exactly.
pub(crate) const EXACT_KEEP_MAX: usize = 16;

/// The greedy's result: a target placement, or why it found none.
pub(crate) type GreedyResult = Result<Vec<usize>, Unsolvable>;

/// Runs the greedy repair. `movable[v]` says whether VM `v` may move; `violating` lists the
/// violating hosts (their VMs are the only ones the greedy moves).
pub(crate) fn repair(
    m: &Model,
    movable: &[bool],
    violating: &[usize],
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
        let keep = keep_set(m, &stayers, room_cpu, room_mem, work);
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
    for (h, _) in is_violating.iter().enumerate().filter(|(_, bad)| !**bad) {
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
            if !st.fits(m, v, h) {
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

/// Chooses which of `cands` (sorted by decreasing memory) stay: the subset that fits the room
/// and keeps the most memory, then the most VMs.
fn keep_set(
    m: &Model,
    cands: &[usize],
    room_cpu: u64,
    room_mem: u64,
    work: &mut Work,
) -> Vec<bool> {
    let mut keep = vec![false; cands.len()];
    if cands.len() <= EXACT_KEEP_MAX {
        let mut cur = vec![false; cands.len()];
        let mut best = (0u64, 0usize);
        let suffix_mem: Vec<u64> = (0..=cands.len())
            .map(|i| cands[i..].iter().map(|&v| m.vms[v].mem).sum())
            .collect();
        let mut search = KeepSearch {
            m,
            cands,
            suffix_mem: &suffix_mem,
            cur: &mut cur,
            best: &mut best,
            keep: &mut keep,
            work,
        };
        search.run(0, room_cpu, room_mem, 0, 0);
    } else {
        let (mut cpu, mut mem) = (0, 0);
        for (i, &v) in cands.iter().enumerate() {
            let vm = &m.vms[v];
            if cpu + vm.cpu <= room_cpu && mem + vm.mem <= room_mem {
                cpu += vm.cpu;
                mem += vm.mem;
                keep[i] = true;
            }
        }
    }
    keep
}

/// Depth-first search for [`keep_set`].
struct KeepSearch<'a> {
    m: &'a Model,
    cands: &'a [usize],
    suffix_mem: &'a [u64],
    cur: &'a mut Vec<bool>,
    best: &'a mut (u64, usize),
    keep: &'a mut Vec<bool>,
    work: &'a mut Work,
}

impl KeepSearch<'_> {
    fn run(&mut self, i: usize, room_cpu: u64, room_mem: u64, kept_mem: u64, kept_n: usize) {
        if (kept_mem, kept_n) > *self.best {
            *self.best = (kept_mem, kept_n);
            self.keep.clone_from(self.cur);
        }
        if i == self.cands.len()
            || kept_mem + self.suffix_mem[i] < self.best.0
            || !self.work.tick(1)
        {
            return;
        }
        let vm = &self.m.vms[self.cands[i]];
        if vm.cpu <= room_cpu && vm.mem <= room_mem {
            self.cur[i] = true;
            self.run(
                i + 1,
                room_cpu - vm.cpu,
                room_mem - vm.mem,
                kept_mem + vm.mem,
                kept_n + 1,
            );
            self.cur[i] = false;
        }
        self.run(i + 1, room_cpu, room_mem, kept_mem, kept_n);
    }
}
