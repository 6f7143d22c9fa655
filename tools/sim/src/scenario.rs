//! Scripted scenarios: a hand-written cluster and a list of timed events, run to quiescence.
//!
//! ```toml
//! seed = 1
//! lease = "5s"            # optional protocol settings, see `RawScenario`
//! jitter = "20ms"         # optional: per-message jitter; reorder = true lets messages overtake
//! [[host]]
//! id = "h1"
//! cores = 7
//! mem_gib = 32
//! site = "nancy"          # optional
//! [[vm]]
//! id = "v1"
//! host = "h1"
//! cpu = 0.9               # cores in use
//! mem_gib = 1
//! [[event]]
//! at = "5s"
//! kind = "load"           # load | crash | restart | cut | heal
//! vm = "v1"
//! cpu = 1.0
//! ```
//!
//! `crash` and `restart` take `host`; `cut` and `heal` take `hosts = [...]`: messages between
//! every pair of them are lost (the sender is told its peer is unreachable). The run stops at
//! the first instant after the last event plus `settle` (default 10 s) when no message,
//! migration or partition is left and no host is overloaded, and at the latest `max_time`
//! (default last event + 1 h).

use std::collections::BTreeMap;
use std::time::Duration;

use dvms_core::Time;
use serde::Deserialize;

use crate::config::{Scheduler, SimConfig, Workload, parse_duration};
use crate::engine::{Ev, Sim};
use crate::events::Action;
use crate::input;
use crate::keys::KeysMode;
use crate::report::Report;
use crate::workload::{HostInit, Setup, VmInit};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    seed: Option<u64>,
    scheduler: Option<String>,
    lease: Option<String>,
    renew_period: Option<String>,
    detect_hold: Option<String>,
    hop_timeout: Option<String>,
    blocked_budget: Option<String>,
    min_partition_size: Option<usize>,
    max_partition_size: Option<usize>,
    latency: Option<String>,
    loss: Option<f64>,
    jitter: Option<String>,
    reorder: Option<bool>,
    migrate_timeout: Option<String>,
    keys: Option<String>,
    settle: Option<String>,
    max_time: Option<String>,
    #[serde(default)]
    host: Vec<RawHost>,
    #[serde(default)]
    vm: Vec<RawVm>,
    #[serde(default)]
    event: Vec<RawEvent>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    id: String,
    cores: f64,
    mem_gib: f64,
    site: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVm {
    id: String,
    host: String,
    cpu: f64,
    mem_gib: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    at: String,
    kind: String,
    vm: Option<String>,
    cpu: Option<f64>,
    host: Option<String>,
    hosts: Option<Vec<String>>,
}

/// Why a scenario could not be run.
#[derive(Debug)]
pub enum ScenarioError {
    /// Not valid TOML, or a field of the wrong type or name.
    Toml(toml::de::Error),
    /// A value is wrong; the message names it.
    Invalid(String),
    /// The simulator refused the cluster.
    Setup(crate::engine::SetupError),
}

impl std::fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScenarioError::Toml(e) => write!(f, "malformed scenario: {e}"),
            ScenarioError::Invalid(what) => write!(f, "invalid scenario: {what}"),
            ScenarioError::Setup(_) => f.write_str("the scenario's cluster is invalid"),
        }
    }
}

impl std::error::Error for ScenarioError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ScenarioError::Setup(e) => Some(e),
            _ => None,
        }
    }
}

fn invalid(s: String) -> ScenarioError {
    ScenarioError::Invalid(s)
}

/// A duration of at most `max_s` seconds.
fn dur_max(key: &str, v: &str, max_s: f64) -> Result<Duration, ScenarioError> {
    let d = parse_duration(v).map_err(|e| invalid(format!("{key}: {e}")))?;
    if d.as_secs_f64() > max_s {
        return Err(invalid(format!(
            "{key} = {v:?}: expected at most {max_s} s"
        )));
    }
    Ok(d)
}

/// A time of the scenario (at most [`input::MAX_DURATION_S`]).
fn dur(key: &str, v: &str) -> Result<Duration, ScenarioError> {
    dur_max(key, v, input::MAX_DURATION_S)
}

