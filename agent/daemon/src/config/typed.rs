//! Validated settings: after [`Config::from_raw`] every value is in range.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use dvms_overlay::{Location, Multiaddr, Psk};

use super::{ConfigError, MAX_NODE_NAME, RawConfig};

/// Which actuator carries out migrations.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ActuatorKind {
    /// Never acts: logs the plan and shows it in `dvmsctl plan`.
    Observe,
    /// The dvms-lab hypervisor, over its Unix socket (CONTRACTS B).
    Lab {
        /// The lab's socket.
        socket: PathBuf,
    },
    /// libvirt, through the `dvms-libvirt` executable (`[actuator.libvirt]`).
    Libvirt(Box<super::LibvirtSettings>),
}

/// The agent's validated configuration.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// `node.name`.
    pub node_name: String,
    /// `node.state_dir`.
    pub state_dir: PathBuf,
    /// `node.shutdown_grace`.
    pub shutdown_grace: Duration,
    /// `overlay.listen`.
    pub listen: Multiaddr,
    /// `overlay.bootstrap`.
    pub bootstrap: Vec<Multiaddr>,
    /// `overlay.cluster_key_file`.
    pub cluster_key_file: PathBuf,
    /// `overlay.site`, `overlay.rack`.
    pub location: Location,
    /// `overlay.request_timeout`.
    pub request_timeout: Duration,
    /// `monitor.period`.
    pub period: Duration,
    /// `monitor.cgroup_root`.
    pub cgroup_root: PathBuf,
    /// `monitor.proc_root`.
    pub proc_root: PathBuf,
    /// `monitor.sys_root`.
    pub sys_root: PathBuf,
    /// `monitor.reserve_cpu_milli`.
    pub reserve_cpu_milli: u64,
    /// `monitor.reserve_mem_mib`.
    pub reserve_mem_mib: u64,
    /// `[protocol]`, validated by the core.
    pub protocol: dvms_core::Config,
    /// `actuator.kind` and its section.
    pub actuator: ActuatorKind,
    /// `actuator.max_parallel_migrations`.
    pub max_parallel_migrations: NonZeroU32,
    /// `control.socket`.
    pub control_socket: PathBuf,
    /// `metrics.listen`; `None`: off.
    pub metrics_listen: Option<SocketAddr>,
}

fn duration(key: &str, text: &str, min: Duration, max: Duration) -> Result<Duration, ConfigError> {
    let expected = || {
        format!(
            "a duration such as \"1s\" or \"500ms\", from {} to {}",
            humantime::format_duration(min),
            humantime::format_duration(max)
        )
    };
    let d = humantime::parse_duration(text.trim()).map_err(|_| {
        ConfigError::invalid(key, text, format!("invalid duration: {}", expected()))
    })?;
    if d < min || d > max {
        return Err(ConfigError::invalid(
            key,
            text,
            format!("out of range: {}", expected()),
        ));
    }
    Ok(d)
}

fn path(key: &str, text: &str) -> Result<PathBuf, ConfigError> {
    if text.is_empty() || !text.starts_with('/') {
        return Err(ConfigError::invalid(key, text, "an absolute path"));
    }
    Ok(PathBuf::from(text))
}

fn multiaddr(key: &str, text: &str) -> Result<Multiaddr, ConfigError> {
    text.parse().map_err(|e| {
        ConfigError::invalid(
            key,
            text,
            format!("a libp2p multiaddress such as /ip4/127.0.0.1/tcp/7946 ({e})"),
        )
    })
}

/// Checks a node name: 1 to [`MAX_NODE_NAME`] characters of `A-Z a-z 0-9 . _ -`.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NODE_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The system host name up to its first dot.
fn system_host_name() -> Option<String> {
    let full = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    Some(full.trim().split('.').next().unwrap_or("").to_owned())
}

/// The core's key for a setting, as written in `[protocol]`.
fn protocol_key(core_key: &str) -> String {
    let ours = match core_key {
        "thresholds.cpu_pct" => "cpu_threshold_pct",
        "thresholds.mem_pct" => "mem_threshold_pct",
        other => other,
    };
    format!("protocol.{ours}")
}

