//! One `dvmsd` watching 200 fake VMs at a 1 s period: its resident memory and CPU use.
//!
//! Goal (issue 7): RSS <= 16 MiB, CPU <= 0.5 % of a core. Run with
//! `cargo bench -p dvms-integration --bench agent_footprint` (a release `dvmsd` is built when
//! absent). The lab hypervisor keeps the 200 VMs' counters moving (every 100 ms) in a thread
//! of this process; only the agent's process is measured, from `/proc/<pid>/{status,stat}`.

use std::time::{Duration, Instant};

use dvms_testkit::{Lab, LabSpec};

const VMS: usize = 200;
const WARMUP: Duration = Duration::from_secs(10);
const WINDOW: Duration = Duration::from_secs(60);

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn hwm_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime in clock ticks (USER_HZ = 100 on Linux).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mut lab = Lab::new(LabSpec {
        hosts: 1,
        cpu_milli: 64_000,
        mem_mib: 1 << 20,
        ..LabSpec::default()
    });
    for v in 0..VMS {
        let demand = 50 + (v as u64 * 37) % 400;
        lab.add_vm(0, &format!("vm-{v:04}"), 2, 1024, demand);
    }
    lab.spawn(0);
    let s = lab.wait("dvmsd ready", Duration::from_secs(60), |lab| {
        lab.agents[0].status().filter(|s| s.ready && s.vms == VMS)
    });
    let pid = lab.agents[0].pid().expect("dvmsd runs");
    std::thread::sleep(WARMUP);
    let t0 = Instant::now();
    let c0 = cpu_ticks(pid).expect("stat");
    let mut rss_max = 0;
    while t0.elapsed() < WINDOW {
        std::thread::sleep(Duration::from_secs(1));
        rss_max = rss_max.max(rss_kib(pid).unwrap_or(0));
    }
    let c1 = cpu_ticks(pid).expect("stat");
    let secs = t0.elapsed().as_secs_f64();
    let cpu_pct = (c1 - c0) as f64 / 100.0 / secs * 100.0;
    let rss_mib = rss_max as f64 / 1024.0;
    let hwm_mib = hwm_kib(pid).unwrap_or(0) as f64 / 1024.0;
    let status = lab.agents[0].status().expect("status");
    println!(
        "dvmsd watching {} VMs at a 1 s period ({} samples, {} failed) over {secs:.0} s:",
        status.vms, status.samples, status.sample_errors
    );
    println!(
        "  rss_max_mib = {rss_mib:.1} (peak VmHWM {hwm_mib:.1}; goal <= 16: {})",
        if rss_mib <= 16.0 { "met" } else { "MISSED" }
    );
    println!(
        "  cpu_pct_of_a_core = {cpu_pct:.2} (goal <= 0.5: {})",
        if cpu_pct <= 0.5 { "met" } else { "MISSED" }
    );
    let _ = s;
}
