//! The discrete-event engine: virtual time, the event queue, the host and VM model, the
//! workload, crashes, and the run loop. It names no scheduler and no check: it drives one
//! scheduler through `crate::sched::Driver` and reports what happens to its observers
//! (`crate::observe`).
//!
//! Time jumps from one scheduled event to the next; nodes are never ticked. Ties are broken by
//! insertion order, so a run is a pure function of its configuration and seed.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

use dvms_core::Time;
use dvms_core::model::{HostSample, MigrationId, PartitionId, Resources, VmId, VmLoad};
use rand_chacha::ChaCha8Rng;

use crate::config::{SimConfig, Workload};
use crate::gossip::Gossip;
use crate::keys::Keys;
use crate::metrics::Metrics;
use crate::net::Net;
use crate::observe::Seen;
use crate::rng;
use crate::sched::{Call, Driver, SchedEv};
use crate::workload::{Setup, Traces};

/// Something that happens at an instant.
#[derive(Debug)]
pub(crate) enum Ev {
    /// A phase (pre-copy round or stop-and-copy) of a live migration ends, if `generation`
    /// is still the migration's (a rate change reschedules it).
    MigrationStep { slot: u32, generation: u64 },
    /// The next VMPlaceS load change.
    LoadChange,
    /// The next PlanetLab sample of one VM.
    TraceTick,
    /// The next crash of the global crash stream.
    Crash,
    /// A crashed host comes back.
    Restart { host: u32 },
    /// A scripted action (`crate::events::Action`).
    Scripted(usize),
    /// An event of the scheduler's own.
    Sched(SchedEv),
    /// Once a simulated second: the observers' periodic checks (`Seen::Tick`).
    Check,
}

/// A queue entry: small, so that the heap moves little; the event itself waits in a slab.
#[derive(Debug)]
struct Scheduled {
    at: Time,
    seq: u64,
    slot: u32,
}

impl PartialEq for Scheduled {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scheduled {
    // Reversed: the heap pops the earliest event, then the first scheduled.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

/// One simulated host.
#[derive(Debug)]
pub(crate) struct Host {
    pub(crate) up: bool,
    /// Bumped at every crash and restart: answers meant for an older life are dropped.
    pub(crate) epoch: u32,
    pub(crate) capacity: Resources,
    /// CPU above this (capacity × threshold) is an overload.
    pub(crate) limit_cpu: u64,
    pub(crate) vms: Vec<u32>,
    /// Sum of its VMs' CPU demand and memory.
    pub(crate) cpu: u64,
    pub(crate) mem: u64,
    pub(crate) overloaded: bool,
    pub(crate) down_since: Option<Time>,
    /// Detection time of the current overload episode (set by the driver: when it
    /// noticed the overload), with flags for the driver's classification.
    pub(crate) episode: Option<Episode>,
    /// Migrations in flight from and to this host.
    pub(crate) outgoing: u32,
    pub(crate) incoming: u32,
    /// Their slots (they share this host's NIC).
    pub(crate) migs: Vec<u32>,
}

/// An overload being tracked for `time_to_solve` (and, by some drivers, as an event).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Episode {
    pub(crate) start: Time,
    pub(crate) decided: bool,
    pub(crate) unsolvable: bool,
}

/// One simulated VM.
#[derive(Clone, Debug)]
pub(crate) struct Vm {
    pub(crate) host: u32,
    pub(crate) cpu: u64,
    pub(crate) mem: u64,
    /// Memory-dirtying intensity, share of the migration bandwidth at full CPU.
    pub(crate) dirty: f64,
    pub(crate) migrating: bool,
}

/// Who asked for a migration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Owner {
    /// A node's `Output::Migrate`.
    Node {
        id: MigrationId,
        partition: PartitionId,
    },
    /// A driver's plan run.
    Run(u32),
}

