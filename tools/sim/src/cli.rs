//! The command line: `dvms-sim run`, `dvms-sim scenario`, `dvms-sim solve`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{ChargeSolver, Scheduler, SimConfig, Workload, parse_duration};
use crate::input;
use crate::keys::KeysMode;
use crate::workload::Shape;

/// Deterministic simulator of DVMS and its baselines.
#[derive(Debug, Parser)]
#[command(name = "dvms-sim", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Simulate a generated cluster under a workload and report.
    Run(Box<RunArgs>),
    /// Run a hand-written scenario file to quiescence and report.
    Scenario(ScenarioArgs),
    /// Solve a placement instance (JSON) and print the plan.
    Solve(SolveArgs),
}

/// Report format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A readable summary.
    Text,
    /// JSON with stable field names.
    Json,
}

/// `dvms-sim run`.
#[derive(Debug, Args)]
#[command(allow_negative_numbers = true)]
pub struct RunArgs {
    /// Number of hosts (1..=200000).
    #[arg(long, default_value_t = 1000)]
    pub hosts: usize,
    /// VMs per host, placed round-robin (0..=1000; default 10, or 20 with planetlab).
    #[arg(long)]
    pub vms_per_host: Option<usize>,
    /// CPU cores per host (default 7 as VMPlaceS, or 3 with planetlab; at most 1000000).
    #[arg(long)]
    pub host_cores: Option<f64>,
    /// Memory per host, GiB.
    #[arg(long, default_value_t = 32.0)]
    pub host_mem_gib: f64,
    /// Memory per VM, GiB.
    #[arg(long, default_value_t = 1.0)]
    pub vm_mem_gib: f64,
    /// Simulated duration (e.g. 30m, 1h, 24h).
    #[arg(long, allow_hyphen_values = true, default_value = "1h")]
    pub duration: String,
    /// Seed of every random stream.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// dvms, entropy, centralized, oracle or none.
    #[arg(long, default_value = "dvms")]
    pub scheduler: String,
    /// vmplaces, or planetlab:DIR (a directory of per-VM traces).
    #[arg(long, default_value = "vmplaces")]
    pub workload: String,
    /// One-way latency within a site.
    #[arg(long, allow_hyphen_values = true, default_value = "1ms")]
    pub latency: String,
    /// One-way latency between sites.
    #[arg(long, allow_hyphen_values = true, default_value = "10ms")]
    pub inter_site_latency: String,
    /// Probability that a message (or a gossip publication) is lost.
    #[arg(long, default_value_t = 0.0)]
    pub loss: f64,
    /// Extra one-way delay per message, uniform in 0..=JITTER (e.g. 5ms).
    #[arg(long, allow_hyphen_values = true, default_value = "0ms")]
    pub jitter: String,
    /// With --jitter, let a message overtake an earlier one on the same link.
    #[arg(long)]
    pub reorder: bool,
    /// Share of hosts crashing per simulated hour.
    #[arg(long, default_value_t = 0.0)]
    pub crash_rate: f64,
    /// Mean time a crashed host stays down (exponential).
    #[arg(long, allow_hyphen_values = true, default_value = "5m")]
    pub restart_after: String,
    /// Number of sites hosts are spread over (round-robin).
    #[arg(long, default_value_t = 1)]
    pub sites: usize,
    /// Overlay keys: random, or topology (site in the top bits).
    #[arg(long, default_value = "random")]
    pub keys: String,
    /// Largest bandwidth of one migration within a site, MB/s.
    #[arg(long, default_value_t = 125.0)]
    pub bandwidth_mbs: f64,
    /// NIC bandwidth of every host, MB/s, shared by the migrations in and out of it
    /// (VMPlaceS: 125, later 1250).
    #[arg(long, default_value_t = 125.0)]
    pub nic_mbs: f64,
    /// Hosts whose gossiped summaries each host keeps: its closest by overlay key (1..=256).
    #[arg(long, default_value_t = crate::config::DEFAULT_VIEW_SIZE)]
    pub view_size: usize,
    /// Gossip fan-out (mesh degree): a summary reaches everyone in ceil(log_F hosts) hops.
    #[arg(long, default_value_t = crate::config::DEFAULT_GOSSIP_FANOUT)]
    pub gossip_fanout: usize,
    /// Migration bandwidth between sites, MB/s.
    #[arg(long, default_value_t = 40.0)]
    pub inter_site_bandwidth_mbs: f64,
    /// Solve time charged to simulated time: model (work units) or wall (measured).
    #[arg(long, default_value = "model")]
    pub charge_solver: String,
    /// Period of the centralized scheduler.
    #[arg(long, allow_hyphen_values = true, default_value = "30s")]
    pub central_period: String,
    /// Protocol lease (membership expiry).
    #[arg(long, allow_hyphen_values = true)]
    pub lease: Option<String>,
    /// Protocol detection hysteresis.
    #[arg(long, allow_hyphen_values = true)]
    pub detect_hold: Option<String>,
    /// Smallest partition the solver is asked about.
    #[arg(long)]
    pub min_partition_size: Option<usize>,
    /// Largest partition.
    #[arg(long)]
    pub max_partition_size: Option<usize>,
    /// Print every protocol event, migration and fault to stderr.
    #[arg(long)]
    pub trace: bool,
    /// Show progress on stderr (the default when stderr is a terminal).
    #[arg(long)]
    pub progress: bool,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub report: Format,
}

