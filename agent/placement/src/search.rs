//! The full mode: greedy incumbent, then an Entropy-style branch and bound.
//!
//! The search decides VMs one by one (stay first, then the hosts with the most free room),
//! keeping a partial [`State`] whose loads only grow, so a host over its limits is pruned at
//! once. The bound adds, per host whose VMs are decided, the memory and number of VMs that must
//! still leave it (for a healthy host, because of the VMs decided onto it); identical
//! unconstrained VMs of one host are decided in a fixed order (symmetry breaking). A plan is
//! built at every improving leaf: a placement whose plan needs a pivot that does not exist is
//! skipped. A room relaxation (the VMs still to place need no more than the room of the hosts
//! that can take the smallest of them) prunes tight packings.
//!
//! After the greedy repair, when its plan does not meet the root bound over every VM, ejection
//! chains ([`crate::chain`], 40 % of the budget at most) look for a first or cheaper
//! plan. Searches, in turn ([`Scope`]): the violating hosts' VMs host by host (a tenth of the
//! budget when there is no incumbent yet); if that finds nothing, a packing search over every
//! movable VM (largest first, healthy destinations first, stopping at the first plan,
//! backjumping past decisions unrelated to a plan's deadlock) with a third of the rest; then
//! the iterative deepening over every movable VM ([`deepening`], issue 11). An incumbent that
//! does not improve for [`STALL_UNITS`] ends the first search.

use std::cmp::Reverse;

use dvms_core::model::{Plan, Unsolvable};

use crate::greedy::{self, free_score};
use crate::keep;
use crate::model::{Model, NONE, State};
use crate::plan::{self, PlanFail};
use crate::work::Work;

/// The branch and bound gives up improving an incumbent after this many work units without
/// improvement (or as many as it took to find it, if more): a proof of optimality that long
/// in coming rarely pays (measured in `docs/results.md, section 2`).
const STALL_UNITS: u64 = 100_000;

/// Share of the budget, in percent, for the search over every movable VM once there is an
/// incumbent (150,000 units of the default budget).
const ALL_SHARE_PCT: u64 = 15;

/// Share of the budget, in percent, for the ejection chains ([`crate::chain`]) when the greedy
/// repair found no plan, and when it found one (the chains then only improve it).
const CHAIN_SHARE_PCT: u64 = 40;
const CHAIN_SHARE_WITH_PLAN_PCT: u64 = 25;

/// Iterative deepening on the cost over every movable VM: each round explores every
/// placement whose cost plus lower bound is within a threshold, the next round raises the
/// threshold to the least cost that was cut (and, to keep rounds few, at least a quarter of
/// the way to the incumbent but at most to twice the threshold, or to twice the threshold
/// when there is none: a round is complete, so a plan it finds is still the cheapest once it
/// ends). Rounds stop once a round cuts nothing (every placement was seen), the threshold
/// reaches the incumbent's cost (which is then optimal) or the slice runs out. True when the
/// search was complete.
pub(crate) fn deepening(
    m: &Model,
    violating: &[usize],
    max_per_host: usize,
    inc: &mut Incumbent,
    free: Option<&Hood<'_>>,
    work: &mut Work,
) -> bool {
    let s = Search::with_hosts(m, violating, Scope::All, free, max_per_host, work);
    deepen(s, inc, work)
}

/// [`deepening`] with a search already built.
fn deepen(mut s: Search<'_>, inc: &mut Incumbent, work: &mut Work) -> bool {
    s.stall = false;
    let mut threshold = (0, 0);
    let mut rounds = 0;
    while !work.exhausted() {
        rounds += 1;
        // Without an incumbent after a few rounds, one last round without a threshold: a plain
        // depth-first search proves infeasibility without repeating rounds.
        let last = inc.best.is_none() && rounds > BLIND_ROUNDS;
        s.threshold = (!last).then_some(threshold);
        s.next = None;
        s.run(inc, work);
        if work.exhausted() {
            return false;
        }
        let Some(next) = s.next else {
            return true;
        };
        threshold = match inc.cost() {
            Some(best) if best <= threshold || next >= best => return true,
            Some(best) => {
                let step = ((best.0 - threshold.0) / 4).min(threshold.0);
                next.max((threshold.0 + step, 0))
            }
            None => next.max((threshold.0.saturating_mul(2), 0)),
        };
    }
    false
}

