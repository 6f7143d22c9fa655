//! The monitor: discovers VMs, reads their counters and turns them into rates.

use std::collections::HashMap;
use std::ffi::CStr;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::fs::{AtFlags, RawDir, SeekFrom};
use tracing::{debug, info};

use crate::discover::{Static, cg_files, discover, links};
use crate::layout::{Scanner, Version};
use crate::names::dir_kind;
use crate::parse::{self, ParseError};
use crate::read::{ReadError, Reader};
use crate::{HostInfo, MonitorConfig, MonitorError, Sample, VmInfo};

/// Size of the directory-listing buffer (one `getdents64` call fills it; more are made as
/// needed).
const DIRBUF: usize = 32 * 1024;

/// Most VMs followed at once (a KVM host runs far fewer); more are counted as skipped.
pub const MAX_VMS: usize = 4096;

/// The map key of a VM directory: the scanner's index, then the directory name.
fn key_of<'k>(key: &'k mut Vec<u8>, scanner: usize, name: &[u8]) -> &'k [u8] {
    key.clear();
    key.push(u8::try_from(scanner).unwrap_or(u8::MAX));
    key.extend_from_slice(name);
    key
}

/// Raw counters of one VM at one instant.
#[derive(Debug, Clone, Copy)]
struct Counters {
    at: Instant,
    usage_ns: u64,
    run_delay_ns: u64,
    psi_some_us: Option<u64>,
}

/// Ages (seconds since a VM was first discovered, doubling from 1) at which its discovery
/// is done again whatever the cheap checks say: a backstop for a VM found while libvirt was
/// still setting it up. After the last one a VM is in steady state.
const RECHECKS: u32 = 6;

/// What the monitor remembers of a VM between samples.
#[derive(Debug)]
struct VmState {
    stat: Option<Static>,
    /// The pid the counters in `prev` belong to (kept while `stat` is rediscovered).
    pid: u32,
    /// [`Static::basis`] of the discovery `prev` was read with (0 before any).
    basis: u64,
    /// The cgroup inode of the last discovery.
    cg_ino: u64,
    prev: Option<Counters>,
    seen: u64,
    /// When this VM (its pid and cgroup) was first discovered.
    born: Option<Instant>,
    /// How many of the backstop rediscoveries (at 1, 2, 4, ... s of age) are done.
    rechecks: u32,
}

impl VmState {
    /// The instant of the next backstop rediscovery, if any is left.
    fn next_recheck(&self) -> Option<Instant> {
        let born = self.born?;
        if self.rechecks >= RECHECKS {
            return None;
        }
        born.checked_add(Duration::from_secs(1u64 << self.rechecks))
    }

    /// Whether a backstop rediscovery is due at `now`; if so, counts it (and the ones a long
    /// gap between samples skipped).
    fn take_recheck(&mut self, now: Instant) -> bool {
        let mut due = false;
        while self.next_recheck().is_some_and(|t| t <= now) {
            self.rechecks += 1;
            due = true;
        }
        due
    }

    /// Takes a new discovery: counters read over another pid, cgroup or thread set are not
    /// comparable with the previous ones, so those are dropped.
    fn adopt(&mut self, st: Static, why: Why, now: Instant) {
        let basis = st.basis();
        if st.pid != self.pid || st.cg_ino != self.cg_ino || self.born.is_none() {
            info!(vm = %st.name, pid = st.pid, vcpus = st.vcpus, ?why, "vm discovered");
            self.born = Some(now);
            self.rechecks = 0;
        } else if basis != self.basis {
            info!(vm = %st.name, pid = st.pid, vcpus = st.vcpus, threads = st.tids.len(), ?why,
                "vm threads or cgroup changed: discovered again");
        }
        if basis != self.basis {
            self.prev = None;
        }
        self.pid = st.pid;
        self.cg_ino = st.cg_ino;
        self.basis = basis;
        self.stat = Some(st);
    }
}

/// Why a VM is discovered (again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    /// Not discovered yet, or a read showed its threads or files gone.
    New,
    /// Its cgroup directory has another inode: it was removed and made again.
    CgroupReplaced,
    /// `vcpuN` sub-cgroups appeared after a discovery that found none.
    VcpuCgroups,
    /// Its process's thread count changed while its vCPU threads were a guess.
    Threads,
    /// The backstop for a young VM.
    Young,
}

