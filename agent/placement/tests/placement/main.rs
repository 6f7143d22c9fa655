//! The placement solver's integration tests (one binary): golden scenarios, the comparison
//! against an exhaustive search, the instance format and plan properties.

// A test binary: helpers outside `#[test]` functions panic on purpose too.
#![allow(clippy::unwrap_used)]

mod exhaustive;
mod golden;
mod healthy;
mod instance;
mod properties;
mod transient;

use dvms_core::model::{
    Constraint, HostSpec, NodeId, Plan, Problem, Resources, Thresholds, Unsolvable, VmId, VmSpec,
};
use dvms_placement::{DEFAULT_MAX_PER_HOST, Options, Outcome, solve, validate_plan};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// Solves and checks the answer: a returned plan passes the validator; the same input gives
/// the same output.
pub(crate) fn solve_checked(problem: &Problem, opts: &Options) -> Outcome {
    let out = solve(problem, opts);
    if let Ok(plan) = &out.result {
        if let Err(e) = validate_plan(problem, plan, DEFAULT_MAX_PER_HOST) {
            panic!("unsafe plan ({e}): {plan:?}\nproblem: {problem:?}");
        }
    }
    assert_eq!(solve(problem, opts), out, "solve is not deterministic");
    out
}

/// The plan, or a panic naming the reason.
pub(crate) fn expect_plan(r: Result<Plan, Unsolvable>) -> Plan {
    match r {
        Ok(p) => p,
        Err(e) => panic!("expected a plan, got: {e}"),
    }
}

/// The problem after `plan` ran.
pub(crate) fn apply(problem: &Problem, plan: &Plan) -> Problem {
    let mut p = problem.clone();
    for m in plan.migrations() {
        let v = p.vms.iter_mut().find(|v| v.id == m.vm).unwrap();
        assert_eq!(v.host, m.from);
        v.host = m.to;
    }
    p
}

/// A small seeded random source for instance generators.
pub(crate) struct Gen(ChaCha8Rng);

impl Gen {
    pub(crate) fn new(seed: u64) -> Gen {
        Gen(ChaCha8Rng::seed_from_u64(seed))
    }

