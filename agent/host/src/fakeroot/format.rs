//! The text of each kernel file, in the exact format Linux 6.1 writes it.

use std::fmt::Write as _;

/// A `/proc/meminfo` line: the kernel pads the label to 16 columns and the number to 8.
fn meminfo_line(out: &mut String, label: &str, kb: u64) {
    let _ = writeln!(out, "{:<16}{kb:>8} kB", format!("{label}:"));
}

/// `/proc/meminfo` of a host with `total_kb` of memory of which `used_kb` is used by VMs.
pub(super) fn meminfo(total_kb: u64, used_kb: u64) -> String {
    let free = total_kb.saturating_sub(used_kb);
    let mut s = String::with_capacity(1600);
    for (label, kb) in [
        ("MemTotal", total_kb),
        ("MemFree", free),
        ("MemAvailable", free),
        ("Buffers", 0),
        ("Cached", 0),
        ("SwapCached", 0),
        ("Active", used_kb),
        ("Inactive", 0),
        ("Active(anon)", used_kb),
        ("Inactive(anon)", 0),
        ("Active(file)", 0),
        ("Inactive(file)", 0),
        ("Unevictable", 0),
        ("Mlocked", 0),
        ("SwapTotal", 0),
        ("SwapFree", 0),
        ("Zswap", 0),
        ("Zswapped", 0),
        ("Dirty", 0),
        ("Writeback", 0),
        ("AnonPages", used_kb),
        ("Mapped", 0),
        ("Shmem", 0),
        ("KReclaimable", 0),
        ("Slab", 0),
        ("SReclaimable", 0),
        ("SUnreclaim", 0),
        ("KernelStack", 0),
        ("PageTables", 0),
        ("SecPageTables", 0),
        ("NFS_Unstable", 0),
        ("Bounce", 0),
        ("WritebackTmp", 0),
        ("CommitLimit", total_kb / 2),
        ("Committed_AS", used_kb),
        ("VmallocTotal", 34_359_738_367),
        ("VmallocUsed", 0),
        ("VmallocChunk", 0),
        ("Percpu", 0),
        ("HardwareCorrupted", 0),
        ("AnonHugePages", 0),
        ("ShmemHugePages", 0),
        ("ShmemPmdMapped", 0),
        ("FileHugePages", 0),
        ("FilePmdMapped", 0),
    ] {
        meminfo_line(&mut s, label, kb);
    }
    s.push_str("HugePages_Total:       0\nHugePages_Free:        0\n");
    s.push_str("HugePages_Rsvd:        0\nHugePages_Surp:        0\n");
    meminfo_line(&mut s, "Hugepagesize", 2048);
    meminfo_line(&mut s, "Hugetlb", 0);
    meminfo_line(&mut s, "DirectMap4k", 0);
    meminfo_line(&mut s, "DirectMap2M", total_kb);
    s
}

/// `devices/system/cpu/online` for `cores` CPUs.
pub(super) fn cpu_online(cores: u32) -> String {
    if cores <= 1 {
        "0\n".to_owned()
    } else {
        format!("0-{}\n", cores - 1)
    }
}

/// A pressure file with the given `some` avg10 (percent) and totals (microseconds).
pub(super) fn pressure(some_avg10: f32, some_total: u64, full_total: u64) -> String {
    let a = (f64::from(some_avg10).clamp(0.0, 100.0) * 100.0).round() as u64;
    format!(
        "some avg10={}.{:02} avg60=0.00 avg300=0.00 total={some_total}\n\
         full avg10=0.00 avg60=0.00 avg300=0.00 total={full_total}\n",
        a / 100,
        a % 100
    )
}

/// A non-root cgroup v2 `cpu.stat` with `usage_usec` split 9:1 between user and system.
pub(super) fn cpu_stat(usage_usec: u64) -> String {
    let system = usage_usec / 10;
    format!(
        "usage_usec {usage_usec}\nuser_usec {}\nsystem_usec {system}\n\
         nr_periods 0\nnr_throttled 0\nthrottled_usec 0\nnr_bursts 0\nburst_usec 0\n",
        usage_usec - system
    )
}

