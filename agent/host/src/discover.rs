//! Discovery of a VM's static facts: QEMU pid, name, size, vCPU threads.
//!
//! Runs when a VM is first seen and again when what it found may have changed (see
//! `monitor::stale`); it may allocate.

use std::ffi::CStr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use procfs::process::Process;

use crate::MonitorConfig;
use crate::layout::Version;
use crate::monitor::{Skip, VmDir};
use crate::names::{parse_machine_dir, parse_qemu_args};
use crate::parse::{self, MAX_VCPUS};
use crate::read::Reader;

/// Most threads accepted per VM (vCPUs plus emulator and I/O threads).
const MAX_TIDS: usize = 4 * MAX_VCPUS as usize;

/// What does not change while a VM runs.
#[derive(Debug)]
pub(crate) struct Static {
    /// Domain name.
    pub(crate) name: String,
    /// QEMU pid.
    pub(crate) pid: u32,
    /// vCPU count.
    pub(crate) vcpus: u32,
    /// Configured memory, MiB (0 when unknown).
    pub(crate) mem_size_mib: u64,
    /// The threads whose run-queue wait is the VM's wait (its vCPU threads), with the
    /// relative path of their schedstat (`<tid>/schedstat`, NUL-terminated).
    pub(crate) tids: Vec<(u32, Vec<u8>)>,
    /// Their schedstat files, kept open (`None` where opening failed, for example at the
    /// descriptor limit: then opened at each read).
    pub(crate) tid_files: Vec<Option<OwnedFd>>,
    /// The cgroup files read at each sample, kept open, in the order of `cg_files`.
    pub(crate) cg_files: [Option<OwnedFd>; 4],
    /// The VM's cgroup directory (CPU side; memory too on v2).
    pub(crate) cg_dir: OwnedFd,
    /// The VM's memory cgroup directory on v1.
    pub(crate) mem_dir: Option<OwnedFd>,
    /// `/proc/<pid>/task`.
    pub(crate) task_dir: OwnedFd,
    /// The inode number the VM's cgroup directory was listed with (`d_ino`): a different one
    /// later means the directory was removed and made again, and `cg_files` read a dead one.
    pub(crate) cg_ino: u64,
    /// Whether the vCPU threads came from `vcpuN` sub-cgroups. When not, libvirt may still
    /// be creating them: their appearance calls for a new discovery.
    pub(crate) vcpu_cgroups: bool,
    /// Whether the threads were a guess that new threads can change: no `vcpuN` cgroups and
    /// fewer threads named `CPU <n>/KVM` than vCPUs (QEMU still starting, or unnamed threads).
    pub(crate) threads_guessed: bool,
    /// The link count of `task_dir` at discovery: procfs gives 2 + the thread count, so a
    /// change says threads came or went (one `fstat`).
    pub(crate) task_links: u64,
}

impl Static {
    /// A fingerprint of what the VM's counters are summed over (pid, cgroup, threads): two
    /// readings are comparable only when it is the same.
    pub(crate) fn basis(&self) -> u64 {
        // FNV-1a over the pid, the cgroup's inode and the thread ids.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |v: u64| {
            for b in v.to_le_bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        eat(u64::from(self.pid));
        eat(self.cg_ino);
        for (t, _) in &self.tids {
            eat(u64::from(*t));
        }
        h
    }
}

/// The link count of an open directory (`fstat`), 0 when it cannot be read.
// `st_nlink` is a u64 on x86-64 and a u32 on other targets.
#[allow(clippy::useless_conversion)]
pub(crate) fn links(dir: &OwnedFd) -> u64 {
    rustix::fs::fstat(dir).map_or(0, |s| u64::from(s.st_nlink))
}

/// The per-VM cgroup files of each version: CPU usage, memory current, memory.stat,
/// cpu.pressure (none on v1). The memory ones are in the memory directory on v1.
pub(crate) fn cg_files(version: Version) -> [&'static CStr; 4] {
    match version {
        Version::V2 => [
            c"cpu.stat",
            c"memory.current",
            c"memory.stat",
            c"cpu.pressure",
        ],
        Version::V1 => [
            c"cpuacct.usage",
            c"memory.usage_in_bytes",
            c"memory.stat",
            c"",
        ],
        Version::Hybrid => [
            c"cpu.stat",
            c"memory.usage_in_bytes",
            c"memory.stat",
            c"cpu.pressure",
        ],
    }
}

