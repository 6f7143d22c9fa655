//! `dvms-lab libvirt`: dvms on real KVM guests on one machine.
//!
//! - `up --hosts N`: N libvirt hosts, each a libvirtd in its own mount, network and cgroup
//!   namespaces (`tools/libvirt-lab/lab.sh`, which this drives).
//! - `vms --per-host M`: M duty-cycle guests per host ([`guests`]).
//! - `load --workload vmplaces|planetlab:DIR`: the guests' duty cycles follow the workload until
//!   `--duration` passes or Ctrl-C.
//! - `down`: stops every process `dvms-lab libvirt` started (by pid, from the state file) and
//!   every guest and daemon of the lab, and removes everything the lab made.
//! - `run`: the whole experiment: up, guests, a `dvmsd` per host with the libvirt actuator,
//!   load, down (also on error or Ctrl-C), and the report of `dvms-lab cluster` plus libvirt's
//!   migration downtime ([`run`]).
//!
//! What `dvms-lab libvirt` made is recorded in `dvms-lab.json` in the lab's directory
//! (`/tmp/dvms-libvirt-lab-<id>`), next to lab.sh's own state.

pub mod guests;
pub mod host;
pub mod logs;
pub mod run;
pub mod tracker;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Subcommand;
use dvms_sim::config::parse_duration;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::cli::EX_USAGE;
use crate::workload::{Kind, Schedule};
use host::{Lab, State};

/// `dvms-lab libvirt` flags.
#[derive(Debug, clap::Args)]
pub struct LibvirtArgs {
    /// Lab id, 0 to 9: each lab has its own bridge, namespaces, cgroups, addresses
    /// (`169.254.<100+id>.0/24`) and state directory (`/tmp/dvms-libvirt-lab-<id>`).
    #[arg(long, default_value_t = 0, global = true)]
    pub id: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: LibvirtCommand,
}

/// The `dvms-lab libvirt` subcommands.
#[derive(Debug, Subcommand)]
pub enum LibvirtCommand {
    /// Start N libvirt hosts (h00, h01, ...), each in its own namespaces.
    Up {
        /// Number of hosts.
        #[arg(long, default_value_t = 3)]
        hosts: usize,
    },
    /// Start M duty-cycle guests on every host (`vm-<host>-<j>`).
    Vms(VmsArgs),
    /// Make the guests' CPU demand follow a workload (until --duration passes or Ctrl-C).
    Load(LoadArgs),
    /// Hosts, daemons and guests.
    Status,
    /// Stop everything the lab started (by pid) and remove everything it made.
    Down,
    /// The whole experiment: up, guests, a dvmsd per host, load, down; then a report.
    Run(run::RunArgs),
}

/// `vms` flags.
#[derive(Clone, Debug, clap::Args)]
pub struct VmsArgs {
    /// Guests per host.
    #[arg(long, default_value_t = 4)]
    pub per_host: usize,
    /// Memory per guest, MiB.
    #[arg(long, default_value_t = 64)]
    pub mem_mib: u64,
    /// Initial duty cycle of every guest, percent of a vCPU.
    #[arg(long, default_value_t = 0)]
    pub duty: u8,
}

