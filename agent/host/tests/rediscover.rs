//! A VM discovered while libvirt is still setting it up, or whose cgroup is made again, is
//! found again: its use and demand follow what its cgroup and vCPU threads really do.
//!
//! Every sample below is less than 1 s after the VM's discovery, so the backstop
//! rediscovery of young VMs (first at 1 s of age) plays no part: the cheap per-sample
//! checks must catch each case.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dvms_host::fakeroot::{FakeRoot, FakeVmIds};
use dvms_host::names::scope_dir_name;
use dvms_host::{Monitor, VmInfo};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn only(vms: &[VmInfo]) -> &VmInfo {
    assert_eq!(vms.len(), 1, "{vms:?}");
    &vms[0]
}

/// The VM's cgroup directory and its process's task directory.
fn paths(root: &FakeRoot, name: &str, ids: FakeVmIds) -> (PathBuf, PathBuf) {
    let scope = root
        .root()
        .join("sys/fs/cgroup/machine.slice")
        .join(scope_dir_name(ids.id, name));
    let task = root
        .root()
        .join("proc")
        .join(ids.pid.to_string())
        .join("task");
    (scope, task)
}

/// Puts the VM as QEMU is just after its start: the process in the VM's cgroup, no
/// `libvirt/` sub-tree yet, and only its main thread (the vCPU threads not made yet). The
/// parts taken away go to `stash`.
fn rewind_to_start(
    scope: &Path,
    task: &Path,
    ids: FakeVmIds,
    vcpus: u32,
    stash: &Path,
) -> std::io::Result<()> {
    fs::rename(scope.join("libvirt"), stash.join("libvirt"))?;
    fs::write(scope.join("cgroup.procs"), format!("{}\n", ids.pid))?;
    for n in 1..=vcpus {
        let tid = (ids.pid + n).to_string();
        fs::rename(task.join(&tid), stash.join(&tid))?;
    }
    Ok(())
}

/// Discovered before its `vcpuN` cgroups and vCPU threads exist; then QEMU makes the
/// threads and libvirt the cgroups, with the threads moved in: the demand must count the
/// vCPU threads' wait.
#[test]
fn vcpu_cgroups_made_after_discovery() {
    let dir = tempfile::tempdir().unwrap();
    let stash = dir.path().join("stash");
    fs::create_dir(&stash).unwrap();
    let mut root = FakeRoot::create(dir.path().join("h"), 4, 8192).unwrap();
    let ids = root.add_vm("a", 2, 1024).unwrap();
    let (scope, task) = paths(&root, "a", ids);
    rewind_to_start(&scope, &task, ids, 2, &stash).unwrap();

    let mut m = Monitor::new(root.monitor_config()).unwrap();
    let t0 = Instant::now();
    let s = m.sample_at(t0).unwrap();
    let v = only(&s.vms);
    assert_eq!((v.pid, v.vcpus), (ids.pid, 2), "vCPUs from -smp");

    // libvirt finishes: threads made and moved into libvirt/vcpuN.
    for n in 1..=2 {
        let tid = (ids.pid + n).to_string();
        fs::rename(stash.join(&tid), task.join(&tid)).unwrap();
    }
    fs::rename(stash.join("libvirt"), scope.join("libvirt")).unwrap();
    fs::write(scope.join("cgroup.procs"), "").unwrap();
    m.sample_at(t0 + ms(200)).unwrap();

    // Over 200 ms both vCPUs want a full core: 0.1 core-s used, 0.3 core-s waited.
    for k in 2..5 {
        root.advance_vm("a", 0.1, 0.3, 100).unwrap();
        let s = m.sample_at(t0 + ms(200 * k)).unwrap();
        assert_eq!(s.skipped, 0);
        let v = only(&s.vms);
        assert_eq!(v.cpu_use_milli, 500, "sample {k}");
        assert_eq!(
            v.cpu_demand_milli, 2000,
            "sample {k}: the vCPU threads' wait"
        );
    }
}