/// A neighbourhood: the hosts whose VMs move, and where the other VMs are (by VM; empty:
/// where they run now, and then the violating hosts' VMs move too).
#[derive(Debug)]
pub(crate) struct Hood<'b> {
    /// Per host, true when its VMs (and the VMs `base` puts on it) move.
    pub(crate) hosts: &'b [bool],
    /// Per VM, its host in the placement around which to search, or empty.
    pub(crate) base: &'b [usize],
}

/// Rounds of [`deepening`] without an incumbent before its last, unbounded round.
const BLIND_ROUNDS: usize = 4;

/// Search nodes allowed to the exact eviction bound of a host at each search node.
const DYNAMIC_KEEP_NODES: u64 = 64;

/// The cost of a plan: memory moved, then migrations.
type Cost = (u64, u64);

fn plan_cost(p: &Plan) -> Cost {
    (p.moved_mib(), p.migrations().count() as u64)
}

/// The best plan found so far.
#[derive(Debug, Default)]
pub(crate) struct Incumbent {
    /// The plan and its cost.
    pub(crate) best: Option<(Cost, Plan)>,
    /// A leaf's plan needed a pivot that did not exist.
    no_pivot: bool,
    /// Work units spent when the incumbent last improved.
    improved_at: u64,
}

impl Incumbent {
    fn offer(&mut self, plan: Plan, work: &Work) {
        let c = plan_cost(&plan);
        if self.best.as_ref().is_none_or(|(b, _)| c < *b) {
            self.best = Some((c, plan));
            self.improved_at = work.used;
        }
    }

    /// True when the search has gone on long without improving the incumbent: at least
    /// [`STALL_UNITS`] and as long again as it took to find it.
    fn stalled(&self, work: &Work) -> bool {
        self.best.is_some() && work.used - self.improved_at > STALL_UNITS.max(self.improved_at)
    }
    /// The incumbent's cost, if any.
    pub(crate) fn cost(&self) -> Option<Cost> {
        self.best.as_ref().map(|(c, _)| *c)
    }
}

/// Solves in full mode: the plan, and true when it is proved the cheapest (the search over
/// every movable VM was complete).
pub(crate) fn full(
    m: &Model,
    violating: &[usize],
    max_per_host: usize,
    work: &mut Work,
) -> Result<(Plan, bool), Unsolvable> {
    let movable: Vec<bool> = m.vms.iter().map(|v| !v.pinned).collect();
    let mut inc = Incumbent::default();
    let greedy_err = match greedy::repair_and_plan(m, &movable, violating, max_per_host, work) {
        Ok((_, p)) => {
            inc.offer(p, work);
            None
        }
        Err(e) => Some(e),
    };
    // The search over every movable VM, built once: its root bound tells whether the
    // chains and the neighbourhoods can improve the incumbent at all.
    let all =
        (!work.exhausted()).then(|| Search::new(m, violating, Scope::All, max_per_host, work));
    let root = all.as_ref().map(|s| s.lower_bound(0, true, work));
    let meets = |inc: &Incumbent| match (root, inc.cost()) {
        (Some(lb), Some(best)) => lb.is_none_or(|lb| lb >= best),
        _ => false,
    };
    if !work.exhausted() && !meets(&inc) {
        // Tight partitions (issue 11): short ejection chains, often cheaper than the greedy's
        // placement and found where the greedy finds none.
        let have_plan = inc.best.is_some();
        let pct = if have_plan {
            CHAIN_SHARE_WITH_PLAN_PCT
        } else {
            CHAIN_SHARE_PCT
        };
        let mut slice = work.slice(work.limit / 100 * pct);
        crate::chain::construct_all(m, max_per_host, have_plan, &mut slice, &mut |p, w| {
            inc.offer(p, w);
        });
        work.used = slice.used;
    }
    // Without an incumbent, the search over the violating hosts' VMs gets a tenth of the
    // budget: the packing and the search over every VM may need the rest.
    let mut slice = work.slice(if inc.best.is_some() {
        work.left()
    } else {
        work.left() / 10
    });
    let mut complete = Search::new(m, violating, Scope::Violating, max_per_host, &mut slice)
        .run(&mut inc, &mut slice);
    work.used = slice.used;
    let meets = meets(&inc);
    if !work.exhausted() && !meets {
        crate::lns::run(m, violating, max_per_host, &mut inc, work);
    }
    if inc.best.is_none() && !work.exhausted() {
        // Tight packing: find any placement first, largest VMs first, with a third of the rest.
        let mut half = work.slice(work.left() / 3);
        Search::new(m, violating, Scope::Packing, max_per_host, &mut half).run(&mut inc, &mut half);
        work.used = half.used;
    }
    let mut proved = false;
    if !work.exhausted() {
        // Every movable VM, cheapest total cost first (issue 11): within its own slice when
        // there is an incumbent to improve, else with the rest of the budget.
        let mut slice = work.slice(if inc.best.is_some() {
            work.limit / 100 * ALL_SHARE_PCT
        } else {
            work.left()
        });
        complete = match all {
            Some(s) => deepen(s, &mut inc, &mut slice),
            None => deepening(m, violating, max_per_host, &mut inc, None, &mut slice),
        };
        proved = complete;
        work.used = slice.used;
    }
    if let Some((_, p)) = inc.best {
        return Ok((p, proved));
    }
    let host = m.hosts[violating[0]].id;
    if !complete || work.exhausted() {
        return Err(Unsolvable::BudgetExhausted { host });
    }
    if let Some(e @ Unsolvable::ConstraintBlocks { .. }) = greedy_err {
        return Err(e);
    }
    // Proved infeasible: blame a constraint on a VM of a violating host, if there is one.
    for &h in violating {
        for &v in &m.host_vms[h] {
            let by = m.domains[v]
                .as_ref()
                .map(|d| d.by)
                .or_else(|| m.vm_groups[v].first().map(|&g| m.groups[g].0));
            if let Some(constraint) = by {
                return Err(Unsolvable::ConstraintBlocks {
                    host: m.hosts[h].id,
                    constraint,
                });
            }
        }
    }
    Err(Unsolvable::NotEnoughCapacity { host })
}

