//! An independent plan validator.
//!
//! It shares no code with the solver: it replays a [`Plan`] on a [`Problem`] with its own maps
//! and checks every step and the final placement. The solver runs it on every plan it returns
//! (in debug builds) and the tests run it on every plan they see.

use std::collections::{BTreeMap, BTreeSet};

use dvms_core::model::{Constraint, NodeId, Plan, Problem, Resources, VmId};

use crate::ids::IdIndex;

/// Why a plan is wrong or unsafe. Steps are counted from 0.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The problem itself is inconsistent.
    #[error("invalid problem: {reason}")]
    InvalidProblem {
        /// What is wrong.
        reason: String,
    },
    /// A step is empty.
    #[error("step {step} is empty")]
    EmptyStep {
        /// The step.
        step: usize,
    },
    /// A migration names a VM that is not in the problem.
    #[error("step {step}: unknown vm {vm}")]
    UnknownVm {
        /// The step.
        step: usize,
        /// The VM.
        vm: VmId,
    },
    /// A migration names a host that is not in the problem.
    #[error("step {step}: unknown host {host}")]
    UnknownHost {
        /// The step.
        step: usize,
        /// The host.
        host: NodeId,
    },
    /// A migration starts from a host the VM is not on.
    #[error("step {step}: {vm} is on {actual}, not on {from}")]
    WrongSource {
        /// The step.
        step: usize,
        /// The VM.
        vm: VmId,
        /// The claimed source.
        from: NodeId,
        /// Where the VM is.
        actual: NodeId,
    },
    /// A migration goes nowhere.
    #[error("step {step}: {vm} migrates to the host it is on")]
    SelfMigration {
        /// The step.
        step: usize,
        /// The VM.
        vm: VmId,
    },
    /// A VM migrates twice in one step.
    #[error("step {step}: {vm} migrates twice")]
    DuplicateVm {
        /// The step.
        step: usize,
        /// The VM.
        vm: VmId,
    },
    /// A VM that must not move moves.
    #[error("step {step}: {vm} must not move")]
    PinnedVm {
        /// The step.
        step: usize,
        /// The VM.
        vm: VmId,
    },
    /// A migration's memory is not the VM's.
    #[error("step {step}: {vm} has {expected} MiB, the plan says {got}")]
    WrongMemory {
        /// The step.
        step: usize,
        /// The VM.
        vm: VmId,
        /// The VM's memory.
        expected: u64,
        /// The migration's memory.
        got: u64,
    },
    /// A destination would exceed its memory capacity or CPU limit during a step.
    #[error("step {step}: host {host} needs {need:?} with limit {limit:?}")]
    Overcommit {
        /// The step.
        step: usize,
        /// The host.
        host: NodeId,
        /// VMs still there plus VMs arriving.
        need: Resources,
        /// CPU threshold limit, memory capacity.
        limit: Resources,
    },
    /// A host takes part in too many migrations in one step.
    #[error("step {step}: host {host} takes part in {count} migrations, more than {cap}")]
    TooManyMigrations {
        /// The step.
        step: usize,
        /// The host.
        host: NodeId,
        /// Migrations in or out.
        count: usize,
        /// The cap.
        cap: usize,
    },
    /// A migration takes a VM, even for the time of a step, where its constraints do not let
    /// it be: see [`validate_plan`] for the rule of each constraint.
    #[error(
        "step {step}: moving {vm} to {host} breaks constraint {constraint} while the plan runs"
    )]
    TransientConstraint {
        /// The step.
        step: usize,
        /// The VM.
        vm: VmId,
        /// Its destination in that step.
        host: NodeId,
        /// Index in `Problem::constraints`.
        constraint: usize,
    },
    /// A host is over its thresholds after the plan.
    #[error("host {host} is over its thresholds after the plan")]
    FinalOverload {
        /// The host.
        host: NodeId,
    },
    /// A constraint is broken (beyond what the pinned VMs force) after the plan.
    #[error("constraint {constraint} is broken after the plan")]
    ConstraintBroken {
        /// Index in `Problem::constraints`.
        constraint: usize,
    },
}

