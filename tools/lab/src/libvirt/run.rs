//! `dvms-lab libvirt run`: the whole experiment on real KVM guests. Up (N hosts), M
//! duty-cycle guests per host at the workload's initial demands, a `dvmsd` per host inside the
//! host's namespaces with the libvirt actuator (`dvms-libvirt`) and its monitor reading the
//! real cgroups and /proc of the host's QEMU processes; then the workload played for
//! `--duration` with a progress line every 5 s; then the agents stopped (by pid) and the lab
//! taken down, also on an error or Ctrl-C (a `Teardown` guard). The report has the fields of
//! `dvms-lab cluster` plus `migration_downtime_ms` as libvirt reports it.
//!
//! Each host's CPU capacity is `--host-cores` (its monitor reads a `sys_root` saying so): the
//! hosts share this machine's cores, and a guest's demand as dvms measures it (use plus
//! run-queue wait) does not depend on what else runs. Overload as the lab counts it: the
//! demands the lab set, summed over the guests libvirt runs on each host (polled every second).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use dvms_sim::config::parse_duration;
use dvms_sim::metrics::Dist;
use serde::Serialize;

use super::host::{GuestState, Lab};
use super::logs::Migrations;
use super::tracker::{Tracker, host_load};
use super::{LabError, guests};
use crate::cluster::Format;
use crate::cluster::agents::{Agents, Binaries, locate};
use crate::cluster::progress;
use crate::cluster::report::LabReport;

/// How often a progress line is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// How often the placement is read through libvirt.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// The agents' overlay port on their host's address.
const OVERLAY_PORT: u16 = 7946;

/// `dvms-lab libvirt run` flags.
#[derive(Clone, Debug, clap::Args)]
pub struct RunArgs {
    /// Number of libvirt hosts, one dvmsd each.
    #[arg(long, default_value_t = 3)]
    pub hosts: usize,
    /// Guests per host at the start.
    #[arg(long, default_value_t = 4)]
    pub vms_per_host: usize,
    /// How long the workload is played once every agent is ready (e.g. 120s).
    #[arg(long, default_value = "120s")]
    pub duration: String,
    /// vmplaces, or planetlab:DIR.
    #[arg(long, default_value = "vmplaces")]
    pub workload: String,
    /// Mean time between two load changes of one guest.
    #[arg(long, default_value = "30s")]
    pub load_period: String,
    /// Seed of the workload.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub report: Format,
    /// CPU capacity of each host, thousandths of a core (the hosts share this machine's cores;
    /// the agents' monitor is told so through its sys_root and reserve).
    #[arg(long, default_value_t = 3000)]
    pub host_cpu_milli: u64,
    /// Every demand of the workload scaled by this percentage (1 to 100): the guests really
    /// run on this machine's cores, so on a small machine scale the workload (and
    /// --host-cpu-milli) down.
    #[arg(long, default_value_t = 100)]
    pub demand_scale_pct: u8,
    /// Overload threshold, percent of a host's capacity.
    #[arg(long, default_value_t = 95)]
    pub cpu_threshold_pct: u8,
    /// The agents' detection hold.
    #[arg(long, default_value = "3s")]
    pub detect_hold: String,
    /// Memory per guest, MiB (what a migration moves).
    #[arg(long, default_value_t = 64)]
    pub vm_mem_mib: u64,
    /// Bandwidth cap of a live migration, MiB/s (0: none).
    #[arg(long, default_value_t = 1000)]
    pub bandwidth_mib_s: u64,
    /// A migration still running after this long is aborted (libvirt job abort).
    #[arg(long, default_value = "60s")]
    pub migrate_timeout: String,
    /// Migrations one agent runs at once.
    #[arg(long, default_value_t = 2)]
    pub max_parallel_migrations: u32,
    /// How long to wait for each agent to be ready.
    #[arg(long, default_value = "60s")]
    pub ready_timeout: String,
    /// Keep the agents' configs and logs (`/tmp/dvms-lab-libvirt-<id>.agents`).
    #[arg(long)]
    pub keep: bool,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// Mean and maximum of a sample (`null` when empty).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct MeanMax {
    /// Mean.
    pub mean: Option<f64>,
    /// Maximum.
    pub max: Option<f64>,
}