/// `dvms-sim scenario`.
#[derive(Debug, Args)]
pub struct ScenarioArgs {
    /// The scenario file (TOML).
    pub file: PathBuf,
    /// Override the scenario's scheduler.
    #[arg(long)]
    pub scheduler: Option<String>,
    /// Print every protocol event, migration and fault to stderr.
    #[arg(long)]
    pub trace: bool,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub report: Format,
}

/// `dvms-sim solve`.
#[derive(Debug, Args)]
pub struct SolveArgs {
    /// The instance file (JSON).
    pub instance: PathBuf,
}

/// A flag with a bad value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn usage(s: String) -> UsageError {
    UsageError(s)
}

/// Parses a scheduler name.
pub fn parse_scheduler(s: &str) -> Result<Scheduler, UsageError> {
    match s {
        "dvms" => Ok(Scheduler::Dvms),
        "entropy" => Ok(Scheduler::Entropy),
        "centralized" => Ok(Scheduler::Centralized),
        "oracle" => Ok(Scheduler::Oracle),
        "none" => Ok(Scheduler::None),
        _ => Err(usage(format!(
            "unknown scheduler {s:?} (expected dvms, entropy, centralized, oracle or none)"
        ))),
    }
}

/// Parses a keys mode.
pub fn parse_keys(s: &str) -> Result<KeysMode, UsageError> {
    match s {
        "random" => Ok(KeysMode::Random),
        "topology" => Ok(KeysMode::Topology),
        _ => Err(usage(format!(
            "unknown keys mode {s:?} (expected random or topology)"
        ))),
    }
}

fn flag_duration(flag: &str, v: &str, max_s: f64) -> Result<std::time::Duration, UsageError> {
    let d = parse_duration(v).map_err(|e| usage(format!("--{flag}: {e}")))?;
    if d.as_secs_f64() > max_s {
        return Err(usage(format!("--{flag} {v}: expected at most {max_s} s")));
    }
    Ok(d)
}

fn ranged(flag: &str, v: f64, lo: f64, hi: f64, open_lo: bool) -> Result<f64, UsageError> {
    input::check_range(&format!("--{flag}"), v, lo, hi, open_lo).map_err(usage)
}

fn share(flag: &str, v: f64) -> Result<f64, UsageError> {
    ranged(flag, v, 0.0, 1.0, false)
}

fn count(flag: &str, v: usize, lo: usize, hi: usize) -> Result<usize, UsageError> {
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(usage(format!("--{flag} {v}: expected {lo}..={hi}")))
    }
}

