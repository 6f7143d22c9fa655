//! Plan invariants as property tests (STYLE 3.4): any answer the solver gives is safe, final
//! and deterministic, whatever the hosts, VMs and constraints.

use dvms_core::model::{
    Constraint, HostSpec, NodeId, Problem, Resources, Thresholds, VmId, VmSpec,
};
use dvms_placement::{Budget, Mode, Options, PlanOptions, solve, solve_with, validate_plan};
use proptest::prelude::*;

use crate::apply;

fn problem_strategy() -> impl Strategy<Value = Problem> {
    (2u64..7).prop_flat_map(|hosts| {
        let host = (
            prop::sample::select(vec![4000u64, 7000, 8000]),
            prop::sample::select(vec![8192u64, 16384]),
            70u8..=100,
        );
        let vm = (
            0..hosts,
            0u64..4000,
            prop::sample::select(vec![512u64, 1024, 2048, 4096]),
            prop::bool::weighted(0.9),
        );
        let constraint = (
            0u8..6,
            prop::collection::vec(0u64..14, 1..4),
            prop::collection::vec(0..hosts, 1..3),
        );
        (
            prop::collection::vec(host, hosts as usize),
            prop::collection::vec(vm, 1..14),
            prop::collection::vec(constraint, 0..3),
        )
            .prop_map(move |(hs, vs, cs)| {
                let hosts: Vec<HostSpec> = hs
                    .into_iter()
                    .enumerate()
                    .map(|(i, (cpu, mem, pct))| HostSpec {
                        id: NodeId(i as u64),
                        capacity: Resources::new(cpu, mem),
                        thresholds: Thresholds {
                            cpu_pct: pct,
                            mem_pct: 100,
                        },
                    })
                    .collect();
                let vms: Vec<VmSpec> = vs
                    .into_iter()
                    .enumerate()
                    .map(|(i, (h, cpu, mem, migratable))| VmSpec {
                        id: VmId(i as u64),
                        host: NodeId(h),
                        demand: Resources::new(cpu, mem),
                        migratable,
                    })
                    .collect();
                let ids = |v: Vec<u64>| v.into_iter().map(VmId).collect::<Vec<_>>();
                let hids = |v: Vec<u64>| v.into_iter().map(NodeId).collect::<Vec<_>>();
                let constraints = cs
                    .into_iter()
                    .map(|(kind, v, h)| match kind {
                        0 => Constraint::Ban {
                            vms: ids(v),
                            hosts: hids(h),
                        },
                        1 => Constraint::Fence {
                            vms: ids(v),
                            hosts: hids(h),
                        },
                        2 => Constraint::Spread { vms: ids(v) },
                        3 => Constraint::Gather { vms: ids(v) },
                        4 => Constraint::Among {
                            vms: ids(v),
                            groups: vec![hids(h), vec![NodeId(0)]],
                        },
                        _ => Constraint::Root { vms: ids(v) },
                    })
                    .collect();
                Problem {
                    hosts,
                    vms,
                    constraints,
                }
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn every_answer_is_safe_final_and_deterministic(p in problem_strategy(), repair in any::<bool>(), cap in 1usize..4) {
        let opts = Options { mode: if repair { Mode::Repair } else { Mode::Full }, budget: Budget { work_units: 200_000 } };
        let plan_opts = PlanOptions { max_per_host: cap };
        let out = solve_with(&p, &opts, &plan_opts);
        prop_assert_eq!(&solve_with(&p, &opts, &plan_opts), &out);
        if let Ok(plan) = &out.result {
            prop_assert_eq!(validate_plan(&p, plan, cap), Ok(()));
            let after = apply(&p, plan);
            prop_assert_eq!(solve(&after, &opts).result, Ok(Default::default()));
        }
    }
}