/// Checks that `plan` safely takes `problem`'s placement to a viable one.
///
/// Per step: every migration names a known, movable VM on its `from` host with its memory, at
/// most once; every destination's VMs still there plus arrivals fit (memory within capacity,
/// CPU within the threshold limit); no host takes part in more than `max_per_host` migrations.
/// After the plan: no host over its thresholds (memory within both capacity and threshold),
/// every constraint holds, except that pinned VMs (`root`, `migratable == false`) stay where
/// they are: a VM the pinned ones force to break a constraint is only required not to make it
/// worse (see the crate documentation).
///
/// Constraints at every step: a VM may only ever be (before, during and after each step)
/// where it started or where the constraints would let it end. Each migration of a movable
/// VM, including one through a pivot host, goes to a host that its `ban` and `fence` allow;
/// that holds no other member of a `spread` of the VM during the step (members there before
/// the step, those leaving it in the step included, or arriving in the step); that is, for a
/// `gather`, the host where its members end (one of the pinned members' hosts when they sit on
/// several); and that is, for an `among`, in a group holding every member's final host (in
/// the groups' union when the pinned members fit no single group). A migration that goes
/// straight to a valid final placement meets all of these except the `spread` one, which
/// orders migrations; a pivot host must meet them all.
pub fn validate_plan(problem: &Problem, plan: &Plan, max_per_host: usize) -> Result<(), PlanError> {
    let hosts = IdIndex::new(problem.hosts.iter().map(|h| h.id.0));
    if hosts.first_duplicate.is_some() {
        return Err(PlanError::InvalidProblem {
            reason: "duplicate host".into(),
        });
    }
    let vms = IdIndex::new(problem.vms.iter().map(|v| v.id.0));
    let mut usage = vec![Resources::ZERO; problem.hosts.len()];
    for (i, v) in problem.vms.iter().enumerate() {
        let Some(h) = hosts.get(v.host.0) else {
            return Err(PlanError::InvalidProblem {
                reason: format!("{} on unknown host", v.id),
            });
        };
        usage[h] += v.demand;
        if vms.first_duplicate == Some(i) {
            return Err(PlanError::InvalidProblem {
                reason: format!("duplicate vm {}", v.id),
            });
        }
    }
    // Per VM (by index in `problem.vms`): where it is, whether it may move.
    let mut at: Vec<NodeId> = problem.vms.iter().map(|v| v.host).collect();
    let mut pinned: Vec<bool> = problem.vms.iter().map(|v| !v.migratable).collect();
    for c in &problem.constraints {
        if let Constraint::Root { vms: ids } = c {
            for i in ids.iter().filter_map(|id| vms.get(id.0)) {
                pinned[i] = true;
            }
        }
    }
    // Where each VM ends (the transient rules refer to it); bad migrations are reported below.
    let mut end = at.clone();
    for mig in plan.migrations() {
        if let Some(i) = vms.get(mig.vm.0) {
            end[i] = mig.to;
        }
    }
    for (step, migrations) in plan.steps.iter().enumerate() {
        if migrations.is_empty() {
            return Err(PlanError::EmptyStep { step });
        }
        let mut seen = BTreeSet::new();
        let mut count: BTreeMap<NodeId, usize> = BTreeMap::new();
        let mut arriving: BTreeMap<NodeId, Resources> = BTreeMap::new();
        // Per migration: the VM's index and the destination's.
        let mut idx: Vec<(usize, usize, usize)> = Vec::with_capacity(migrations.len());
        for mig in migrations {
            let vm = mig.vm;
            let Some(i) = vms.get(vm.0) else {
                return Err(PlanError::UnknownVm { step, vm });
            };
            let s = &problem.vms[i];
            let (Some(from), Some(to)) = (hosts.get(mig.from.0), hosts.get(mig.to.0)) else {
                let host = if hosts.get(mig.from.0).is_none() {
                    mig.from
                } else {
                    mig.to
                };
                return Err(PlanError::UnknownHost { step, host });
            };
            let actual = at[i];
            if actual != mig.from {
                return Err(PlanError::WrongSource {
                    step,
                    vm,
                    from: mig.from,
                    actual,
                });
            }
            if mig.from == mig.to {
                return Err(PlanError::SelfMigration { step, vm });
            }
            if !seen.insert(vm) {
                return Err(PlanError::DuplicateVm { step, vm });
            }
            if pinned[i] {
                return Err(PlanError::PinnedVm { step, vm });
            }
            if mig.mem_mib != s.demand.mem_mib {
                return Err(PlanError::WrongMemory {
                    step,
                    vm,
                    expected: s.demand.mem_mib,
                    got: mig.mem_mib,
                });
            }
            *count.entry(mig.from).or_default() += 1;
            *count.entry(mig.to).or_default() += 1;
            *arriving.entry(mig.to).or_default() += s.demand;
            idx.push((i, from, to));
        }
        for (&host, &n) in &count {
            if n > max_per_host.max(1) {
                return Err(PlanError::TooManyMigrations {
                    step,
                    host,
                    count: n,
                    cap: max_per_host.max(1),
                });
            }
        }
        for (mig, &(_, _, to)) in migrations.iter().zip(&idx) {
            let h = &problem.hosts[to];
            let limit = Resources::new(h.limit().cpu_milli, h.capacity.mem_mib);
            let n = usage[to] + arriving.get(&mig.to).copied().unwrap_or(Resources::ZERO);
            if !n.fits_in(limit) {
                return Err(PlanError::Overcommit {
                    step,
                    host: mig.to,
                    need: n,
                    limit,
                });
            }
        }
        let placed = Placed {
            vms: &vms,
            at: &at,
            end: &end,
            pinned: &pinned,
        };
        for mig in migrations {
            if let Some(constraint) = transient_break(problem, &placed, migrations, mig) {
                return Err(PlanError::TransientConstraint {
                    step,
                    vm: mig.vm,
                    host: mig.to,
                    constraint,
                });
            }
        }
        for (mig, &(i, from, to)) in migrations.iter().zip(&idx) {
            let d = problem.vms[i].demand;
            usage[from] -= d;
            usage[to] += d;
            at[i] = mig.to;
        }
    }
    // Hosts in id order: the first one over its thresholds is reported.
    for &(id, h) in &hosts.sorted {
        let spec = &problem.hosts[h];
        let limit = spec.limit();
        let limit = Resources::new(limit.cpu_milli, limit.mem_mib.min(spec.capacity.mem_mib));
        if !usage[h].fits_in(limit) {
            return Err(PlanError::FinalOverload { host: NodeId(id) });
        }
    }
    let placed = Placed {
        vms: &vms,
        at: &at,
        end: &end,
        pinned: &pinned,
    };
    for (ci, c) in problem.constraints.iter().enumerate() {
        if !constraint_holds(c, &placed) {
            return Err(PlanError::ConstraintBroken { constraint: ci });
        }
    }
    Ok(())
}