/// Per violating host, its VMs in the orders the bound needs.
#[derive(Debug)]
struct HostBound {
    host: usize,
    /// Position in the search order of the host's first VM.
    start: usize,
    /// Load of the host's pinned VMs (decided before the search).
    base: (u64, u64),
    /// The exact least eviction before any of its VMs is decided or any VM arrives.
    exact: Option<Cost>,
    /// Movable residents by increasing memory per CPU (cheapest CPU relief first).
    by_ratio: Vec<usize>,
    /// Movable residents by decreasing CPU.
    by_cpu: Vec<usize>,
    /// Movable residents by decreasing memory.
    by_mem: Vec<usize>,
}

/// One branch and bound.
#[derive(Debug)]
struct Search<'a> {
    m: &'a Model,
    /// VMs to decide, in order.
    order: Vec<usize>,
    /// Per position in `order`, the previous position holding an identical VM (symmetry).
    twin: Vec<Option<usize>>,
    bounds: Vec<HostBound>,
    st: State,
    max_per_host: usize,
    /// Scratch: candidate hosts of each depth.
    scratch: Vec<Vec<usize>>,
    /// Per position in `order`, what the VMs from there on need.
    suffix: Vec<Suffix>,
    /// Stop at the first plan found.
    first_only: bool,
    /// Per host, true when it violates a threshold or constraint now.
    violating: Vec<bool>,
    /// Packing only: after a leaf no plan reaches, the deepest position whose decision is
    /// involved in the deadlock; deeper levels give up their remaining candidates.
    backjump: Option<usize>,
    /// Deepening only: costs above this are cut (and the least of them recorded in `next`).
    threshold: Option<Cost>,
    /// The least cost cut by `threshold`.
    next: Option<Cost>,
    /// Give up once the incumbent stalls (see [`STALL_UNITS`]).
    stall: bool,
    /// Per host, CPU and memory of its undecided VMs (they are still there when candidates
    /// are ordered by free room); only when healthy hosts' VMs are in scope.
    rest: Option<(Vec<u64>, Vec<u64>)>,
}

/// Which VMs a search decides, in which order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// The VMs of the violating hosts, host by host.
    Violating,
    /// Every movable VM, largest first, stopping at the first plan (to find one when packing
    /// is tight).
    Packing,
    /// Every movable VM, violating hosts first, host by host.
    All,
}

/// The total and the smallest demands of the VMs still to place.
#[derive(Clone, Copy, Debug)]
struct Suffix {
    cpu: u64,
    mem: u64,
    min_cpu: u64,
    min_mem: u64,
}