/// The simulator.
#[derive(Debug)]
pub struct Sim {
    pub(crate) cfg: SimConfig,
    pub(crate) now: Time,
    queue: BinaryHeap<Scheduled>,
    /// Events waiting in the queue, by slot.
    pending: Vec<Option<Ev>>,
    free_pending: Vec<u32>,
    /// Largest queue length seen.
    pub(crate) queue_peak: usize,
    seq: u64,
    pub(crate) hosts: Vec<Host>,
    pub(crate) vms: Vec<Vm>,
    pub(crate) setup: Setup,
    pub(crate) net: Net,
    pub(crate) keys: Keys,
    pub(crate) gossip: Gossip,
    pub(crate) metrics: Metrics,
    /// Who watches the run (see `crate::observe::observers_for`).
    pub(crate) observers: Vec<Box<dyn crate::observe::Observer>>,
    pub(crate) migs: Vec<Option<crate::migrations::InFlight>>,
    pub(crate) free_migs: Vec<u32>,
    /// Last generation given to a migration's step event.
    pub(crate) mig_generation: u64,
    /// The scheduler, and the calls queued while it is busy (see `crate::sched`).
    pub(crate) driver: Option<Box<dyn Driver>>,
    pub(crate) deferred: VecDeque<Call>,
    pub(crate) driving: bool,
    pub(crate) n_overloaded: u64,
    pub(crate) workload_rng: ChaCha8Rng,
    pub(crate) crash_rng: ChaCha8Rng,
    pub(crate) traces: Option<Traces>,
    pub(crate) trace_cursor: u64,
    pub(crate) scripted: Vec<crate::events::Action>,
    end: Time,
    /// Events dispatched so far.
    pub(crate) events: u64,
    progress: Option<crate::progress::Progress>,
}

/// Why a run could not start.
#[derive(Debug)]
pub enum SetupError {
    /// The PlanetLab traces could not be loaded.
    Traces(crate::workload::TraceError),
    /// The cluster is empty or inconsistent.
    Cluster(String),
}

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SetupError::Traces(_) => f.write_str("cannot load the PlanetLab traces"),
            SetupError::Cluster(what) => write!(f, "invalid cluster: {what}"),
        }
    }
}

impl SetupError {
    /// True when an input exists but is malformed (exit 65), false when it is missing or
    /// unreadable (exit 66).
    pub fn is_malformed(&self) -> bool {
        match self {
            SetupError::Traces(e) => e.is_malformed(),
            SetupError::Cluster(_) => true,
        }
    }
}

impl std::error::Error for SetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SetupError::Traces(e) => Some(e),
            SetupError::Cluster(_) => None,
        }
    }
}