fn open_in(dir: &OwnedFd, name: &CStr) -> Option<OwnedFd> {
    if name.is_empty() {
        return None;
    }
    rustix::fs::openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()
}

fn open_dir(path: &Path) -> Result<OwnedFd, Skip> {
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|_| Skip::Read)
}

fn read_pids(r: &mut Reader, path: &Path) -> Vec<u32> {
    r.set(path, &[]);
    match r.read() {
        Ok(t) => parse::pids(t)
            .map_while(Result::ok)
            .take(MAX_TIDS)
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn cmdline(proc_root: &Path, pid: u32) -> Option<Vec<String>> {
    let p = Process::new_with_root(proc_root.join(pid.to_string())).ok()?;
    p.cmdline().ok().filter(|c| !c.is_empty())
}

/// The `vcpuN` sub-cgroups of `base`, ordered by N.
fn vcpu_dirs(base: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(base) else {
        return Vec::new();
    };
    let mut v: Vec<(u32, PathBuf)> = rd
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name();
            let n = name.to_str()?.strip_prefix("vcpu")?.parse::<u32>().ok()?;
            e.file_type().ok()?.is_dir().then(|| (n, e.path()))
        })
        .take(MAX_VCPUS as usize)
        .collect();
    v.sort_by_key(|(n, _)| *n);
    v.into_iter().map(|(_, p)| p).collect()
}

/// Threads of `pid` named `CPU <n>/KVM` (QEMU names its vCPU threads so).
fn kvm_threads(r: &mut Reader, proc_root: &Path, pid: u32) -> (Vec<u32>, Vec<u32>) {
    let mut vcpu = Vec::new();
    let mut all = Vec::new();
    let Ok(p) = Process::new_with_root(proc_root.join(pid.to_string())) else {
        return (vcpu, all);
    };
    let Ok(tasks) = p.tasks() else {
        return (vcpu, all);
    };
    for t in tasks.filter_map(Result::ok).take(MAX_TIDS) {
        let Ok(tid) = u32::try_from(t.tid) else {
            continue;
        };
        all.push(tid);
        let pid_s = pid.to_string();
        let tid_s = tid.to_string();
        if let Ok(comm) = r.read_at(
            proc_root,
            &[pid_s.as_bytes(), b"task", tid_s.as_bytes(), b"comm"],
        ) {
            let c = comm.trim_end();
            let is_vcpu = c
                .strip_prefix("CPU ")
                .and_then(|c| c.strip_suffix("/KVM"))
                .is_some_and(|n| n.parse::<u32>().is_ok());
            if is_vcpu {
                vcpu.push(tid);
            }
        }
    }
    (vcpu, all)
}