impl<'a> Search<'a> {
    fn new(
        m: &'a Model,
        violating: &[usize],
        scope: Scope,
        max_per_host: usize,
        work: &mut Work,
    ) -> Search<'a> {
        Search::with_hosts(m, violating, scope, None, max_per_host, work)
    }

    /// [`Search::new`], with only the VMs of the hosts `free` marks (all if None) moving.
    fn with_hosts(
        m: &'a Model,
        violating: &[usize],
        scope: Scope,
        free: Option<&Hood<'_>>,
        max_per_host: usize,
        work: &mut Work,
    ) -> Search<'a> {
        let healthy_move = scope != Scope::Violating;
        let in_free = |h: usize| free.is_none_or(|f| f.hosts.get(h).copied().unwrap_or(false));
        let mut is_violating = vec![false; m.hosts.len()];
        for &h in violating {
            is_violating[h] = true;
        }
        let mut st = State::new(m);
        let mut order = Vec::new();
        let mut twin = Vec::new();
        let mut bounds = Vec::new();
        let hosts = violating
            .iter()
            .copied()
            .filter(|&h| free.is_none_or(|f| f.base.is_empty()) || in_free(h))
            .chain((0..m.hosts.len()).filter(|&h| healthy_move && !is_violating[h] && in_free(h)));
        for h in hosts {
            let start = order.len();
            let mut residents: Vec<usize> = m.host_vms[h]
                .iter()
                .copied()
                .filter(|&v| !m.vms[v].pinned)
                .collect();
            residents.sort_by_key(|&v| (Reverse(m.vms[v].mem), Reverse(m.vms[v].cpu), v));
            for (i, &v) in residents.iter().enumerate() {
                let t = (i > 0 && same(m, residents[i - 1], v)).then(|| order.len() - 1);
                twin.push(t);
                order.push(v);
            }
            // Every host whose VMs the search decides gets a bound: a healthy host that
            // receives VMs may have to let some of its own go (issue 11).
            if is_violating[h] || healthy_move {
                let mut by_ratio = residents.clone();
                // mem/cpu ascending, compared by cross-multiplication; CPU-less VMs last.
                by_ratio.sort_by(|&a, &b| {
                    let (va, vb) = (&m.vms[a], &m.vms[b]);
                    (u128::from(va.mem) * u128::from(vb.cpu))
                        .cmp(&(u128::from(vb.mem) * u128::from(va.cpu)))
                        .then(a.cmp(&b))
                });
                by_ratio.sort_by_key(|&v| m.vms[v].cpu == 0);
                let mut by_cpu = residents.clone();
                by_cpu.sort_by_key(|&v| (Reverse(m.vms[v].cpu), v));
                bounds.push(HostBound {
                    host: h,
                    start,
                    base: (0, 0),
                    exact: None,
                    by_ratio,
                    by_cpu,
                    by_mem: residents,
                });
            }
        }
        if scope == Scope::Packing {
            // Making room is a packing problem: decide the largest VMs first (first fit
            // decreasing), identical VMs of a host next to each other.
            order.sort_by_key(|&v| {
                (
                    Reverse(m.vms[v].cpu),
                    Reverse(m.vms[v].mem),
                    m.vms[v].host,
                    v,
                )
            });
            twin = (0..order.len())
                .map(|i| (i > 0 && same(m, order[i - 1], order[i])).then(|| i - 1))
                .collect();
            let mut first = vec![order.len(); m.hosts.len()];
            for (i, &v) in order.iter().enumerate().rev() {
                first[m.vms[v].host] = i;
            }
            for b in &mut bounds {
                b.start = first[b.host];
            }
        }
        let mut in_order = vec![false; m.vms.len()];
        for &v in &order {
            in_order[v] = true;
        }
        // A neighbourhood of a placement: the VMs it put on a free host move too; the others
        // stay where it put them.
        let base = free.map_or(&[][..], |f| f.base);
        for (v, vm) in m.vms.iter().enumerate() {
            if let Some(&b) = base.get(v)
                && !in_order[v]
                && !vm.pinned
                && in_free(b)
            {
                in_order[v] = true;
                twin.push(None);
                order.push(v);
            }
        }
        for (v, vm) in m.vms.iter().enumerate() {
            if !in_order[v] {
                let at = base.get(v).copied().filter(|&b| b < m.hosts.len());
                st.place(m, v, at.unwrap_or(vm.host));
            }
        }
        for b in &mut bounds {
            let h = b.host;
            b.base = (st.cpu[h], st.mem[h]);
            let host = &m.hosts[h];
            if b.base.0 <= host.cpu_limit && b.base.1 <= host.mem_limit {
                let (stay, forced): (Vec<usize>, Vec<usize>) =
                    b.by_mem.iter().partition(|&&v| m.allowed(v, h));
                let forced_cost = forced
                    .iter()
                    .fold((0, 0), |(mem, n), &v| (mem + m.vms[v].mem, n + 1));
                let (room_cpu, room_mem) = (host.cpu_limit - b.base.0, host.mem_limit - b.base.1);
                let k = keep::best_keep(m, &stay, room_cpu, room_mem, greedy::KEEP_NODE_CAP, work);
                b.exact = k
                    .exact
                    .then_some((k.evicted.0 + forced_cost.0, k.evicted.1 + forced_cost.1));
            }
        }
        let scratch = vec![Vec::new(); order.len()];
        // Per position, the sums and minima of the demands still to place.
        let mut suffix = vec![
            Suffix {
                cpu: 0,
                mem: 0,
                min_cpu: u64::MAX,
                min_mem: u64::MAX
            };
            order.len() + 1
        ];
        for i in (0..order.len()).rev() {
            let (vm, next) = (&m.vms[order[i]], suffix[i + 1]);
            suffix[i] = Suffix {
                cpu: next.cpu + vm.cpu,
                mem: next.mem + vm.mem,
                min_cpu: next.min_cpu.min(vm.cpu),
                min_mem: next.min_mem.min(vm.mem),
            };
        }
        let rest = healthy_move.then(|| {
            let (mut cpu, mut mem) = (vec![0u64; m.hosts.len()], vec![0u64; m.hosts.len()]);
            for &v in &order {
                cpu[m.vms[v].host] += m.vms[v].cpu;
                mem[m.vms[v].host] += m.vms[v].mem;
            }
            (cpu, mem)
        });
        Search {
            m,
            threshold: None,
            next: None,
            stall: true,
            rest,
            backjump: None,
            violating: is_violating,
            first_only: scope == Scope::Packing,
            suffix,
            order,
            twin,
            bounds,
            st,
            max_per_host,
            scratch,
        }
    }

    /// Runs the search; true when it explored the whole tree (not cut by the budget).
    fn run(&mut self, inc: &mut Incumbent, work: &mut Work) -> bool {
        // A pinned VM over its host's limits: nothing to search (checked before, kept safe).
        if (0..self.m.hosts.len()).any(|h| {
            self.st.cpu[h] > self.m.hosts[h].cpu_limit || self.st.mem[h] > self.m.hosts[h].mem_limit
        }) {
            return true;
        }
        self.dfs(0, inc, work);
        !work.exhausted()
    }

    fn dfs(&mut self, pos: usize, inc: &mut Incumbent, work: &mut Work) {
        let m = self.m;
        let cost = (self.st.moved_mem, self.st.moves);
        if (self.first_only && inc.best.is_some()) || (self.stall && inc.stalled(work)) {
            return;
        }
        if pos == self.order.len() {
            if inc.cost().is_none_or(|b| cost < b) {
                match plan::build(m, &self.st.at, self.max_per_host, work) {
                    Ok(p) => inc.offer(p, work),
                    Err(PlanFail::NoPivot) => {
                        inc.no_pivot = true;
                        if self.first_only {
                            self.backjump = self.conflict_position(work);
                        }
                    }
                    Err(PlanFail::Budget) => {}
                }
            }
            return;
        }
        if !self.room_suffices(pos, work) {
            return;
        }
        let need_cost = inc.best.is_some() || self.threshold.is_some();
        let Some(lb) = self.lower_bound(pos, need_cost, work) else {
            return;
        };
        let f = (cost.0 + lb.0, cost.1 + lb.1);
        if inc.cost().is_some_and(|best| f >= best) || self.cut(f) {
            return;
        }
        let v = self.order[pos];
        let home = m.vms[v].host;
        let mut cands = std::mem::take(&mut self.scratch[pos]);
        cands.clear();
        cands.push(home);
        if let Some((cpu, mem)) = &mut self.rest {
            cpu[home] -= m.vms[v].cpu;
            mem[home] -= m.vms[v].mem;
        }
        let mut others: Vec<(bool, Reverse<u64>, usize)> = (0..m.hosts.len())
            .filter(|&h| h != home)
            .map(|h| {
                let score = self.score(h);
                // Packing: healthy hosts first (arrivals at a host that is over its limits
                // now wait for its departures, the stuff of cycles), best fit; otherwise worst
                // fit (balance).
                if self.first_only {
                    (self.violating[h], Reverse(u64::MAX - score), h)
                } else {
                    (false, Reverse(score), h)
                }
            })
            .collect();
        others.sort_unstable();
        work.tick(others.len() as u64);
        cands.extend(others.into_iter().map(|(_, _, h)| h));
        let min_key = self.twin[pos].map(|p| key(m, self.order[p], self.st.at[self.order[p]]));
        for &h in &cands {
            if !work.tick(1) {
                break;
            }
            if min_key.is_some_and(|k| key(m, v, h) < k) || !self.st.can_place(m, v, h) {
                continue;
            }
            if h != home {
                let f = (cost.0 + m.vms[v].mem, cost.1 + 1);
                if inc.cost().is_some_and(|best| f >= best) || self.cut(f) {
                    continue;
                }
            }
            self.st.place(m, v, h);
            self.dfs(pos + 1, inc, work);
            self.st.unplace(m, v);
            if let Some(to) = self.backjump {
                if to < pos {
                    break;
                }
                self.backjump = None;
            }
            if work.exhausted() {
                break;
            }
        }
        self.scratch[pos] = cands;
        if let Some((cpu, mem)) = &mut self.rest {
            cpu[home] += m.vms[v].cpu;
            mem[home] += m.vms[v].mem;
        }
    }

    /// True when `f` is over the deepening threshold; records the least such cost.
    fn cut(&mut self, f: Cost) -> bool {
        match self.threshold {
            Some(t) if f > t => {
                self.next = Some(self.next.map_or(f, |n| n.min(f)));
                true
            }
            _ => false,
        }
    }

    /// Free room of `h` for ordering candidates: its undecided VMs count as staying.
    fn score(&self, h: usize) -> u64 {
        let Some((cpu, mem)) = &self.rest else {
            return free_score(self.m, &self.st, h);
        };
        let host = &self.m.hosts[h];
        let frac = |used: u64, limit: u64| {
            limit
                .saturating_sub(used)
                .saturating_mul(1_000_000)
                .checked_div(limit)
                .unwrap_or(0)
        };
        frac(self.st.cpu[h] + cpu[h], host.cpu_limit)
            .min(frac(self.st.mem[h] + mem[h], host.mem_limit))
    }

    /// Where to backjump after a leaf no plan reaches: the deepest decision of a VM that
    /// leaves or enters a host of the deadlock (a heuristic: other VMs' loads elsewhere can
    /// matter through pivots, so this is used only while looking for a first plan).
    fn conflict_position(&self, work: &mut Work) -> Option<usize> {
        let (m, at) = (self.m, &self.st.at);
        let stuck = plan::stuck(m, at, self.max_per_host, work);
        let mut hosts = vec![false; m.hosts.len()];
        for &v in &stuck {
            hosts[m.vms[v].host] = true;
            hosts[at[v]] = true;
        }
        self.order
            .iter()
            .enumerate()
            .filter(|&(_, &v)| at[v] != m.vms[v].host && (hosts[m.vms[v].host] || hosts[at[v]]))
            .map(|(i, _)| i)
            .max()
    }

    /// A relaxation of the packing still to do: the VMs still to place need, in total, no more
    /// than the room of the hosts that can take at least the smallest of them.
    fn room_suffices(&self, pos: usize, work: &mut Work) -> bool {
        let (m, st, need) = (self.m, &self.st, self.suffix[pos]);
        work.tick(m.hosts.len() as u64);
        let (mut cpu, mut mem) = (0u64, 0u64);
        for (h, host) in m.hosts.iter().enumerate() {
            let (room_cpu, room_mem) = (host.cpu_limit - st.cpu[h], host.mem_limit - st.mem[h]);
            if room_cpu >= need.min_cpu && room_mem >= need.min_mem {
                cpu += room_cpu;
                mem += room_mem;
            }
        }
        need.cpu <= cpu && need.mem <= mem
    }

    /// What must still leave the violating hosts, (memory, VMs); None when a host cannot be
    /// fixed any more. Without `need_cost`, only that infeasibility is checked.
    fn lower_bound(&self, pos: usize, need_cost: bool, work: &mut Work) -> Option<Cost> {
        let (m, st) = (self.m, &self.st);
        let mut total = (0u64, 0u64);
        for b in &self.bounds {
            work.tick(1);
            let h = b.host;
            if let Some(exact) = b.exact
                && b.start >= pos
                && (st.cpu[h], st.mem[h]) == b.base
            {
                total.0 += exact.0;
                total.1 += exact.1;
                continue;
            }
            let undecided = |v: &&usize| st.at[**v] == NONE;
            let (mut cpu, mut mem) = (st.cpu[h], st.mem[h]);
            let (mut o_cpu, mut o_mem) = (0u64, 0u64);
            for &v in b.by_mem.iter().filter(undecided) {
                if m.allowed(v, h) {
                    o_cpu += m.vms[v].cpu;
                    o_mem += m.vms[v].mem;
                } else {
                    total.0 += m.vms[v].mem;
                    total.1 += 1;
                }
            }
            cpu += o_cpu;
            mem += o_mem;
            let e_cpu = cpu.saturating_sub(m.hosts[h].cpu_limit);
            let e_mem = mem.saturating_sub(m.hosts[h].mem_limit);
            if e_cpu == 0 && e_mem == 0 {
                continue;
            }
            if e_cpu > o_cpu || e_mem > o_mem {
                return None;
            }
            if !need_cost {
                // Without an incumbent only infeasibility prunes: skip the costly bounds.
                continue;
            }
            let stay_ok = |v: &&usize| st.at[**v] == NONE && m.allowed(**v, h);
            // Exact when cheap: the least eviction of the undecided VMs from the room left.
            let undecided_stayers: Vec<usize> = b.by_mem.iter().filter(stay_ok).copied().collect();
            let room_cpu = m.hosts[h].cpu_limit - st.cpu[h];
            let room_mem = m.hosts[h].mem_limit - st.mem[h];
            let k = keep::best_keep(
                m,
                &undecided_stayers,
                room_cpu,
                room_mem,
                DYNAMIC_KEEP_NODES,
                work,
            );
            if k.exact {
                total.0 += k.evicted.0;
                total.1 += k.evicted.1;
                continue;
            }
            // Fewest VMs whose CPU, and whose memory, cover the excesses.
            let count_to = |list: &[usize], need: u64, f: &dyn Fn(usize) -> u64| -> u64 {
                let (mut got, mut n) = (0u64, 0u64);
                for &v in list.iter().filter(stay_ok) {
                    if got >= need {
                        break;
                    }
                    got += f(v);
                    n += 1;
                }
                n
            };
            let k = count_to(&b.by_cpu, e_cpu, &|v| m.vms[v].cpu).max(count_to(
                &b.by_mem,
                e_mem,
                &|v| m.vms[v].mem,
            ));
            let smallest: u64 = b
                .by_mem
                .iter()
                .rev()
                .filter(stay_ok)
                .take(usize::try_from(k).unwrap_or(usize::MAX))
                .map(|&v| m.vms[v].mem)
                .sum();
            // Fractional knapsack: least memory whose CPU covers the CPU excess.
            let (mut got, mut frac) = (0u64, 0u64);
            for &v in b.by_ratio.iter().filter(stay_ok) {
                if got >= e_cpu {
                    break;
                }
                let vm = &m.vms[v];
                let take = vm.cpu.min(e_cpu - got);
                frac += if take == vm.cpu {
                    vm.mem
                } else {
                    u64::try_from(u128::from(vm.mem) * u128::from(take) / u128::from(vm.cpu.max(1)))
                        .unwrap_or(u64::MAX)
                };
                got += take;
            }
            total.0 += e_mem.max(smallest).max(frac);
            total.1 += k;
        }
        Some(total)
    }
}

/// Symmetry key: staying sorts first, then hosts by index.
fn key(m: &Model, v: usize, h: usize) -> usize {
    if h == m.vms[v].host { 0 } else { h + 1 }
}

/// True when `a` and `b` are interchangeable: same host, demand, and no constraint at all.
fn same(m: &Model, a: usize, b: usize) -> bool {
    let (x, y) = (&m.vms[a], &m.vms[b]);
    x.host == y.host
        && x.cpu == y.cpu
        && x.mem == y.mem
        && m.domains[a].is_none()
        && m.domains[b].is_none()
        && m.vm_groups[a].is_empty()
        && m.vm_groups[b].is_empty()
}
