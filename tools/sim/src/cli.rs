//! The command line: `dvms-sim run`, `dvms-sim scenario`, `dvms-sim solve`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{ChargeSolver, Scheduler, SimConfig, Workload, parse_duration};
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
pub struct RunArgs {
    /// Number of hosts.
    #[arg(long, default_value_t = 1000)]
    pub hosts: usize,
    /// VMs per host (placed round-robin).
    #[arg(long, default_value_t = 10)]
    pub vms_per_host: usize,
    /// CPU cores per host (VMPlaceS: 7 usable cores).
    #[arg(long, default_value_t = 7.0)]
    pub host_cores: f64,
    /// Memory per host, GiB.
    #[arg(long, default_value_t = 32.0)]
    pub host_mem_gib: f64,
    /// Memory per VM, GiB.
    #[arg(long, default_value_t = 1.0)]
    pub vm_mem_gib: f64,
    /// Simulated duration (e.g. 30m, 1h, 24h).
    #[arg(long, default_value = "1h")]
    pub duration: String,
    /// Seed of every random stream.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// dvms, centralized, oracle or none.
    #[arg(long, default_value = "dvms")]
    pub scheduler: String,
    /// vmplaces, or planetlab:DIR (a directory of per-VM traces).
    #[arg(long, default_value = "vmplaces")]
    pub workload: String,
    /// One-way latency within a site.
    #[arg(long, default_value = "1ms")]
    pub latency: String,
    /// One-way latency between sites.
    #[arg(long, default_value = "10ms")]
    pub inter_site_latency: String,
    /// Probability that a message (or a gossip publication) is lost.
    #[arg(long, default_value_t = 0.0)]
    pub loss: f64,
    /// Extra one-way delay per message, uniform in 0..=JITTER (e.g. 5ms).
    #[arg(long, default_value = "0ms")]
    pub jitter: String,
    /// With --jitter, let a message overtake an earlier one on the same link.
    #[arg(long)]
    pub reorder: bool,
    /// Share of hosts crashing per simulated hour.
    #[arg(long, default_value_t = 0.0)]
    pub crash_rate: f64,
    /// Mean time a crashed host stays down (exponential).
    #[arg(long, default_value = "5m")]
    pub restart_after: String,
    /// Number of sites hosts are spread over (round-robin).
    #[arg(long, default_value_t = 1)]
    pub sites: usize,
    /// Overlay keys: random, or topology (site in the top bits).
    #[arg(long, default_value = "random")]
    pub keys: String,
    /// Migration bandwidth within a site, MB/s.
    #[arg(long, default_value_t = 125.0)]
    pub bandwidth_mbs: f64,
    /// Migration bandwidth between sites, MB/s.
    #[arg(long, default_value_t = 40.0)]
    pub inter_site_bandwidth_mbs: f64,
    /// Solve time charged to simulated time: model (work units) or wall (measured).
    #[arg(long, default_value = "model")]
    pub charge_solver: String,
    /// Period of the centralized scheduler.
    #[arg(long, default_value = "30s")]
    pub central_period: String,
    /// Protocol lease (membership expiry).
    #[arg(long)]
    pub lease: Option<String>,
    /// Protocol detection hysteresis.
    #[arg(long)]
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
        "centralized" => Ok(Scheduler::Centralized),
        "oracle" => Ok(Scheduler::Oracle),
        "none" => Ok(Scheduler::None),
        _ => Err(usage(format!(
            "unknown scheduler {s:?} (expected dvms, centralized, oracle or none)"
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

fn flag_duration(flag: &str, v: &str) -> Result<std::time::Duration, UsageError> {
    parse_duration(v).map_err(|e| usage(format!("--{flag}: {e}")))
}

fn positive(flag: &str, v: f64) -> Result<f64, UsageError> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(usage(format!("--{flag} {v}: expected a positive number")))
    }
}

fn share(flag: &str, v: f64) -> Result<f64, UsageError> {
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(usage(format!(
            "--{flag} {v}: expected a share between 0 and 1"
        )))
    }
}

impl RunArgs {
    /// Validates the flags into a configuration and a cluster shape.
    pub fn to_config(&self) -> Result<(SimConfig, Shape), UsageError> {
        if self.hosts == 0 {
            return Err(usage("--hosts 0: expected at least one host".into()));
        }
        if self.sites == 0 || self.sites > 256 {
            return Err(usage(format!("--sites {}: expected 1..=256", self.sites)));
        }
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
        let charge_solver = match self.charge_solver.as_str() {
            "model" => ChargeSolver::Model,
            "wall" => ChargeSolver::Wall,
            c => {
                return Err(usage(format!(
                    "--charge-solver {c:?}: expected model or wall"
                )));
            }
        };
        if !self.crash_rate.is_finite() || self.crash_rate < 0.0 {
            return Err(usage(format!(
                "--crash-rate {}: expected a non-negative share per hour",
                self.crash_rate
            )));
        }
        let mut protocol = dvms_core::Config::default();
        if let Some(l) = &self.lease {
            protocol.lease = flag_duration("lease", l)?;
            protocol.renew_period = protocol.renew_period.min(protocol.lease / 5);
        }
        if let Some(d) = &self.detect_hold {
            protocol.detect_hold = flag_duration("detect-hold", d)?;
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
        let mut cfg = SimConfig {
            seed: self.seed,
            duration: flag_duration("duration", &self.duration)?,
            scheduler: parse_scheduler(&self.scheduler)
                .map_err(|e| usage(format!("--scheduler: {e}")))?,
            workload,
            crash_rate: self.crash_rate,
            restart_after: flag_duration("restart-after", &self.restart_after)?,
            keys: parse_keys(&self.keys).map_err(|e| usage(format!("--keys: {e}")))?,
            charge_solver,
            central_period: flag_duration("central-period", &self.central_period)?,
            protocol,
            trace: self.trace,
            ..SimConfig::default()
        };
        cfg.net.latency = flag_duration("latency", &self.latency)?;
        cfg.net.inter_site_latency = flag_duration("inter-site-latency", &self.inter_site_latency)?;
        cfg.net.loss = share("loss", self.loss)?;
        cfg.net.jitter = flag_duration("jitter", &self.jitter)?;
        if cfg.net.jitter > std::time::Duration::from_secs(60) {
            return Err(usage(format!(
                "--jitter {}: expected at most 60s",
                self.jitter
            )));
        }
        cfg.net.reorder = self.reorder;
        cfg.net.bandwidth_mbs = positive("bandwidth-mbs", self.bandwidth_mbs)?;
        cfg.net.inter_site_bandwidth_mbs =
            positive("inter-site-bandwidth-mbs", self.inter_site_bandwidth_mbs)?;
        if cfg.central_period.is_zero() {
            return Err(usage("--central-period: expected more than zero".into()));
        }
        let shape = Shape {
            hosts: self.hosts,
            vms_per_host: self.vms_per_host,
            host_cores: positive("host-cores", self.host_cores)?,
            host_mem_gib: positive("host-mem-gib", self.host_mem_gib)?,
            vm_mem_gib: positive("vm-mem-gib", self.vm_mem_gib)?,
            sites: self.sites,
        };
        Ok((cfg, shape))
    }
}
