//! The monitor on fixture trees reproducing the three cgroup layouts libvirt creates
//! (tests/fixtures/make.py writes them), byte for byte.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::{bump, bump_psi_some, bump_run_delay, bump_single, config, copy_fixture};
use dvms_host::{Monitor, MonitorConfig, VmInfo};

fn find<'a>(vms: &'a [VmInfo], name: &str) -> &'a VmInfo {
    vms.iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no vm {name}"))
}

#[test]
fn v2_under_systemd_with_libvirt_subtree() {
    let dir = copy_fixture("v2-systemd");
    let root = dir.path();
    let mut m = Monitor::new(config(root)).unwrap();
    let t0 = Instant::now();
    let s = m.sample_at(t0).unwrap().clone();
    // The VM whose QEMU process is gone is skipped and counted; the LXC scope is ignored.
    assert_eq!(s.skipped, 1);
    assert_eq!(s.vms.len(), 2);
    assert_eq!(s.host.cpu_capacity_milli, 2000);
    assert_eq!(s.host.mem_capacity_mib, 24_684_100 >> 10);
    assert!(s.host.cpu_psi_some_avg10.is_some() && s.host.mem_psi_some_avg10.is_some());
    let web = find(&s.vms, "web-01");
    assert_eq!(
        (web.pid, web.vcpus, web.mem_size_mib, web.mem_used_mib),
        (2345, 2, 2048, (1_325_465_600 - 209_715_200) >> 20)
    );
    assert_eq!(
        (web.cpu_use_milli, web.cpu_demand_milli),
        (0, 0),
        "first sample"
    );
    // The guest name comes from -name; the escaped scope name only has "dbprod.1".
    let db = find(&s.vms, "db prod.1");
    assert_eq!(
        (db.pid, db.vcpus, db.mem_size_mib, db.mem_used_mib),
        (3100, 4, 8192, 4096)
    );

    // One second later: web-01 used 1.2 s and its two vCPUs waited 0.2 s each.
    let sl = root.join("sys/fs/cgroup/machine.slice");
    let web_scope = sl.join(r"machine-qemu\x2d1\x2dweb\x2d01.scope");
    bump(&web_scope.join("cpu.stat"), "usage_usec", 1_200_000);
    bump_psi_some(&web_scope.join("cpu.pressure"), 150_000);
    for tid in [2351, 2352] {
        bump_run_delay(
            &root.join(format!("proc/2345/task/{tid}/schedstat")),
            200_000_000,
        );
    }
    // db: schedstat shows no wait but cpu.pressure does: the cross-check is a floor.
    let db_scope = sl.join(r"machine-qemu\x2d7\x2ddbprod.1.scope");
    bump(&db_scope.join("cpu.stat"), "usage_usec", 500_000);
    bump_psi_some(&db_scope.join("cpu.pressure"), 300_000);
    let s = m.sample_at(t0 + Duration::from_secs(1)).unwrap();
    let web = find(&s.vms, "web-01");
    assert_eq!((web.cpu_use_milli, web.cpu_demand_milli), (1200, 1600));
    let db = find(&s.vms, "db prod.1");
    assert_eq!((db.cpu_use_milli, db.cpu_demand_milli), (500, 800));
}

#[test]
fn v2_without_systemd() {
    let dir = copy_fixture("v2-plain");
    let root = dir.path();
    let mut m = Monitor::new(config(root)).unwrap();
    let t0 = Instant::now();
    let s = m.sample_at(t0).unwrap();
    assert_eq!(s.skipped, 0);
    // machine/cpu.max = 150000 100000 caps the capacity below the 2 online CPUs.
    assert_eq!(s.host.cpu_capacity_milli, 1500);
    let v = find(&s.vms, "db-main");
    assert_eq!(
        (v.pid, v.vcpus, v.mem_size_mib, v.mem_used_mib),
        (4100, 2, 4096, 448)
    );
    let vm = root.join("sys/fs/cgroup/machine/qemu-4-db-main.libvirt-qemu");
    bump(&vm.join("cpu.stat"), "usage_usec", 2_500_000);
    bump_run_delay(&root.join("proc/4100/task/4110/schedstat"), 500_000_000);
    let s = m.sample_at(t0 + Duration::from_millis(2500)).unwrap();
    let v = find(&s.vms, "db-main");
    assert_eq!((v.cpu_use_milli, v.cpu_demand_milli), (1000, 1200));
}