impl RunArgs {
    /// Validates the flags into a configuration and a cluster shape. Every value is checked
    /// against its bound in [`crate::input`]; the error names the flag.
    pub fn to_config(&self) -> Result<(SimConfig, Shape), UsageError> {
        let hosts = count("hosts", self.hosts, 1, input::MAX_HOSTS)?;
        let sites = count("sites", self.sites, 1, 256)?;
        let workload = match self.workload.as_str() {
            "vmplaces" => Workload::Vmplaces,
            w => match w.strip_prefix("planetlab:") {
                Some(dir) if !dir.is_empty() => Workload::Planetlab(PathBuf::from(dir)),
                _ => {
                    return Err(usage(format!(
                        "--workload {w:?}: expected vmplaces or planetlab:DIR"
                    )));
                }
            },
        };
        // PlanetLab VMs use 9-12 % of a core: 20 of them on 3 cores load hosts like VMPlaceS.
        let planetlab = matches!(workload, Workload::Planetlab(_));
        let vms_per_host = count(
            "vms-per-host",
            self.vms_per_host.unwrap_or(if planetlab { 20 } else { 10 }),
            0,
            input::MAX_VMS_PER_HOST,
        )?;
        if hosts.saturating_mul(vms_per_host) > input::MAX_VMS {
            return Err(usage(format!(
                "--hosts {hosts} --vms-per-host {vms_per_host}: more than {} VMs in all",
                input::MAX_VMS
            )));
        }
        let host_cores = self.host_cores.unwrap_or(if planetlab { 3.0 } else { 7.0 });
        let charge_solver = match self.charge_solver.as_str() {
            "model" => ChargeSolver::Model,
            "wall" => ChargeSolver::Wall,
            c => {
                return Err(usage(format!(
                    "--charge-solver {c:?}: expected model or wall"
                )));
            }
        };
        let crash_rate = ranged(
            "crash-rate",
            self.crash_rate,
            0.0,
            input::MAX_CRASH_RATE,
            false,
        )?;
        let proto_max = input::MAX_PROTOCOL_S;
        let mut protocol = dvms_core::Config::default();
        if let Some(l) = &self.lease {
            protocol.lease = flag_duration("lease", l, proto_max)?;
            protocol.renew_period = protocol.renew_period.min(protocol.lease / 5);
        }
        if let Some(d) = &self.detect_hold {
            protocol.detect_hold = flag_duration("detect-hold", d, proto_max)?;
        }
        if let Some(n) = self.min_partition_size {
            protocol.min_partition_size = n;
        }
        if let Some(n) = self.max_partition_size {
            protocol.max_partition_size = n;
        }
        let protocol = protocol
            .validate()
            .map_err(|e| usage(format!("protocol settings: {e}")))?;
        let max_d = input::MAX_DURATION_S;
        let mut cfg = SimConfig {
            seed: self.seed,
            duration: flag_duration("duration", &self.duration, max_d)?,
            scheduler: parse_scheduler(&self.scheduler)
                .map_err(|e| usage(format!("--scheduler: {e}")))?,
            workload,
            crash_rate,
            restart_after: flag_duration("restart-after", &self.restart_after, max_d)?,
            keys: parse_keys(&self.keys).map_err(|e| usage(format!("--keys: {e}")))?,
            charge_solver,
            central_period: flag_duration("central-period", &self.central_period, 86_400.0)?,
            protocol,
            trace: self.trace,
            progress: self.progress,
            ..SimConfig::default()
        };
        let lat_max = input::MAX_LATENCY_S;
        cfg.net.latency = flag_duration("latency", &self.latency, lat_max)?;
        cfg.net.inter_site_latency =
            flag_duration("inter-site-latency", &self.inter_site_latency, lat_max)?;
        cfg.net.loss = share("loss", self.loss)?;
        cfg.net.jitter = flag_duration("jitter", &self.jitter, lat_max)?;
        cfg.net.reorder = self.reorder;
        let (bw_lo, bw_hi) = (input::MIN_BANDWIDTH_MBS, input::MAX_BANDWIDTH_MBS);
        cfg.net.bandwidth_mbs = ranged("bandwidth-mbs", self.bandwidth_mbs, bw_lo, bw_hi, false)?;
        cfg.net.inter_site_bandwidth_mbs = ranged(
            "inter-site-bandwidth-mbs",
            self.inter_site_bandwidth_mbs,
            bw_lo,
            bw_hi,
            false,
        )?;
        cfg.net.nic_mbs = ranged("nic-mbs", self.nic_mbs, bw_lo, bw_hi, false)?;
        cfg.net.view_size = count("view-size", self.view_size, 1, 256)?;
        cfg.net.gossip_fanout = count("gossip-fanout", self.gossip_fanout, 2, 64)?;
        if cfg.central_period.is_zero() {
            return Err(usage("--central-period: expected more than zero".into()));
        }
        let shape = Shape {
            hosts,
            vms_per_host,
            host_cores: ranged("host-cores", host_cores, 0.0, input::MAX_HOST_CORES, true)?,
            host_mem_gib: ranged(
                "host-mem-gib",
                self.host_mem_gib,
                0.0,
                input::MAX_HOST_MEM_GIB,
                true,
            )?,
            vm_mem_gib: ranged(
                "vm-mem-gib",
                self.vm_mem_gib,
                0.0,
                input::MAX_VM_MEM_GIB,
                true,
            )?,
            sites,
        };
        Ok((cfg, shape))
    }
}