/// Finds a VM's QEMU process, name, size and vCPU threads.
pub(crate) fn discover(
    cfg: &MonitorConfig,
    r: &mut Reader,
    at: &VmDir<'_>,
) -> Result<Static, Skip> {
    let dir_name = std::str::from_utf8(at.name).map_err(|_| Skip::Parse)?;
    let md = parse_machine_dir(dir_name).ok_or(Skip::Parse)?;
    let vm = at.cpu_dir.join(dir_name);
    let base = if vm.join("libvirt").is_dir() {
        vm.join("libvirt")
    } else {
        vm.clone()
    };
    let threads_file = std::str::from_utf8(at.version.threads_file()).unwrap_or("tasks");
    // The QEMU process: the first pid of the VM's cgroups with a command line (kernel
    // threads, such as old vhost workers, have none).
    let candidates = [
        base.join("cgroup.procs"),
        base.join("emulator").join("cgroup.procs"),
        vm.join("cgroup.procs"),
        base.join("emulator").join("tasks"),
        vm.join("tasks"),
    ];
    let mut found = None;
    'outer: for c in &candidates {
        for pid in read_pids(r, c) {
            if let Some(cl) = cmdline(&cfg.proc_root, pid) {
                found = Some((pid, cl));
                break 'outer;
            }
        }
    }
    let (pid, cl) = found.ok_or(Skip::Read)?;
    let args = parse_qemu_args(&cl);
    // The thread count before the threads are listed: one made meanwhile changes it.
    let task_dir = open_dir(&cfg.proc_root.join(pid.to_string()).join("task"))?;
    let task_links = links(&task_dir);
    let dirs = vcpu_dirs(&base);
    let mut tids = Vec::new();
    for d in &dirs {
        let before = tids.len();
        tids.extend(read_pids(r, &d.join(threads_file)));
        if tids.len() == before {
            // libvirt made the cgroup but has not moved its thread in yet: try again at the
            // next sample rather than keep an incomplete set.
            return Err(Skip::Read);
        }
    }
    let mut vcpus = u32::try_from(dirs.len()).unwrap_or(0);
    let mut threads_guessed = false;
    if dirs.is_empty() {
        let (kvm, all) = kvm_threads(r, &cfg.proc_root, pid);
        let named = u32::try_from(kvm.len()).unwrap_or(0);
        vcpus = args.smp.unwrap_or(named);
        threads_guessed = named < vcpus;
        // Without vCPU threads we can name, every thread's wait counts (documented).
        tids = if kvm.is_empty() { all } else { kvm };
    }
    if !(1..=MAX_VCPUS).contains(&vcpus) || tids.is_empty() {
        return Err(Skip::Read);
    }
    tids.truncate(MAX_TIDS);
    let tids: Vec<(u32, Vec<u8>)> = tids
        .into_iter()
        .map(|t| (t, format!("{t}/schedstat\0").into_bytes()))
        .collect();
    let mem_dir = match at.version {
        Version::V2 => None,
        Version::V1 | Version::Hybrid => Some(open_dir(&at.mem_dir.join(dir_name))?),
    };
    let cg_dir = open_dir(&vm)?;
    let names = cg_files(at.version);
    let mem = mem_dir.as_ref().unwrap_or(&cg_dir);
    let cg_files = [
        open_in(&cg_dir, names[0]),
        open_in(mem, names[1]),
        open_in(mem, names[2]),
        open_in(&cg_dir, names[3]),
    ];
    let tid_files = tids
        .iter()
        .map(|(_, rel)| {
            CStr::from_bytes_with_nul(rel)
                .ok()
                .and_then(|c| open_in(&task_dir, c))
        })
        .collect();
    Ok(Static {
        name: args.guest.unwrap_or(md.name),
        pid,
        vcpus,
        mem_size_mib: args.mem_mib.unwrap_or(0),
        tids,
        tid_files,
        cg_files,
        cg_dir,
        mem_dir,
        task_dir,
        cg_ino: at.ino,
        vcpu_cgroups: !dirs.is_empty(),
        threads_guessed,
        task_links,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On this machine's procfs, the link count of `/proc/<pid>/task` is 2 + the thread
    /// count (`Threads:` of `/proc/<pid>/status`), which the thread-count check relies on.
    /// Other test threads come and go, so a reading is taken when it is stable.
    #[test]
    fn task_dir_links_count_threads() {
        let Ok(task) = open_dir(Path::new("/proc/self/task")) else {
            return; // no procfs here
        };
        let threads = || {
            let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let ok = (0..1000).any(|_| {
            let a = links(&task);
            let t = threads();
            let b = links(&task);
            a == b && t.is_some_and(|t| a == t + 2)
        });
        assert!(ok, "link count of /proc/self/task is not 2 + threads");
        // A new thread adds one (tried again when another test thread came or went).
        let grew = (0..100).any(|_| {
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let before = links(&task);
            let h = std::thread::spawn(move || {
                let _ = rx.recv();
            });
            let during = links(&task);
            let _ = tx.send(());
            let _ = h.join();
            during == before + 1
        });
        assert!(grew, "a new thread did not change the link count");
    }
}