#[test]
fn v1_hybrid_as_on_this_machine() {
    let dir = copy_fixture("v1");
    let root = dir.path();
    let mut m = Monitor::new(config(root)).unwrap();
    let t0 = Instant::now();
    let s = m.sample_at(t0).unwrap();
    assert_eq!(s.skipped, 0);
    assert_eq!(s.vms.len(), 2);
    let l = find(&s.vms, "legacy");
    assert_eq!(
        (l.pid, l.vcpus, l.mem_size_mib, l.mem_used_mib),
        (5100, 1, 1024, (1_468_743_680 - 419_430_400) >> 20)
    );
    // No vcpuN cgroups: vCPUs from -smp, their threads found by name.
    let n = find(&s.vms, "nocg");
    assert_eq!(
        (n.pid, n.vcpus, n.mem_size_mib, n.mem_used_mib),
        (6100, 2, 2048, 256)
    );
    let c = root.join("sys/fs/cgroup/cpuacct/machine");
    bump_single(
        &c.join("qemu-5-legacy.libvirt-qemu/cpuacct.usage"),
        900_000_000,
    );
    bump_run_delay(&root.join("proc/5100/task/5110/schedstat"), 300_000_000);
    bump_single(
        &c.join("qemu-6-nocg.libvirt-qemu/cpuacct.usage"),
        1_000_000_000,
    );
    bump_run_delay(&root.join("proc/6100/task/6111/schedstat"), 700_000_000);
    // The emulator thread's wait is not the VM's demand.
    bump_run_delay(&root.join("proc/6100/task/6100/schedstat"), 900_000_000);
    let s = m.sample_at(t0 + Duration::from_secs(1)).unwrap();
    let l = find(&s.vms, "legacy");
    assert_eq!(
        (l.cpu_use_milli, l.cpu_demand_milli),
        (900, 1000),
        "capped at 1 vCPU"
    );
    let n = find(&s.vms, "nocg");
    assert_eq!((n.cpu_use_milli, n.cpu_demand_milli), (1000, 1700));
}

/// This machine as it really is: `cpu` and `cpuacct` mounted apart, so libvirt leaves VMs out
/// of `cpuacct`; CPU time and threads come from the v2 `unified/` tree, memory from v1.
#[test]
fn hybrid_with_vms_only_in_unified_and_memory() {
    let dir = copy_fixture("v1");
    let root = dir.path();
    let cg = root.join("sys/fs/cgroup");
    let unified = cg.join("unified");
    // the v1 fixture's VM cgroups, moved to the unified tree as libvirt creates them there
    fs::create_dir_all(&unified).unwrap();
    fs::write(unified.join("cgroup.controllers"), "").unwrap();
    fs::rename(cg.join("cpuacct/machine"), unified.join("machine")).unwrap();
    let m_dir = unified.join("machine");
    for vm in ["qemu-5-legacy.libvirt-qemu", "qemu-6-nocg.libvirt-qemu"] {
        let d = m_dir.join(vm);
        fs::write(
            d.join("cpu.stat"),
            "usage_usec 1000\nuser_usec 0\nsystem_usec 1000\n",
        )
        .unwrap();
        fs::remove_file(d.join("cpuacct.usage")).unwrap();
        if d.join("vcpu0").exists() {
            fs::rename(d.join("vcpu0/tasks"), d.join("vcpu0/cgroup.threads")).unwrap();
        }
    }
    let mut m = Monitor::new(config(root)).unwrap();
    let t0 = Instant::now();
    let s = m.sample_at(t0).unwrap();
    assert_eq!((s.skipped, s.vms.len()), (0, 2));
    let l = find(&s.vms, "legacy");
    assert_eq!(
        (l.pid, l.vcpus, l.mem_used_mib),
        (5100, 1, (1_468_743_680 - 419_430_400) >> 20),
        "memory from the v1 hierarchy"
    );
    bump(
        &m_dir.join("qemu-5-legacy.libvirt-qemu/cpu.stat"),
        "usage_usec",
        400_000,
    );
    bump_run_delay(&root.join("proc/5100/task/5110/schedstat"), 300_000_000);
    let s = m.sample_at(t0 + Duration::from_secs(1)).unwrap();
    let l = find(&s.vms, "legacy");
    assert_eq!((l.cpu_use_milli, l.cpu_demand_milli), (400, 700));
    // Where libvirt does use cpuacct, the v1 reading wins and no VM is counted twice.
    fs::create_dir_all(cg.join("cpuacct/machine")).unwrap();
    let mut m = Monitor::new(config(root)).unwrap();
    assert_eq!(m.sample_at(t0).unwrap().vms.len(), 0);
}