/// A cgroup v2 `memory.stat` with `anon` bytes of guest memory and `cache` bytes of
/// inactive page cache (the keys of Linux 6.1, in its order).
pub(super) fn memory_stat(anon: u64, cache: u64) -> String {
    let mut s = String::with_capacity(1400);
    for (k, v) in [
        ("anon", anon),
        ("file", cache),
        ("kernel", 0),
        ("kernel_stack", 0),
        ("pagetables", 0),
        ("sec_pagetables", 0),
        ("percpu", 0),
        ("sock", 0),
        ("vmalloc", 0),
        ("shmem", 0),
        ("zswap", 0),
        ("zswapped", 0),
        ("file_mapped", 0),
        ("file_dirty", 0),
        ("file_writeback", 0),
        ("swapcached", 0),
        ("anon_thp", 0),
        ("file_thp", 0),
        ("shmem_thp", 0),
        ("inactive_anon", 0),
        ("active_anon", anon),
        ("inactive_file", cache),
        ("active_file", 0),
        ("unevictable", 0),
        ("slab_reclaimable", 0),
        ("slab_unreclaimable", 0),
        ("slab", 0),
        ("workingset_refault_anon", 0),
        ("workingset_refault_file", 0),
        ("workingset_activate_anon", 0),
        ("workingset_activate_file", 0),
        ("workingset_restore_anon", 0),
        ("workingset_restore_file", 0),
        ("workingset_nodereclaim", 0),
        ("pgscan", 0),
        ("pgsteal", 0),
        ("pgscan_kswapd", 0),
        ("pgscan_direct", 0),
        ("pgsteal_kswapd", 0),
        ("pgsteal_direct", 0),
        ("pgfault", 0),
        ("pgmajfault", 0),
        ("pgrefill", 0),
        ("pgactivate", 0),
        ("pgdeactivate", 0),
        ("pglazyfree", 0),
        ("pglazyfreed", 0),
        ("zswpin", 0),
        ("zswpout", 0),
        ("thp_fault_alloc", 0),
        ("thp_collapse_alloc", 0),
    ] {
        let _ = writeln!(s, "{k} {v}");
    }
    s
}

/// `/proc/<pid>/task/<tid>/schedstat`.
pub(super) fn schedstat(exec_ns: u64, run_delay_ns: u64, slices: u64) -> String {
    format!("{exec_ns} {run_delay_ns} {slices}\n")
}

/// A QEMU command line as libvirt 9 starts it: NUL-terminated arguments.
pub(super) fn qemu_cmdline(id: u32, name: &str, vcpus: u32, mem_mib: u64) -> Vec<u8> {
    let guest = name.replace(',', ",,");
    let uuid = format!("{id:08x}-0000-4000-8000-{:012x}", u64::from(id) * 7919);
    let args = [
        "/usr/bin/qemu-system-x86_64".to_owned(),
        "-name".to_owned(),
        format!("guest={guest},debug-threads=on"),
        "-S".to_owned(),
        "-object".to_owned(),
        format!(
            "{{\"qom-type\":\"secret\",\"id\":\"masterKey0\",\"format\":\"raw\",\
             \"file\":\"/var/lib/libvirt/qemu/domain-{id}-{guest}/master-key.aes\"}}"
        ),
        "-machine".to_owned(),
        "pc-q35-7.2,usb=off,vmport=off,dump-guest-core=off,memory-backend=pc.ram".to_owned(),
        "-accel".to_owned(),
        "kvm".to_owned(),
        "-cpu".to_owned(),
        "host,migratable=on".to_owned(),
        "-m".to_owned(),
        format!("size={}k", mem_mib.saturating_mul(1024)),
        "-object".to_owned(),
        format!(
            "{{\"qom-type\":\"memory-backend-ram\",\"id\":\"pc.ram\",\"size\":{}}}",
            mem_mib.saturating_mul(1 << 20)
        ),
        "-overcommit".to_owned(),
        "mem-lock=off".to_owned(),
        "-smp".to_owned(),
        format!("{vcpus},sockets={vcpus},cores=1,threads=1"),
        "-uuid".to_owned(),
        uuid,
        "-display".to_owned(),
        "none".to_owned(),
        "-no-user-config".to_owned(),
        "-nodefaults".to_owned(),
        "-chardev".to_owned(),
        "socket,id=charmonitor,fd=31,server=on,wait=off".to_owned(),
        "-mon".to_owned(),
        "chardev=charmonitor,id=monitor,mode=control".to_owned(),
        "-rtc".to_owned(),
        "base=utc".to_owned(),
        "-no-shutdown".to_owned(),
        "-boot".to_owned(),
        "strict=on".to_owned(),
        "-msg".to_owned(),
        "timestamp=on".to_owned(),
    ];
    let mut out = Vec::with_capacity(1024);
    for a in args {
        out.extend_from_slice(a.as_bytes());
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_columns_match_the_kernel() {
        let m = meminfo(24_684_100, 0);
        assert!(m.starts_with("MemTotal:       24684100 kB\nMemFree:        24684100 kB\n"));
        assert!(m.contains("\nHugePages_Total:       0\n"));
    }

    #[test]
    fn pressure_format() {
        assert_eq!(
            pressure(9.8, 43_506_604, 0),
            "some avg10=9.80 avg60=0.00 avg300=0.00 total=43506604\n\
             full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
        );
    }
}
