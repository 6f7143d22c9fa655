//! The settings of one simulation run, already validated.

use std::time::Duration;

use crate::keys::KeysMode;

/// Which scheduler manages the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheduler {
    /// The real DVMS protocol (`dvms-core`) on every host.
    Dvms,
    /// The seed's baseline: Entropy run on the whole cluster every period, charged the
    /// computation time the original took (see `crate::baseline::entropy_time`).
    Entropy,
    /// Our solver on the whole cluster every period, charged its own (modelled) time.
    Centralized,
    /// Instant decisions with perfect knowledge: only migrations take time.
    Oracle,
    /// No scheduling: the floor.
    None,
}

impl Scheduler {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scheduler::Dvms => "dvms",
            Scheduler::Entropy => "entropy",
            Scheduler::Centralized => "centralized",
            Scheduler::Oracle => "oracle",
            Scheduler::None => "none",
        }
    }
}

/// How the solver's time is charged to simulated time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChargeSolver {
    /// From the work units the solver reports ([`crate::NS_PER_WORK_UNIT`]): deterministic.
    Model,
    /// The measured wall time of the call: realistic, not reproducible.
    Wall,
}

/// The workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Workload {
    /// VMPlaceS: each VM's load redrawn from a Gaussian on a Poisson schedule.
    Vmplaces,
    /// Replay of the PlanetLab traces in this directory.
    Planetlab(std::path::PathBuf),
    /// Static loads, changed only by scripted events (scenarios).
    Scripted,
}

/// Parameters of the VMPlaceS workload.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VmplacesParams {
    /// Mean time between two load changes of one VM.
    pub load_period: Duration,
    /// Mean load, percent of a vCPU.
    pub mean_pct: f64,
    /// Standard deviation, percent of a vCPU.
    pub sd_pct: f64,
}

impl Default for VmplacesParams {
    fn default() -> Self {
        VmplacesParams {
            load_period: Duration::from_secs(300),
            mean_pct: 60.0,
            sd_pct: 20.0,
        }
    }
}

/// Network and migration parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NetParams {
    /// One-way latency between two hosts of one site.
    pub latency: Duration,
    /// One-way latency between sites.
    pub inter_site_latency: Duration,
    /// Probability that a message is silently lost.
    pub loss: f64,
    /// Extra one-way delay, uniform in `0..=jitter`, drawn per message.
    pub jitter: Duration,
    /// With jitter, a message may overtake an earlier one on the same link.
    pub reorder: bool,
    /// How long a sender waits before it is told a peer is unreachable.
    pub request_timeout: Duration,
    /// Period of the gossip heartbeat (a summary is visible after a phase of it plus latency).
    pub gossip_period: Duration,
    /// How long a crashed host stays in the candidate table before its failure is noticed.
    pub failure_detection: Duration,
    /// Largest bandwidth of one migration within a site, MB/s.
    pub bandwidth_mbs: f64,
    /// Largest bandwidth of one migration between sites, MB/s.
    pub inter_site_bandwidth_mbs: f64,
    /// NIC bandwidth of every host, MB/s, shared by all migrations in and out of it.
    pub nic_mbs: f64,
    /// How many hosts' summaries each host keeps (its closest by overlay key).
    pub view_size: usize,
    /// Gossip mesh degree: a publication reaches every host in `ceil(log_F(hosts))` hops.
    pub gossip_fanout: usize,
}

/// Default of [`NetParams::view_size`]: as many as one candidate query returns.
pub const DEFAULT_VIEW_SIZE: usize = 32;
/// Default of [`NetParams::gossip_fanout`]: gossipsub's mesh degree D.
pub const DEFAULT_GOSSIP_FANOUT: usize = 6;

impl Default for NetParams {
    fn default() -> Self {
        NetParams {
            latency: Duration::from_millis(1),
            inter_site_latency: Duration::from_millis(10),
            loss: 0.0,
            jitter: Duration::ZERO,
            reorder: false,
            request_timeout: Duration::from_secs(1),
            gossip_period: Duration::from_secs(1),
            failure_detection: Duration::from_secs(5),
            bandwidth_mbs: 125.0,
            inter_site_bandwidth_mbs: 40.0,
            nic_mbs: 125.0,
            view_size: DEFAULT_VIEW_SIZE,
            gossip_fanout: DEFAULT_GOSSIP_FANOUT,
        }
    }
}

/// Everything a run needs besides the cluster itself.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The seed of every random stream.
    pub seed: u64,
    /// Simulated time to run.
    pub duration: Duration,
    /// The scheduler.
    pub scheduler: Scheduler,
    /// The workload.
    pub workload: Workload,
    /// VMPlaceS parameters.
    pub vmplaces: VmplacesParams,
    /// Network and migration parameters.
    pub net: NetParams,
    /// Share of hosts crashing per simulated hour.
    pub crash_rate: f64,
    /// Mean time a crashed host stays down (exponential).
    pub restart_after: Duration,
    /// Overlay keys.
    pub keys: KeysMode,
    /// Solver time charging.
    pub charge_solver: ChargeSolver,
    /// Period of the centralized scheduler.
    pub central_period: Duration,
    /// The protocol settings every node gets.
    pub protocol: dvms_core::Config,
    /// Print every protocol event, migration and fault to stderr.
    pub trace: bool,
    /// Print progress to stderr (simulated time, events, wall time) about once a second.
    pub progress: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            duration: Duration::from_secs(3600),
            scheduler: Scheduler::Dvms,
            workload: Workload::Vmplaces,
            vmplaces: VmplacesParams::default(),
            net: NetParams::default(),
            crash_rate: 0.0,
            restart_after: Duration::from_secs(300),
            keys: KeysMode::Random,
            charge_solver: ChargeSolver::Model,
            central_period: Duration::from_secs(30),
            protocol: dvms_core::Config::default(),
            trace: false,
            progress: false,
        }
    }
}

/// A malformed duration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurationError(pub String);

impl std::fmt::Display for DurationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invalid duration {:?}: expected a number and a unit (us, ms, s, m, h, d), like 500ms, 30m or 24h",
            self.0
        )
    }
}

impl std::error::Error for DurationError {}

/// Parses `500ms`, `3s`, `1.5s`, `30m`, `1h`, `2d` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let err = || DurationError(text.to_owned());
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| err())?;
    let scale = match unit.trim() {
        "us" => 1e-6,
        "ms" => 1e-3,
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        _ => return Err(err()),
    };
    let secs = value * scale;
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(err());
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_duration("1ms").unwrap(), Duration::from_millis(1));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("45").unwrap(), Duration::from_secs(45));
        assert!(parse_duration("1x").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("").is_err());
    }
}