/// Whether what `st` found may be out of date, checked cheaply at each sample (no
/// allocation: a comparison, at most two `statat` and one `fstat`).
fn stale(st: &Static, at: &VmDir<'_>) -> Option<Why> {
    if at.ino != st.cg_ino {
        return Some(Why::CgroupReplaced);
    }
    if !st.vcpu_cgroups {
        let exists = |p: &CStr| rustix::fs::statat(&st.cg_dir, p, AtFlags::empty()).is_ok();
        if exists(c"libvirt/vcpu0") || exists(c"vcpu0") {
            return Some(Why::VcpuCgroups);
        }
    }
    if st.threads_guessed && links(&st.task_dir) != st.task_links {
        return Some(Why::Threads);
    }
    None
}

/// Reads the host and its VMs; see the crate documentation.
#[derive(Debug)]
pub struct Monitor {
    cfg: MonitorConfig,
    scanners: Vec<Scanner>,
    vms: HashMap<Vec<u8>, VmState>,
    key: Vec<u8>,
    /// The buffer directory entries are read into (`getdents64`).
    dirbuf: Vec<u8>,
    reader: Reader,
    sample: Sample,
    generation: u64,
    last_host: HostInfo,
}

/// Why one VM was skipped this time.
#[derive(Debug)]
pub(crate) enum Skip {
    /// Its files vanished or could not be read.
    Read,
    /// A file was malformed (half-written).
    Parse,
}

impl From<ReadError> for Skip {
    fn from(_: ReadError) -> Self {
        Skip::Read
    }
}

impl From<ParseError> for Skip {
    fn from(_: ParseError) -> Self {
        Skip::Parse
    }
}

fn rate_milli(delta: u64, per_ns: u64, elapsed: Duration) -> u64 {
    // delta is in units of `per_ns` nanoseconds; the result is milli-units per second.
    let ns = elapsed.as_nanos().max(1);
    let v = u128::from(delta) * u128::from(per_ns) * 1000 / ns;
    u64::try_from(v).unwrap_or(u64::MAX)
}

impl Monitor {
    /// A monitor reading under `cfg`'s roots. Reads the host files once, so a wrong root is
    /// an error here rather than at the first sample.
    ///
    /// The monitor keeps each VM's files open (about 3 + vCPUs descriptors a VM), so it raises
    /// the process's soft limit of open files to its hard limit; where a file cannot be kept
    /// open it is opened at each read instead.
    pub fn new(cfg: MonitorConfig) -> Result<Monitor, MonitorError> {
        raise_nofile_limit();
        let scanners = Scanner::all(&cfg.cgroup_root);
        let mut m = Monitor {
            cfg,
            scanners,
            vms: HashMap::new(),
            key: Vec::with_capacity(256),
            dirbuf: Vec::with_capacity(DIRBUF),
            reader: Reader::default(),
            sample: Sample::default(),
            generation: 0,
            last_host: HostInfo::default(),
        };
        m.last_host = m.read_host(None)?;
        Ok(m)
    }

    /// The configuration this monitor reads with.
    pub fn config(&self) -> &MonitorConfig {
        &self.cfg
    }

    /// Reads everything once; CPU figures are rates since the previous call (0 on the first).
    pub fn sample(&mut self) -> Result<&Sample, MonitorError> {
        self.sample_at(Instant::now())
    }