impl Config {
    /// Validates a raw config.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first bad key.
    pub fn from_raw(raw: RawConfig) -> Result<Config, ConfigError> {
        let node_name = if raw.node.name.is_empty() {
            let name = system_host_name().unwrap_or_default();
            if !valid_name(&name) {
                return Err(ConfigError::invalid(
                    "node.name",
                    "",
                    format!(
                        "the system host name {name:?} is not a valid node name: set node.name (1 to {MAX_NODE_NAME} characters of A-Z a-z 0-9 . _ -)"
                    ),
                ));
            }
            name
        } else if valid_name(&raw.node.name) {
            raw.node.name.clone()
        } else {
            return Err(ConfigError::invalid(
                "node.name",
                &raw.node.name,
                format!("1 to {MAX_NODE_NAME} characters of A-Z a-z 0-9 . _ -"),
            ));
        };
        let secs = Duration::from_secs;
        let ms = Duration::from_millis;
        let p = &raw.protocol;
        let mut protocol = dvms_core::Config::default();
        protocol.thresholds.cpu_pct = p.cpu_threshold_pct;
        protocol.thresholds.mem_pct = p.mem_threshold_pct;
        protocol.detect_hold = duration("protocol.detect_hold", &p.detect_hold, ms(0), secs(3600))?;
        protocol.underload_enabled = p.underload_enabled;
        protocol.underload_cpu_pct = p.underload_cpu_pct;
        protocol.underload_hold = duration(
            "protocol.underload_hold",
            &p.underload_hold,
            ms(0),
            secs(86_400),
        )?;
        protocol.lease = duration("protocol.lease", &p.lease, ms(100), secs(600))?;
        protocol.renew_period =
            duration("protocol.renew_period", &p.renew_period, ms(10), secs(600))?;
        protocol.hop_timeout = duration("protocol.hop_timeout", &p.hop_timeout, ms(10), secs(600))?;
        protocol.solve_timeout = duration(
            "protocol.solve_timeout",
            &p.solve_timeout,
            ms(10),
            secs(3600),
        )?;
        protocol.migrate_timeout = duration(
            "protocol.migrate_timeout",
            &p.migrate_timeout,
            secs(1),
            secs(86_400),
        )?;
        protocol.min_partition_size = p.min_partition_size;
        protocol.max_partition_size = p.max_partition_size;
        protocol.blocked_budget = duration(
            "protocol.blocked_budget",
            &p.blocked_budget,
            ms(10),
            secs(3600),
        )?;
        protocol.retry_backoff = duration(
            "protocol.retry_backoff",
            &p.retry_backoff,
            ms(10),
            secs(86_400),
        )?;
        protocol.cooldown_base = duration(
            "protocol.cooldown_base",
            &p.cooldown_base,
            ms(0),
            secs(86_400),
        )?;
        protocol.retry_backoff_max = protocol.retry_backoff_max.max(protocol.retry_backoff);
        protocol.cooldown_max = protocol.cooldown_max.max(protocol.cooldown_base);
        let protocol = protocol.validate().map_err(|e| match e {
            dvms_core::config::ConfigError::OutOfRange {
                key,
                value,
                expected,
            } => ConfigError::invalid(&protocol_key(key), value, expected),
            other => ConfigError::invalid("protocol", "", other),
        })?;

        let actuator = match raw.actuator.kind.as_str() {
            "observe" => ActuatorKind::Observe,
            "lab" => ActuatorKind::Lab {
                socket: path("actuator.lab.socket", &raw.actuator.lab.socket)?,
            },
            "libvirt" => ActuatorKind::Libvirt(Box::new(super::LibvirtSettings::from_raw(
                &raw.actuator.libvirt,
                duration,
            )?)),
            other => {
                return Err(ConfigError::invalid(
                    "actuator.kind",
                    other,
                    "observe, lab or libvirt",
                ));
            }
        };
        let max_parallel_migrations = NonZeroU32::new(raw.actuator.max_parallel_migrations)
            .filter(|n| n.get() <= 64)
            .ok_or_else(|| {
                ConfigError::invalid(
                    "actuator.max_parallel_migrations",
                    raw.actuator.max_parallel_migrations,
                    "1 to 64",
                )
            })?;
        let metrics_listen = if raw.metrics.listen.is_empty() {
            None
        } else {
            Some(raw.metrics.listen.parse().map_err(|_| {
                ConfigError::invalid(
                    "metrics.listen",
                    &raw.metrics.listen,
                    "empty (off) or an address:port such as 127.0.0.1:9465",
                )
            })?)
        };
        let bootstrap = raw
            .overlay
            .bootstrap
            .iter()
            .map(|a| multiaddr("overlay.bootstrap", a))
            .collect::<Result<Vec<_>, _>>()?;
        if bootstrap.len() > 64 {
            return Err(ConfigError::invalid(
                "overlay.bootstrap",
                format!("{} addresses", bootstrap.len()),
                "at most 64 addresses",
            ));
        }
        Ok(Config {
            node_name,
            state_dir: path("node.state_dir", &raw.node.state_dir)?,
            shutdown_grace: duration(
                "node.shutdown_grace",
                &raw.node.shutdown_grace,
                ms(0),
                secs(600),
            )?,
            listen: multiaddr("overlay.listen", &raw.overlay.listen)?,
            bootstrap,
            cluster_key_file: path("overlay.cluster_key_file", &raw.overlay.cluster_key_file)?,
            location: Location {
                site: raw.overlay.site,
                rack: raw.overlay.rack,
            },
            request_timeout: duration(
                "overlay.request_timeout",
                &raw.overlay.request_timeout,
                ms(100),
                secs(600),
            )?,
            period: duration("monitor.period", &raw.monitor.period, ms(100), secs(600))?,
            cgroup_root: path("monitor.cgroup_root", &raw.monitor.cgroup_root)?,
            proc_root: path("monitor.proc_root", &raw.monitor.proc_root)?,
            sys_root: path("monitor.sys_root", &raw.monitor.sys_root)?,
            reserve_cpu_milli: raw.monitor.reserve_cpu_milli,
            reserve_mem_mib: raw.monitor.reserve_mem_mib,
            protocol,
            actuator,
            max_parallel_migrations,
            control_socket: path("control.socket", &raw.control.socket)?,
            metrics_listen,
        })
    }

    /// Reads the cluster key file, refusing it when group or others may access it.
    ///
    /// # Errors
    /// [`ConfigError::ClusterKey`].
    pub fn cluster_key(&self) -> Result<Psk, ConfigError> {
        let path = &self.cluster_key_file;
        let err = |problem: String| ConfigError::ClusterKey {
            path: path.clone(),
            problem,
        };
        let meta = std::fs::metadata(path).map_err(|e| {
            err(format!(
                "cannot read it ({e}); `dvmsd init --cluster-key` creates one"
            ))
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(err(format!(
                "mode {mode:04o} lets group or others access it; run chmod 600"
            )));
        }
        if meta.len() > 4096 {
            return Err(err(format!(
                "{} bytes is too large for a key file",
                meta.len()
            )));
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| err(format!("cannot read it ({e})")))?;
        text.parse().map_err(|_| {
            err("not a key: expected 64 hex digits or the libp2p swarm.key format".into())
        })
    }
}