/// The placement the constraint rules look at: per VM (by index), where it is now, where it
/// ends and whether it is pinned.
struct Placed<'a> {
    vms: &'a IdIndex,
    at: &'a [NodeId],
    end: &'a [NodeId],
    pinned: &'a [bool],
}

impl Placed<'_> {
    /// The VMs of `ids` present in the problem, each once, in id order, by index.
    fn present(&self, ids: &[VmId]) -> Vec<(VmId, usize)> {
        let set: BTreeSet<VmId> = ids.iter().copied().collect();
        set.into_iter()
            .filter_map(|u| self.vms.get(u.0).map(|i| (u, i)))
            .collect()
    }
}

/// The first constraint that `mig` (a migration of `step`, a movable VM's) breaks while the
/// plan runs: `p.at` is the placement before the step, `p.end` the one after the plan.
fn transient_break(
    problem: &Problem,
    p: &Placed<'_>,
    step: &[dvms_core::model::Migration],
    mig: &dvms_core::model::Migration,
) -> Option<usize> {
    let (v, to) = (mig.vm, mig.to);
    problem.constraints.iter().position(|c| match c {
        Constraint::Ban { vms, hosts } => vms.contains(&v) && hosts.contains(&to),
        Constraint::Fence { vms, hosts } => vms.contains(&v) && !hosts.contains(&to),
        Constraint::Spread { vms } => {
            vms.contains(&v)
                && p.present(vms).iter().any(|&(u, i)| {
                    u != v && (p.at[i] == to || step.iter().any(|m| m.vm == u && m.to == to))
                })
        }
        Constraint::Gather { vms } => {
            if !vms.contains(&v) {
                return false;
            }
            let ms = p.present(vms);
            let anchors: BTreeSet<NodeId> = ms
                .iter()
                .filter(|&&(_, i)| p.pinned[i])
                .map(|&(_, i)| p.at[i])
                .collect();
            if anchors.len() > 1 {
                !anchors.contains(&to)
            } else {
                ms.iter().any(|&(_, i)| p.end[i] != to)
            }
        }
        Constraint::Among { vms, groups } => {
            if !vms.contains(&v) {
                return false;
            }
            let ms = p.present(vms);
            let repairable = groups.iter().any(|g| {
                ms.iter()
                    .filter(|&&(_, i)| p.pinned[i])
                    .all(|&(_, i)| g.contains(&p.at[i]))
            });
            if repairable {
                !groups
                    .iter()
                    .any(|g| g.contains(&to) && ms.iter().all(|&(_, i)| g.contains(&p.end[i])))
            } else {
                !groups.iter().any(|g| g.contains(&to))
            }
        }
        _ => false,
    })
}