/// Discovered before its vCPU threads exist on a host where libvirt makes no `vcpuN`
/// cgroups: the new threads (named `CPU n/KVM`) must be found.
#[test]
fn vcpu_threads_made_after_discovery_without_vcpu_cgroups() {
    let dir = tempfile::tempdir().unwrap();
    let stash = dir.path().join("stash");
    fs::create_dir(&stash).unwrap();
    let mut root = FakeRoot::create(dir.path().join("h"), 4, 8192).unwrap();
    let ids = root.add_vm("a", 2, 1024).unwrap();
    let (scope, task) = paths(&root, "a", ids);
    rewind_to_start(&scope, &task, ids, 2, &stash).unwrap();

    let mut m = Monitor::new(root.monitor_config()).unwrap();
    let t0 = Instant::now();
    assert_eq!(only(&m.sample_at(t0).unwrap().vms).vcpus, 2);
    for n in 1..=2 {
        let tid = (ids.pid + n).to_string();
        fs::rename(stash.join(&tid), task.join(&tid)).unwrap();
    }
    m.sample_at(t0 + ms(200)).unwrap();
    for k in 2..5 {
        // 0.1 core-s used by the VM, 0.15 core-s waited by each vCPU thread, over 200 ms.
        common::bump(&scope.join("cpu.stat"), "usage_usec", 100_000);
        for n in 1..=2 {
            let ss = task.join((ids.pid + n).to_string()).join("schedstat");
            common::bump_run_delay(&ss, 150_000_000);
        }
        let s = m.sample_at(t0 + ms(200 * k)).unwrap();
        assert_eq!(s.skipped, 0);
        let v = only(&s.vms);
        assert_eq!(v.cpu_use_milli, 500, "sample {k}");
        assert_eq!(
            v.cpu_demand_milli, 2000,
            "sample {k}: the vCPU threads' wait"
        );
    }
}

/// A `vcpuN` cgroup that exists before libvirt moved its thread in is not taken as
/// "no thread": the VM is skipped until the set is whole.
#[test]
fn empty_vcpu_cgroup_waits_for_its_thread() {
    let dir = tempfile::tempdir().unwrap();
    let mut root = FakeRoot::create(dir.path().join("h"), 4, 8192).unwrap();
    let ids = root.add_vm("a", 2, 1024).unwrap();
    let (scope, _) = paths(&root, "a", ids);
    let threads = scope.join("libvirt/vcpu1/cgroup.threads");
    fs::write(&threads, "").unwrap();
    let mut m = Monitor::new(root.monitor_config()).unwrap();
    let t0 = Instant::now();
    let s = m.sample_at(t0).unwrap();
    assert_eq!((s.vms.len(), s.skipped), (0, 1));
    fs::write(&threads, format!("{}\n", ids.pid + 2)).unwrap();
    assert_eq!(m.sample_at(t0 + ms(200)).unwrap().vms.len(), 1);
    root.advance_vm("a", 0.1, 0.3, 100).unwrap();
    let v = only(&m.sample_at(t0 + ms(400)).unwrap().vms).clone();
    assert_eq!((v.cpu_use_milli, v.cpu_demand_milli), (500, 2000));
}