/// `load` flags.
#[derive(Clone, Debug, clap::Args)]
pub struct LoadArgs {
    /// vmplaces, or planetlab:DIR (a directory of per-VM traces, one step per load period).
    #[arg(long, default_value = "vmplaces")]
    pub workload: String,
    /// How long to play it (default: until Ctrl-C).
    #[arg(long)]
    pub duration: Option<String>,
    /// Mean time between two load changes of one guest.
    #[arg(long, default_value = "30s")]
    pub load_period: String,
    /// Seed of the workload.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Every demand of the workload scaled by this percentage (1 to 100): guests use this
    /// machine's real cores, so on a small machine scale the workload (and the hosts'
    /// capacity) down.
    #[arg(long, default_value_t = 100)]
    pub demand_scale_pct: u8,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LabError {
    /// A flag has a bad value.
    #[error("{0}")]
    Usage(String),
    /// The machine cannot run a lab (not root, no libvirt, no namespaces).
    #[error("this machine cannot run a libvirt lab:\n  - {}", .0.join("\n  - "))]
    Missing(Vec<String>),
    /// Something failed.
    #[error("{0}")]
    Run(String),
}

/// Exit code when the machine lacks what a lab needs (sysexits `EX_UNAVAILABLE`).
pub const EX_UNAVAILABLE: u8 = 69;

/// Runs `dvms-lab libvirt` from the command line.
pub fn main(args: &LibvirtArgs) -> ExitCode {
    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&interrupted)) {
            say!("dvms-lab: cannot handle signal {sig}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let result = Lab::new(args.id)
        .map_err(LabError::Usage)
        .and_then(|lab| dispatch(&lab, &args.command, &interrupted));
    match result {
        Ok(code) => code,
        Err(e @ LabError::Usage(_)) => {
            say!("dvms-lab libvirt: {e}");
            ExitCode::from(EX_USAGE)
        }
        Err(e @ LabError::Missing(_)) => {
            say!("dvms-lab libvirt: {e}");
            ExitCode::from(EX_UNAVAILABLE)
        }
        Err(e) => {
            say!("dvms-lab libvirt: {e}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(
    lab: &Lab,
    command: &LibvirtCommand,
    interrupted: &AtomicBool,
) -> Result<ExitCode, LabError> {
    match command {
        LibvirtCommand::Up { hosts } => {
            check_machine()?;
            up(lab, *hosts, false).map(|_| ExitCode::SUCCESS)
        }
        LibvirtCommand::Vms(a) => vms(lab, a).map(|()| ExitCode::SUCCESS),
        LibvirtCommand::Load(a) => load(lab, a, interrupted),
        LibvirtCommand::Status => {
            let out = lab.sh(&["status"], false).map_err(LabError::Run)?;
            println!("{out}");
            Ok(ExitCode::SUCCESS)
        }
        LibvirtCommand::Down => down(lab).map(|()| ExitCode::SUCCESS),
        LibvirtCommand::Run(a) => run::main(lab, a, interrupted),
    }
}

/// Fails with everything the machine lacks.
pub fn check_machine() -> Result<(), LabError> {
    let missing = host::preflight();
    if missing.is_empty() {
        if !host::kvm_usable() {
            say!(
                "dvms-lab libvirt: /dev/kvm is not usable: guests run under TCG (slow to start); tools/setup-libvirt.sh fixes its group and mode"
            );
        }
        Ok(())
    } else {
        Err(LabError::Missing(missing))
    }
}

/// `up`: starts the hosts and records them.
pub fn up(lab: &Lab, hosts: usize, quiet: bool) -> Result<Vec<String>, LabError> {
    if !(1..=host::MAX_HOSTS).contains(&hosts) {
        return Err(LabError::Usage(format!(
            "--hosts {hosts}: expected 1 to {}",
            host::MAX_HOSTS
        )));
    }
    if lab.is_up() {
        return Err(LabError::Run(format!(
            "lab {} is already up ({}): run `dvms-lab libvirt --id {} down` first",
            lab.id,
            lab.dir().display(),
            lab.id
        )));
    }
    let n = hosts.to_string();
    if let Err(e) = lab.sh(&["up", "--hosts", &n], quiet) {
        let _ = lab.sh(&["down"], true);
        return Err(LabError::Run(format!(
            "{e} (what was started is stopped again)"
        )));
    }
    let names: Vec<String> = (0..hosts).map(|i| format!("h{i:02}")).collect();
    lab.save_state(&State {
        hosts: names.clone(),
        ..State::default()
    })
    .map_err(LabError::Run)?;
    Ok(names)
}

fn up_state(lab: &Lab) -> Result<State, LabError> {
    if !lab.is_up() {
        return Err(LabError::Run(format!(
            "lab {} is not up: run `dvms-lab libvirt --id {} up --hosts N` first",
            lab.id, lab.id
        )));
    }
    let s = lab.load_state().map_err(LabError::Run)?;
    if s.hosts.is_empty() {
        return Err(LabError::Run(format!(
            "lab {} was not started by dvms-lab (no hosts in {})",
            lab.id,
            lab.state_file().display()
        )));
    }
    Ok(s)
}

fn vms(lab: &Lab, a: &VmsArgs) -> Result<(), LabError> {
    if !(1..=100).contains(&a.per_host) {
        return Err(LabError::Usage(format!(
            "--per-host {}: expected 1 to 100",
            a.per_host
        )));
    }
    if !(16..=4096).contains(&a.mem_mib) || a.duty > 100 {
        return Err(LabError::Usage(
            "--mem-mib: expected 16 to 4096; --duty: 0 to 100".into(),
        ));
    }
    let mut s = up_state(lab)?;
    if !s.vms.is_empty() {
        return Err(LabError::Run(format!(
            "lab {} already has {} guests",
            lab.id,
            s.vms.len()
        )));
    }
    let duty = u64::from(a.duty) * 10;
    let made = guests::create(lab, &s.hosts, a.per_host, a.mem_mib, &|_| duty, false);
    // record what was made even on an error, so `down` knows it
    let (made, err) = match made {
        Ok(v) => (v, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    s.vms = made;
    lab.save_state(&s).map_err(LabError::Run)?;
    match err {
        Some(e) => Err(LabError::Run(e)),
        None => Ok(()),
    }
}

/// The validated workload flags: the schedule, the initial demands, the length.
pub struct Workload {
    /// The changes to play.
    pub schedule: Schedule,
    /// Each guest's demand at the start, thousandths of a core.
    pub initial: Vec<u64>,
    /// The workload's name.
    pub name: String,
    /// The load period.
    pub load_period: Duration,
}

impl std::fmt::Debug for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workload")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Builds the workload of `n` guests.
pub fn workload(spec: &str, n: usize, load_period: &str, seed: u64) -> Result<Workload, LabError> {
    let kind = Kind::parse(spec).map_err(|e| LabError::Usage(format!("--workload {e}")))?;
    let load_period =
        parse_duration(load_period).map_err(|e| LabError::Usage(format!("--load-period: {e}")))?;
    let (schedule, initial) = Schedule::new(&kind, n, load_period, seed)
        .map_err(|e| LabError::Usage(format!("--workload: {e}")))?;
    Ok(Workload {
        schedule,
        initial,
        name: kind.name(),
        load_period,
    })
}

/// A demand scaled by `scale_pct` percent, capped at one vCPU (thousandths of a core).
pub fn scaled(cpu_milli: u64, scale_pct: u8) -> u64 {
    (cpu_milli.saturating_mul(u64::from(scale_pct)) / 100).min(1000)
}

/// Plays `schedule` from `t0` until `duration` (when given) or `stop`: each change, scaled by
/// `scale_pct` percent, sets the guest's duty cycle and its entry in `demand`. Counts the
/// changes applied.
#[allow(clippy::too_many_arguments)]
pub fn play(
    lab: &Lab,
    hosts: &[String],
    names: &[String],
    scale_pct: u8,
    mut schedule: Schedule,
    demand: &Mutex<BTreeMap<String, u64>>,
    t0: Instant,
    duration: Option<Duration>,
    stop: &AtomicBool,
    changes: &AtomicU64,
) {
    while !stop.load(Ordering::SeqCst) {
        let at = schedule.next_at();
        if duration.is_some_and(|d| at >= d) {
            return;
        }
        let wait = (t0 + at).saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait.min(Duration::from_millis(100)));
            continue;
        }
        let c = schedule.next_change();
        let Some(vm) = names.get(c.vm) else { continue };
        let milli = scaled(c.cpu_milli, scale_pct);
        match guests::set_duty(lab, hosts, vm, guests::duty_pct(milli)) {
            Ok(_) => {
                changes.fetch_add(1, Ordering::SeqCst);
                if let Ok(mut d) = demand.lock() {
                    d.insert(vm.clone(), milli);
                }
            }
            Err(e) => tracing::warn!(vm = %vm, error = %e, "cannot change the guest's duty cycle"),
        }
    }
}

fn load(lab: &Lab, a: &LoadArgs, interrupted: &AtomicBool) -> Result<ExitCode, LabError> {
    let mut s = up_state(lab)?;
    if s.vms.is_empty() {
        return Err(LabError::Run(format!(
            "lab {} has no guests: run `dvms-lab libvirt --id {} vms --per-host M` first",
            lab.id, lab.id
        )));
    }
    let duration = a
        .duration
        .as_deref()
        .map(parse_duration)
        .transpose()
        .map_err(|e| LabError::Usage(format!("--duration: {e}")))?;
    if !(1..=100).contains(&a.demand_scale_pct) {
        return Err(LabError::Usage(format!(
            "--demand-scale-pct {}: expected 1 to 100",
            a.demand_scale_pct
        )));
    }
    let w = workload(&a.workload, s.vms.len(), &a.load_period, a.seed)?;
    let names: Vec<String> = s.vms.iter().map(|g| g.name.clone()).collect();
    let me = std::process::id();
    s.pids.push((me, host::comm(me).unwrap_or_default()));
    lab.save_state(&s).map_err(LabError::Run)?;
    let demand = Mutex::new(BTreeMap::new());
    for (vm, &d) in names.iter().zip(&w.initial) {
        let d = scaled(d, a.demand_scale_pct);
        guests::set_duty(lab, &s.hosts, vm, guests::duty_pct(d)).map_err(LabError::Run)?;
    }
    say!(
        "dvms-lab libvirt: {} guests follow {} (load period {:?}){}",
        names.len(),
        w.name,
        w.load_period,
        if duration.is_some() {
            ""
        } else {
            "; Ctrl-C stops"
        }
    );
    let changes = AtomicU64::new(0);
    play(
        lab,
        &s.hosts,
        &names,
        a.demand_scale_pct,
        w.schedule,
        &demand,
        Instant::now(),
        duration,
        interrupted,
        &changes,
    );
    let mut s = lab.load_state().map_err(LabError::Run)?;
    s.pids.retain(|(p, _)| *p != me);
    lab.save_state(&s).map_err(LabError::Run)?;
    say!(
        "dvms-lab libvirt: {} load changes applied",
        changes.load(Ordering::SeqCst)
    );
    Ok(ExitCode::SUCCESS)
}

/// Stops the processes recorded in the state file (SIGTERM, SIGKILL after 5 s), each only
/// while its pid still has the recorded command name.
pub fn stop_recorded(lab: &Lab) {
    let Ok(state) = lab.load_state() else { return };
    let me = std::process::id();
    let ours = |pid: u32, comm: &str| pid != me && host::comm(pid).as_deref() == Some(comm);
    let live: Vec<&(u32, String)> = state.pids.iter().filter(|(p, c)| ours(*p, c)).collect();
    for (pid, _) in &live {
        if let Ok(p) = i32::try_from(*pid) {
            let _ = kill(Pid::from_raw(p), Signal::SIGTERM);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && live.iter().any(|(p, c)| ours(*p, c)) {
        std::thread::sleep(Duration::from_millis(100));
    }
    for (pid, c) in &live {
        if ours(*pid, c) {
            if let Ok(p) = i32::try_from(*pid) {
                let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
            }
        }
    }
}

/// `down`: the recorded processes, then lab.sh down (guests, daemons, namespaces, bridge,
/// cgroups, the directory with the state file).
pub fn down(lab: &Lab) -> Result<(), LabError> {
    stop_recorded(lab);
    lab.sh(&["down"], false).map(|_| ()).map_err(LabError::Run)
}
