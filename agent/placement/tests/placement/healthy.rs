//! Nearly full partitions where the cheapest plan moves a VM off a *healthy* host to make room
//! (issue 11). The optimum of each case is argued in its comment.

use dvms_core::model::{HostSpec, NodeId, Problem, Resources, Thresholds, VmId, VmSpec};
use dvms_placement::Options;

use crate::{expect_plan, solve_checked};

/// Four hosts of 7000 milli and 64 GiB, 37 VMs, about 99 % of the CPU in use. Host 0 is 400
/// milli over: `a` (400 milli, 1 GiB) or its four 4-GiB VMs of 100 milli must leave. No host
/// has room for `a` (slack 100, 350, 0), so without touching a healthy host the cheapest answer
/// moves the four 4-GiB VMs (16 GiB). Moving `c` (300 milli, 1 GiB) from host 1 to host 2
/// first makes room for `a` on host 1: 2 GiB in two migrations. Every VM has at least 1 GiB and
/// one migration cannot free 400 milli anywhere, so 2 GiB is the optimum.
pub(crate) fn four_hosts_99_percent() -> Problem {
    let host = |i| HostSpec {
        id: NodeId(i),
        capacity: Resources::new(7000, 65536),
        thresholds: Thresholds::default(),
    };
    let mut vms = Vec::new();
    let mut vm = |host: u64, cpu: u64, mem: u64| {
        let id = VmId(vms.len() as u64);
        vms.push(VmSpec {
            id,
            host: NodeId(host),
            demand: Resources::new(cpu, mem),
            migratable: true,
        });
    };
    // Host 0: a, the four b's, five fillers: 400 + 400 + 6600 = 7400.
    vm(0, 400, 1024);
    for _ in 0..4 {
        vm(0, 100, 4096);
    }
    for _ in 0..5 {
        vm(0, 1320, 1024);
    }
    // Host 1: c and nine fillers: 300 + 6000 + 600 = 6900 (slack 100).
    vm(1, 300, 1024);
    for _ in 0..8 {
        vm(1, 750, 1024);
    }
    vm(1, 600, 1024);
    // Host 2: 9 VMs, 6650 (slack 350).
    for _ in 0..7 {
        vm(2, 750, 1024);
    }
    vm(2, 800, 1024);
    vm(2, 600, 1024);
    // Host 3: 9 VMs, 7000 (slack 0), each too big for any other host's room.
    for _ in 0..8 {
        vm(3, 780, 1024);
    }
    vm(3, 760, 1024);
    Problem {
        hosts: (0..4).map(host).collect(),
        vms,
        constraints: vec![],
    }
}

#[test]
fn the_cheap_answer_moves_a_vm_off_a_healthy_host() {
    let p = four_hosts_99_percent();
    let load = |h: u64| -> u64 {
        p.vms
            .iter()
            .filter(|v| v.host == NodeId(h))
            .map(|v| v.demand.cpu_milli)
            .sum()
    };
    assert_eq!(
        [load(0), load(1), load(2), load(3)],
        [7400, 6900, 6650, 7000]
    );
    assert!(p.vms.len() > 32, "larger than the former small-problem cut");
    let plan = expect_plan(solve_checked(&p, &Options::default()).result);
    assert_eq!(
        (plan.moved_mib(), plan.migrations().count()),
        (2048, 2),
        "{plan:?}"
    );
}
