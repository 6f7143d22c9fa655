//! Constraints hold at every step, pivots included (issue 11): a swap through a pivot host
//! must send the VM that may wait there, not a `gather` or `among` member.

use dvms_core::model::{
    Constraint, HostSpec, NodeId, Problem, Resources, Thresholds, VmId, VmSpec,
};
use dvms_placement::Options;

use crate::{expect_plan, solve_checked};

/// h0 runs x and f0, h1 runs w and y (4 GiB each, both hosts full); h2 is empty but its
/// memory threshold (40 %) lets no 4-GiB VM end there, only wait there; h3 is full. x is banned
/// from h0 and w from h1: they must swap, through h2.
fn swap_through_h2(y_pinned: bool, constraint: Constraint) -> Problem {
    let host = |i, mem_pct| HostSpec {
        id: NodeId(i),
        capacity: Resources::new(100_000, 8192),
        thresholds: Thresholds {
            cpu_pct: 100,
            mem_pct,
        },
    };
    let vm = |i, h, mem, migratable| VmSpec {
        id: VmId(i),
        host: NodeId(h),
        demand: Resources::new(100, mem),
        migratable,
    };
    Problem {
        hosts: vec![host(0, 100), host(1, 100), host(2, 40), host(3, 100)],
        // x = 0, f0 = 1, w = 2, y = 3, f3 = 4.
        vms: vec![
            vm(0, 0, 4096, true),
            vm(1, 0, 4096, true),
            vm(2, 1, 4096, true),
            vm(3, 1, 4096, !y_pinned),
            vm(4, 3, 8192, true),
        ],
        constraints: vec![
            Constraint::Ban {
                vms: vec![VmId(0)],
                hosts: vec![NodeId(0)],
            },
            Constraint::Ban {
                vms: vec![VmId(2)],
                hosts: vec![NodeId(1)],
            },
            constraint,
        ],
    }
}

fn check_swap(p: &Problem) {
    // solve_checked validates every step, including the transient constraint rules.
    let plan = expect_plan(solve_checked(p, &Options::default()).result);
    assert_eq!(
        (plan.moved_mib(), plan.migrations().count()),
        (3 * 4096, 3),
        "{plan:?}"
    );
    let pivoted: Vec<VmId> = plan
        .migrations()
        .filter(|m| m.to == NodeId(2))
        .map(|m| m.vm)
        .collect();
    assert_eq!(pivoted, vec![VmId(2)], "only w may wait on h2: {plan:?}");
}

#[test]
fn an_among_member_never_waits_outside_its_final_group() {
    // Among x, y over {h0, h1} | {h2, h3}: x ends on h1 with y, so x must not wait on h2.
    check_swap(&swap_through_h2(
        false,
        Constraint::Among {
            vms: vec![VmId(0), VmId(3)],
            groups: vec![vec![NodeId(0), NodeId(1)], vec![NodeId(2), NodeId(3)]],
        },
    ));
}

#[test]
fn a_gather_member_only_moves_to_where_the_group_ends() {
    // Gather x with y, pinned on h1: x goes to h1, never through h2.
    check_swap(&swap_through_h2(
        true,
        Constraint::Gather {
            vms: vec![VmId(0), VmId(3)],
        },
    ));
}
