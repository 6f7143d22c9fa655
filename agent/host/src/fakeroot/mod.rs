//! A writer of fake hypervisor roots: a directory holding `proc/`, `sys/` and
//! `sys/fs/cgroup/` in the exact format Linux 6.1 and libvirt 9 (cgroup v2 under systemd)
//! write them, for [`Monitor`](crate::Monitor) to read as it reads a real host.
//!
//! The lab (`dvms-lab`) plays the kernel with it: it creates one root per fake host,
//! adds VMs, advances their counters as the workload runs, and moves a VM's files from one
//! root to another to "migrate" it.
//!
//! ```text
//! <root>/proc/meminfo
//! <root>/proc/pressure/{cpu,memory}
//! <root>/proc/<pid>/cmdline                      # -name guest=<name> -m size=<kib>k -smp <n>
//! <root>/proc/<pid>/task/<tid>/{comm,schedstat}  # tid = pid (main), pid+1.. (CPU n/KVM)
//! <root>/sys/devices/system/cpu/online
//! <root>/sys/fs/cgroup/machine.slice/machine-qemu\x2d<id>\x2d<name>.scope/
//!     cpu.stat memory.current memory.stat cpu.pressure cgroup.procs (empty) ...
//!     libvirt/cgroup.procs (pid)  libvirt/emulator/cgroup.threads  libvirt/vcpuN/cgroup.threads
//! ```
//!
//! Every file is replaced atomically (written to a hidden temporary name, then renamed), and
//! a VM appears or disappears with one directory rename, so a reader never sees a
//! half-written file; a move shows the VM transiently on neither root, which the monitor
//! tolerates. Pids and libvirt ids are unique in the process, so VMs moved between roots
//! never clash.

mod format;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::MonitorConfig;
use crate::names::scope_dir_name;

/// Next pid handed out (pids are unique in the process; below the kernel's 2^22).
static NEXT_PID: AtomicU32 = AtomicU32::new(100_000);
/// Next libvirt domain id handed out.
static NEXT_ID: AtomicU32 = AtomicU32::new(1);

/// Errors of the fake root writer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FakeRootError {
    /// A file or directory could not be written.
    #[error("cannot write {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// No VM of that name on this root.
    #[error("no vm named {name} on this root")]
    UnknownVm {
        /// The name.
        name: String,
    },
    /// A VM of that name already exists on the destination.
    #[error("vm {name} already on this root")]
    DuplicateVm {
        /// The name.
        name: String,
    },
    /// An argument out of range.
    #[error("invalid {what}")]
    Invalid {
        /// What was wrong.
        what: &'static str,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> FakeRootError + '_ {
    move |source| FakeRootError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `content` to `path` atomically (temporary file in the same directory, then rename).
fn write_atomic(path: &Path, content: &[u8]) -> Result<(), FakeRootError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    fs::write(&tmp, content).map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))
}

/// Rewrites `path` in place (one positioned write, then a truncation when shorter), as the
/// kernel's files change under a reader that keeps them open: a monitor holding the file
/// open sees the new text on its next read from the start.
fn write_in_place(path: &Path, content: &[u8]) -> Result<(), FakeRootError> {
    use std::os::unix::fs::FileExt;
    let f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_err(path))?;
    f.write_all_at(content, 0).map_err(io_err(path))?;
    let len = u64::try_from(content.len()).unwrap_or(u64::MAX);
    if f.metadata().map_err(io_err(path))?.len() > len {
        f.set_len(len).map_err(io_err(path))?;
    }
    Ok(())
}

/// Counters of one fake VM.
#[derive(Debug, Clone)]
struct FakeVm {
    id: u32,
    pid: u32,
    vcpus: u32,
    mem_mib: u64,
    mem_used_mib: u64,
    usage_usec: u64,
    psi_some_usec: u64,
    /// Per vCPU: (exec ns, run delay ns, slices).
    threads: Vec<(u64, u64, u64)>,
}

impl FakeVm {
    fn scope(&self, name: &str) -> String {
        scope_dir_name(self.id, name)
    }

    fn cache_bytes(&self) -> u64 {
        // Some inactive page cache, which the monitor must not count as used.
        (self.mem_mib / 64).min(64) << 20
    }
}

