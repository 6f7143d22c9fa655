//! Demand on a real process: two busy threads pinned to one core want two cores and get one.
//!
//! The VM is this test process: its cgroup is a fake tree (libvirt's v2 layout with the two
//! threads as vCPUs) whose `cpu.stat` is kept equal to the threads' real CPU time, and the
//! monitor reads their run-queue wait from the real /proc. Other processes on the machine
//! (it is shared with other builds) only add to the wait: each thread is always running or
//! waiting, so use + wait is two cores whatever the load.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use dvms_host::{Monitor, MonitorConfig, parse};
use nix::sched::{CpuSet, sched_setaffinity};
use nix::unistd::{Pid, gettid};

fn exec_ns(tid: i32) -> u64 {
    let t = fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).expect("schedstat");
    parse::parse_schedstat(&t)
        .expect("schedstat format")
        .exec_ns
}

/// Writes the scope's cpu.stat from the threads' real CPU time.
fn sync_cpu_stat(scope: &Path, tids: &[i32]) {
    let usec: u64 = tids.iter().map(|&t| exec_ns(t)).sum::<u64>() / 1000;
    fs::write(
        scope.join("cpu.stat"),
        format!("usage_usec {usec}\nuser_usec {usec}\nsystem_usec 0\n"),
    )
    .expect("write cpu.stat");
}

#[test]
fn two_threads_on_one_core_demand_two_cores() {
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let mut handles = Vec::new();
    for _ in 0..2 {
        let stop = Arc::clone(&stop);
        let tx = tx.clone();
        handles.push(std::thread::spawn(move || {
            let mut set = CpuSet::new();
            set.set(0).unwrap();
            sched_setaffinity(Pid::from_raw(0), &set).unwrap();
            tx.send(gettid().as_raw()).unwrap();
            let mut x = 0u64;
            while !stop.load(Ordering::Relaxed) {
                x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
            }
        }));
    }
    let tids: Vec<i32> = (0..2).map(|_| rx.recv().unwrap()).collect();

    let dir = tempfile::tempdir().unwrap();
    let cg = dir.path().join("cgroup");
    let scope = cg.join(r"machine.slice/machine-qemu\x2d1\x2dburner.scope");
    fs::create_dir_all(&scope).unwrap();
    fs::write(cg.join("cgroup.controllers"), "cpu memory\n").unwrap();
    fs::write(scope.join("memory.current"), "1048576\n").unwrap();
    fs::write(scope.join("memory.stat"), "anon 1048576\ninactive_file 0\n").unwrap();
    let lv = scope.join("libvirt");
    fs::create_dir_all(&lv).unwrap();
    fs::write(lv.join("cgroup.procs"), format!("{}\n", std::process::id())).unwrap();
    for (n, tid) in tids.iter().enumerate() {
        let d = lv.join(format!("vcpu{n}"));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("cgroup.threads"), format!("{tid}\n")).unwrap();
    }
    let mut m = Monitor::new(MonitorConfig {
        cgroup_root: cg,
        ..MonitorConfig::default()
    })
    .unwrap();
    sync_cpu_stat(&scope, &tids);
    let s = m.sample().unwrap();
    assert_eq!(s.vms.len(), 1, "skipped {}", s.skipped);
    std::thread::sleep(Duration::from_millis(1500));
    sync_cpu_stat(&scope, &tids);
    let s = m.sample().unwrap().clone();
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    let vm = &s.vms[0];
    assert_eq!((vm.name.as_str(), vm.vcpus), ("burner", 2));
    eprintln!(
        "use {} demand {} milli-cores",
        vm.cpu_use_milli, vm.cpu_demand_milli
    );
    assert!(vm.cpu_use_milli <= 1300, "use {}", vm.cpu_use_milli);
    assert!(
        vm.cpu_demand_milli >= 1600,
        "demand {}",
        vm.cpu_demand_milli
    );
}
