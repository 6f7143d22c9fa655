//! The fake hypervisor: N host roots in the kernel's format, a load model that keeps their
//! counters moving, and the hypervisor side of the lab actuator protocol (CONTRACTS B).
//!
//! ```text
//!  workload ──set_demand──▶ ┌────────── Hypervisor ───────────┐ ◀── migrate/abort/status ── dvmsd
//!                           │ engine thread: every tick, each │      (Unix socket, one JSON
//!                           │ VM's counters advance from its  │       line per connection)
//!                           │ demand, use capped at the host's│
//!                           │ capacity, the rest as waiting;  │
//!                           │ migrations end on their modelled│
//!                           │ time and move the VM's files    │
//!                           └─────────────────────────────────┘
//!                             h00/ h01/ ...: cgroup + /proc + /sys roots each dvmsd monitors
//! ```
//!
//! The hypervisor keeps the ground truth of where each VM is, so a run can count VMs lost or
//! duplicated against what the roots hold ([`Hypervisor::audit`]). Migrations take the time of
//! the simulator's pre-copy model (`dvms_sim::migration`) at the configured bandwidth; they
//! belong to the hypervisor once started: a client that disconnects does not stop one, `abort`
//! does (the VM stays on its source).
//!
//! Everything runs on plain threads, so the hypervisor can be used from synchronous tests and
//! from tokio tests alike.

mod load;
pub mod proto;
mod root;
mod server;
mod state;

use std::collections::BTreeMap;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dvms_sim::metrics::Dist;
use serde::Serialize;

pub use load::{Share, fair_share};
pub use root::RootPaths;
pub use server::{MAX_CONNECTIONS, request};

use state::{Host, State, Vm};

/// The longest Unix socket path (`sun_path` holds 108 bytes with the final NUL).
const MAX_SOCKET_PATH: usize = 107;
/// Most hosts and VMs one hypervisor holds.
pub const MAX_HOSTS: usize = 1024;
/// Most VMs one hypervisor holds.
pub const MAX_VMS: usize = 100_000;

/// One host of the lab.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSpec {
    /// Its node name (`h00`, ...): the agent's `node.name`.
    pub name: String,
    /// CPU capacity, thousandths of a core (a multiple of 1000: the root shows whole CPUs).
    pub cpu_milli: u64,
    /// Memory, MiB.
    pub mem_mib: u64,
}

/// One VM of the lab.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmSpec {
    /// Its globally unique name (`vm-0000`, ...).
    pub name: String,
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Memory size, MiB.
    pub mem_mib: u64,
}

/// How the hypervisor runs.
#[derive(Clone, Debug, PartialEq)]
pub struct HvConfig {
    /// Where the host roots go (`DIR/<host>/{cgroup,proc,sys}`); created if absent.
    pub dir: PathBuf,
    /// The lab protocol's socket.
    pub socket: PathBuf,
    /// Migration bandwidth, MiB/s.
    pub bandwidth_mib_s: f64,
    /// How often every VM's counters advance (agents sampling each second see an error of at
    /// most one tick in their rates).
    pub tick: Duration,
}

impl Default for HvConfig {
    fn default() -> Self {
        HvConfig {
            dir: PathBuf::from("lab"),
            socket: PathBuf::from("lab/lab.sock"),
            bandwidth_mib_s: 1250.0,
            tick: Duration::from_millis(100),
        }
    }
}

/// Why the hypervisor failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HvError {
    /// A setting is out of range.
    #[error("invalid lab setting: {0}")]
    Config(String),
    /// The socket could not be bound.
    #[error("cannot listen on {}", path.display())]
    Listen {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A host root could not be written.
    #[error("cannot {what}")]
    Root {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A thread could not be started.
    #[error("cannot start the {0} thread")]
    Thread(&'static str, #[source] std::io::Error),
    /// A name is not known.
    #[error("unknown {kind} {name}")]
    Unknown {
        /// `host` or `vm`.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// A name is already taken, malformed, or over a limit.
    #[error("cannot add {0}")]
    Add(String),
    /// The state mutex was poisoned by a panicking thread.
    #[error("lab state poisoned")]
    Poisoned,
}

/// Counters of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Migrations asked for and started.
    pub migrations_started: u64,
    /// Migrations that ended with the VM on its destination.
    pub migrations: u64,
    /// Migrations that failed (the VM stayed on its source).
    pub migrations_failed: u64,
    /// Migrations aborted.
    pub migrations_aborted: u64,
    /// MiB moved by completed migrations.
    pub migrated_mib: u64,
    /// Overload onsets (a host's demand rising above its capacity).
    pub overloads: u64,
    /// Host-seconds spent overloaded.
    pub cumulated_violation_s: f64,
}

/// The measured distributions of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Timings {
    /// Overload onset to the first migration asked off that host, seconds.
    pub time_to_decide_s: Dist,
    /// Duration of each overload episode, seconds (onset to demand back within capacity).
    pub overload_episode_s: Dist,
    /// Duration of each completed migration, seconds.
    pub migration_s: Dist,
}

/// One host now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostView {
    /// Its name.
    pub name: String,
    /// Capacity, thousandths of a core.
    pub cpu_milli: u64,
    /// Its VMs' demand at the last tick.
    pub demand_milli: u64,
    /// What they used at the last tick.
    pub use_milli: u64,
    /// VMs on it (the ground truth).
    pub vms: usize,
}