    /// As [`Monitor::sample`], with the instant of the reading given (tests use it to get
    /// exact rates from fixture counters).
    pub fn sample_at(&mut self, now: Instant) -> Result<&Sample, MonitorError> {
        self.generation = self.generation.wrapping_add(1);
        let mut skipped = 0u32;
        let host = self.read_host(Some(&mut skipped))?;
        self.last_host = host;
        self.sample.host = host;
        let mut n = 0usize;
        let Monitor {
            cfg,
            scanners,
            vms,
            key,
            dirbuf,
            reader,
            sample,
            generation,
            ..
        } = self;
        for (si, scanner) in scanners.iter_mut().enumerate() {
            let version = scanner.version;
            let Some((fd, cpu_dir, mem_dir)) = scanner.open() else {
                continue;
            };
            let mut any = false;
            // The directory is re-listed from the start each time: the kernel lists its
            // current entries after a seek to 0.
            let rewound = rustix::fs::seek(fd, SeekFrom::Start(0)).is_ok();
            dirbuf.clear();
            let mut it = RawDir::new(fd, dirbuf.spare_capacity_mut());
            while let Some(Ok(entry)) = rewound.then(|| it.next()).flatten() {
                any = true;
                let name = entry.file_name().to_bytes();
                let ino = entry.ino();
                if dir_kind(name).is_none() {
                    continue;
                }
                if vms.len() >= MAX_VMS && !vms.contains_key(key_of(key, si, name)) {
                    // Bounded memory whatever the directory holds.
                    skipped = skipped.saturating_add(1);
                    continue;
                }
                let vm = match vms.get_mut(key_of(key, si, name)) {
                    Some(vm) => vm,
                    None => vms.entry(key.clone()).or_insert(VmState {
                        stat: None,
                        pid: 0,
                        basis: 0,
                        cg_ino: 0,
                        prev: None,
                        seen: 0,
                        born: None,
                        rechecks: 0,
                    }),
                };
                vm.seen = *generation;
                let at = VmDir {
                    version,
                    cpu_dir,
                    mem_dir,
                    name,
                    ino,
                };
                if n == sample.vms.len() {
                    sample.vms.push(VmInfo::default());
                }
                let Some(out) = sample.vms.get_mut(n) else {
                    break;
                };
                match read_vm(cfg, reader, &at, vm, now, out) {
                    Ok(()) => n += 1,
                    Err(why) => {
                        debug!(dir = %String::from_utf8_lossy(name), ?why, "vm skipped this sample");
                        skipped = skipped.saturating_add(1);
                    }
                }
            }
            if !any {
                // Not even "." was listed: the directory was removed. Reopen next time.
                scanner.close();
            }
        }
        vms.retain(|_, vm| vm.seen == *generation);
        sample.vms.truncate(n);
        sample.skipped = skipped;
        Ok(&self.sample)
    }
}

/// Where one VM's files are.
#[derive(Debug)]
pub(crate) struct VmDir<'a> {
    /// The cgroup version.
    pub(crate) version: Version,
    /// The directory listing VM cgroups (CPU side).
    pub(crate) cpu_dir: &'a Path,
    /// The same for memory (differs on v1).
    pub(crate) mem_dir: &'a Path,
    /// The VM's directory name.
    pub(crate) name: &'a [u8],
    /// The VM directory's inode number, as listed (`d_ino`).
    pub(crate) ino: u64,
}

/// Reads one VM into `out`; on error the VM is skipped this sample.
fn read_vm(
    cfg: &MonitorConfig,
    reader: &mut Reader,
    at: &VmDir<'_>,
    vm: &mut VmState,
    now: Instant,
    out: &mut VmInfo,
) -> Result<(), Skip> {
    let young = vm.take_recheck(now);
    let why = match vm.stat.as_ref() {
        None => Some(Why::New),
        Some(st) => stale(st, at).or(young.then_some(Why::Young)),
    };
    if let Some(why) = why {
        match discover(cfg, reader, at) {
            Ok(st) => vm.adopt(st, why, now),
            // The backstop found nothing better: keep what was found before.
            Err(_) if why == Why::Young => {}
            Err(e) => {
                vm.stat = None;
                return Err(e);
            }
        }
    }
    let Some(st) = vm.stat.as_ref() else {
        return Err(Skip::Read);
    };
    let res = read_counters(reader, at, st, now);
    let (c, mem_used_bytes) = match res {
        Ok(v) => v,
        Err((e, rediscover)) => {
            if rediscover {
                // Threads or the process changed: discover again next time.
                vm.stat = None;
            }
            return Err(e);
        }
    };
    let cap = u64::from(st.vcpus).saturating_mul(1000);
    // More than this over a period is no real reading (a torn or replaced file): the VM is
    // skipped and the previous counters kept, so the next period covers both.
    let implausible = u64::from(st.vcpus).saturating_add(1).saturating_mul(1500);
    let (use_milli, wait_milli) = match vm.prev {
        Some(p) if c.at > p.at && c.usage_ns >= p.usage_ns && c.run_delay_ns >= p.run_delay_ns => {
            let el = c.at.duration_since(p.at);
            let use_m = rate_milli(c.usage_ns - p.usage_ns, 1, el);
            let sched_wait = rate_milli(c.run_delay_ns - p.run_delay_ns, 1, el);
            // cpu.pressure "some" is wall time with at least one thread waiting: a lower
            // bound of the summed per-thread wait, used when schedstat under-reports.
            let psi_wait = match (c.psi_some_us, p.psi_some_us) {
                (Some(a), Some(b)) if a >= b => rate_milli(a - b, 1000, el),
                _ => 0,
            };
            if use_m > implausible || sched_wait > implausible.saturating_mul(4) {
                return Err(Skip::Parse);
            }
            (use_m, sched_wait.max(psi_wait))
        }
        _ => (0, 0),
    };
    vm.prev = Some(c);
    out.name.clear();
    out.name.push_str(&st.name);
    out.pid = st.pid;
    out.vcpus = st.vcpus;
    out.mem_size_mib = st.mem_size_mib;
    out.mem_used_mib = mem_used_bytes >> 20;
    out.cpu_use_milli = use_milli.min(cap);
    out.cpu_demand_milli = use_milli.saturating_add(wait_milli).min(cap);
    Ok(())
}