    /// Uniform in `0..n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0.next_u64() % n.max(1)
    }

    /// True with probability `pct` %.
    pub(crate) fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }

    pub(crate) fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[usize::try_from(self.below(xs.len() as u64)).unwrap()]
    }

    /// `k` distinct values of `0..n`, in increasing order.
    pub(crate) fn subset(&mut self, n: u64, k: u64) -> Vec<u64> {
        let mut all: Vec<u64> = (0..n).collect();
        for i in 0..all.len() {
            let j = i + usize::try_from(self.below((all.len() - i) as u64)).unwrap();
            all.swap(i, j);
        }
        let mut out: Vec<u64> = all.into_iter().take(usize::try_from(k).unwrap()).collect();
        out.sort_unstable();
        out
    }

    /// A nearly full partition (issue 11) that has a viable placement: each host is first
    /// filled with `per_host[h]` VMs using 95 to 100 % of its CPU limit and 80 to 100 % of its
    /// memory, then 1 to 3 VMs move to other hosts whose physical memory still holds them (so
    /// some hosts are over their CPU limit). Random constraints if `constraints`.
    pub(crate) fn nearly_full(&mut self, per_host: &[u64], constraints: bool) -> Problem {
        let hosts = per_host.len() as u64;
        let mut p = Problem::default();
        for (h, &k) in per_host.iter().enumerate() {
            let spec = HostSpec {
                id: NodeId(h as u64),
                capacity: Resources::new(self.pick(&[4000, 7000, 8000]), self.pick(&[4096, 8192])),
                thresholds: Thresholds {
                    cpu_pct: self.pick(&[100, 100, 100, 90]),
                    mem_pct: 100,
                },
            };
            let cpu_total = spec.limit().cpu_milli * (95 + self.below(6)) / 100;
            let mem_total = spec.limit().mem_mib * (80 + self.below(21)) / 100;
            let weights: Vec<(u64, u64)> = (0..k)
                .map(|_| (1 + self.below(6), 1 + self.below(6)))
                .collect();
            let (wc, wm) = weights
                .iter()
                .fold((0, 0), |(a, b), &(c, m)| (a + c, b + m));
            for &(c, m) in &weights {
                p.vms.push(VmSpec {
                    id: VmId(p.vms.len() as u64),
                    host: spec.id,
                    demand: Resources::new(
                        (cpu_total * c / wc) / 100 * 100,
                        ((mem_total * m / wm) / 256 * 256).max(256),
                    ),
                    migratable: !self.chance(5),
                });
            }
            p.hosts.push(spec);
        }
        let hi = |h: NodeId| usize::try_from(h.0).unwrap();
        let mut mem_used = vec![0u64; per_host.len()];
        for v in &p.vms {
            mem_used[hi(v.host)] += v.demand.mem_mib;
        }
        for _ in 0..1 + self.below(3) {
            let i = usize::try_from(self.below(p.vms.len() as u64)).unwrap();
            let to = NodeId(self.below(hosts));
            let (from, mem) = (p.vms[i].host, p.vms[i].demand.mem_mib);
            if to != from && mem_used[hi(to)] + mem <= p.hosts[hi(to)].capacity.mem_mib {
                mem_used[hi(from)] -= mem;
                mem_used[hi(to)] += mem;
                p.vms[i].host = to;
            }
        }
        if constraints {
            let n = p.vms.len() as u64;
            self.add_constraints(&mut p, hosts, n);
        }
        p
    }

    /// A random problem with `hosts` hosts and `vms` VMs of mixed sizes, loaded towards the
    /// first host so that it is often overloaded, with random constraints if `constraints`.
    pub(crate) fn problem(&mut self, hosts: u64, vms: u64, constraints: bool) -> Problem {
        let mut p = Problem::default();
        for h in 0..hosts {
            p.hosts.push(HostSpec {
                id: NodeId(h),
                capacity: Resources::new(
                    self.pick(&[4000, 7000, 8000]),
                    self.pick(&[8192, 16384, 32768]),
                ),
                thresholds: Thresholds {
                    cpu_pct: self.pick(&[100, 100, 90, 80]),
                    mem_pct: self.pick(&[100, 100, 100, 90]),
                },
            });
        }
        // About 85 % of a 6300-milli host on average; smaller memories on dense hosts.
        let avg_cpu = 5400 * hosts / vms.max(1);
        let mems: &[u64] = if vms > 4 * hosts {
            &[512, 1024, 1024, 2048]
        } else {
            &[512, 1024, 1024, 2048, 4096, 8192]
        };
        // Running VMs fit their host's physical memory (CPU demand may exceed it).
        let hi = |h: u64| usize::try_from(h).unwrap();
        let mut mem_used = vec![0u64; hi(hosts)];
        for v in 0..vms {
            let mut host = if self.chance(35) {
                0
            } else {
                self.below(hosts)
            };
            let mem = self.pick(mems);
            for _ in 0..hosts {
                if mem_used[hi(host)] + mem <= p.hosts[hi(host)].capacity.mem_mib {
                    break;
                }
                host = (host + 1) % hosts;
            }
            mem_used[hi(host)] += mem;
            p.vms.push(VmSpec {
                id: VmId(v),
                host: NodeId(host),
                demand: Resources::new(self.below(2 * avg_cpu / 100 + 1) * 100, mem),
                migratable: !self.chance(5),
            });
        }
        if constraints {
            self.add_constraints(&mut p, hosts, vms);
        }
        p
    }

    /// Up to three random constraints over VM ids `0..vms` and hosts `0..hosts`.
    fn add_constraints(&mut self, p: &mut Problem, hosts: u64, vms: u64) {
        let n_constraints = self.below(4);
        for _ in 0..n_constraints {
            let vm_set = |g: &mut Gen, k: u64| -> Vec<VmId> {
                g.subset(vms, k.min(vms)).into_iter().map(VmId).collect()
            };
            let host_set = |g: &mut Gen, k: u64| -> Vec<NodeId> {
                g.subset(hosts, k.min(hosts))
                    .into_iter()
                    .map(NodeId)
                    .collect()
            };
            let c = match self.below(6) {
                0 => {
                    let k = 1 + self.below(2);
                    let n = 1 + self.below(2);
                    Constraint::Ban {
                        vms: vm_set(self, k),
                        hosts: host_set(self, n),
                    }
                }
                1 => {
                    let k = 1 + self.below(2);
                    let n = 2 + self.below(3);
                    Constraint::Fence {
                        vms: vm_set(self, k),
                        hosts: host_set(self, n),
                    }
                }
                2 => {
                    let k = 2 + self.below(2);
                    Constraint::Spread {
                        vms: vm_set(self, k),
                    }
                }
                3 => Constraint::Gather {
                    vms: vm_set(self, 2),
                },
                4 => {
                    let k = 2 + self.below(2);
                    let split = 1 + self.below(hosts - 1);
                    let (a, b): (Vec<NodeId>, Vec<NodeId>) =
                        (0..hosts).map(NodeId).partition(|h| h.0 < split);
                    Constraint::Among {
                        vms: vm_set(self, k),
                        groups: vec![a, b],
                    }
                }
                _ => Constraint::Root {
                    vms: vm_set(self, 1),
                },
            };
            p.constraints.push(c);
        }
    }
}