/// Ids the fake kernel gave a VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FakeVmIds {
    /// The libvirt domain id (in the scope name).
    pub id: u32,
    /// The QEMU pid; its vCPU threads are `pid + 1 ..= pid + vcpus`.
    pub pid: u32,
}

/// One fake hypervisor root; see the module documentation.
#[derive(Debug)]
pub struct FakeRoot {
    root: PathBuf,
    cores: u32,
    mem_mib: u64,
    vms: BTreeMap<String, FakeVm>,
    cpu_psi: (f32, u64),
    mem_psi: (f32, u64),
}

impl FakeRoot {
    /// Creates a host root at `dir` (created if absent) with `cores` CPUs and `mem_mib` MiB.
    pub fn create(
        dir: impl Into<PathBuf>,
        cores: u32,
        mem_mib: u64,
    ) -> Result<FakeRoot, FakeRootError> {
        if !(1..=crate::parse::MAX_CPUS).contains(&cores) {
            return Err(FakeRootError::Invalid { what: "core count" });
        }
        if mem_mib == 0 || mem_mib > 1 << 30 {
            return Err(FakeRootError::Invalid {
                what: "memory size",
            });
        }
        let r = FakeRoot {
            root: dir.into(),
            cores,
            mem_mib,
            vms: BTreeMap::new(),
            cpu_psi: (0.0, 0),
            mem_psi: (0.0, 0),
        };
        for d in [
            r.proc().join("pressure"),
            r.sys().join("devices/system/cpu"),
            r.cgroup().join("machine.slice"),
        ] {
            fs::create_dir_all(&d).map_err(io_err(&d))?;
        }
        write_atomic(
            &r.sys().join("devices/system/cpu/online"),
            format::cpu_online(cores).as_bytes(),
        )?;
        let cg = r.cgroup();
        write_atomic(
            &cg.join("cgroup.controllers"),
            b"cpuset cpu io memory hugetlb pids rdma misc\n",
        )?;
        write_atomic(
            &cg.join("cgroup.subtree_control"),
            b"cpuset cpu io memory pids\n",
        )?;
        let slice = cg.join("machine.slice");
        write_atomic(
            &slice.join("cgroup.controllers"),
            b"cpuset cpu io memory pids\n",
        )?;
        write_atomic(&slice.join("cpu.max"), b"max 100000\n")?;
        r.write_meminfo()?;
        r.write_host_pressure()?;
        Ok(r)
    }

    /// The host's CPU count.
    pub fn cores(&self) -> u32 {
        self.cores
    }