impl MeanMax {
    /// Of `v`.
    pub fn of(v: &[f64]) -> MeanMax {
        if v.is_empty() {
            return MeanMax::default();
        }
        MeanMax {
            mean: Some(v.iter().sum::<f64>() / v.len() as f64),
            max: Some(v.iter().copied().fold(f64::MIN, f64::max)),
        }
    }
}

/// What a `dvms-lab libvirt run` measured: `dvms-lab cluster`'s fields plus libvirt's.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LibvirtReport {
    /// The fields of `dvms-lab cluster` (`bandwidth_mbs`: the migration bandwidth cap;
    /// `vms_misplaced`: always 0, libvirt is the ground truth).
    #[serde(flatten)]
    pub base: LabReport,
    /// Guest pause of each live migration done, ms, as libvirt's job statistics report it.
    pub migration_downtime_ms: MeanMax,
    /// Migrations started by the agents.
    pub migrations_started: u64,
    /// Most live migrations one host ran at once (from the agents' logs).
    pub max_parallel_migrations_seen: u64,
    /// Each host's CPU capacity, thousandths of a core (`host_cores` is it rounded up).
    pub host_cpu_milli: u64,
    /// The percentage every workload demand was scaled by.
    pub demand_scale_pct: u8,
    /// Whether guests ran under KVM (else TCG).
    pub kvm: bool,
}

/// Runs the experiment and prints the report.
pub fn main(lab: &Lab, a: &RunArgs, interrupted: &AtomicBool) -> Result<ExitCode, LabError> {
    let report = run(lab, a, interrupted)?;
    match a.report {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report)
                .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
        ),
        Format::Text => {
            print!("{}", report.base.to_text());
            println!(
                "  libvirt: {} migrations started, downtime (ms) mean {} max {}, at most {} at once on one host, {}",
                report.migrations_started,
                fmt_opt(report.migration_downtime_ms.mean),
                fmt_opt(report.migration_downtime_ms.max),
                report.max_parallel_migrations_seen,
                if report.kvm { "KVM" } else { "TCG" }
            );
        }
    }
    Ok(if report.base.interrupted {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |x| format!("{x:.1}"))
}

/// Stops the agents and takes the lab down when dropped: every path out of a run.
struct Teardown<'a> {
    lab: &'a Lab,
    agents: Option<Agents>,
    quiet: bool,
}

impl Drop for Teardown<'_> {
    fn drop(&mut self) {
        if let Some(mut a) = self.agents.take() {
            a.stop_all();
        }
        super::stop_recorded(self.lab);
        if let Err(e) = self.lab.sh(&["down"], self.quiet) {
            say!("dvms-lab libvirt: {e}");
        }
    }
}

fn usage(s: String) -> LabError {
    LabError::Usage(s)
}

fn duration(flag: &str, v: &str) -> Result<Duration, LabError> {
    parse_duration(v).map_err(|e| usage(format!("--{flag}: {e}")))
}

