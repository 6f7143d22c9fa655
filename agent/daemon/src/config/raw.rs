//! The config file as written: `/etc/dvms/dvms.toml`, every key with its default.
//!
//! These structs reject unknown keys and carry every default, so
//! `toml::to_string(&RawConfig::default())` lists every key (the packaging renders dvms.toml(5)
//! from it). [`super::Config::from_raw`] validates them into typed settings.

use serde::{Deserialize, Serialize};

/// The whole config file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    /// This host: its name and where its identity lives.
    pub node: RawNode,
    /// The peer-to-peer overlay between hosts.
    pub overlay: RawOverlay,
    /// Reading the load of the host and its VMs from the kernel.
    pub monitor: RawMonitor,
    /// Thresholds and timings of the scheduling protocol.
    pub protocol: RawProtocol,
    /// What carries out the migrations the protocol decides.
    pub actuator: RawActuator,
    /// The local control socket `dvmsctl` talks to.
    pub control: RawControl,
    /// Prometheus metrics.
    pub metrics: RawMetrics,
}

/// `[node]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawNode {
    /// This host's name as the hypervisor knows it (the migration destination other hosts
    /// name). Empty: the system host name up to its first dot. 1 to 30 characters of
    /// `A-Z a-z 0-9 . _ -`.
    pub name: String,
    /// Directory of the node identity (`overlay-identity.key`), created when absent.
    pub state_dir: String,
    /// How long SIGTERM/SIGINT waits for the host to leave its partition and for running
    /// migrations to end before exiting anyway.
    pub shutdown_grace: String,
}

impl Default for RawNode {
    fn default() -> Self {
        RawNode {
            name: String::new(),
            state_dir: "/var/lib/dvms".into(),
            shutdown_grace: "10s".into(),
        }
    }
}

/// `[overlay]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawOverlay {
    /// libp2p multiaddress to listen on, e.g. `/ip4/0.0.0.0/tcp/7946`.
    pub listen: String,
    /// Multiaddresses of hosts to join through (any running host of the cluster); empty for
    /// the first host.
    pub bootstrap: Vec<String>,
    /// The cluster's pre-shared key (64 hex digits or the libp2p `swarm.key` format). Hosts
    /// without the same key cannot connect. Refused when group or others may read it.
    pub cluster_key_file: String,
    /// Site (data centre) number, the high bits of this host's overlay key.
    pub site: u16,
    /// Rack number within the site.
    pub rack: u16,
    /// How long a request to another host may wait for its answer.
    pub request_timeout: String,
}

impl Default for RawOverlay {
    fn default() -> Self {
        RawOverlay {
            listen: "/ip4/0.0.0.0/tcp/7946".into(),
            bootstrap: Vec::new(),
            cluster_key_file: "/etc/dvms/cluster.key".into(),
            site: 0,
            rack: 0,
            request_timeout: "5s".into(),
        }
    }
}

/// `[monitor]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawMonitor {
    /// Sampling period of the host and its VMs.
    pub period: String,
    /// Root of the cgroup file system.
    pub cgroup_root: String,
    /// Root of procfs.
    pub proc_root: String,
    /// Root of sysfs (online CPUs).
    pub sys_root: String,
    /// CPU kept for the host itself, in thousandths of a core.
    pub reserve_cpu_milli: u64,
    /// Memory kept for the host itself, in MiB.
    pub reserve_mem_mib: u64,
}

impl Default for RawMonitor {
    fn default() -> Self {
        RawMonitor {
            period: "1s".into(),
            cgroup_root: "/sys/fs/cgroup".into(),
            proc_root: "/proc".into(),
            sys_root: "/sys".into(),
            reserve_cpu_milli: 0,
            reserve_mem_mib: 0,
        }
    }
}

/// `[protocol]`: maps onto `dvms_core::Config` (see docs/protocol.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawProtocol {
    /// CPU overload threshold, percent of capacity (1-100).
    pub cpu_threshold_pct: u8,
    /// Memory overload threshold, percent of capacity (1-100).
    pub mem_threshold_pct: u8,
    /// How long a threshold must be crossed before a problem is raised.
    pub detect_hold: String,
    /// Raise consolidation events for underloaded hosts.
    pub underload_enabled: bool,
    /// A host whose CPU demand stays below this percentage of capacity is worth emptying.
    pub underload_cpu_pct: u8,
    /// How long an underload must hold.
    pub underload_hold: String,
    /// A partition member leaves when it hears nothing from its leader for this long.
    pub lease: String,
    /// How often a leader renews its members' leases.
    pub renew_period: String,
    /// How long a leader waits for a candidate to take the partition.
    pub hop_timeout: String,
    /// How long a leader waits for the solver.
    pub solve_timeout: String,
    /// How long a leader waits for one live migration.
    pub migrate_timeout: String,
    /// Smallest partition handed to the solver.
    pub min_partition_size: usize,
    /// Largest partition; an overload not solved at this size is unsolvable.
    pub max_partition_size: usize,
    /// How long a partition may stay blocked (no free host) before giving up.
    pub blocked_budget: String,
    /// Pause before raising again a problem whose event ended unsolved (doubles per failure).
    pub retry_backoff: String,
    /// Cooldown of a VM after its first move (doubles per further move).
    pub cooldown_base: String,
}

