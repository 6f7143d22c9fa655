//! The solver against an exhaustive search on small instances (up to 6 hosts and 12 VMs).
//!
//! The reference enumerates every final placement (depth first, pruned only by capacity,
//! which only grows as VMs are assigned, and by cost), checks the constraints with its own
//! code, keeps the placements its migrations can reach (below) and returns the least (memory
//! moved, migrations). The solver must give the same
//! feasibility verdict on every seed, never an unsafe plan, and moved memory within 2 % of the
//! optimum on average.
//!
//! Feasibility includes a safe plan: the reference counts a viable placement only when its
//! migrations have a safe serial order without pivots (a search over the subsets of migrations
//! done; serial is the most permissive order, any parallel step can be serialised), under the
//! same rules as the validator: room at each destination, and no `spread` member arriving
//! where another member is (the other constraints hold on their own for a migration that goes
//! straight to a valid final host). A plan the
//! solver returns proves feasibility by itself (the validator checks it), so an instance the
//! solver solves only through a pivot counts as agreement and is left out of the cost ratio.

use std::collections::BTreeSet;

use dvms_core::model::{Constraint, Problem, Unsolvable};
use dvms_placement::Options;

use crate::{Gen, solve_checked};

/// The optimum's cost, or None when no viable placement exists. `bound` is an inclusive upper
/// bound on the cost (a known solution), to prune sooner.
/// Also returns whether the optimal placement found moves a VM off a host within its limits
/// (the issue-11 case).
fn optimum(p: &Problem, bound: Option<(u64, u64)>) -> Option<((u64, u64), bool)> {
    let n = p.vms.len();
    let mut pinned = vec![false; n];
    for (i, v) in p.vms.iter().enumerate() {
        pinned[i] = !v.migratable
            || p.constraints
                .iter()
                .any(|c| matches!(c, Constraint::Root { vms } if vms.contains(&v.id)));
    }
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
    let mut r = Reference {
        p,
        pinned,
        home,
        limits,
        at: vec![usize::MAX; n],
        load: vec![(0, 0); p.hosts.len()],
        best: bound.map(|(m, k)| (m, k + 1)),
        found: false,
        best_at: vec![usize::MAX; n],
    };
    r.dfs(0, (0, 0));
    let mut load = vec![(0u64, 0u64); p.hosts.len()];
    for (i, v) in p.vms.iter().enumerate() {
        load[r.home[i]].0 += v.demand.cpu_milli;
        load[r.home[i]].1 += v.demand.mem_mib;
    }
    let healthy = |h: usize| load[h].0 <= r.limits[h].0 && load[h].1 <= r.limits[h].1;
    let helper = (0..p.vms.len()).any(|i| r.best_at[i] != r.home[i] && healthy(r.home[i]));
    if r.found {
        r.best.map(|b| (b, helper))
    } else {
        None
    }
}

struct Reference<'a> {
    p: &'a Problem,
    pinned: Vec<bool>,
    home: Vec<usize>,
    limits: Vec<(u64, u64)>,
    at: Vec<usize>,
    load: Vec<(u64, u64)>,
    /// Exclusive bound: only strictly cheaper placements are searched.
    best: Option<(u64, u64)>,
    found: bool,
    /// The placement of `best`.
    best_at: Vec<usize>,
}

