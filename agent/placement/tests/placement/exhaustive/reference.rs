//! The exhaustive reference of the solver tests: every final placement of every VM, the
//! constraints checked with its own code, a safe serial order of the migrations, the least
//! (memory moved, migrations) by iterative deepening with its own lower bound.

use std::collections::BTreeSet;

use dvms_core::model::{Constraint, Problem};

/// The optimum's cost, or None when no viable placement exists, with whether it needs a VM of
/// a host within its limits to move (the issue-11 case: the optimum over the violating hosts'
/// VMs alone is dearer or does not exist; only counted without constraints). `bound` is an inclusive upper bound on the cost (a
/// known solution), to prune sooner.
/// `Err` when the search gave up after [`REFERENCE_NODES`] nodes.
pub(super) fn optimum(p: &Problem, bound: Option<Cost>) -> Result<Option<(Cost, bool)>, ()> {
    optimum_within(p, bound, REFERENCE_NODES)
}

/// [`optimum`], giving up after `limit` nodes.
pub(super) fn optimum_within(
    p: &Problem,
    bound: Option<Cost>,
    limit: u64,
) -> Result<Option<(Cost, bool)>, ()> {
    let mut r = Reference::new(p, false);
    r.limit = limit;
    let Some(best) = r.search(bound)? else {
        return Ok(None);
    };
    // With constraints, a host within its limits may hold a VM that must move: not counted.
    let mut r = Reference::new(p, true);
    r.limit = limit;
    let helper = p.constraints.is_empty() && r.search(Some(best))?.is_none_or(|c| c > best);
    Ok(Some((best, helper)))
}

/// Search nodes after which the reference gives up on an instance (counted, never hidden).
pub(super) const REFERENCE_NODES: u64 = 3_000_000;

/// Memory moved, then migrations.
pub(super) type Cost = (u64, u64);

pub(super) fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// An exhaustive search over every final placement of every VM. It decides the VMs host by
/// host, and rounds of iterative deepening on the memory moved explore every placement whose
/// cost plus a lower bound is within a threshold, so it never looks at placements dearer than
/// the optimum. The bound, per host, is what must still leave it: its VMs still undecided (as
/// if they stayed) plus the VMs decided onto it, over its limits, can only be fixed by
/// undecided residents leaving, which costs at least the excess memory, at least the memory of
/// a fractional knapsack covering the CPU excess, and at least as many VMs as cover the
/// excesses largest first.
pub(super) struct Reference<'a> {
    p: &'a Problem,
    pinned: Vec<bool>,
    /// Stays where it is for this search (pinned, or on a host within its limits when only
    /// the violating hosts' VMs may move); unlike `pinned`, constraints apply.
    frozen: Vec<bool>,
    home: Vec<usize>,
    limits: Vec<(u64, u64)>,
    at: Vec<usize>,
    /// Load of the VMs decided onto each host.
    load: Vec<(u64, u64)>,
    /// Load of each host's VMs not decided yet.
    rest: Vec<(u64, u64)>,
    /// VMs in the order they are decided (host by host).
    order: Vec<usize>,
    /// Per host, its movable VMs by increasing memory per CPU, by decreasing CPU and by
    /// decreasing memory.
    by_ratio: Vec<Vec<usize>>,
    by_cpu: Vec<Vec<usize>>,
    by_mem: Vec<Vec<usize>>,
    /// Exclusive bound: only strictly cheaper placements are searched.
    best: Option<(u64, u64)>,
    found: bool,
    /// Memory moved allowed in this round, and the least bound cut by it.
    threshold: u64,
    next: Option<u64>,
    /// Nodes visited, across rounds.
    nodes: u64,
    /// Nodes after which the search gives up.
    limit: u64,
}