/// The constraint semantics, written independently of the solver's model (on the placement
/// `p.at`).
fn constraint_holds(c: &Constraint, p: &Placed<'_>) -> bool {
    // Members present in the problem, with their final host and whether they are pinned.
    let members = |vms: &[VmId]| -> Vec<(NodeId, bool)> {
        p.present(vms)
            .iter()
            .map(|&(_, i)| (p.at[i], p.pinned[i]))
            .collect()
    };
    match c {
        Constraint::Ban { vms, hosts } => {
            members(vms).iter().all(|&(h, p)| p || !hosts.contains(&h))
        }
        Constraint::Fence { vms, hosts } => {
            members(vms).iter().all(|&(h, p)| p || hosts.contains(&h))
        }
        Constraint::Spread { vms } => {
            let ms = members(vms);
            ms.iter()
                .enumerate()
                .all(|(i, &(h, p))| p || ms.iter().enumerate().all(|(j, &(g, _))| i == j || g != h))
        }
        Constraint::Gather { vms } => {
            let ms = members(vms);
            let anchors: BTreeSet<NodeId> = ms.iter().filter(|m| m.1).map(|m| m.0).collect();
            if anchors.len() > 1 {
                ms.iter().all(|(h, p)| *p || anchors.contains(h))
            } else {
                ms.iter().all(|m| m.0 == ms[0].0)
            }
        }
        Constraint::Among { vms, groups } => {
            let ms = members(vms);
            let repairable = groups
                .iter()
                .any(|g| ms.iter().filter(|m| m.1).all(|m| g.contains(&m.0)));
            if repairable {
                groups.iter().any(|g| ms.iter().all(|m| g.contains(&m.0)))
            } else {
                ms.iter()
                    .all(|(h, p)| *p || groups.iter().any(|g| g.contains(h)))
            }
        }
        Constraint::Root { .. } => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use dvms_core::model::{HostSpec, Migration, Thresholds, VmSpec};

    use super::*;

    /// h1 (7000, 4096) runs a (3000, 2048) and b (5000, 1024): over its CPU; h2, h3 are empty.
    fn problem() -> Problem {
        let host = |id, mem| HostSpec {
            id: NodeId(id),
            capacity: Resources::new(7000, mem),
            thresholds: Thresholds::default(),
        };
        let vm = |id, cpu, mem| VmSpec {
            id: VmId(id),
            host: NodeId(1),
            demand: Resources::new(cpu, mem),
            migratable: true,
        };
        Problem {
            hosts: vec![host(1, 4096), host(2, 4096), host(3, 2048)],
            vms: vec![vm(1, 3000, 2048), vm(2, 5000, 1024)],
            constraints: vec![],
        }
    }

    fn mig(vm: u64, from: u64, to: u64, mem: u64) -> Migration {
        Migration {
            vm: VmId(vm),
            from: NodeId(from),
            to: NodeId(to),
            mem_mib: mem,
        }
    }

    fn plan(steps: Vec<Vec<Migration>>) -> Plan {
        Plan { steps }
    }

    #[test]
    fn a_safe_plan_passes() {
        assert_eq!(
            validate_plan(&problem(), &plan(vec![vec![mig(1, 1, 2, 2048)]]), 2),
            Ok(())
        );
    }

    #[test]
    fn sparse_and_duplicate_ids_are_found() {
        // Ids far apart (found by binary search, not by offset).
        let mut p = problem();
        for h in &mut p.hosts {
            h.id = NodeId(h.id.0 * 1_000_003);
        }
        for v in &mut p.vms {
            v.host = NodeId(v.host.0 * 1_000_003);
            v.id = VmId(v.id.0 * 77_777);
        }
        let ok = plan(vec![vec![mig(77_777, 1_000_003, 2_000_006, 2048)]]);
        assert_eq!(validate_plan(&p, &ok, 2), Ok(()));
        let unknown = plan(vec![vec![mig(77_778, 1_000_003, 2_000_006, 2048)]]);
        assert_eq!(
            validate_plan(&p, &unknown, 2),
            Err(PlanError::UnknownVm {
                step: 0,
                vm: VmId(77_778)
            })
        );
        assert!(matches!(
            validate_plan(&p, &plan(vec![vec![mig(77_777, 1_000_003, 3, 2048)]]), 2),
            Err(PlanError::UnknownHost { .. })
        ));
        // The first repeated id is reported.
        let mut dup = problem();
        dup.vms.push(dup.vms[1]);
        dup.vms.push(dup.vms[0]);
        assert_eq!(
            validate_plan(&dup, &Plan::default(), 2),
            Err(PlanError::InvalidProblem {
                reason: "duplicate vm vm2".into()
            })
        );
    }

    #[test]
    fn an_empty_plan_on_an_overloaded_host_fails() {
        assert_eq!(
            validate_plan(&problem(), &Plan::default(), 2),
            Err(PlanError::FinalOverload { host: NodeId(1) })
        );
    }

    #[test]
    fn step_errors_are_caught() {
        let p = problem();
        let cases = [
            (vec![vec![]], PlanError::EmptyStep { step: 0 }),
            (
                vec![vec![mig(9, 1, 2, 1)]],
                PlanError::UnknownVm {
                    step: 0,
                    vm: VmId(9),
                },
            ),
            (
                vec![vec![mig(1, 1, 9, 2048)]],
                PlanError::UnknownHost {
                    step: 0,
                    host: NodeId(9),
                },
            ),
            (
                vec![vec![mig(1, 2, 3, 2048)]],
                PlanError::WrongSource {
                    step: 0,
                    vm: VmId(1),
                    from: NodeId(2),
                    actual: NodeId(1),
                },
            ),
            (
                vec![vec![mig(1, 1, 1, 2048)]],
                PlanError::SelfMigration {
                    step: 0,
                    vm: VmId(1),
                },
            ),
            (
                vec![vec![mig(1, 1, 2, 2048), mig(1, 1, 3, 2048)]],
                PlanError::DuplicateVm {
                    step: 0,
                    vm: VmId(1),
                },
            ),
            (
                vec![vec![mig(1, 1, 2, 100)]],
                PlanError::WrongMemory {
                    step: 0,
                    vm: VmId(1),
                    expected: 2048,
                    got: 100,
                },
            ),
        ];
        for (steps, want) in cases {
            assert_eq!(validate_plan(&p, &plan(steps), 2), Err(want));
        }
    }

    #[test]
    fn arrivals_count_together_and_sources_release_after_the_step() {
        let mut p = problem();
        // Both VMs to h2 in one step: 3072 MiB fits, 8000 milli does not.
        let both = plan(vec![vec![mig(1, 1, 2, 2048), mig(2, 1, 2, 1024)]]);
        assert!(matches!(
            validate_plan(&p, &both, 2),
            Err(PlanError::Overcommit { step: 0, .. })
        ));
        // A swap in one step is unsafe when memory is full: h3 (2048) takes a only after b left.
        p.vms[1].host = NodeId(3);
        p.hosts[2].capacity.mem_mib = 1024;
        let swap = plan(vec![vec![mig(1, 1, 3, 2048), mig(2, 3, 1, 1024)]]);
        assert!(matches!(
            validate_plan(&p, &swap, 2),
            Err(PlanError::Overcommit { step: 0, .. })
        ));
    }

    #[test]
    fn the_cap_counts_migrations_in_and_out() {
        let p = problem();
        let two = plan(vec![vec![mig(1, 1, 2, 2048), mig(2, 1, 3, 1024)]]);
        assert_eq!(validate_plan(&p, &two, 2), Ok(()));
        assert_eq!(
            validate_plan(&p, &two, 1),
            Err(PlanError::TooManyMigrations {
                step: 0,
                host: NodeId(1),
                count: 2,
                cap: 1
            })
        );
    }

    #[test]
    fn pinned_vms_and_constraints_are_enforced() {
        let mut p = problem();
        p.constraints.push(Constraint::Root { vms: vec![VmId(1)] });
        assert_eq!(
            validate_plan(&p, &plan(vec![vec![mig(1, 1, 2, 2048)]]), 2),
            Err(PlanError::PinnedVm {
                step: 0,
                vm: VmId(1)
            })
        );
        let mut p = problem();
        p.constraints.push(Constraint::Ban {
            vms: vec![VmId(1)],
            hosts: vec![NodeId(2)],
        });
        let to_h2 = plan(vec![vec![mig(1, 1, 2, 2048)]]);
        let transient = Err(PlanError::TransientConstraint {
            step: 0,
            vm: VmId(1),
            host: NodeId(2),
            constraint: 0,
        });
        assert_eq!(validate_plan(&p, &to_h2, 2), transient);
        p.constraints[0] = Constraint::Gather {
            vms: vec![VmId(1), VmId(2)],
        };
        assert_eq!(validate_plan(&p, &to_h2, 2), transient);
        // Broken before the plan and not repaired: caught after the plan.
        p.constraints[0] = Constraint::Ban {
            vms: vec![VmId(2)],
            hosts: vec![NodeId(1)],
        };
        assert_eq!(
            validate_plan(&p, &to_h2, 2),
            Err(PlanError::ConstraintBroken { constraint: 0 })
        );
    }

    /// h1 runs a and b, h2 runs c, h3 runs d (small VMs, ample room).
    fn four() -> Problem {
        let mut p = problem();
        p.hosts[2].capacity.mem_mib = 8192;
        p.hosts.push(HostSpec {
            id: NodeId(4),
            capacity: Resources::new(7000, 8192),
            thresholds: Thresholds::default(),
        });
        p.vms[1].demand = Resources::new(1000, 1024);
        for (id, host) in [(3, 2), (4, 3)] {
            p.vms.push(VmSpec {
                id: VmId(id),
                host: NodeId(host),
                demand: Resources::new(1000, 1024),
                migratable: true,
            });
        }
        p
    }

    #[test]
    fn spread_members_never_share_a_host_even_during_a_step() {
        let mut p = four();
        p.constraints.push(Constraint::Spread {
            vms: vec![VmId(1), VmId(3)],
        });
        // v1 arrives at h2 while v3 leaves it in the same step: together during the step.
        let same_step = plan(vec![vec![mig(1, 1, 2, 2048), mig(3, 2, 4, 1024)]]);
        assert!(matches!(
            validate_plan(&p, &same_step, 2),
            Err(PlanError::TransientConstraint {
                step: 0,
                constraint: 0,
                ..
            })
        ));
        let ordered = plan(vec![vec![mig(3, 2, 4, 1024)], vec![mig(1, 1, 2, 2048)]]);
        assert_eq!(validate_plan(&p, &ordered, 2), Ok(()));
        // Two members arriving at one host in one step.
        let both = plan(vec![vec![mig(1, 1, 4, 2048), mig(3, 2, 4, 1024)]]);
        assert!(matches!(
            validate_plan(&p, &both, 2),
            Err(PlanError::TransientConstraint { step: 0, .. })
        ));
    }

    #[test]
    fn gather_and_among_members_only_go_where_they_end() {
        let mut p = four();
        // Gather v1 and v3: both end on h3; v1 through h4 (a pivot) breaks it.
        p.constraints.push(Constraint::Gather {
            vms: vec![VmId(1), VmId(3)],
        });
        let direct = plan(vec![vec![mig(1, 1, 3, 2048), mig(3, 2, 3, 1024)]]);
        assert_eq!(validate_plan(&p, &direct, 2), Ok(()));
        let pivot = plan(vec![
            vec![mig(1, 1, 4, 2048), mig(3, 2, 3, 1024)],
            vec![mig(1, 4, 3, 2048)],
        ]);
        assert!(matches!(
            validate_plan(&p, &pivot, 2),
            Err(PlanError::TransientConstraint {
                step: 0,
                host: NodeId(4),
                ..
            })
        ));
        // Among v1, v3 over {h1, h2} | {h3, h4}: both end in {h1, h2}; v1 through h4 breaks it.
        p.constraints[0] = Constraint::Among {
            vms: vec![VmId(1), VmId(3)],
            groups: vec![vec![NodeId(1), NodeId(2)], vec![NodeId(3), NodeId(4)]],
        };
        let pivot = plan(vec![vec![mig(1, 1, 4, 2048)], vec![mig(1, 4, 2, 2048)]]);
        assert!(matches!(
            validate_plan(&p, &pivot, 2),
            Err(PlanError::TransientConstraint {
                step: 0,
                host: NodeId(4),
                ..
            })
        ));
        let inside = plan(vec![vec![mig(2, 1, 2, 1024)]]);
        assert_eq!(validate_plan(&p, &inside, 2), Ok(()));
    }

    #[test]
    fn a_pinned_vm_on_a_banned_host_is_tolerated() {
        let mut p = problem();
        p.vms[0].migratable = false;
        p.constraints.push(Constraint::Ban {
            vms: vec![VmId(1)],
            hosts: vec![NodeId(1)],
        });
        assert_eq!(
            validate_plan(&p, &plan(vec![vec![mig(2, 1, 2, 1024)]]), 2),
            Ok(())
        );
    }
}