/// The experiment; the lab is down again when this returns, on every path.
pub fn run(lab: &Lab, a: &RunArgs, interrupted: &AtomicBool) -> Result<LibvirtReport, LabError> {
    let wall = Instant::now();
    if !(1..=super::host::MAX_HOSTS).contains(&a.hosts) || !(1..=100).contains(&a.vms_per_host) {
        return Err(usage(format!(
            "--hosts 1 to {}, --vms-per-host 1 to 100",
            super::host::MAX_HOSTS
        )));
    }
    if !(100..=1_024_000).contains(&a.host_cpu_milli)
        || !(1..=100).contains(&a.demand_scale_pct)
        || !(1..=100).contains(&a.cpu_threshold_pct)
        || !(16..=4096).contains(&a.vm_mem_mib)
        || !(1..=64).contains(&a.max_parallel_migrations)
    {
        return Err(usage(
            "--host-cpu-milli 100 to 1024000, --demand-scale-pct 1 to 100, --cpu-threshold-pct 1 to 100, --vm-mem-mib 16 to 4096, --max-parallel-migrations 1 to 64".into(),
        ));
    }
    let run_for = duration("duration", &a.duration)?;
    let detect_hold = duration("detect-hold", &a.detect_hold)?;
    let migrate_timeout = duration("migrate-timeout", &a.migrate_timeout)?;
    let ready_timeout = duration("ready-timeout", &a.ready_timeout)?;
    let n = a.hosts * a.vms_per_host;
    let w = super::workload(&a.workload, n, &a.load_period, a.seed)?;
    let bins = Binaries::locate().map_err(LabError::Run)?;
    let libvirt_bin = locate("dvms-libvirt", "DVMS_LIBVIRT")
        .map_err(|e| LabError::Run(format!("{e}; build it: cargo build -p dvms-libvirt")))?;
    super::check_machine()?;
    let work = PathBuf::from(format!("/tmp/dvms-lab-libvirt-{}.agents", lab.id));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)
        .map_err(|e| LabError::Run(format!("cannot create {}: {e}", work.display())))?;
    let quiet = a.quiet;
    let note = |s: String| {
        if !quiet {
            say!("dvms-lab libvirt: {s}");
        }
    };

    note(format!(
        "starting {} libvirt hosts (lab {})",
        a.hosts, lab.id
    ));
    let hosts = super::up(lab, a.hosts, quiet)?;
    let mut guard = Teardown {
        lab,
        agents: None,
        quiet,
    };
    let is_interrupted = || interrupted.load(Ordering::SeqCst);
    let check_int = || {
        if is_interrupted() {
            Err(LabError::Run(
                "interrupted; everything started was stopped".into(),
            ))
        } else {
            Ok(())
        }
    };
    check_int()?;
    note(format!(
        "starting {n} duty-cycle guests ({} MiB each)",
        a.vm_mem_mib
    ));
    let initial = w.initial.clone();
    let scale = a.demand_scale_pct;
    let made = guests::create(
        lab,
        &hosts,
        a.vms_per_host,
        a.vm_mem_mib,
        &|i| super::scaled(initial.get(i).copied().unwrap_or(0), scale),
        quiet,
    );
    let guests_made: Vec<GuestState> = match made {
        Ok(g) => g,
        Err(e) => return Err(LabError::Run(e)),
    };
    let mut state = lab.load_state().map_err(LabError::Run)?;
    state.vms = guests_made.clone();
    lab.save_state(&state).map_err(LabError::Run)?;
    check_int()?;

    let started = Instant::now();
    let mut agents = Agents::new(bins);
    let key = work.join("cluster.key");
    let mut addresses = Vec::new();
    for h in &hosts {
        addresses.push(format!("{h}={}", lab.addr(h).map_err(LabError::Run)?));
    }
    let cores = a.host_cpu_milli.div_ceil(1000);
    let reserve = cores * 1000 - a.host_cpu_milli;
    for (i, h) in hosts.iter().enumerate() {
        let dir = work.join(h);
        let sys = dir.join("sys/devices/system/cpu");
        std::fs::create_dir_all(&sys)
            .and_then(|()| std::fs::write(sys.join("online"), format!("0-{}\n", cores - 1)))
            .and_then(|()| std::fs::create_dir_all(dir.join("state")))
            .map_err(|e| LabError::Run(format!("cannot write {}: {e}", dir.display())))?;
        let addr = lab.addr(h).map_err(LabError::Run)?;
        let bootstrap = if i == 0 {
            String::new()
        } else {
            format!(
                "\"/ip4/{}/tcp/{OVERLAY_PORT}\"",
                lab.addr(&hosts[0]).map_err(LabError::Run)?
            )
        };
        let cfg = AgentToml {
            name: h,
            dir: &dir,
            addr: &addr,
            bootstrap: &bootstrap,
            key: &key,
            threshold: a.cpu_threshold_pct,
            reserve,
            detect_hold,
            migrate_timeout,
            max_parallel: a.max_parallel_migrations,
            libvirt_bin: &libvirt_bin,
            addresses: &addresses,
            bandwidth: a.bandwidth_mib_s,
        }
        .text();
        let path = dir.join("dvms.toml");
        std::fs::write(&path, cfg)
            .map_err(|e| LabError::Run(format!("cannot write {}: {e}", path.display())))?;
        agents.init(&path, i == 0).map_err(LabError::Run)?;
    }
    for (i, h) in hosts.iter().enumerate() {
        let dir = work.join(h);
        agents
            .spawn_wrapped(
                h,
                &lab.exec_prefix(h),
                "json",
                &dir.join("dvms.toml"),
                &dir.join("control.sock"),
                &dir.join("log.json"),
            )
            .map_err(LabError::Run)?;
        if let Some(pid) = agents.list.last().and_then(|x| x.pid()) {
            state.pids.push((pid, "dvmsd".into()));
            lab.save_state(&state).map_err(LabError::Run)?;
        }
        if i == 0 {
            let r = agents.wait_ready(0, ready_timeout, &is_interrupted);
            if let Err(e) = r {
                guard.agents = Some(agents);
                return Err(LabError::Run(e));
            }
        }
    }
    for i in 1..hosts.len() {
        if let Err(e) = agents.wait_ready(i, ready_timeout, &is_interrupted) {
            guard.agents = Some(agents);
            return Err(LabError::Run(e));
        }
    }
    let startup_s = started.elapsed().as_secs_f64();
    note(format!(
        "{} agents ready in {startup_s:.1} s; playing {} for {run_for:?}",
        hosts.len(),
        w.name
    ));

    // --- the measured part -------------------------------------------------------------------
    let names: Vec<String> = guests_made.iter().map(|g| g.name.clone()).collect();
    let demand = Mutex::new(
        names
            .iter()
            .cloned()
            .zip(w.initial.iter().map(|d| super::scaled(*d, scale)))
            .collect::<BTreeMap<_, _>>(),
    );
    let at_start = progress::counters(&agents);
    for x in &mut agents.list {
        x.ticks_at_start = x.pid().and_then(crate::cluster::agents::cpu_ticks);
    }
    let mut tracker = Tracker::new(a.host_cpu_milli, a.cpu_threshold_pct);
    let t0 = Instant::now();
    let stop = AtomicBool::new(false);
    let changes = AtomicU64::new(0);
    let mut was_interrupted = false;
    let logs_of = |agents: &Agents| {
        let mut m = Migrations::default();
        for x in &agents.list {
            m.add_file(&x.name, &x.log);
        }
        m
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            super::play(
                lab,
                &hosts,
                &names,
                scale,
                w.schedule,
                &demand,
                t0,
                Some(run_for),
                &stop,
                &changes,
            );
        });
        let mut next_line = t0 + PROGRESS_EVERY;
        let mut over_now = 0;
        loop {
            let now = Instant::now();
            if now.saturating_duration_since(t0) >= run_for {
                break;
            }
            if is_interrupted() {
                was_interrupted = true;
                break;
            }
            let (placement, _) = guests::placement(lab, &hosts);
            let d = demand.lock().map(|d| d.clone()).unwrap_or_default();
            over_now = tracker.sample(SystemTime::now(), &host_load(&hosts, &placement, &d));
            if now >= next_line && !quiet {
                next_line += PROGRESS_EVERY;
                let mig = logs_of(&agents);
                say!("{}", line(&mut agents, &tracker, over_now, mig, t0));
            }
            std::thread::sleep(POLL_EVERY.saturating_sub(now.elapsed()));
        }
        let _ = over_now;
        stop.store(true, Ordering::SeqCst);
    });
    let elapsed = t0.elapsed();
    let end = SystemTime::now();
    let footprint = progress::footprint(&mut agents, elapsed);
    let counters = progress::counters(&agents).since(at_start);
    let in_flight: u64 = agents
        .list
        .iter()
        .filter_map(|x| agents.status(x))
        .map(|s| s.migrations_running)
        .sum();
    let exited = agents
        .list
        .iter_mut()
        .map(|x| !x.alive())
        .filter(|&gone| gone)
        .count();
    note("stopping the agents".into());
    agents.stop_all();
    let mig = logs_of(&agents);
    let (placement, errors) = guests::placement(lab, &hosts);
    for e in &errors {
        say!("dvms-lab libvirt: {e}");
    }
    let (lost, duplicated) = guests::audit(&guests_made, &placement);
    if a.keep {
        say!(
            "dvms-lab libvirt: agents' configs and logs kept in {}",
            work.display()
        );
    }
    note("taking the lab down".into());
    guard.agents = Some(agents);
    drop(guard);
    if !a.keep {
        let _ = std::fs::remove_dir_all(&work);
    }

    let mut decide: Vec<f64> = tracker
        .episodes
        .iter()
        .filter_map(|e| {
            let until = e.end.unwrap_or(end);
            let first = mig.first_from(&e.host, e.onset, until)?;
            first.duration_since(e.onset).ok().map(|d| d.as_secs_f64())
        })
        .collect();
    let mut episodes: Vec<f64> = tracker
        .episodes
        .iter()
        .filter_map(|e| e.end.and_then(|x| x.duration_since(e.onset).ok()))
        .map(|d| d.as_secs_f64())
        .collect();
    let mut mig_s: Vec<f64> = mig.duration_ms.iter().map(|ms| ms / 1000.0).collect();
    Ok(LibvirtReport {
        base: LabReport {
            hosts: hosts.len(),
            vms: n,
            duration_s: elapsed.as_secs_f64(),
            seed: a.seed,
            scheduler: "dvms".into(),
            workload: w.name.clone(),
            load_period_s: w.load_period.as_secs_f64(),
            host_cores: a.host_cpu_milli.div_ceil(1000),
            bandwidth_mbs: a.bandwidth_mib_s as f64,
            cpu_threshold_pct: a.cpu_threshold_pct,
            cumulated_violation_s: tracker.violation_s,
            overloads: tracker.onsets(),
            events_started: counters.events_started,
            plans_chosen: counters.plans_chosen,
            time_to_decide_s: Dist::of(&mut decide),
            overload_episode_s: Dist::of(&mut episodes),
            migrations: mig.done,
            migrations_failed: mig.failed,
            migrations_aborted: mig.aborted,
            migrations_in_flight_at_end: usize::try_from(in_flight).unwrap_or(usize::MAX),
            migrated_mib: mig.done.saturating_mul(a.vm_mem_mib),
            migration_s: Dist::of(&mut mig_s),
            messages_sent: counters.messages_sent,
            load_changes: changes.load(Ordering::SeqCst),
            vms_lost: lost,
            vms_duplicated: duplicated,
            vms_misplaced: 0,
            agent_rss_mib_max: footprint.rss_mib_max,
            agent_cpu_pct_mean: footprint.cpu_pct_mean,
            agent_cpu_pct_max: footprint.cpu_pct_max,
            startup_s,
            agents_exited: exited,
            wall_s: wall.elapsed().as_secs_f64(),
            interrupted: was_interrupted,
        },
        migration_downtime_ms: MeanMax::of(&mig.downtime_ms),
        migrations_started: mig.started.len() as u64,
        max_parallel_migrations_seen: mig.max_parallel(),
        host_cpu_milli: a.host_cpu_milli,
        demand_scale_pct: a.demand_scale_pct,
        kvm: super::host::kvm_usable(),
    })
}