impl<'a> Reference<'a> {
    fn new(p: &'a Problem, violating_only: bool) -> Reference<'a> {
        let n = p.vms.len();
        let pinned: Vec<bool> = p
            .vms
            .iter()
            .map(|v| {
                !v.migratable
                    || p.constraints
                        .iter()
                        .any(|c| matches!(c, Constraint::Root { vms } if vms.contains(&v.id)))
            })
            .collect();
        let home: Vec<usize> = p
            .vms
            .iter()
            .map(|v| p.hosts.iter().position(|h| h.id == v.host).unwrap())
            .collect();
        let limits: Vec<(u64, u64)> = p
            .hosts
            .iter()
            .map(|h| {
                (
                    h.limit().cpu_milli,
                    h.limit().mem_mib.min(h.capacity.mem_mib),
                )
            })
            .collect();
        let mut rest = vec![(0u64, 0u64); p.hosts.len()];
        for (i, v) in p.vms.iter().enumerate() {
            rest[home[i]].0 += v.demand.cpu_milli;
            rest[home[i]].1 += v.demand.mem_mib;
        }
        let over = |h: usize| rest[h].0 > limits[h].0 || rest[h].1 > limits[h].1;
        let frozen: Vec<bool> = (0..n)
            .map(|i| pinned[i] || (violating_only && !over(home[i])))
            .collect();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| (home[i], std::cmp::Reverse(p.vms[i].demand.mem_mib), i));
        let (mut by_ratio, mut by_cpu, mut by_mem) = (
            vec![Vec::new(); p.hosts.len()],
            vec![Vec::new(); p.hosts.len()],
            vec![Vec::new(); p.hosts.len()],
        );
        for h in 0..p.hosts.len() {
            let mine: Vec<usize> = (0..n).filter(|&i| home[i] == h && !frozen[i]).collect();
            let d = |i: usize| p.vms[i].demand;
            let mut r = mine.clone();
            // Memory per CPU ascending (cross-multiplied); CPU-less VMs last.
            r.sort_by(|&a, &b| {
                (u128::from(d(a).mem_mib) * u128::from(d(b).cpu_milli))
                    .cmp(&(u128::from(d(b).mem_mib) * u128::from(d(a).cpu_milli)))
            });
            r.sort_by_key(|&i| d(i).cpu_milli == 0);
            let mut c = mine.clone();
            c.sort_by_key(|&i| std::cmp::Reverse(d(i).cpu_milli));
            let mut m = mine;
            m.sort_by_key(|&i| std::cmp::Reverse(d(i).mem_mib));
            (by_ratio[h], by_cpu[h], by_mem[h]) = (r, c, m);
        }
        Reference {
            p,
            pinned,
            frozen,
            home,
            limits,
            at: vec![usize::MAX; n],
            load: vec![(0, 0); p.hosts.len()],
            rest,
            order,
            by_ratio,
            by_cpu,
            by_mem,
            best: None,
            found: false,
            threshold: 0,
            next: None,
            nodes: 0,
            limit: REFERENCE_NODES,
        }
    }

    /// The least cost, by rounds of iterative deepening on the memory moved.
    fn search(mut self, bound: Option<(u64, u64)>) -> Result<Option<(u64, u64)>, ()> {
        // No movable VM fits anywhere else now: no plan can start.
        let load: Vec<(u64, u64)> = (0..self.p.hosts.len()).map(|h| self.rest[h]).collect();
        let can_start = (0..self.p.vms.len()).any(|i| {
            let d = self.p.vms[i].demand;
            !self.frozen[i]
                && (0..self.p.hosts.len()).any(|h| {
                    h != self.home[i]
                        && load[h].0 + d.cpu_milli <= self.p.hosts[h].limit().cpu_milli
                        && load[h].1 + d.mem_mib <= self.p.hosts[h].capacity.mem_mib
                })
        });
        let over = (0..self.p.hosts.len())
            .any(|h| load[h].0 > self.limits[h].0 || load[h].1 > self.limits[h].1);
        if over && !can_start {
            return Ok(None);
        }
        self.best = bound.map(|(m, k)| (m, k + 1));
        loop {
            self.next = None;
            self.dfs(0, (0, 0));
            if self.nodes > self.limit {
                return Err(());
            }
            if self.found {
                return Ok(self.best);
            }
            // Every cost is a sum of VM memories: a multiple of their gcd.
            let step = self
                .p
                .vms
                .iter()
                .fold(0, |g, v| gcd(g, v.demand.mem_mib))
                .max(1);
            match self.next {
                Some(t) => self.threshold = t.div_ceil(step) * step,
                None => return Ok(None),
            }
        }
    }