impl Sim {
    /// A simulator for this cluster. VM loads of `setup` are used as given for scripted
    /// workloads, and drawn by the workload otherwise.
    pub fn new(cfg: SimConfig, setup: Setup) -> Result<Sim, SetupError> {
        if setup.hosts.is_empty() {
            return Err(SetupError::Cluster("no host".into()));
        }
        if let Some(v) = setup.vms.iter().find(|v| v.host >= setup.hosts.len()) {
            return Err(SetupError::Cluster(format!(
                "VM {} on an unknown host",
                v.name
            )));
        }
        let traces = match &cfg.workload {
            Workload::Planetlab(dir) => Some(Traces::load(dir).map_err(SetupError::Traces)?),
            _ => None,
        };
        let sites: Vec<u32> = setup.hosts.iter().map(|h| h.site).collect();
        let net = Net::new(cfg.net, sites.clone(), cfg.seed);
        let keys = Keys::new(&sites, cfg.keys);
        let gossip = Gossip::new(
            &keys,
            cfg.net.view_size,
            cfg.net.gossip_period,
            cfg.net.loss,
            cfg.net.gossip_fanout,
            cfg.seed,
        );
        let mut workload_rng = rng::stream(cfg.seed, rng::Stream::Workload);
        let mut mig_rng = rng::stream(cfg.seed, rng::Stream::Migration);
        let cpu_pct = u64::from(cfg.protocol.thresholds.cpu_pct);
        let mut hosts: Vec<Host> = setup
            .hosts
            .iter()
            .map(|h| Host {
                up: true,
                epoch: 0,
                capacity: Resources::new(h.cpu_milli, h.mem_mib),
                limit_cpu: h.cpu_milli * cpu_pct / 100,
                vms: Vec::new(),
                cpu: 0,
                mem: 0,
                overloaded: false,
                down_since: None,
                episode: None,
                outgoing: 0,
                incoming: 0,
                migs: Vec::new(),
            })
            .collect();
        let mut vms = Vec::with_capacity(setup.vms.len());
        for (j, v) in setup.vms.iter().enumerate() {
            let cpu = match &cfg.workload {
                Workload::Vmplaces => {
                    crate::workload::vmplaces_load(&mut workload_rng, &cfg.vmplaces)
                }
                Workload::Planetlab(_) => traces.as_ref().map_or(0, |t| t.cpu_milli(j, 0)),
                Workload::Scripted => v.cpu_milli,
            };
            let h = &mut hosts[v.host];
            h.vms.push(u32::try_from(j).unwrap_or(u32::MAX));
            h.cpu += cpu;
            h.mem += v.mem_mib;
            vms.push(Vm {
                host: u32::try_from(v.host).unwrap_or(u32::MAX),
                cpu,
                mem: v.mem_mib,
                dirty: 0.1 + 0.7 * rng::unit(&mut mig_rng),
                migrating: false,
            });
        }
        let end = Time::ZERO + cfg.duration;
        let cfg_scheduler = cfg.scheduler;
        let n_hosts = hosts.len();
        let observers = crate::observe::observers_for(&cfg);
        let mut sim = Sim {
            cfg,
            now: Time::ZERO,
            queue: BinaryHeap::new(),
            pending: Vec::new(),
            free_pending: Vec::new(),
            queue_peak: 0,
            seq: 0,
            hosts,
            vms,
            setup,
            net,
            keys,
            gossip,
            metrics: Metrics::default(),
            observers,
            migs: Vec::new(),
            free_migs: Vec::new(),
            mig_generation: 0,
            driver: Some(crate::sched::driver_for(cfg_scheduler, n_hosts)),
            deferred: VecDeque::new(),
            driving: false,
            n_overloaded: 0,
            workload_rng,
            crash_rng: rng::stream(0, rng::Stream::Crash),
            traces,
            trace_cursor: 0,
            scripted: Vec::new(),
            end,
            events: 0,
            progress: None,
        };
        if sim.cfg.progress {
            sim.progress = Some(crate::progress::Progress::new());
        }
        sim.crash_rng = rng::stream(sim.cfg.seed, rng::Stream::Crash);
        sim.start();
        Ok(sim)
    }

    fn start(&mut self) {
        for h in 0..self.hosts.len() {
            self.refresh_host(h);
        }
        match self.cfg.workload {
            Workload::Vmplaces => self.schedule_load_change(),
            Workload::Planetlab(_) => self.schedule_trace_tick(),
            Workload::Scripted => {}
        }
        if self.cfg.crash_rate > 0.0 {
            self.schedule_crash();
        }
        self.drive(Call::Start);
        self.schedule(Time::from_secs(1), Ev::Check);
    }

    /// Schedules `ev` at `at` (never before now).
    pub(crate) fn schedule(&mut self, at: Time, ev: Ev) {
        let at = at.max(self.now);
        self.seq += 1;
        let slot = if let Some(s) = self.free_pending.pop() {
            self.pending[s as usize] = Some(ev);
            s
        } else {
            self.pending.push(Some(ev));
            u32::try_from(self.pending.len() - 1).expect("fewer than 2^32 pending events")
        };
        self.queue.push(Scheduled {
            at,
            seq: self.seq,
            slot,
        });
        self.queue_peak = self.queue_peak.max(self.queue.len());
    }

    /// Runs until the configured duration.
    pub fn run(&mut self) {
        let end = self.end;
        self.run_until(end, None);
    }