/// The VM's cgroup directory is removed and made again under the same name (libvirt
/// restarting its setup): the counters read must be the new directory's.
#[test]
fn cgroup_dir_made_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut root = FakeRoot::create(dir.path().join("h"), 4, 8192).unwrap();
    let ids = root.add_vm("b", 1, 512).unwrap();
    let (scope, _) = paths(&root, "b", ids);
    let mut m = Monitor::new(root.monitor_config()).unwrap();
    let t0 = Instant::now();
    m.sample_at(t0).unwrap();
    root.advance_vm("b", 0.1, 0.05, 100).unwrap();
    let v = only(&m.sample_at(t0 + ms(200)).unwrap().vms).clone();
    assert_eq!((v.cpu_use_milli, v.cpu_demand_milli), (500, 750));

    // Removed and made again between two samples: new directory, new files.
    let old = dir.path().join("old-scope");
    fs::rename(&scope, &old).unwrap();
    common::copy_tree(&old, &scope);
    fs::remove_dir_all(&old).unwrap();
    root.advance_vm("b", 0.1, 0.05, 200).unwrap();
    let s = m.sample_at(t0 + ms(400)).unwrap();
    assert_eq!(only(&s.vms).mem_used_mib, 200, "memory from the new cgroup");
    for k in 3..6 {
        root.advance_vm("b", 0.1, 0.05, 300).unwrap();
        let s = m.sample_at(t0 + ms(200 * k)).unwrap();
        assert_eq!(s.skipped, 0);
        let v = only(&s.vms);
        assert_eq!(v.cpu_use_milli, 500, "sample {k}: use from the new cgroup");
        assert_eq!(v.cpu_demand_milli, 750, "sample {k}");
        assert_eq!(v.mem_used_mib, 300);
    }
}

/// The backstop rediscoveries of a young VM (1, 2, 4, ... 32 s) find the same process,
/// cgroup and threads: its rates stay continuous, never reset to 0.
#[test]
fn backstop_keeps_rates_continuous() {
    let dir = tempfile::tempdir().unwrap();
    let mut root = FakeRoot::create(dir.path().join("h"), 4, 8192).unwrap();
    root.add_vm("c", 2, 1024).unwrap();
    let mut m = Monitor::new(root.monitor_config()).unwrap();
    let t0 = Instant::now();
    m.sample_at(t0).unwrap();
    for k in 1..40u64 {
        root.advance_vm("c", 0.5, 0.25, 100).unwrap();
        let s = m.sample_at(t0 + ms(1000 * k)).unwrap();
        assert_eq!(s.skipped, 0);
        let v = only(&s.vms);
        assert_eq!(
            (v.cpu_use_milli, v.cpu_demand_milli),
            (500, 750),
            "at {k} s"
        );
    }
}

/// QEMU without `debug-threads=on` leaves its threads unnamed: discovered before the
/// `vcpuN` cgroups exist, every thread's wait counts (the main thread's too). When libvirt
/// makes the cgroups (same threads, so the thread count does not change), only the vCPU
/// threads must count.
#[test]
fn unnamed_threads_then_vcpu_cgroups() {
    let dir = tempfile::tempdir().unwrap();
    let stash = dir.path().join("stash");
    fs::create_dir(&stash).unwrap();
    let mut root = FakeRoot::create(dir.path().join("h"), 4, 8192).unwrap();
    let ids = root.add_vm("a", 1, 1024).unwrap();
    let (scope, task) = paths(&root, "a", ids);
    let vcpu = task.join((ids.pid + 1).to_string());
    fs::write(vcpu.join("comm"), "qemu-system-x86\n").unwrap();
    fs::rename(scope.join("libvirt"), stash.join("libvirt")).unwrap();
    fs::write(scope.join("cgroup.procs"), format!("{}\n", ids.pid)).unwrap();

    let mut m = Monitor::new(root.monitor_config()).unwrap();
    let t0 = Instant::now();
    assert_eq!(only(&m.sample_at(t0).unwrap().vms).vcpus, 1);
    fs::rename(stash.join("libvirt"), scope.join("libvirt")).unwrap();
    fs::write(scope.join("cgroup.procs"), "").unwrap();
    m.sample_at(t0 + ms(200)).unwrap();
    for k in 2..5 {
        // The vCPU uses half a core and never waits; the main (emulator) thread waits.
        root.advance_vm("a", 0.1, 0.0, 100).unwrap();
        let main = task.join(ids.pid.to_string()).join("schedstat");
        common::bump_run_delay(&main, 200_000_000);
        let s = m.sample_at(t0 + ms(200 * k)).unwrap();
        let v = only(&s.vms);
        assert_eq!(v.cpu_use_milli, 500, "sample {k}");
        assert_eq!(
            v.cpu_demand_milli, 500,
            "sample {k}: the emulator's wait not counted"
        );
    }
}