#[test]
fn reserve_and_bad_roots() {
    let dir = copy_fixture("v2-plain");
    let mut cfg = config(dir.path());
    cfg.reserve_cpu_milli = 500;
    cfg.reserve_mem_mib = 1024;
    let mut m = Monitor::new(cfg.clone()).unwrap();
    let h = m.sample().unwrap().host;
    assert_eq!(h.cpu_capacity_milli, 1000);
    assert_eq!(h.mem_capacity_mib, (24_684_100 >> 10) - 1024);
    cfg.reserve_cpu_milli = 1500;
    let e = Monitor::new(cfg).unwrap_err().to_string();
    assert!(e.contains("reserve of 1500 milli-cores"), "{e}");
    let e = Monitor::new(MonitorConfig {
        proc_root: dir.path().join("nowhere"),
        ..config(dir.path())
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("nowhere/meminfo"), "{e}");
}

#[test]
fn half_written_and_vanishing_files_are_skipped() {
    let dir = copy_fixture("v2-plain");
    let root = dir.path();
    let mut m = Monitor::new(config(root)).unwrap();
    let t0 = Instant::now();
    assert_eq!(m.sample_at(t0).unwrap().vms.len(), 1);
    let vm = root.join("sys/fs/cgroup/machine/qemu-4-db-main.libvirt-qemu");
    let good = fs::read_to_string(vm.join("cpu.stat")).unwrap();
    // Cut mid-number: must not read as a smaller counter.
    fs::write(vm.join("cpu.stat"), &good[..14]).unwrap();
    let s = m.sample_at(t0 + Duration::from_secs(1)).unwrap();
    assert_eq!((s.vms.len(), s.skipped), (0, 1));
    // Back, with 3 s of use over the 3 s since the last complete reading.
    fs::write(vm.join("cpu.stat"), &good).unwrap();
    bump(&vm.join("cpu.stat"), "usage_usec", 3_000_000);
    let s = m.sample_at(t0 + Duration::from_secs(3)).unwrap();
    assert_eq!((s.vms.len(), s.skipped), (1, 0));
    assert_eq!(s.vms[0].cpu_use_milli, 1000);
    // A vCPU thread's schedstat cut short (or, on a real host, unreadable because the
    // thread exited): skipped, and the threads discovered again.
    let ss = root.join("proc/4100/task/4111/schedstat");
    let good_ss = fs::read_to_string(&ss).unwrap();
    fs::write(&ss, "100 0").unwrap();
    let s = m.sample_at(t0 + Duration::from_secs(4)).unwrap();
    assert_eq!((s.vms.len(), s.skipped), (0, 1));
    fs::write(&ss, good_ss).unwrap();
    let s = m.sample_at(t0 + Duration::from_secs(5)).unwrap();
    assert_eq!((s.vms.len(), s.skipped), (1, 0));
    // The VM stops: its process, then its cgroup, go.
    fs::remove_dir_all(root.join("proc/4100")).unwrap();
    // Nothing left, nothing skipped.
    fs::remove_dir_all(&vm).unwrap();
    let s = m.sample_at(t0 + Duration::from_secs(7)).unwrap();
    assert_eq!((s.vms.len(), s.skipped), (0, 0));
    // A half-written host file keeps the previous capacity and is counted.
    fs::write(root.join("proc/meminfo"), "MemTotal:       2468").unwrap();
    let s = m.sample_at(t0 + Duration::from_secs(8)).unwrap();
    assert_eq!((s.host.mem_capacity_mib, s.skipped), (24_684_100 >> 10, 1));
}