impl Default for RawProtocol {
    fn default() -> Self {
        let d = dvms_core::Config::default();
        let h = |x: std::time::Duration| humantime::format_duration(x).to_string();
        RawProtocol {
            cpu_threshold_pct: d.thresholds.cpu_pct,
            mem_threshold_pct: d.thresholds.mem_pct,
            detect_hold: h(d.detect_hold),
            underload_enabled: d.underload_enabled,
            underload_cpu_pct: d.underload_cpu_pct,
            underload_hold: h(d.underload_hold),
            lease: h(d.lease),
            renew_period: h(d.renew_period),
            hop_timeout: h(d.hop_timeout),
            solve_timeout: h(d.solve_timeout),
            migrate_timeout: h(d.migrate_timeout),
            min_partition_size: d.min_partition_size,
            max_partition_size: d.max_partition_size,
            blocked_budget: h(d.blocked_budget),
            retry_backoff: h(d.retry_backoff),
            cooldown_base: h(d.cooldown_base),
        }
    }
}

/// `[actuator]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawActuator {
    /// `observe` (log and show the plan, never migrate), `lab` (the dvms-lab hypervisor) or
    /// `libvirt` (live migration through libvirt, by the `dvms-libvirt` executable).
    pub kind: String,
    /// Live migrations this host runs at once at most.
    pub max_parallel_migrations: u32,
    /// `[actuator.lab]`: the lab hypervisor's socket.
    pub lab: RawLab,
    /// `[actuator.libvirt]`: how `dvms-libvirt` reaches libvirt and migrates.
    pub libvirt: RawLibvirt,
}

impl Default for RawActuator {
    fn default() -> Self {
        RawActuator {
            kind: "observe".into(),
            max_parallel_migrations: 2,
            lab: RawLab::default(),
            libvirt: RawLibvirt::default(),
        }
    }
}

/// `[actuator.lab]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawLab {
    /// Unix socket of the lab hypervisor (`dvms-lab cluster`).
    pub socket: String,
}

impl Default for RawLab {
    fn default() -> Self {
        RawLab {
            socket: "/run/dvms-lab/lab.sock".into(),
        }
    }
}

/// `[actuator.libvirt]` (see docs/libvirt.md for the request these keys fill).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawLibvirt {
    /// The `dvms-libvirt` executable, run once per migration, abort and inventory.
    pub binary: String,
    /// libvirt connection URI of this host.
    pub connect: String,
    /// libvirt URI of a destination's daemon; `{name}` is the destination's node name,
    /// `{address}` its address (see `addresses`).
    pub dest_uri: String,
    /// QEMU's migration stream URI, same placeholders, e.g. `tcp://{address}`; empty: the
    /// destination's libvirt chooses (its host name).
    pub migrate_uri: String,
    /// Addresses of destinations, as `name=address` entries (an IP address or DNS name); a
    /// destination not listed has its node name as address.
    pub addresses: Vec<String>,
    /// Bandwidth cap of a migration, MiB/s; 0: unlimited.
    pub bandwidth_mib_s: u64,
    /// Longest guest pause QEMU may plan for the switch-over, ms; 0: QEMU's default (300 ms).
    pub max_downtime_ms: u64,
    /// A migration still running after this long is aborted by libvirt (the VM stays here);
    /// the shorter of this and `protocol.migrate_timeout` applies.
    pub timeout: String,
    /// Adds `VIR_MIGRATE_UNSAFE`: needed when a guest's local disk file is at the same path on
    /// both hosts (shared or copied storage without a cache mode libvirt trusts).
    pub allow_unsafe: bool,
    /// How often libvirt's inventory is read (domain names, UUIDs and the per-VM
    /// `<dvms:policy migrate="never"/>` opt-out); a VM not in the latest inventory is not
    /// migrated.
    pub inventory_period: String,
}

impl Default for RawLibvirt {
    fn default() -> Self {
        RawLibvirt {
            binary: "/usr/libexec/dvms/dvms-libvirt".into(),
            connect: "qemu:///system".into(),
            dest_uri: "qemu+tcp://{address}/system".into(),
            migrate_uri: String::new(),
            addresses: Vec::new(),
            bandwidth_mib_s: 0,
            max_downtime_ms: 0,
            timeout: "120s".into(),
            allow_unsafe: false,
            inventory_period: "2s".into(),
        }
    }
}

/// `[control]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawControl {
    /// Unix socket for `dvmsctl` (created with mode 0660).
    pub socket: String,
}

impl Default for RawControl {
    fn default() -> Self {
        RawControl {
            socket: "/run/dvms/control.sock".into(),
        }
    }
}

/// `[metrics]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawMetrics {
    /// `address:port` serving Prometheus text at `/metrics`; empty: off.
    pub listen: String,
}