    /// What must still leave the hosts, (memory, VMs), or None when a host cannot get within
    /// its limits any more.
    fn lower_bound(&self) -> Option<(u64, u64)> {
        let mut total = (0u64, 0u64);
        for h in 0..self.p.hosts.len() {
            let cpu = self.load[h].0 + self.rest[h].0;
            let mem = self.load[h].1 + self.rest[h].1;
            let e_cpu = cpu.saturating_sub(self.limits[h].0);
            let e_mem = mem.saturating_sub(self.limits[h].1);
            if e_cpu == 0 && e_mem == 0 {
                continue;
            }
            let free = |i: &&usize| self.at[**i] == usize::MAX;
            let d = |i: usize| self.p.vms[i].demand;
            let count = |list: &[usize], need: u64, f: &dyn Fn(usize) -> u64| {
                let (mut got, mut k) = (0u64, 0u64);
                for &i in list.iter().filter(free) {
                    if got >= need {
                        break;
                    }
                    got += f(i);
                    k += 1;
                }
                (got >= need).then_some(k)
            };
            let k_cpu = count(&self.by_cpu[h], e_cpu, &|i| d(i).cpu_milli)?;
            let k_mem = count(&self.by_mem[h], e_mem, &|i| d(i).mem_mib)?;
            let (mut got, mut frac) = (0u64, 0u64);
            for &i in self.by_ratio[h].iter().filter(free) {
                if got >= e_cpu {
                    break;
                }
                let take = d(i).cpu_milli.min(e_cpu - got);
                frac += if take == d(i).cpu_milli {
                    d(i).mem_mib
                } else {
                    d(i).mem_mib * take / d(i).cpu_milli.max(1)
                };
                got += take;
            }
            total.0 += e_mem.max(frac);
            total.1 += k_cpu.max(k_mem);
        }
        Some(total)
    }

    fn dfs(&mut self, pos: usize, cost: (u64, u64)) {
        self.nodes += 1;
        if self.nodes > self.limit {
            return;
        }
        let Some(lb) = self.lower_bound() else {
            return;
        };
        let f = (cost.0 + lb.0, cost.1 + lb.1);
        if self.best.is_some_and(|b| f >= b) {
            return;
        }
        if f.0 > self.threshold {
            self.next = Some(self.next.map_or(f.0, |t| t.min(f.0)));
            return;
        }
        if pos == self.order.len() {
            if self.constraints_hold() && self.serial_order_exists() {
                self.best = Some(cost);
                self.found = true;
            }
            return;
        }
        let i = self.order[pos];
        let d = self.p.vms[i].demand;
        let home = self.home[i];
        let choices: Vec<usize> = if self.frozen[i] {
            vec![home]
        } else {
            std::iter::once(home)
                .chain((0..self.p.hosts.len()).filter(|&h| h != home))
                .collect()
        };
        self.rest[home].0 -= d.cpu_milli;
        self.rest[home].1 -= d.mem_mib;
        for h in choices {
            let (c, m) = self.load[h];
            if c + d.cpu_milli > self.limits[h].0 || m + d.mem_mib > self.limits[h].1 {
                continue;
            }
            self.load[h] = (c + d.cpu_milli, m + d.mem_mib);
            self.at[i] = h;
            let next = if h != home {
                (cost.0 + d.mem_mib, cost.1 + 1)
            } else {
                cost
            };
            self.dfs(pos + 1, next);
            self.load[h] = (c, m);
        }
        self.at[i] = usize::MAX;
        self.rest[home].0 += d.cpu_milli;
        self.rest[home].1 += d.mem_mib;
    }

