//! The `dvmsd` config file of one lab host (CONTRACTS C).

use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::{Table, Value};

use crate::hv::RootPaths;

/// What differs between the hosts of a lab cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentConfig {
    /// `node.name`.
    pub name: String,
    /// `node.state_dir`.
    pub state_dir: PathBuf,
    /// `overlay.bootstrap` (empty for the first host).
    pub bootstrap: Vec<String>,
    /// `overlay.cluster_key_file` (one key for the whole cluster).
    pub cluster_key_file: PathBuf,
    /// `[monitor]` roots: the host's fake hypervisor root.
    pub roots: RootPaths,
    /// `monitor.period`.
    pub monitor_period: Duration,
    /// `lab` (act through the lab's socket) or `observe` (never act).
    pub actuator: &'static str,
    /// `actuator.lab.socket`.
    pub lab_socket: PathBuf,
    /// `control.socket`.
    pub control_socket: PathBuf,
    /// `protocol.detect_hold`, when not the default.
    pub detect_hold: Option<Duration>,
}

fn path(p: &Path) -> Value {
    Value::String(p.display().to_string())
}

fn ms(d: Duration) -> Value {
    Value::String(format!("{}ms", d.as_millis()))
}

impl AgentConfig {
    /// The TOML text.
    pub fn to_toml(&self) -> String {
        let mut node = Table::new();
        node.insert("name".into(), Value::String(self.name.clone()));
        node.insert("state_dir".into(), path(&self.state_dir));
        node.insert("shutdown_grace".into(), Value::String("3s".into()));
        let mut overlay = Table::new();
        overlay.insert(
            "listen".into(),
            Value::String("/ip4/127.0.0.1/tcp/0".into()),
        );
        overlay.insert(
            "bootstrap".into(),
            Value::Array(self.bootstrap.iter().cloned().map(Value::String).collect()),
        );
        overlay.insert("cluster_key_file".into(), path(&self.cluster_key_file));
        let mut monitor = Table::new();
        monitor.insert("period".into(), ms(self.monitor_period));
        monitor.insert("cgroup_root".into(), path(&self.roots.cgroup_root));
        monitor.insert("proc_root".into(), path(&self.roots.proc_root));
        monitor.insert("sys_root".into(), path(&self.roots.sys_root));
        monitor.insert("reserve_cpu_milli".into(), Value::Integer(0));
        monitor.insert("reserve_mem_mib".into(), Value::Integer(0));
        let mut protocol = Table::new();
        if let Some(h) = self.detect_hold {
            protocol.insert("detect_hold".into(), ms(h));
        }
        let mut lab = Table::new();
        lab.insert("socket".into(), path(&self.lab_socket));
        let mut actuator = Table::new();
        actuator.insert("kind".into(), Value::String(self.actuator.into()));
        actuator.insert("lab".into(), Value::Table(lab));
        let mut control = Table::new();
        control.insert("socket".into(), path(&self.control_socket));
        let mut root = Table::new();
        root.insert("node".into(), Value::Table(node));
        root.insert("overlay".into(), Value::Table(overlay));
        root.insert("monitor".into(), Value::Table(monitor));
        root.insert("protocol".into(), Value::Table(protocol));
        root.insert("actuator".into(), Value::Table(actuator));
        root.insert("control".into(), Value::Table(control));
        format!(
            "# Written by dvms-lab cluster for host {}.\n{}",
            self.name,
            toml::to_string(&root).unwrap_or_default()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_has_the_contract_keys() {
        let c = AgentConfig {
            name: "h03".into(),
            state_dir: "/l/h03/state".into(),
            bootstrap: vec!["/ip4/127.0.0.1/tcp/4001".into()],
            cluster_key_file: "/l/cluster.key".into(),
            roots: RootPaths {
                cgroup_root: "/l/h03/cgroup".into(),
                proc_root: "/l/h03/proc".into(),
                sys_root: "/l/h03/sys".into(),
            },
            monitor_period: Duration::from_secs(1),
            actuator: "lab",
            lab_socket: "/l/lab.sock".into(),
            control_socket: "/l/h03/control.sock".into(),
            detect_hold: None,
        };
        let text = c.to_toml();
        let t: Table = text.parse().expect("valid toml");
        assert_eq!(t["node"]["name"].as_str(), Some("h03"));
        assert_eq!(t["actuator"]["kind"].as_str(), Some("lab"));
        assert_eq!(t["actuator"]["lab"]["socket"].as_str(), Some("/l/lab.sock"));
        assert_eq!(t["monitor"]["period"].as_str(), Some("1000ms"));
        assert_eq!(
            t["overlay"]["bootstrap"][0].as_str(),
            Some("/ip4/127.0.0.1/tcp/4001")
        );
        assert!(t["protocol"].as_table().is_some_and(Table::is_empty));
    }
}
