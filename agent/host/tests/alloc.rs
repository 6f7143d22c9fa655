//! Steady-state sampling allocates nothing: 200 fake VMs, counters advancing between
//! samples, a counting global allocator around `Monitor::sample`. Steady state starts once
//! the VMs are older than the last backstop rediscovery (32 s); the cheap per-sample checks
//! for a changed cgroup or thread set run in every sample measured.
//!
//! Its own binary without the test harness, so no other thread allocates meanwhile.

use std::alloc::System;
use std::time::{Duration, Instant};

use dvms_host::Monitor;
use dvms_host::fakeroot::{FakeRoot, FakeVmIds};
use dvms_host::names::scope_dir_name;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const VMS: usize = 200;
/// VMs without `vcpuN` cgroups and with unnamed threads (libvirt without CPU cgroups, QEMU
/// without `debug-threads=on`), whose cheap rediscovery checks (`statat`, `fstat`) run at
/// every sample.
const BARE: usize = 10;

/// Turns a fake VM into one without `libvirt/` cgroups and with unnamed vCPU threads.
fn make_bare(root: &FakeRoot, name: &str, ids: FakeVmIds, vcpus: u32) -> std::io::Result<()> {
    let scope = root
        .root()
        .join("sys/fs/cgroup/machine.slice")
        .join(scope_dir_name(ids.id, name));
    std::fs::remove_dir_all(scope.join("libvirt"))?;
    std::fs::write(scope.join("cgroup.procs"), format!("{}\n", ids.pid))?;
    let task = root
        .root()
        .join("proc")
        .join(ids.pid.to_string())
        .join("task");
    for n in 1..=vcpus {
        let comm = task.join((ids.pid + n).to_string()).join("comm");
        std::fs::write(comm, "qemu-system-x86\n")?;
    }
    Ok(())
}

fn main() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut root = FakeRoot::create(dir.path().join("h00"), 64, 1 << 20).expect("fake root");
    let names: Vec<String> = (0..VMS).map(|i| format!("vm-{i:04}")).collect();
    for (i, n) in names.iter().enumerate() {
        let vcpus = 1 + (i % 4) as u32;
        root.add_vm(n, vcpus, 4096).expect("add vm");
    }
    for i in 0..BARE {
        let name = format!("bare-{i:02}");
        let ids = root.add_vm(&name, 2, 1024).expect("add vm");
        make_bare(&root, &name, ids, 2).expect("bare vm");
    }
    let mut m = Monitor::new(root.monitor_config()).expect("monitor");
    // Synthetic sample times one second apart: the rates stay plausible however long the
    // writes between samples take.
    let t0 = Instant::now();
    let at = |k: u32| t0 + Duration::from_secs(u64::from(k));
    // Warm-up: discovery allocates (names, thread lists, the map), and so do the backstop
    // rediscoveries of young VMs (at 1, 2, 4, 8, 16 and 32 s of age).
    for k in [0, 1, 2, 4, 8, 16, 32] {
        assert_eq!(m.sample_at(at(k)).expect("sample").vms.len(), VMS + BARE);
    }
    let steady = 33;
    // The counter sees an allocation (so the assertion below can fail).
    let probe = Region::new(GLOBAL);
    let v: Vec<u64> = std::hint::black_box(Vec::with_capacity(10));
    assert!(probe.change().allocations >= 1);
    drop(v);

    let mut worst = 0;
    for round in 0..5u32 {
        for (i, n) in names.iter().enumerate() {
            let used = 0.1 * f64::from(1 + (i as u32 + round) % 4);
            root.advance_vm(n, used, 0.05, 1024 + u64::from(round))
                .expect("advance");
        }
        let region = Region::new(GLOBAL);
        let s = m.sample_at(at(steady + round)).expect("sample");
        let change = region.change();
        assert_eq!(s.vms.len(), VMS + BARE);
        assert_eq!(s.skipped, 0);
        worst = worst.max(change.allocations + change.reallocations);
    }
    assert_eq!(worst, 0, "allocations in a steady-state sample");
    println!("alloc: {VMS} + {BARE} bare VMs sampled 5 times with 0 allocations");
    println!("1 passed, 0 failed");
}