impl Reference<'_> {
    fn dfs(&mut self, i: usize, cost: (u64, u64)) {
        if self.best.is_some_and(|b| cost >= b) {
            return;
        }
        if i == self.p.vms.len() {
            if self.constraints_hold() && self.serial_order_exists() {
                self.best = Some(cost);
                self.best_at.clone_from(&self.at);
                self.found = true;
            }
            return;
        }
        let v = &self.p.vms[i];
        let choices: Vec<usize> = if self.pinned[i] {
            vec![self.home[i]]
        } else {
            std::iter::once(self.home[i])
                .chain((0..self.p.hosts.len()).filter(|&h| h != self.home[i]))
                .collect()
        };
        for h in choices {
            let (c, m) = self.load[h];
            if c + v.demand.cpu_milli > self.limits[h].0 || m + v.demand.mem_mib > self.limits[h].1
            {
                continue;
            }
            self.load[h] = (c + v.demand.cpu_milli, m + v.demand.mem_mib);
            self.at[i] = h;
            let moved = h != self.home[i];
            let next = if moved {
                (cost.0 + v.demand.mem_mib, cost.1 + 1)
            } else {
                cost
            };
            self.dfs(i + 1, next);
            self.load[h] = (c, m);
        }
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

/// An instance generator: a seed to a problem.
type Maker = fn(u64) -> Problem;

/// The instances of the original comparison: 2 to 6 hosts, up to 12 VMs, loaded towards host 0.
fn mixed(seed: u64) -> Problem {
    let mut g = Gen::new(seed);
    let hosts = 2 + g.below(5);
    let vms = hosts + g.below(13 - hosts);
    let with = g.chance(50);
    g.problem(hosts, vms, with)
}

/// Nearly full partitions (issue 11): 3 to 5 hosts, 95 to 100 % of the CPU and 80 to 100 % of
/// the memory in use, half of them with constraints.
pub(crate) fn nearly_full(seed: u64) -> Problem {
    let mut g = Gen::new(seed);
    let hosts = 3 + g.below(3);
    // 2 or 3 VMs per host, at most 10 VMs.
    let mut per_host: Vec<u64> = (0..hosts).map(|_| 2 + g.below(2)).collect();
    while per_host.iter().sum::<u64>() > 10 {
        if let Some(k) = per_host.iter_mut().find(|k| **k == 3) {
            *k = 2;
        }
    }
    let with = g.chance(50);
    g.nearly_full(&per_host, with)
}

/// Runs the instances `make(seed)` of `seeds`; returns (solved, mean moved-memory ratio,
/// worst ratio).
fn compare(seeds: std::ops::Range<u64>, make: Maker) -> (usize, f64, f64) {
    let (mut solved, mut ratio_sum, mut exhausted, mut pivot_only, mut worst) =
        (0usize, 0.0f64, 0usize, 0usize, 1.0f64);
    let mut helpers = 0usize;
    for seed in seeds.clone() {
        let p = make(seed);
        let out = solve_checked(&p, &Options::default());
        let bound = out
            .result
            .as_ref()
            .ok()
            .map(|plan| (plan.moved_mib(), plan.migrations().count() as u64));
        let opt = optimum(&p, bound);
        match (&out.result, opt) {
            (Ok(plan), Some(((opt_mem, _), helper))) => {
                solved += 1;
                helpers += usize::from(helper);
                let r = if opt_mem == 0 {
                    1.0
                } else {
                    plan.moved_mib() as f64 / opt_mem as f64
                };
                worst = worst.max(r);
                if r > 1.1 && std::env::var("DVMS_VERBOSE").is_ok() {
                    eprintln!(
                        "seed {seed}: ratio {r:.3} ({} vs {opt_mem}) in {} units",
                        plan.moved_mib(),
                        out.work_units
                    );
                }
                ratio_sum += r;
            }
            // Only reachable through a pivot: the validated plan is the proof.
            (Ok(_), None) => pivot_only += 1,
            (Err(_), None) => {
                if std::env::var("DVMS_VERBOSE").is_ok() {
                    eprintln!("seed {seed}: unsolvable {:?}", out.result);
                }
                if matches!(out.result, Err(Unsolvable::BudgetExhausted { .. })) {
                    exhausted += 1;
                }
            }
            (r, o) => panic!("seed {seed}: verdicts differ: solver {r:?}, exhaustive {o:?}\n{p:?}"),
        }
    }
    eprintln!(
        "{solved} solved (worst moved-memory ratio {worst:.3}; {helpers} optima move a VM off a host \
         within its limits), {pivot_only} solved only through pivots, {exhausted} unsolvable ones \
         answered with an exhausted budget"
    );
    (solved, ratio_sum / solved.max(1) as f64, worst)
}

/// `DVMS_SEED=n` (and `DVMS_NEARLY_FULL=1` for the nearly full generator) runs one seed.
fn one_seed() -> Option<(u64, Maker)> {
    let seed = std::env::var("DVMS_SEED").ok()?.parse::<u64>().ok()?;
    let make: Maker = if std::env::var("DVMS_NEARLY_FULL").is_ok() {
        nearly_full
    } else {
        mixed
    };
    Some((seed, make))
}

#[test]
fn solver_matches_exhaustive_search_on_small_instances() {
    if let Some((seed, make)) = one_seed() {
        compare(seed..seed + 1, make);
        return;
    }
    let (solved, ratio, _) = compare(0..2_000, mixed);
    eprintln!(
        "exhaustive comparison: 2000 seeds, {solved} solved, mean moved-memory ratio {ratio:.5}"
    );
    assert!(
        solved > 500,
        "only {solved} of 2000 instances solvable: the generator is too tight"
    );
    assert!(
        ratio <= 1.02,
        "mean moved-memory ratio {ratio:.4} above 1.02"
    );
}

/// Nearly full partitions against the true optimum over every VM (issue 11): within 2 % on
/// average, never above 1.5x.
#[test]
fn solver_matches_exhaustive_search_on_nearly_full_partitions() {
    if one_seed().is_some() {
        return;
    }
    let (solved, ratio, worst) = compare(0..NEARLY_FULL_SEEDS, nearly_full);
    eprintln!(
        "nearly full: {NEARLY_FULL_SEEDS} seeds, {solved} solved, mean moved-memory ratio {ratio:.5}, worst {worst:.3}"
    );
    assert!(solved > 100, "only {solved} nearly full instances solvable");
    assert!(
        ratio <= 1.02,
        "mean moved-memory ratio {ratio:.4} above 1.02"
    );
    assert!(
        worst <= 1.5,
        "worst moved-memory ratio {worst:.3} above 1.5"
    );
}

/// Seeds of the nearly full comparison in the normal test suite.
const NEARLY_FULL_SEEDS: u64 = 400;

#[test]
#[ignore = "long: run with --ignored"]
fn solver_matches_exhaustive_search_on_many_instances() {
    let (solved, ratio, worst) = compare(2_000..22_000, mixed);
    eprintln!(
        "exhaustive comparison: 20000 seeds, {solved} solved, mean moved-memory ratio {ratio:.5}"
    );
    assert!(
        ratio <= 1.02,
        "mean moved-memory ratio {ratio:.4} above 1.02"
    );
    let _ = worst;
    let (solved, ratio, worst) = compare(NEARLY_FULL_SEEDS..NEARLY_FULL_SEEDS + 4_000, nearly_full);
    eprintln!(
        "nearly full: 4000 seeds, {solved} solved, mean moved-memory ratio {ratio:.5}, worst {worst:.3}"
    );
    assert!(
        ratio <= 1.02,
        "mean moved-memory ratio {ratio:.4} above 1.02"
    );
    assert!(
        worst <= 1.5,
        "worst moved-memory ratio {worst:.3} above 1.5"
    );
}

#[test]
#[ignore = "diagnostic: DVMS_SEED=n prints one instance and the answer"]
fn show_one_seed() {
    let Some((seed, make)) = one_seed() else {
        return;
    };
    let p = make(seed);
    for h in &p.hosts {
        eprintln!("host {} limit {:?} cap {:?}", h.id, h.limit(), h.capacity);
    }
    for v in &p.vms {
        eprintln!(
            "vm {} on {} {:?} migratable {}",
            v.id, v.host, v.demand, v.migratable
        );
    }
    eprintln!("{:?}", p.constraints);
    for budget in [1_000_000, 10_000_000, 100_000_000] {
        let out = solve_checked(
            &p,
            &Options {
                budget: dvms_placement::Budget { work_units: budget },
                ..Options::default()
            },
        );
        eprintln!("{out:?}");
    }
}