    /// Breadth-first over the subsets of migrations done: each migration, run alone, must fit
    /// its destination (memory within capacity, CPU within the limit).
    fn serial_order_exists(&self) -> bool {
        let moved: Vec<usize> = (0..self.p.vms.len())
            .filter(|&i| self.at[i] != self.home[i])
            .collect();
        let mut load0 = vec![(0u64, 0u64); self.p.hosts.len()];
        for (i, v) in self.p.vms.iter().enumerate() {
            load0[self.home[i]].0 += v.demand.cpu_milli;
            load0[self.home[i]].1 += v.demand.mem_mib;
        }
        let full = (1usize << moved.len()) - 1;
        let mut seen = vec![false; full + 1];
        let mut queue = vec![0usize];
        seen[0] = true;
        while let Some(done) = queue.pop() {
            if done == full {
                return true;
            }
            let mut load = load0.clone();
            for (k, &i) in moved.iter().enumerate() {
                if done & (1 << k) != 0 {
                    let d = self.p.vms[i].demand;
                    load[self.home[i]].0 -= d.cpu_milli;
                    load[self.home[i]].1 -= d.mem_mib;
                    load[self.at[i]].0 += d.cpu_milli;
                    load[self.at[i]].1 += d.mem_mib;
                }
            }
            for (k, &i) in moved.iter().enumerate() {
                let next = done | (1 << k);
                let (d, h) = (self.p.vms[i].demand, &self.p.hosts[self.at[i]]);
                if next != done
                    && !seen[next]
                    && load[self.at[i]].0 + d.cpu_milli <= h.limit().cpu_milli
                    && load[self.at[i]].1 + d.mem_mib <= h.capacity.mem_mib
                    && self.spread_clear(i, &moved, done)
                {
                    seen[next] = true;
                    queue.push(next);
                }
            }
        }
        false
    }

    /// True when VM `i` may arrive at its final host once the migrations in `done` (bits over
    /// `moved`) ran: no other member of a spread of `i` is there then.
    fn spread_clear(&self, i: usize, moved: &[usize], done: usize) -> bool {
        let now = |j: usize| match moved.iter().position(|&k| k == j) {
            Some(bit) if done & (1 << bit) != 0 => self.at[j],
            _ => self.home[j],
        };
        let id = self.p.vms[i].id;
        self.p.constraints.iter().all(|c| match c {
            Constraint::Spread { vms } if vms.contains(&id) => self
                .p
                .vms
                .iter()
                .enumerate()
                .all(|(j, v)| j == i || !vms.contains(&v.id) || now(j) != self.at[i]),
            _ => true,
        })
    }

    fn constraints_hold(&self) -> bool {
        let idx = |id| self.p.vms.iter().position(|v| v.id == id).unwrap();
        let host = |i: usize| self.p.hosts[self.at[i]].id;
        self.p.constraints.iter().all(|c| match c {
            Constraint::Ban { vms, hosts } => vms
                .iter()
                .map(|&v| idx(v))
                .all(|i| self.pinned[i] || !hosts.contains(&host(i))),
            Constraint::Fence { vms, hosts } => vms
                .iter()
                .map(|&v| idx(v))
                .all(|i| self.pinned[i] || hosts.contains(&host(i))),
            Constraint::Spread { vms } => {
                let ms: Vec<usize> = vms.iter().map(|&v| idx(v)).collect();
                ms.iter().all(|&i| {
                    self.pinned[i] || ms.iter().all(|&j| j == i || self.at[j] != self.at[i])
                })
            }
            Constraint::Gather { vms } => {
                let ms: Vec<usize> = vms.iter().map(|&v| idx(v)).collect();
                let anchors: BTreeSet<usize> = ms
                    .iter()
                    .filter(|&&i| self.pinned[i])
                    .map(|&i| self.at[i])
                    .collect();
                if anchors.len() > 1 {
                    ms.iter()
                        .all(|&i| self.pinned[i] || anchors.contains(&self.at[i]))
                } else {
                    ms.iter().all(|&i| self.at[i] == self.at[ms[0]])
                }
            }
            Constraint::Among { vms, groups } => {
                let ms: Vec<usize> = vms.iter().map(|&v| idx(v)).collect();
                let fits = |g: &Vec<_>, only_pinned: bool| {
                    ms.iter()
                        .filter(|&&i| !only_pinned || self.pinned[i])
                        .all(|&i| g.contains(&host(i)))
                };
                if groups.iter().any(|g| fits(g, true)) {
                    groups.iter().any(|g| fits(g, false))
                } else {
                    ms.iter()
                        .all(|&i| self.pinned[i] || groups.iter().any(|g| g.contains(&host(i))))
                }
            }
            _ => true,
        })
    }
}