/// A protocol duration (at most [`input::MAX_PROTOCOL_S`]).
fn proto_dur(key: &str, v: &str) -> Result<Duration, ScenarioError> {
    dur_max(key, v, input::MAX_PROTOCOL_S)
}

/// A CPU amount in cores, `0..=max` (`positive`: more than 0, and at least 1 milli-core), in
/// milli-cores.
fn milli(key: &str, cores: f64, positive: bool, max: f64) -> Result<u64, ScenarioError> {
    let v = input::check_range(key, cores, 0.0, max, positive).map_err(invalid)?;
    let m = (v * 1000.0).round() as u64;
    Ok(if positive { m.max(1) } else { m })
}

/// A memory size in GiB, more than 0 and at most `max`, in MiB (at least 1).
fn mib(key: &str, gib: f64, max: f64) -> Result<u64, ScenarioError> {
    let v = input::check_range(key, gib, 0.0, max, true).map_err(invalid)?;
    Ok(((v * 1024.0).round() as u64).max(1))
}

/// A parsed scenario, ready to run.
#[derive(Debug)]
pub struct Scenario {
    cfg: SimConfig,
    setup: Setup,
    events: Vec<(Time, Action)>,
    settle: Duration,
    max_time: Option<Duration>,
}

/// Parses a scenario file's text.
pub fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    let raw: RawScenario = toml::from_str(text).map_err(ScenarioError::Toml)?;
    let mut cfg = SimConfig {
        workload: Workload::Scripted,
        seed: raw.seed.unwrap_or(1),
        ..SimConfig::default()
    };
    if let Some(s) = &raw.scheduler {
        cfg.scheduler =
            crate::cli::parse_scheduler(s).map_err(|e| invalid(format!("scheduler: {e}")))?;
    }
    let p = &mut cfg.protocol;
    if let Some(v) = &raw.lease {
        p.lease = proto_dur("lease", v)?;
        // Keep the renew period valid unless given.
        if raw.renew_period.is_none() {
            p.renew_period = p.renew_period.min(p.lease / 5);
        }
    }
    if let Some(v) = &raw.renew_period {
        p.renew_period = proto_dur("renew_period", v)?;
    }
    if let Some(v) = &raw.detect_hold {
        p.detect_hold = proto_dur("detect_hold", v)?;
    }
    if let Some(v) = &raw.hop_timeout {
        p.hop_timeout = proto_dur("hop_timeout", v)?;
    }
    if let Some(v) = &raw.blocked_budget {
        p.blocked_budget = proto_dur("blocked_budget", v)?;
    }
    if let Some(v) = &raw.migrate_timeout {
        p.migrate_timeout = proto_dur("migrate_timeout", v)?;
    }
    if let Some(v) = raw.min_partition_size {
        p.min_partition_size = v;
    }
    if let Some(v) = raw.max_partition_size {
        p.max_partition_size = v;
    }
    cfg.protocol = cfg
        .protocol
        .clone()
        .validate()
        .map_err(|e| invalid(e.to_string()))?;
    if let Some(v) = &raw.latency {
        cfg.net.latency = dur_max("latency", v, input::MAX_LATENCY_S)?;
    }
    if let Some(v) = raw.loss {
        if !(0.0..=1.0).contains(&v) {
            return Err(invalid(format!("loss = {v}: expected 0..=1")));
        }
        cfg.net.loss = v;
    }
    if let Some(v) = &raw.jitter {
        cfg.net.jitter = dur_max("jitter", v, input::MAX_LATENCY_S)?;
    }
    cfg.net.reorder = raw.reorder.unwrap_or(false);
    if let Some(k) = &raw.keys {
        cfg.keys = crate::cli::parse_keys(k).map_err(|e| invalid(format!("keys: {e}")))?;
    } else {
        cfg.keys = KeysMode::Random;
    }
    if raw.host.len() > input::MAX_HOSTS {
        return Err(invalid(format!(
            "{} hosts: expected at most {}",
            raw.host.len(),
            input::MAX_HOSTS
        )));
    }
    if raw.vm.len() > input::MAX_VMS {
        return Err(invalid(format!(
            "{} VMs: expected at most {}",
            raw.vm.len(),
            input::MAX_VMS
        )));
    }
    let mut setup = Setup::default();
    let mut host_idx = BTreeMap::new();
    let mut site_idx: BTreeMap<String, u32> = BTreeMap::new();
    for h in &raw.host {
        if host_idx.insert(h.id.clone(), setup.hosts.len()).is_some() {
            return Err(invalid(format!("host {:?} defined twice", h.id)));
        }
        let site = match &h.site {
            Some(s) => {
                let n = u32::try_from(site_idx.len()).unwrap_or(u32::MAX);
                *site_idx.entry(s.clone()).or_insert(n)
            }
            None => 0,
        };
        setup.hosts.push(HostInit {
            name: h.id.clone(),
            cpu_milli: milli(
                &format!("host {:?} cores", h.id),
                h.cores,
                true,
                input::MAX_HOST_CORES,
            )?,
            mem_mib: mib(
                &format!("host {:?} mem_gib", h.id),
                h.mem_gib,
                input::MAX_HOST_MEM_GIB,
            )?,
            site,
        });
    }
    let mut sites: Vec<(u32, String)> = site_idx.into_iter().map(|(n, i)| (i, n)).collect();
    sites.sort();
    setup.sites = sites.into_iter().map(|(_, n)| n).collect();
    let host_of = |name: &str, what: &str| {
        host_idx
            .get(name)
            .copied()
            .ok_or_else(|| invalid(format!("{what}: unknown host {name:?}")))
    };
    let mut vm_idx = BTreeMap::new();
    for v in &raw.vm {
        if vm_idx.insert(v.id.clone(), setup.vms.len()).is_some() {
            return Err(invalid(format!("vm {:?} defined twice", v.id)));
        }
        setup.vms.push(VmInit {
            name: v.id.clone(),
            host: host_of(&v.host, &format!("vm {}", v.id))?,
            cpu_milli: milli(
                &format!("vm {:?} cpu", v.id),
                v.cpu,
                false,
                input::MAX_VM_CORES,
            )?,
            mem_mib: mib(
                &format!("vm {:?} mem_gib", v.id),
                v.mem_gib,
                input::MAX_VM_MEM_GIB,
            )?,
        });
    }
    let mut events = Vec::new();
    for (i, e) in raw.event.iter().enumerate() {
        let what = format!("event {} ({})", i + 1, e.kind);
        let at = Time::ZERO + dur(&format!("{what} at"), &e.at)?;
        let host = || {
            e.host
                .as_deref()
                .ok_or_else(|| invalid(format!("{what}: missing `host`")))
                .and_then(|h| host_of(h, &what))
        };
        let hosts = || {
            let list = e
                .hosts
                .as_ref()
                .ok_or_else(|| invalid(format!("{what}: missing `hosts`")))?;
            list.iter()
                .map(|h| host_of(h, &what))
                .collect::<Result<Vec<_>, _>>()
        };
        let ev = match e.kind.as_str() {
            "load" => {
                let vm =
                    e.vm.as_deref()
                        .ok_or_else(|| invalid(format!("{what}: missing `vm`")))?;
                let vm = *vm_idx
                    .get(vm)
                    .ok_or_else(|| invalid(format!("{what}: unknown vm {vm:?}")))?;
                let cpu = e
                    .cpu
                    .ok_or_else(|| invalid(format!("{what}: missing `cpu`")))?;
                Action::Load {
                    vm,
                    cpu_milli: milli(&format!("{what} cpu"), cpu, false, input::MAX_VM_CORES)?,
                }
            }
            "crash" => Action::Crash { host: host()? },
            "restart" => Action::Restart { host: host()? },
            "cut" => Action::Cut { hosts: hosts()? },
            "heal" => Action::Heal { hosts: hosts()? },
            other => {
                return Err(invalid(format!(
                    "{what}: unknown kind {other:?} (expected load, crash, restart, cut or heal)"
                )));
            }
        };
        events.push((at, ev));
    }
    let settle = raw
        .settle
        .as_deref()
        .map(|s| dur("settle", s))
        .transpose()?
        .unwrap_or(Duration::from_secs(10));
    let max_time = raw
        .max_time
        .as_deref()
        .map(|s| dur("max_time", s))
        .transpose()?;
    Ok(Scenario {
        cfg,
        setup,
        events,
        settle,
        max_time,
    })
}