    /// The host's memory, MiB.
    pub fn mem_mib(&self) -> u64 {
        self.mem_mib
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The monitor configuration reading this root (no reserve).
    pub fn monitor_config(&self) -> MonitorConfig {
        MonitorConfig {
            cgroup_root: self.cgroup(),
            proc_root: self.proc(),
            sys_root: self.sys(),
            reserve_cpu_milli: 0,
            reserve_mem_mib: 0,
        }
    }

    /// The names of the VMs on this root, sorted.
    pub fn vm_names(&self) -> impl Iterator<Item = &str> {
        self.vms.keys().map(String::as_str)
    }

    /// The ids of a VM on this root.
    pub fn vm_ids(&self, name: &str) -> Option<FakeVmIds> {
        self.vms.get(name).map(|v| FakeVmIds {
            id: v.id,
            pid: v.pid,
        })
    }

    fn proc(&self) -> PathBuf {
        self.root.join("proc")
    }

    fn sys(&self) -> PathBuf {
        self.root.join("sys")
    }

    fn cgroup(&self) -> PathBuf {
        self.root.join("sys/fs/cgroup")
    }

    fn slice(&self) -> PathBuf {
        self.root.join("sys/fs/cgroup/machine.slice")
    }

    fn write_meminfo(&self) -> Result<(), FakeRootError> {
        let used: u64 = self.vms.values().map(|v| v.mem_used_mib).sum();
        write_atomic(
            &self.proc().join("meminfo"),
            format::meminfo(self.mem_mib * 1024, used.saturating_mul(1024)).as_bytes(),
        )
    }

    fn write_host_pressure(&self) -> Result<(), FakeRootError> {
        let p = self.proc().join("pressure");
        write_atomic(
            &p.join("cpu"),
            format::pressure(self.cpu_psi.0, self.cpu_psi.1, 0).as_bytes(),
        )?;
        write_atomic(
            &p.join("memory"),
            format::pressure(self.mem_psi.0, self.mem_psi.1, 0).as_bytes(),
        )
    }

    /// Sets the host's `some avg10` pressure figures (percent) and adds `cpu_stall_us` and
    /// `mem_stall_us` to their totals.
    pub fn set_host_pressure(
        &mut self,
        cpu_some_avg10: f32,
        cpu_stall_us: u64,
        mem_some_avg10: f32,
        mem_stall_us: u64,
    ) -> Result<(), FakeRootError> {
        self.cpu_psi = (cpu_some_avg10, self.cpu_psi.1.saturating_add(cpu_stall_us));
        self.mem_psi = (mem_some_avg10, self.mem_psi.1.saturating_add(mem_stall_us));
        self.write_host_pressure()
    }

    /// Adds a running VM with `vcpus` vCPUs and `mem_mib` MiB configured; its counters start
    /// at zero and its memory use at zero.
    pub fn add_vm(
        &mut self,
        name: &str,
        vcpus: u32,
        mem_mib: u64,
    ) -> Result<FakeVmIds, FakeRootError> {
        if name.is_empty() || name.len() > 200 || name.contains('/') || name.contains('\0') {
            return Err(FakeRootError::Invalid { what: "vm name" });
        }
        if !(1..=256).contains(&vcpus) {
            return Err(FakeRootError::Invalid { what: "vcpu count" });
        }
        if mem_mib == 0 || mem_mib > 1 << 30 {
            return Err(FakeRootError::Invalid {
                what: "vm memory size",
            });
        }
        if self.vms.contains_key(name) {
            return Err(FakeRootError::DuplicateVm {
                name: name.to_owned(),
            });
        }
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let pid = NEXT_PID.fetch_add(vcpus + 2, Ordering::Relaxed);
        if pid.saturating_add(vcpus + 2) >= 1 << 22 {
            return Err(FakeRootError::Invalid {
                what: "pid space exhausted",
            });
        }
        let vm = FakeVm {
            id,
            pid,
            vcpus,
            mem_mib,
            mem_used_mib: 0,
            usage_usec: 0,
            psi_some_usec: 0,
            threads: vec![(0, 0, 0); vcpus as usize],
        };
        // The process first, then the cgroup appears with one rename.
        self.write_proc(name, &vm, &self.proc())?;
        let scope = vm.scope(name);
        let tmp = self.slice().join(format!(".new-{scope}"));
        self.write_cgroup(&tmp, &vm, true)?;
        let dst = self.slice().join(&scope);
        fs::rename(&tmp, &dst).map_err(io_err(&dst))?;
        self.vms.insert(name.to_owned(), vm);
        self.write_meminfo()?;
        Ok(FakeVmIds { id, pid })
    }

    fn write_proc(&self, name: &str, vm: &FakeVm, proc: &Path) -> Result<(), FakeRootError> {
        let pdir = proc.join(vm.pid.to_string());
        let task = pdir.join("task");
        let main = task.join(vm.pid.to_string());
        fs::create_dir_all(&main).map_err(io_err(&main))?;
        write_atomic(&pdir.join("comm"), b"qemu-system-x86\n")?;
        write_atomic(
            &pdir.join("cmdline"),
            &format::qemu_cmdline(vm.id, name, vm.vcpus, vm.mem_mib),
        )?;
        write_atomic(&main.join("comm"), b"qemu-system-x86\n")?;
        write_atomic(
            &main.join("schedstat"),
            format::schedstat(0, 0, 0).as_bytes(),
        )?;
        for n in 0..vm.vcpus {
            let t = task.join((vm.pid + 1 + n).to_string());
            fs::create_dir_all(&t).map_err(io_err(&t))?;
            write_atomic(&t.join("comm"), format!("CPU {n}/KVM\n").as_bytes())?;
            write_atomic(&t.join("schedstat"), format::schedstat(0, 0, 0).as_bytes())?;
        }
        Ok(())
    }

    fn write_cgroup(&self, scope: &Path, vm: &FakeVm, create: bool) -> Result<(), FakeRootError> {
        let lv = scope.join("libvirt");
        if create {
            for n in 0..vm.vcpus {
                let d = lv.join(format!("vcpu{n}"));
                fs::create_dir_all(&d).map_err(io_err(&d))?;
                write_atomic(&d.join("cgroup.type"), b"threaded\n")?;
                write_atomic(
                    &d.join("cgroup.threads"),
                    format!("{}\n", vm.pid + 1 + n).as_bytes(),
                )?;
            }
            let em = lv.join("emulator");
            fs::create_dir_all(&em).map_err(io_err(&em))?;
            write_atomic(&em.join("cgroup.type"), b"threaded\n")?;
            write_atomic(
                &em.join("cgroup.threads"),
                format!("{}\n", vm.pid).as_bytes(),
            )?;
            write_atomic(&em.join("cpu.stat"), format::cpu_stat(0).as_bytes())?;
            write_atomic(&lv.join("cgroup.type"), b"domain threaded\n")?;
            write_atomic(&lv.join("cgroup.procs"), format!("{}\n", vm.pid).as_bytes())?;
            write_atomic(&scope.join("cgroup.procs"), b"")?;
            write_atomic(&scope.join("cgroup.type"), b"domain\n")?;
            write_atomic(
                &scope.join("cgroup.controllers"),
                b"cpuset cpu io memory pids\n",
            )?;
            write_atomic(&scope.join("cpu.max"), b"max 100000\n")?;
            write_atomic(&scope.join("memory.max"), b"max\n")?;
        }
        self.write_counters(scope, vm)
    }

    fn write_counters(&self, scope: &Path, vm: &FakeVm) -> Result<(), FakeRootError> {
        let lv = scope.join("libvirt");
        for (n, &(exec, _, _)) in vm.threads.iter().enumerate() {
            write_in_place(
                &lv.join(format!("vcpu{n}")).join("cpu.stat"),
                format::cpu_stat(exec / 1000).as_bytes(),
            )?;
        }
        write_in_place(
            &scope.join("cpu.stat"),
            format::cpu_stat(vm.usage_usec).as_bytes(),
        )?;
        let anon = vm.mem_used_mib << 20;
        let cache = vm.cache_bytes();
        write_in_place(
            &scope.join("memory.stat"),
            format::memory_stat(anon, cache).as_bytes(),
        )?;
        write_in_place(
            &scope.join("memory.current"),
            format!("{}\n", anon + cache).as_bytes(),
        )?;
        write_in_place(
            &scope.join("cpu.pressure"),
            format::pressure(0.0, vm.psi_some_usec, 0).as_bytes(),
        )
    }

    fn write_schedstats(&self, vm: &FakeVm) -> Result<(), FakeRootError> {
        let task = self.proc().join(vm.pid.to_string()).join("task");
        for (n, &(exec, delay, slices)) in (0u32..).zip(&vm.threads) {
            let t = task.join((vm.pid + 1 + n).to_string()).join("schedstat");
            write_in_place(&t, format::schedstat(exec, delay, slices).as_bytes())?;
        }
        Ok(())
    }

    /// Advances a VM's counters: `used_core_s` core-seconds of CPU used and `waited_core_s`
    /// core-seconds spent runnable but waiting (both spread evenly over its vCPU threads),
    /// and sets its memory use to `mem_used_mib`.
    pub fn advance_vm(
        &mut self,
        name: &str,
        used_core_s: f64,
        waited_core_s: f64,
        mem_used_mib: u64,
    ) -> Result<(), FakeRootError> {
        if !(0.0..1e9).contains(&used_core_s) {
            return Err(FakeRootError::Invalid {
                what: "used core-seconds",
            });
        }
        if !(0.0..1e9).contains(&waited_core_s) {
            return Err(FakeRootError::Invalid {
                what: "waited core-seconds",
            });
        }
        let vm = self
            .vms
            .get_mut(name)
            .ok_or_else(|| FakeRootError::UnknownVm {
                name: name.to_owned(),
            })?;
        if mem_used_mib > vm.mem_mib {
            return Err(FakeRootError::Invalid {
                what: "memory used above the vm's size",
            });
        }
        // Bounded above by 1e9 * 1e9 < u64::MAX.
        let used_ns = (used_core_s * 1e9).round() as u64;
        let waited_ns = (waited_core_s * 1e9).round() as u64;
        let k = u64::from(vm.vcpus);
        for t in &mut vm.threads {
            t.0 = t.0.saturating_add(used_ns / k);
            t.1 = t.1.saturating_add(waited_ns / k);
            t.2 = t.2.saturating_add(1);
        }
        vm.usage_usec = vm.usage_usec.saturating_add(used_ns / 1000);
        // "some" stall time is wall time with at least one vCPU waiting: with the wait spread
        // evenly and concurrently over the vCPUs, that is the wait divided by their count.
        vm.psi_some_usec = vm.psi_some_usec.saturating_add(waited_ns / 1000 / k);
        vm.mem_used_mib = mem_used_mib;
        let vm = vm.clone();
        self.write_schedstats(&vm)?;
        self.write_counters(&self.slice().join(vm.scope(name)), &vm)?;
        self.write_meminfo()
    }

    /// Removes a VM (the guest shut down): its cgroup disappears first, then its process.
    pub fn remove_vm(&mut self, name: &str) -> Result<(), FakeRootError> {
        let vm = self
            .vms
            .remove(name)
            .ok_or_else(|| FakeRootError::UnknownVm {
                name: name.to_owned(),
            })?;
        let scope = self.slice().join(vm.scope(name));
        let gone = self.slice().join(format!(".old-{}", vm.scope(name)));
        fs::rename(&scope, &gone).map_err(io_err(&scope))?;
        fs::remove_dir_all(&gone).map_err(io_err(&gone))?;
        let p = self.proc().join(vm.pid.to_string());
        fs::remove_dir_all(&p).map_err(io_err(&p))?;
        self.write_meminfo()
    }

    /// Moves a VM's files (process and cgroup) to `dest`, keeping its counters: the lab's
    /// migration. The process moves first, then the cgroup, each with one rename (a copy
    /// then a rename when the roots are on different file systems), so a reader sees the VM
    /// on one side, or briefly on neither.
    pub fn move_vm(&mut self, name: &str, dest: &mut FakeRoot) -> Result<(), FakeRootError> {
        if dest.vms.contains_key(name) {
            return Err(FakeRootError::DuplicateVm {
                name: name.to_owned(),
            });
        }
        let vm = self
            .vms
            .get(name)
            .cloned()
            .ok_or_else(|| FakeRootError::UnknownVm {
                name: name.to_owned(),
            })?;
        let pid = vm.pid.to_string();
        move_dir(&self.proc().join(&pid), &dest.proc(), &pid)?;
        let scope = vm.scope(name);
        move_dir(&self.slice().join(&scope), &dest.slice(), &scope)?;
        self.vms.remove(name);
        dest.vms.insert(name.to_owned(), vm);
        self.write_meminfo()?;
        dest.write_meminfo()
    }
}

/// Moves directory `src` to `dest_parent/name`: a rename, or a copy to a hidden name, a
/// rename and a removal across file systems.
fn move_dir(src: &Path, dest_parent: &Path, name: &str) -> Result<(), FakeRootError> {
    let dst = dest_parent.join(name);
    match fs::rename(src, &dst) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(nix::libc::EXDEV) => {
            let tmp = dest_parent.join(format!(".move-{name}"));
            copy_tree(src, &tmp)?;
            fs::rename(&tmp, &dst).map_err(io_err(&dst))?;
            fs::remove_dir_all(src).map_err(io_err(src))
        }
        Err(e) => Err(FakeRootError::Io {
            path: dst,
            source: e,
        }),
    }
}

fn copy_tree(src: &Path, dst: &Path) -> Result<(), FakeRootError> {
    fs::create_dir_all(dst).map_err(io_err(dst))?;
    for e in fs::read_dir(src).map_err(io_err(src))? {
        let e = e.map_err(io_err(src))?;
        let to = dst.join(e.file_name());
        if e.file_type().map_err(io_err(&e.path()))?.is_dir() {
            copy_tree(&e.path(), &to)?;
        } else {
            fs::copy(e.path(), &to).map_err(io_err(&to))?;
        }
    }
    Ok(())
}
