//! The parsers and the monitor on this machine's real /proc, /sys and cgroup tree.

use std::fs;
use std::path::Path;

use dvms_host::parse;
use dvms_host::{Monitor, MonitorConfig};

#[test]
fn monitor_reads_this_host() {
    let mut m = Monitor::new(MonitorConfig::default()).unwrap();
    let s = m.sample().unwrap();
    let online =
        parse::parse_cpu_list_count(&fs::read_to_string("/sys/devices/system/cpu/online").unwrap())
            .unwrap();
    assert!(s.host.cpu_capacity_milli <= u64::from(online) * 1000);
    assert!(s.host.cpu_capacity_milli >= 1000);
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap();
    let total_kb = parse::parse_meminfo_kb(&meminfo, "MemTotal").unwrap();
    assert_eq!(s.host.mem_capacity_mib, total_kb >> 10);
    if Path::new("/proc/pressure/cpu").exists() {
        assert!(s.host.cpu_psi_some_avg10.is_some());
    }
    // This machine runs no VM; a host that does must report them sanely.
    for vm in &s.vms {
        assert!(vm.vcpus >= 1 && vm.cpu_demand_milli <= u64::from(vm.vcpus) * 1000);
    }
    // A second sample works on the same buffers.
    assert!(m.sample().is_ok());
}

#[test]
fn parsers_accept_the_real_kernel_files() {
    // schedstat of every thread of this process.
    let mut threads = 0;
    for t in fs::read_dir("/proc/self/task").unwrap() {
        let p = t.unwrap().path().join("schedstat");
        if let Ok(text) = fs::read_to_string(&p) {
            parse::parse_schedstat(&text).unwrap();
            threads += 1;
        }
    }
    assert!(threads >= 1);
    for f in ["/proc/pressure/cpu", "/proc/pressure/memory"] {
        if let Ok(t) = fs::read_to_string(f) {
            parse::parse_psi(&t).unwrap();
        }
    }
    // CPU and memory accounting of whichever cgroup layout this machine has.
    let cg = Path::new("/sys/fs/cgroup");
    let mut cpu_files = 0;
    for f in ["cpu.stat", "unified/cpu.stat"] {
        if let Ok(t) = fs::read_to_string(cg.join(f)) {
            parse::parse_cpu_stat_usage_usec(&t).unwrap();
            cpu_files += 1;
        }
    }
    if let Ok(t) = fs::read_to_string(cg.join("cpuacct/cpuacct.usage")) {
        parse::parse_single(&t, "cpuacct.usage").unwrap();
        cpu_files += 1;
    }
    assert!(cpu_files >= 1, "no cgroup CPU accounting file found");
    if let Ok(t) = fs::read_to_string(cg.join("memory/memory.stat")) {
        parse::parse_keyed(&t, "total_inactive_file").unwrap();
        parse::parse_single(
            &fs::read_to_string(cg.join("memory/memory.usage_in_bytes")).unwrap(),
            "memory.usage_in_bytes",
        )
        .unwrap();
    }
    // A v2 leaf with memory accounting: the cgroup of this process, if v2.
    let own = fs::read_to_string("/proc/self/cgroup").unwrap();
    if let Some(path) = own.lines().find_map(|l| l.strip_prefix("0::")) {
        let dir = cg.join(path.trim_start_matches('/'));
        if let Ok(t) = fs::read_to_string(dir.join("memory.stat")) {
            parse::parse_keyed(&t, "inactive_file").unwrap();
        }
        if let Ok(t) = fs::read_to_string(dir.join("cpu.pressure")) {
            parse::parse_psi(&t).unwrap();
        }
    }
    let cmdline = fs::read("/proc/self/cmdline").unwrap();
    assert!(cmdline.ends_with(b"\0"));
}
