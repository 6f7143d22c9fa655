//! Steady-state sampling allocates nothing: 200 fake VMs, counters advancing between
//! samples, a counting global allocator around `Monitor::sample`. Steady state starts once
//! the VMs are older than the last backstop rediscovery (32 s); the cheap per-sample checks
//! for a changed cgroup or thread set run in every sample measured.
//!
//! Its own binary without the test harness, so no other thread allocates meanwhile.

use std::alloc::System;
use std::time::{Duration, Instant};

use dvms_host::Monitor;
use dvms_host::fakeroot::FakeRoot;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const VMS: usize = 200;

fn main() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut root = FakeRoot::create(dir.path().join("h00"), 64, 1 << 20).expect("fake root");
    let names: Vec<String> = (0..VMS).map(|i| format!("vm-{i:04}")).collect();
    for (i, n) in names.iter().enumerate() {
        let vcpus = 1 + (i % 4) as u32;
        root.add_vm(n, vcpus, 4096).expect("add vm");
    }
    let mut m = Monitor::new(root.monitor_config()).expect("monitor");
    // Synthetic sample times one second apart: the rates stay plausible however long the
    // writes between samples take.
    let t0 = Instant::now();
    let at = |k: u32| t0 + Duration::from_secs(u64::from(k));
    // Warm-up: discovery allocates (names, thread lists, the map), and so do the backstop
    // rediscoveries of young VMs (at 1, 2, 4, 8, 16 and 32 s of age).
    for k in [0, 1, 2, 4, 8, 16, 32] {
        assert_eq!(m.sample_at(at(k)).expect("sample").vms.len(), VMS);
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
        assert_eq!(s.vms.len(), VMS);
        assert_eq!(s.skipped, 0);
        worst = worst.max(change.allocations + change.reallocations);
    }
    assert_eq!(worst, 0, "allocations in a steady-state sample");
    println!("alloc: 200 VMs sampled 5 times with 0 allocations");
    println!("1 passed, 0 failed");
}
