//! The monitor reads a fake root written by `dvms_host::fakeroot` as a real host.

use std::time::{Duration, Instant};

use dvms_host::fakeroot::FakeRoot;
use dvms_host::{Monitor, VmInfo};

fn vm<'a>(vms: &'a [VmInfo], name: &str) -> &'a VmInfo {
    vms.iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no vm {name}"))
}

#[test]
fn rates_from_advanced_counters() {
    let dir = tempfile::tempdir().unwrap();
    let mut root = FakeRoot::create(dir.path().join("h00"), 8, 32 * 1024).unwrap();
    root.add_vm("vm-0000", 2, 2048).unwrap();
    root.add_vm("web,01 b", 4, 4096).unwrap();
    let mut m = Monitor::new(root.monitor_config()).unwrap();
    let t0 = Instant::now();
    let s = m.sample_at(t0).unwrap();
    assert_eq!(s.skipped, 0);
    assert_eq!(s.vms.len(), 2);
    assert_eq!(s.host.cpu_capacity_milli, 8000);
    assert_eq!(s.host.mem_capacity_mib, 32 * 1024);
    assert_eq!(s.host.cpu_psi_some_avg10, Some(0.0));
    let a = vm(&s.vms, "vm-0000");
    assert_eq!((a.vcpus, a.mem_size_mib, a.cpu_use_milli), (2, 2048, 0));
    assert_eq!(vm(&s.vms, "web,01 b").vcpus, 4);

    // Over 2 s: vm-0000 used 1.5 core-s and waited 1 core-s; the other is saturated.
    root.advance_vm("vm-0000", 1.5, 1.0, 1000).unwrap();
    root.advance_vm("web,01 b", 8.0, 6.0, 3000).unwrap();
    let s = m.sample_at(t0 + Duration::from_secs(2)).unwrap();
    assert_eq!(s.skipped, 0);
    let a = vm(&s.vms, "vm-0000");
    assert_eq!(a.cpu_use_milli, 750);
    assert_eq!(a.cpu_demand_milli, 1250);
    assert_eq!(a.mem_used_mib, 1000);
    let b = vm(&s.vms, "web,01 b");
    assert_eq!(b.cpu_use_milli, 4000);
    assert_eq!(b.cpu_demand_milli, 4000, "demand is capped at the vCPUs");
    assert_eq!(b.mem_used_mib, 3000);
}

#[test]
fn moved_and_removed_vms() {
    let dir = tempfile::tempdir().unwrap();
    let mut h0 = FakeRoot::create(dir.path().join("h00"), 4, 8192).unwrap();
    let mut h1 = FakeRoot::create(dir.path().join("h01"), 4, 8192).unwrap();
    h0.add_vm("a", 1, 512).unwrap();
    h0.add_vm("b", 1, 512).unwrap();
    let mut m0 = Monitor::new(h0.monitor_config()).unwrap();
    let mut m1 = Monitor::new(h1.monitor_config()).unwrap();
    assert_eq!(m0.sample().unwrap().vms.len(), 2);
    assert_eq!(m1.sample().unwrap().vms.len(), 0);
    h0.move_vm("a", &mut h1).unwrap();
    let names: Vec<String> = m0
        .sample()
        .unwrap()
        .vms
        .iter()
        .map(|v| v.name.clone())
        .collect();
    assert_eq!(names, ["b"]);
    let s1 = m1.sample().unwrap();
    assert_eq!(s1.vms.len(), 1);
    assert_eq!(s1.vms[0].name, "a");
    h0.remove_vm("b").unwrap();
    assert_eq!(m0.sample().unwrap().vms.len(), 0);
    assert!(h0.move_vm("a", &mut h1).is_err());
    assert!(h1.advance_vm("a", -1.0, 0.0, 0).is_err());
    assert!(h1.advance_vm("a", 0.0, 0.0, 4096).is_err());
}

/// VMs appear, move and vanish while two monitors sample: no sample fails, every VM reported
/// is whole, and once the churn stops each monitor sees exactly its root's VMs.
#[test]
fn churn_while_sampling() {
    let dir = tempfile::tempdir().unwrap();
    let mut h0 = FakeRoot::create(dir.path().join("h00"), 8, 64 * 1024).unwrap();
    let mut h1 = FakeRoot::create(dir.path().join("h01"), 8, 64 * 1024).unwrap();
    let mut m0 = Monitor::new(h0.monitor_config()).unwrap();
    let mut m1 = Monitor::new(h1.monitor_config()).unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = std::sync::Arc::clone(&done);
    let writer = std::thread::spawn(move || {
        // vcpus = 1 + i % 3, memory 512 * vcpus: the monitor's figures must match the name.
        for i in 0..30u32 {
            let name = format!("vm-{i:04}");
            h0.add_vm(&name, 1 + i % 3, 512 * u64::from(1 + i % 3))
                .unwrap();
            h0.advance_vm(&name, 0.01, 0.01, 100).unwrap();
            if i % 3 == 1 {
                h0.move_vm(&name, &mut h1).unwrap();
            }
            if i % 5 == 4 {
                let gone = format!("vm-{:04}", i - 2);
                if h0.vm_ids(&gone).is_some() {
                    h0.remove_vm(&gone).unwrap();
                } else {
                    h1.remove_vm(&gone).unwrap();
                }
            }
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        (h0, h1)
    });
    let check = |vms: &[VmInfo]| {
        for v in vms {
            let i: u32 = v.name.strip_prefix("vm-").unwrap().parse().unwrap();
            assert_eq!(v.vcpus, 1 + i % 3, "{}", v.name);
            assert_eq!(v.mem_size_mib, 512 * u64::from(1 + i % 3), "{}", v.name);
        }
    };
    let mut samples = 0;
    while !done.load(std::sync::atomic::Ordering::SeqCst) && samples < 10_000 {
        check(&m0.sample().unwrap().vms);
        check(&m1.sample().unwrap().vms);
        samples += 1;
        // Leave the writer some CPU on a 2-core machine (not a timing assertion).
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let (h0, h1) = writer.join().unwrap();
    for (m, h) in [(&mut m0, &h0), (&mut m1, &h1)] {
        let s = m.sample().unwrap();
        let mut seen: Vec<&str> = s.vms.iter().map(|v| v.name.as_str()).collect();
        seen.sort_unstable();
        let want: Vec<&str> = h.vm_names().collect();
        assert_eq!(seen, want);
        assert_eq!(s.skipped, 0);
    }
    assert!(samples > 0);
}