/// Reads one of a VM's files: through its descriptor kept open, else opened in `dir`.
fn read_file<'r>(
    r: &'r mut Reader,
    kept: Option<&OwnedFd>,
    dir: &OwnedFd,
    name: &CStr,
) -> Result<&'r str, ReadError> {
    match kept {
        Some(fd) => r.read_fd(fd),
        None => r.read_in(dir, name),
    }
}

/// Reads a VM's cgroup files: CPU usage (ns), memory used (bytes), `cpu.pressure` some
/// total (us, v2 only).
fn read_cgroup(
    r: &mut Reader,
    version: Version,
    st: &Static,
) -> Result<(u64, u64, Option<u64>), Skip> {
    let cg = &st.cg_dir;
    let mem = st.mem_dir.as_ref().unwrap_or(cg);
    let names = cg_files(version);
    let [cpu_f, cur_f, stat_f, psi_f] = &st.cg_files;
    let t = read_file(r, cpu_f.as_ref(), cg, names[0])?;
    let usage_ns = match version {
        Version::V2 | Version::Hybrid => parse::parse_cpu_stat_usage_usec(t)?.saturating_mul(1000),
        Version::V1 => parse::parse_single(t, "cpuacct.usage")?,
    };
    let t = read_file(r, cur_f.as_ref(), mem, names[1])?;
    let current = parse::check_bytes(parse::parse_single(t, "memory current")?, "memory current")?;
    let stat_key = match version {
        Version::V2 => "inactive_file",
        Version::V1 | Version::Hybrid => "total_inactive_file",
    };
    let t = read_file(r, stat_f.as_ref(), mem, names[2])?;
    let inactive = parse::check_bytes(parse::parse_keyed(t, stat_key)?, stat_key)?;
    let psi_some_us = match version {
        Version::V2 | Version::Hybrid => match read_file(r, psi_f.as_ref(), cg, names[3]) {
            Ok(t) => parse::parse_psi(t).ok().map(|p| p.some.total_us),
            Err(_) => None,
        },
        Version::V1 => None,
    };
    Ok((usage_ns, current.saturating_sub(inactive), psi_some_us))
}

/// Reads a VM's counters. The error says whether the VM's threads must be discovered again.
fn read_counters(
    r: &mut Reader,
    at: &VmDir<'_>,
    st: &Static,
    now: Instant,
) -> Result<(Counters, u64), (Skip, bool)> {
    // A cgroup file that cannot be read (a removed cgroup's files fail with ENODEV) calls
    // for a new discovery too; a malformed one does not.
    let (usage_ns, mem_used, psi_some_us) = read_cgroup(r, at.version, st).map_err(|e| {
        let again = matches!(e, Skip::Read);
        (e, again)
    })?;
    let mut run_delay_ns = 0u64;
    for ((_, rel), kept) in st.tids.iter().zip(&st.tid_files) {
        let rel = CStr::from_bytes_with_nul(rel).map_err(|_| (Skip::Parse, true))?;
        // A thread gone means the process or its threads changed: discover again.
        let t = read_file(r, kept.as_ref(), &st.task_dir, rel);
        let t = t.map_err(|e| (Skip::from(e), true))?;
        let ss = parse::parse_schedstat(t).map_err(|e| (Skip::from(e), true))?;
        run_delay_ns = run_delay_ns.saturating_add(ss.run_delay_ns);
    }
    Ok((
        Counters {
            at: now,
            usage_ns,
            run_delay_ns,
            psi_some_us,
        },
        mem_used,
    ))
}