impl Scenario {
    /// Runs the scenario to quiescence and reports, with the final placement.
    pub fn run(self) -> Result<Report, ScenarioError> {
        let last = self.events.iter().map(|e| e.0).max().unwrap_or(Time::ZERO);
        let end = match self.max_time {
            Some(d) => Time::ZERO + d,
            None => last + Duration::from_secs(3600),
        };
        let mut cfg = self.cfg;
        cfg.duration = end.saturating_since(Time::ZERO);
        let mut sim = Sim::new(cfg, self.setup).map_err(ScenarioError::Setup)?;
        for (i, (at, ev)) in self.events.into_iter().enumerate() {
            sim.scripted.push(ev);
            sim.schedule(at, Ev::Scripted(i));
        }
        sim.run_until(end, Some(last + self.settle));
        let mut report = sim.report();
        let placement = sim
            .vms
            .iter()
            .enumerate()
            .map(|(v, vm)| {
                (
                    sim.setup.vms[v].name.clone(),
                    sim.setup.hosts[vm.host as usize].name.clone(),
                )
            })
            .collect();
        report.final_placement = Some(placement);
        report.hosts_in_partition = Some(
            sim.hosts_in_partition()
                .into_iter()
                .map(|h| sim.setup.hosts[h as usize].name.clone())
                .collect(),
        );
        report.overloaded_at_end = Some(
            sim.hosts
                .iter()
                .enumerate()
                .filter(|(_, h)| h.overloaded)
                .map(|(i, _)| sim.setup.hosts[i].name.clone())
                .collect(),
        );
        Ok(report)
    }