/// VMs whose files do not match the ground truth.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Audit {
    /// VMs found in no root.
    pub lost: Vec<String>,
    /// VMs found in more than one root.
    pub duplicated: Vec<String>,
    /// VMs found in one root that is not the one the lab placed them on.
    pub misplaced: Vec<String>,
}

/// State shared by the engine, the server and the handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) wake: Condvar,
    pub(crate) stop: AtomicBool,
    pub(crate) connections: AtomicUsize,
}

/// The running fake hypervisor. Dropping it stops its threads (as [`Hypervisor::stop`]).
#[derive(Debug)]
pub struct Hypervisor {
    shared: Arc<Shared>,
    socket: PathBuf,
    threads: Vec<JoinHandle<()>>,
    roots: BTreeMap<String, RootPaths>,
}

impl Hypervisor {
    /// Creates the hosts' roots under `cfg.dir`, listens on `cfg.socket` and starts ticking.
    pub fn start(cfg: &HvConfig, hosts: &[HostSpec]) -> Result<Hypervisor, HvError> {
        validate(cfg, hosts)?;
        std::fs::create_dir_all(&cfg.dir).map_err(|source| HvError::Root {
            what: format!("create {}", cfg.dir.display()),
            source,
        })?;
        let mut hs = Vec::with_capacity(hosts.len());
        let mut roots = BTreeMap::new();
        for h in hosts {
            let root = root::HostRoot::create(&cfg.dir.join(&h.name), h.cpu_milli, h.mem_mib)
                .map_err(|source| HvError::Root {
                    what: format!("create the root of host {}", h.name),
                    source,
                })?;
            roots.insert(h.name.clone(), root.paths());
            hs.push(Host {
                name: h.name.clone(),
                cpu_milli: h.cpu_milli,
                mem_mib: h.mem_mib,
                root,
                over_since: None,
                decided: false,
                demand_milli: 0,
                use_milli: 0,
            });
        }
        let _ = std::fs::remove_file(&cfg.socket);
        let listener = UnixListener::bind(&cfg.socket).map_err(|source| HvError::Listen {
            path: cfg.socket.clone(),
            source,
        })?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                hosts: hs,
                vms: BTreeMap::new(),
                migrations: BTreeMap::new(),
                bandwidth_mib_s: cfg.bandwidth_mib_s,
                last_tick: Instant::now(),
                stats: Stats::default(),
                decide_s: Vec::new(),
                episode_s: Vec::new(),
                migration_s: Vec::new(),
            }),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
        });
        let mut hv = Hypervisor {
            shared: Arc::clone(&shared),
            socket: cfg.socket.clone(),
            threads: Vec::new(),
            roots,
        };
        let sh = Arc::clone(&shared);
        let tick = cfg.tick;
        hv.threads.push(
            std::thread::Builder::new()
                .name("lab-engine".into())
                .spawn(move || engine(&sh, tick))
                .map_err(|e| HvError::Thread("engine", e))?,
        );
        let sh = Arc::clone(&shared);
        hv.threads.push(
            std::thread::Builder::new()
                .name("lab-server".into())
                .spawn(move || server::serve(listener, sh))
                .map_err(|e| HvError::Thread("server", e))?,
        );
        Ok(hv)
    }

    /// The socket agents' `lab` actuators connect to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The roots of host `name`, for its agent's `[monitor]` section.
    pub fn roots(&self, name: &str) -> Option<&RootPaths> {
        self.roots.get(name)
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, HvError> {
        self.shared.state.lock().map_err(|_| HvError::Poisoned)
    }

    /// Starts VM `vm` on host `host` with CPU demand `demand_milli` (capped at its vCPUs).
    pub fn add_vm(&self, host: &str, vm: &VmSpec, demand_milli: u64) -> Result<(), HvError> {
        proto::check_name("vm", &vm.name).map_err(HvError::Add)?;
        if vm.vcpus == 0 || vm.vcpus > 1024 || vm.mem_mib == 0 || vm.mem_mib > 1 << 24 {
            return Err(HvError::Add(format!(
                "vm {}: vcpus must be 1..=1024 and memory 1..=16 TiB",
                vm.name
            )));
        }
        let mut st = self.lock()?;
        if st.vms.len() >= MAX_VMS {
            return Err(HvError::Add(format!("vm {}: over {MAX_VMS} VMs", vm.name)));
        }
        if st.vms.contains_key(&vm.name) {
            return Err(HvError::Add(format!("vm {}: the name is taken", vm.name)));
        }
        let h = st.host_index(host).ok_or_else(|| HvError::Unknown {
            kind: "host",
            name: host.to_owned(),
        })?;
        st.hosts[h]
            .root
            .add_vm(&vm.name, vm.vcpus, vm.mem_mib)
            .map_err(|source| HvError::Root {
                what: format!("add vm {} to host {host}", vm.name),
                source,
            })?;
        // Memory-dirtying intensity drawn from the name, so it does not depend on the order
        // VMs are added in: uniform in 10-80 %, as the simulator draws it.
        let u = (dvms_sim::rng::splitmix64(fnv(&vm.name)) >> 11) as f64 / (1u64 << 53) as f64;
        st.vms.insert(
            vm.name.clone(),
            Vm {
                host: h,
                vcpus: vm.vcpus,
                mem_mib: vm.mem_mib,
                demand_milli: demand_milli.min(u64::from(vm.vcpus) * 1000),
                dirty: 0.1 + 0.7 * u,
            },
        );
        Ok(())
    }

    /// Sets the CPU demand of `vm` (capped at its vCPUs); counters follow from the next tick.
    pub fn set_demand(&self, vm: &str, demand_milli: u64) -> Result<(), HvError> {
        let mut st = self.lock()?;
        let v = st.vms.get_mut(vm).ok_or_else(|| HvError::Unknown {
            kind: "vm",
            name: vm.to_owned(),
        })?;
        v.demand_milli = demand_milli.min(u64::from(v.vcpus) * 1000);
        Ok(())
    }

    /// The host `vm` runs on, by the lab's ground truth.
    pub fn location(&self, vm: &str) -> Option<String> {
        let st = self.lock().ok()?;
        st.vms.get(vm).map(|v| st.hosts[v.host].name.clone())
    }

    /// Where `vm` is migrating to, if it is.
    pub fn migrating_to(&self, vm: &str) -> Option<String> {
        let st = self.lock().ok()?;
        st.migrating_to(vm).ok().flatten()
    }

    /// Every host now (demand and use as of the last tick).
    pub fn hosts(&self) -> Vec<HostView> {
        let Ok(st) = self.lock() else {
            return Vec::new();
        };
        st.hosts
            .iter()
            .enumerate()
            .map(|(i, h)| HostView {
                name: h.name.clone(),
                cpu_milli: h.cpu_milli,
                demand_milli: h.demand_milli,
                use_milli: h.use_milli,
                vms: st.vms.values().filter(|v| v.host == i).count(),
            })
            .collect()
    }

    /// Counters so far, the number of hosts overloaded now and of migrations in flight.
    pub fn stats(&self) -> (Stats, usize, usize) {
        match self.lock() {
            Ok(st) => (st.stats, st.overloaded(), st.migrations.len()),
            Err(_) => (Stats::default(), 0, 0),
        }
    }

    /// Clears counters and distributions (the measured part of a run starts now).
    pub fn reset_stats(&self) {
        if let Ok(mut st) = self.lock() {
            let now = Instant::now();
            st.stats = Stats::default();
            st.decide_s.clear();
            st.episode_s.clear();
            st.migration_s.clear();
            let mut open = 0;
            for h in &mut st.hosts {
                if h.over_since.is_some() {
                    h.over_since = Some(now);
                    h.decided = false;
                    open += 1;
                }
            }
            st.stats.overloads = open;
        }
    }

    /// Closes the overload episodes still open and returns the distributions of the run.
    pub fn finish_timings(&self) -> Timings {
        let Ok(mut st) = self.lock() else {
            return Timings::default();
        };
        st.close_episodes(Instant::now());
        Timings {
            time_to_decide_s: Dist::of(&mut st.decide_s.clone()),
            overload_episode_s: Dist::of(&mut st.episode_s.clone()),
            migration_s: Dist::of(&mut st.migration_s.clone()),
        }
    }

    /// Compares the roots' files with the ground truth: VMs lost, duplicated or misplaced.
    pub fn audit(&self) -> Result<Audit, HvError> {
        let st = self.lock()?;
        let mut audit = Audit::default();
        for (name, v) in &st.vms {
            let found: Vec<usize> = (0..st.hosts.len())
                .filter(|&h| st.hosts[h].root.holds(name))
                .collect();
            match found.as_slice() {
                [] => audit.lost.push(name.clone()),
                [h] if *h == v.host => {}
                [_] => audit.misplaced.push(name.clone()),
                _ => audit.duplicated.push(name.clone()),
            }
        }
        Ok(audit)
    }

    /// Stops the threads. Migrations in flight are dropped: their clients are told the lab
    /// stopped, and their VMs stay on their sources.
    pub fn stop(&mut self) {
        if self.shared.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Ok(mut st) = self.shared.state.lock() {
            st.migrations.clear();
        }
        self.shared.wake.notify_all();
        // Unblock the accept loop.
        let _ = std::os::unix::net::UnixStream::connect(&self.socket);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

impl Drop for Hypervisor {
    fn drop(&mut self) {
        self.stop();
    }
}

fn validate(cfg: &HvConfig, hosts: &[HostSpec]) -> Result<(), HvError> {
    let bad = |s: String| Err(HvError::Config(s));
    if !(cfg.bandwidth_mib_s.is_finite() && cfg.bandwidth_mib_s >= 1.0) {
        return bad(format!(
            "bandwidth {} MiB/s: expected at least 1",
            cfg.bandwidth_mib_s
        ));
    }
    if cfg.tick < Duration::from_millis(10) || cfg.tick > Duration::from_secs(10) {
        return bad(format!("tick {:?}: expected 10 ms to 10 s", cfg.tick));
    }
    if cfg.socket.as_os_str().len() > MAX_SOCKET_PATH {
        return bad(format!(
            "socket path {} is longer than {MAX_SOCKET_PATH} bytes",
            cfg.socket.display()
        ));
    }
    if hosts.is_empty() || hosts.len() > MAX_HOSTS {
        return bad(format!("{} hosts: expected 1..={MAX_HOSTS}", hosts.len()));
    }
    for (i, h) in hosts.iter().enumerate() {
        proto::check_name("host", &h.name).map_err(HvError::Config)?;
        if hosts[..i].iter().any(|o| o.name == h.name) {
            return bad(format!("host {} appears twice", h.name));
        }
        if h.cpu_milli == 0 || h.cpu_milli % 1000 != 0 || h.cpu_milli > 4_096_000 {
            return bad(format!(
                "host {}: {} milli-cores: expected whole cores, 1 to 4096",
                h.name, h.cpu_milli
            ));
        }
        if h.mem_mib == 0 || h.mem_mib > 1 << 26 {
            return bad(format!(
                "host {}: memory {} MiB out of range",
                h.name, h.mem_mib
            ));
        }
    }
    Ok(())
}

/// FNV-1a of a name.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// The engine: ticks the load model and ends migrations on time, until stopped.
fn engine(shared: &Shared, tick: Duration) {
    let Ok(mut st) = shared.state.lock() else {
        return;
    };
    let mut next_tick = Instant::now() + tick;
    st.last_tick = Instant::now();
    while !shared.stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        st.finish_due(now);
        if now >= next_tick {
            st.tick(now);
            next_tick += tick;
            if next_tick < now {
                // Fell behind (a loaded machine): skip ticks rather than burst.
                next_tick = now + tick;
            }
        }
        let wake_at = st.next_end().map_or(next_tick, |e| e.min(next_tick));
        let wait = wake_at.saturating_duration_since(Instant::now());
        st = match shared.wake.wait_timeout(st, wait) {
            Ok((guard, _)) => guard,
            Err(_) => return,
        };
    }
}
