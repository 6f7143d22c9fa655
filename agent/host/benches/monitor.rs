//! Footprint of one sample of 200 VMs: CPU time of the sampling thread per sample.
//!
//! `cargo bench -p dvms-host --bench monitor` (the goal is <= 2 ms of CPU per sample). The
//! VMs are a fake root on the machine's temporary directory, counters advancing between
//! samples (not measured).

use std::time::Instant;

use dvms_host::Monitor;
use dvms_host::fakeroot::FakeRoot;
use nix::time::{ClockId, clock_gettime};

const VMS: usize = 200;
const SAMPLES: usize = 300;

fn thread_cpu_ns() -> u64 {
    let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).expect("thread CPU clock");
    u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000_000 + u64::try_from(t.tv_nsec()).unwrap_or(0)
}

fn main() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut root = FakeRoot::create(dir.path().join("h00"), 64, 1 << 20).expect("fake root");
    let names: Vec<String> = (0..VMS).map(|i| format!("vm-{i:04}")).collect();
    let mut vcpus = 0;
    for (i, n) in names.iter().enumerate() {
        let v = 1 + (i % 4) as u32;
        vcpus += v;
        root.add_vm(n, v, 4096).expect("add vm");
    }
    let mut m = Monitor::new(root.monitor_config()).expect("monitor");
    // Sample times are synthetic (100 ms apart, the counters advancing 1 s every 10
    // samples), so rates stay plausible whatever the writes between samples cost.
    let t0 = Instant::now();
    let at = |k: usize| t0 + std::time::Duration::from_millis(100 * k as u64);
    for k in 0..3 {
        m.sample_at(at(k)).expect("sample");
    }
    let mut cpu = Vec::with_capacity(SAMPLES);
    let mut wall = Vec::with_capacity(SAMPLES);
    for k in 0..SAMPLES {
        if k % 10 == 0 {
            for n in &names {
                root.advance_vm(n, 0.2, 0.05, 1024).expect("advance");
            }
        }
        let (c0, w0) = (thread_cpu_ns(), Instant::now());
        let s = m.sample_at(at(k + 3)).expect("sample");
        let (c1, w1) = (thread_cpu_ns(), Instant::now());
        assert_eq!((s.vms.len(), s.skipped), (VMS, 0));
        cpu.push(c1.saturating_sub(c0));
        wall.push(w1.duration_since(w0).as_nanos() as u64);
    }
    cpu.sort_unstable();
    wall.sort_unstable();
    let mean = |v: &[u64]| v.iter().sum::<u64>() as f64 / v.len() as f64 / 1e6;
    let pct = |v: &[u64], p: usize| v[(v.len() * p / 100).min(v.len() - 1)] as f64 / 1e6;
    println!("monitor sample of {VMS} VMs ({vcpus} vCPUs), {SAMPLES} samples");
    println!(
        "cpu per sample: mean {:.3} ms, median {:.3} ms, p99 {:.3} ms (goal: mean <= 2 ms, {})",
        mean(&cpu),
        pct(&cpu, 50),
        pct(&cpu, 99),
        if pct(&cpu, 50) <= 2.0 {
            "met"
        } else {
            "missed"
        }
    );
    println!(
        "wall per sample: mean {:.3} ms, median {:.3} ms, p99 {:.3} ms",
        mean(&wall),
        pct(&wall, 50),
        pct(&wall, 99)
    );
}