    /// The scheduler the scenario runs.
    pub fn scheduler(&self) -> Scheduler {
        self.cfg.scheduler
    }

    /// Prints every protocol event to stderr.
    pub fn set_trace(&mut self, on: bool) {
        self.cfg.trace = on;
    }

    /// Overrides the scheduler.
    pub fn set_scheduler(&mut self, s: Scheduler) {
        self.cfg.scheduler = s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_are_reported() {
        let err = parse("[[vm]]\nid = \"v1\"\nhost = \"nope\"\ncpu = 1\nmem_gib = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope"), "{err}");
        let err = parse("colour = 3\n").unwrap_err().to_string();
        assert!(err.contains("colour"), "{err}");
        let err =
            parse("[[host]]\nid=\"h\"\ncores=1\nmem_gib=1\n[[event]]\nat=\"1s\"\nkind=\"boom\"\n")
                .unwrap_err()
                .to_string();
        assert!(err.contains("boom"), "{err}");
    }

    #[test]
    fn out_of_range_values_are_named() {
        let host = |cores: &str, mem: &str| {
            format!("[[host]]\nid = \"h\"\ncores = {cores}\nmem_gib = {mem}\n")
        };
        for (text, needle) in [
            (host("0", "32"), "cores"),
            (host("-1", "32"), "cores"),
            (host("1e300", "32"), "cores"),
            (host("7", "0"), "mem_gib"),
            (host("7", "-4"), "mem_gib"),
            (host("7", "1e300"), "mem_gib"),
            (
                host("7", "32") + "[[vm]]\nid=\"v\"\nhost=\"h\"\ncpu=1e300\nmem_gib=1\n",
                "cpu",
            ),
            (
                host("7", "32") + "[[vm]]\nid=\"v\"\nhost=\"h\"\ncpu=1\nmem_gib=-1\n",
                "mem_gib",
            ),
            (
                host("7", "32") + "[[vm]]\nid=\"v\"\nhost=\"h\"\ncpu=1\nmem_gib=0\n",
                "mem_gib",
            ),
            (
                host("7", "32")
                    + "[[vm]]\nid=\"v\"\nhost=\"h\"\ncpu=1\nmem_gib=1\n"
                    + "[[event]]\nat=\"1s\"\nkind=\"load\"\nvm=\"v\"\ncpu=-2\n",
                "event 1 (load) cpu -2",
            ),
            (
                "latency = \"2h\"\n".to_owned() + &host("7", "32"),
                "latency",
            ),
            ("lease = \"999999s\"\n".to_owned(), "lease"),
            ("min_partition_size = -1\n".to_owned(), "min_partition_size"),
        ] {
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