    /// Runs until `end`, or, with `quiet_after`, until the cluster is quiet past that instant.
    pub(crate) fn run_until(&mut self, end: Time, quiet_after: Option<Time>) {
        while let Some(top) = self.queue.peek() {
            if top.at > end {
                break;
            }
            if let Some(q) = quiet_after {
                if self.now >= q && self.is_quiet() {
                    break;
                }
            }
            let Some(s) = self.queue.pop() else { break };
            let Some(ev) = self.pending[s.slot as usize].take() else {
                continue;
            };
            self.free_pending.push(s.slot);
            self.advance(s.at);
            self.dispatch(ev);
            self.events += 1;
            if self.events & 0x3FFF == 0 {
                if let Some(p) = self.progress.as_mut() {
                    p.tick(self.now, end, self.events);
                }
            }
        }
        if let Some(p) = self.progress.as_mut() {
            p.done(self.now, end, self.events);
        }
        if quiet_after.is_none() || self.now < end {
            let t = if quiet_after.is_some() { self.now } else { end };
            self.advance(t.max(self.now));
        }
        self.finish();
    }

    fn is_quiet(&self) -> bool {
        // A host still overloaded will raise its problem again after its backoff: not quiet.
        self.n_overloaded == 0
            && self.migs.iter().all(Option::is_none)
            && self.driver.as_ref().is_none_or(|d| d.idle())
            && self.observers_quiet()
    }

    fn advance(&mut self, t: Time) {
        if t > self.now {
            let dt = t.saturating_since(self.now).as_secs_f64();
            self.metrics.violation_s += self.n_overloaded as f64 * dt;
            self.now = t;
        }
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::MigrationStep { slot, generation } => self.on_migration_step(slot, generation),
            Ev::LoadChange => self.on_load_change(),
            Ev::TraceTick => self.on_trace_tick(),
            Ev::Crash => self.on_crash_stream(),
            Ev::Restart { host } => self.restart(host as usize),
            Ev::Scripted(i) => self.on_scripted(i),
            Ev::Sched(e) => self.drive(Call::Event(e)),
            Ev::Check => {
                self.observe(Seen::Tick);
                self.schedule(self.now + Duration::from_secs(1), Ev::Check);
            }
        }
    }

    // === host model ===

    /// Recomputes host `h`'s overload state after its load or VM set changed.
    pub(crate) fn refresh_host(&mut self, h: usize) {
        let host = &mut self.hosts[h];
        let over = host.up && host.cpu > host.limit_cpu;
        if over != host.overloaded {
            host.overloaded = over;
            if over {
                self.n_overloaded += 1;
            } else {
                self.n_overloaded -= 1;
            }
            self.on_overload_change(h, over);
        }
    }

    fn on_overload_change(&mut self, h: usize, over: bool) {
        let now = self.now;
        self.metrics
            .hash
            .record(now, h, "overload", &[u64::from(over)]);
        self.drive(Call::Overload(h, over));
    }

    /// Changes VM `v`'s CPU demand.
    pub(crate) fn set_vm_load(&mut self, v: usize, cpu: u64) {
        let vm = &mut self.vms[v];
        let h = vm.host as usize;
        let old = std::mem::replace(&mut vm.cpu, cpu);
        if old == cpu {
            return;
        }
        self.metrics.load_changes += 1;
        self.metrics.hash.record(self.now, v, "load", &[cpu]);
        let host = &mut self.hosts[h];
        host.cpu = host.cpu - old + cpu;
        self.host_changed(h);
    }

    /// Host `h`'s VMs changed (their loads or the set): recheck it and tell its scheduler.
    pub(crate) fn host_changed(&mut self, h: usize) {
        self.refresh_host(h);
        self.drive(Call::HostChanged(h));
    }

    /// The monitoring sample host `h` would take now.
    pub(crate) fn sample(&self, h: usize) -> HostSample {
        let host = &self.hosts[h];
        HostSample {
            capacity: host.capacity,
            vms: host
                .vms
                .iter()
                .map(|&v| {
                    let vm = &self.vms[v as usize];
                    VmLoad {
                        id: VmId(u64::from(v)),
                        demand: Resources::new(vm.cpu, vm.mem),
                        migratable: true,
                    }
                })
                .collect(),
        }
    }

    /// Finishes the run: end-of-run checks.
    fn finish(&mut self) {
        self.observe(Seen::End);
    }

    /// VM `v`'s id in the protocol's and the solver's problems.
    pub(crate) fn vm_id(v: usize) -> VmId {
        VmId(v as u64)
    }

    /// The simulated time now.
    pub fn now(&self) -> Time {
        self.now
    }
}
