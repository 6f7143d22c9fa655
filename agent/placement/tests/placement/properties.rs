//! Plan invariants on random partitions larger than the exhaustive search can check.

use dvms_core::model::{Problem, Unsolvable};
use dvms_placement::{Budget, Mode, Options, solve};

use crate::{Gen, apply, expect_plan, solve_checked};

fn opts(mode: Mode) -> Options {
    Options {
        mode,
        ..Options::default()
    }
}

#[test]
fn plans_are_safe_deterministic_and_final_on_random_partitions() {
    let mut solved = 0;
    for seed in 0..150u64 {
        let mut g = Gen::new(seed);
        let hosts = 4 + g.below(29);
        let vms = hosts * (6 + g.below(5));
        let with = g.chance(50);
        let p = g.problem(hosts, vms, with);
        for mode in [Mode::Full, Mode::Repair] {
            let out = solve_checked(&p, &opts(mode));
            if let Ok(plan) = out.result {
                solved += 1;
                let after = apply(&p, &plan);
                let again = solve(&after, &opts(mode));
                assert_eq!(
                    again.result,
                    Ok(Default::default()),
                    "seed {seed} {mode:?}: not final"
                );
            }
        }
    }
    assert!(solved > 50, "only {solved} random partitions solved");
}

#[test]
fn repair_never_moves_vms_of_healthy_hosts() {
    for seed in 0..200u64 {
        let mut g = Gen::new(1_000 + seed);
        let p = g.problem(10, 80, false);
        let before = healthy_vms(&p);
        if let Ok(plan) = solve_checked(&p, &opts(Mode::Repair)).result {
            assert!(
                plan.migrations().all(|m| !before.contains(&m.vm)),
                "seed {seed}"
            );
        }
    }
}

fn healthy_vms(p: &Problem) -> Vec<dvms_core::model::VmId> {
    p.hosts
        .iter()
        .filter(|h| {
            let used: dvms_core::model::Resources = p
                .vms
                .iter()
                .filter(|v| v.host == h.id)
                .map(|v| v.demand)
                .sum();
            used.fits_in(h.limit())
        })
        .flat_map(|h| p.vms.iter().filter(move |v| v.host == h.id).map(|v| v.id))
        .collect()
}

#[test]
fn a_tiny_budget_is_reported_not_overrun() {
    let mut g = Gen::new(7);
    let p = g.problem(6, 40, false); // 46 units to read it
    for budget in [10, 100, 1_000] {
        let out = solve(
            &p,
            &Options {
                budget: Budget { work_units: budget },
                mode: Mode::Full,
            },
        );
        assert!(
            out.work_units <= budget + 100 + 64,
            "{} units for a budget of {budget}",
            out.work_units
        );
        match out.result {
            Err(Unsolvable::BudgetExhausted { .. } | Unsolvable::NotEnoughCapacity { .. })
            | Ok(_) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
}

#[test]
fn full_mode_never_costs_more_than_repair() {
    for seed in 0..100u64 {
        let mut g = Gen::new(5_000 + seed);
        let with = g.chance(50);
        let p = g.problem(8, 60, with);
        let full = solve_checked(&p, &opts(Mode::Full)).result;
        let repair = solve_checked(&p, &opts(Mode::Repair)).result;
        if let Ok(r) = repair {
            let f = expect_plan(full);
            assert!(
                f.moved_mib() <= r.moved_mib(),
                "seed {seed}: full {} > repair {}",
                f.moved_mib(),
                r.moved_mib()
            );
        }
    }
}

#[test]
fn odd_problems_never_panic_and_plans_stay_safe() {
    use dvms_core::model::{Constraint, NodeId, Resources, Thresholds, VmId};
    for seed in 0..300u64 {
        let mut g = Gen::new(90_000 + seed);
        let hosts = 1 + g.below(6);
        let vms = g.below(14);
        let mut p = g.problem(hosts.max(2), vms, true);
        // Odd capacities and thresholds, empty and huge VMs, ids unknown to the problem.
        for h in &mut p.hosts {
            if g.chance(15) {
                h.thresholds = Thresholds {
                    cpu_pct: g.pick(&[0, 1, 150, 255]),
                    mem_pct: g.pick(&[0, 1, 100, 200]),
                };
            }
            if g.chance(10) {
                h.capacity = Resources::new(g.pick(&[0, 1, 100_000]), g.pick(&[0, 1, 1 << 20]));
            }
        }
        for v in &mut p.vms {
            if g.chance(10) {
                v.demand = Resources::new(g.pick(&[0, 1, 10_000_000]), g.pick(&[0, 1, 1 << 22]));
            }
        }
        if g.chance(30) {
            p.constraints.push(Constraint::Spread {
                vms: vec![VmId(0), VmId(0), VmId(999)],
            });
            p.constraints.push(Constraint::Ban {
                vms: vec![VmId(998)],
                hosts: vec![NodeId(997)],
            });
            p.constraints.push(Constraint::Among {
                vms: vec![VmId(1)],
                groups: vec![],
            });
            p.constraints.push(Constraint::Fence {
                vms: vec![VmId(2)],
                hosts: vec![],
            });
        }
        for mode in [Mode::Full, Mode::Repair] {
            let _ = solve_checked(&p, &opts(mode));
        }
    }
}

#[test]
fn inconsistent_problems_are_invalid() {
    let mut g = Gen::new(3);
    let mut p = g.problem(3, 6, false);
    p.vms[1].id = p.vms[0].id;
    assert!(matches!(
        solve(&p, &Options::default()).result,
        Err(Unsolvable::Invalid { .. })
    ));
    let mut p = g.problem(3, 6, false);
    p.hosts[1].id = p.hosts[0].id;
    assert!(matches!(
        solve(&p, &Options::default()).result,
        Err(Unsolvable::Invalid { .. })
    ));
    let mut p = g.problem(3, 6, false);
    p.vms[0].host = dvms_core::model::NodeId(77);
    assert!(matches!(
        solve(&p, &Options::default()).result,
        Err(Unsolvable::Invalid { .. })
    ));
}