/// One progress line.
fn line(
    agents: &mut Agents,
    tracker: &Tracker,
    over_now: usize,
    mig: Migrations,
    t0: Instant,
) -> String {
    let up = agents
        .list
        .iter_mut()
        .map(|x| x.alive())
        .filter(|&up| up)
        .count();
    let statuses: Vec<_> = agents
        .list
        .iter()
        .filter_map(|x| agents.status(x))
        .collect();
    let mut partitions: Vec<String> = statuses
        .iter()
        .filter_map(|s| s.partition.clone())
        .collect();
    partitions.sort();
    partitions.dedup();
    let running: u64 = statuses.iter().map(|s| s.migrations_running).sum();
    let vms: u64 = statuses.iter().map(|s| s.vms).sum();
    format!(
        "[{:>4.0}s] agents up {up}/{} (seeing {vms} guests) | overloaded now {over_now} | overloads {} ({:.1} host-s) | partitions {} | migrations {} done, {running} running, {} failed, {} aborted",
        t0.elapsed().as_secs_f64(),
        agents.list.len(),
        tracker.onsets(),
        tracker.violation_s,
        partitions.len(),
        mig.done,
        mig.failed,
        mig.aborted
    )
}

/// The `dvmsd` config of one lab host.
struct AgentToml<'a> {
    name: &'a str,
    dir: &'a Path,
    addr: &'a str,
    bootstrap: &'a str,
    key: &'a Path,
    threshold: u8,
    reserve: u64,
    detect_hold: Duration,
    migrate_timeout: Duration,
    max_parallel: u32,
    libvirt_bin: &'a Path,
    addresses: &'a [String],
    bandwidth: u64,
}