impl Monitor {
    /// Reads the host's capacity and pressure. With `skipped`, a file that cannot be read
    /// keeps the previous value and is counted; without (at creation), it is an error.
    fn read_host(&mut self, skipped: Option<&mut u32>) -> Result<HostInfo, MonitorError> {
        let prev = self.last_host;
        let lenient = skipped.is_some();
        let mut skips = 0u32;
        let cfg = &self.cfg;
        let r = &mut self.reader;
        // CPU: online CPUs, lowered by the VMs' cgroup cpu.max when one is set.
        let cores = host_value(r, &cfg.sys_root, b"devices/system/cpu/online", |t| {
            parse::parse_cpu_list_count(t)
        });
        let cpu_milli = match cores {
            Ok(c) => u64::from(c) * 1000,
            Err(e) if !lenient || prev.cpu_capacity_milli == 0 => return Err(e),
            Err(_) => {
                skips += 1;
                prev.cpu_capacity_milli
                    .saturating_add(cfg.reserve_cpu_milli)
            }
        };
        let mut quota = None;
        for slice in [&b"machine.slice/cpu.max"[..], b"machine/cpu.max"] {
            if let Ok(t) = r.read_at(&cfg.cgroup_root, &[slice]) {
                if let Ok(Some(q)) = parse::parse_cpu_max_milli(t) {
                    quota = Some(q);
                }
                break;
            }
        }
        let cpu_milli = quota.map_or(cpu_milli, |q| q.min(cpu_milli));
        let mem = host_value(r, &cfg.proc_root, b"meminfo", |t| {
            parse::parse_meminfo_kb(t, "MemTotal")
        });
        let mem_mib = match mem {
            Ok(kb) => kb >> 10,
            Err(e) if !lenient || prev.mem_capacity_mib == 0 => return Err(e),
            Err(_) => {
                skips += 1;
                prev.mem_capacity_mib.saturating_add(cfg.reserve_mem_mib)
            }
        };
        let mut psi =
            |file: &[u8], skips: &mut u32| match r.read_at(&cfg.proc_root, &[b"pressure", file]) {
                Ok(t) => match parse::parse_psi(t) {
                    Ok(p) => Some(p.some.avg10),
                    Err(_) => {
                        *skips += 1;
                        None
                    }
                },
                // No PSI on this kernel (or not enabled): not a skip.
                Err(_) => None,
            };
        let cpu_psi = psi(b"cpu", &mut skips);
        let mem_psi = psi(b"memory", &mut skips);
        if let Some(s) = skipped {
            *s = s.saturating_add(skips);
        }
        let cpu_capacity_milli = cpu_milli
            .checked_sub(cfg.reserve_cpu_milli)
            .filter(|&v| v > 0);
        let Some(cpu_capacity_milli) = cpu_capacity_milli else {
            return Err(MonitorError::ReserveTooLarge {
                reserve: cfg.reserve_cpu_milli,
                capacity: cpu_milli,
                unit: "milli-cores",
            });
        };
        let mem_capacity_mib = mem_mib.checked_sub(cfg.reserve_mem_mib).filter(|&v| v > 0);
        let Some(mem_capacity_mib) = mem_capacity_mib else {
            return Err(MonitorError::ReserveTooLarge {
                reserve: cfg.reserve_mem_mib,
                capacity: mem_mib,
                unit: "MiB",
            });
        };
        Ok(HostInfo {
            cpu_capacity_milli,
            mem_capacity_mib,
            cpu_psi_some_avg10: cpu_psi,
            mem_psi_some_avg10: mem_psi,
        })
    }
}

/// Reads and parses one host file, with errors naming it.
fn host_value<T>(
    r: &mut Reader,
    base: &Path,
    rel: &[u8],
    f: impl FnOnce(&str) -> Result<T, ParseError>,
) -> Result<T, MonitorError> {
    let res = match r.read_at(base, &[rel]) {
        Ok(t) => f(t).map_err(Ok),
        Err(e) => Err(Err(e)),
    };
    res.map_err(|e| match e {
        Ok(source) => MonitorError::HostParse {
            path: r.path().to_path_buf(),
            source,
        },
        Err(e) => MonitorError::HostFile {
            path: r.path().to_path_buf(),
            source: match e {
                ReadError::Io(e) => e,
                ReadError::Garbled => {
                    std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 or too long")
                }
            },
        },
    })
}

/// Raises the soft limit of open files to the hard limit (best effort, logged).
fn raise_nofile_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current < lim.maximum {
        let from = lim.current;
        lim.current = lim.maximum;
        match setrlimit(Resource::Nofile, lim) {
            Ok(()) => debug!(?from, to = ?lim.current, "raised the open files limit"),
            Err(e) => debug!(%e, "cannot raise the open files limit"),
        }
    }
}