impl AgentToml<'_> {
    fn text(&self) -> String {
        let q = |s: &str| format!("{s:?}");
        let addresses: Vec<String> = self.addresses.iter().map(|s| q(s)).collect();
        format!(
            "# dvmsd of lab host {name} (written by dvms-lab libvirt run)
[node]
name = {qname}
state_dir = {state}
shutdown_grace = \"3s\"
[overlay]
listen = \"/ip4/{addr}/tcp/{OVERLAY_PORT}\"
bootstrap = [{bootstrap}]
cluster_key_file = {key}
[monitor]
period = \"1s\"
sys_root = {sys}
reserve_cpu_milli = {reserve}
[protocol]
cpu_threshold_pct = {threshold}
detect_hold = \"{hold}ms\"
migrate_timeout = \"{timeout}ms\"
[actuator]
kind = \"libvirt\"
max_parallel_migrations = {par}
[actuator.libvirt]
binary = {bin}
connect = \"qemu:///system\"
dest_uri = \"qemu+tcp://{{address}}/system\"
migrate_uri = \"tcp://{{address}}\"
addresses = [{addresses}]
bandwidth_mib_s = {bw}
timeout = \"{timeout}ms\"
allow_unsafe = true
inventory_period = \"1s\"
[control]
socket = {control}
",
            name = self.name,
            qname = q(self.name),
            state = q(&self.dir.join("state").display().to_string()),
            addr = self.addr,
            bootstrap = self.bootstrap,
            key = q(&self.key.display().to_string()),
            sys = q(&self.dir.join("sys").display().to_string()),
            threshold = self.threshold,
            reserve = self.reserve,
            hold = self.detect_hold.as_millis(),
            timeout = self.migrate_timeout.as_millis(),
            par = self.max_parallel,
            bin = q(&self.libvirt_bin.display().to_string()),
            addresses = addresses.join(", "),
            bw = self.bandwidth,
            control = q(&self.dir.join("control.sock").display().to_string()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_config_is_valid_toml_with_the_libvirt_actuator() {
        let addresses = ["h00=169.254.100.1".to_owned()];
        let text = AgentToml {
            name: "h01",
            dir: Path::new("/w/h01"),
            addr: "169.254.100.2",
            bootstrap: "\"/ip4/169.254.100.1/tcp/7946\"",
            key: Path::new("/w/cluster.key"),
            threshold: 95,
            reserve: 300,
            detect_hold: Duration::from_secs(3),
            migrate_timeout: Duration::from_secs(60),
            max_parallel: 2,
            libvirt_bin: Path::new("/b/dvms-libvirt"),
            addresses: &addresses,
            bandwidth: 1000,
        }
        .text();
        let t: toml::Table = text.parse().expect("toml");
        assert_eq!(t["actuator"]["kind"].as_str(), Some("libvirt"));
        assert_eq!(
            t["actuator"]["max_parallel_migrations"].as_integer(),
            Some(2)
        );
        assert_eq!(
            t["actuator"]["libvirt"]["bandwidth_mib_s"].as_integer(),
            Some(1000)
        );
        assert_eq!(t["monitor"]["sys_root"].as_str(), Some("/w/h01/sys"));
        assert_eq!(t["monitor"]["reserve_cpu_milli"].as_integer(), Some(300));
        assert_eq!(
            t["actuator"]["libvirt"]["dest_uri"].as_str(),
            Some("qemu+tcp://{address}/system")
        );
        assert_eq!(
            t["overlay"]["bootstrap"][0].as_str(),
            Some("/ip4/169.254.100.1/tcp/7946")
        );
    }

    #[test]
    fn mean_max_of_nothing_is_null() {
        assert_eq!(MeanMax::of(&[]), MeanMax::default());
        let m = MeanMax::of(&[10.0, 30.0]);
        assert_eq!((m.mean, m.max), (Some(20.0), Some(30.0)));
    }
}
