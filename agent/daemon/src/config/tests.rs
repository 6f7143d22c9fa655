use std::path::Path;

use super::*;

fn check(text: &str) -> Result<Config, ConfigError> {
    Config::from_raw(parse(Path::new("t.toml"), text)?)
}

const LAB: &str = r#"
[node]
name = "h00"
state_dir = "/tmp/dvms/h00"
[overlay]
listen = "/ip4/127.0.0.1/tcp/0"
bootstrap = ["/ip4/127.0.0.1/tcp/40001"]
cluster_key_file = "/tmp/dvms/cluster.key"
site = 0
rack = 0
[monitor]
period = "1s"
cgroup_root = "/tmp/h00/sys/fs/cgroup"
proc_root = "/tmp/h00/proc"
sys_root = "/tmp/h00/sys"
reserve_cpu_milli = 0
reserve_mem_mib = 0
[protocol]
[actuator]
kind = "lab"
[actuator.lab]
socket = "/run/dvms-lab/lab.sock"
[control]
socket = "/run/dvms/control.sock"
[metrics]
listen = ""
"#;

#[test]
fn the_lab_config_of_contract_c_is_accepted() {
    let cfg = check(LAB).unwrap();
    assert_eq!(cfg.node_name, "h00");
    assert_eq!(cfg.period, std::time::Duration::from_secs(1));
    assert_eq!(cfg.bootstrap.len(), 1);
    assert!(matches!(cfg.actuator, ActuatorKind::Lab { .. }));
    assert_eq!(cfg.metrics_listen, None);
}

#[test]
fn defaults_serialise_every_key_and_parse_back() {
    let text = toml::to_string(&RawConfig::default()).unwrap();
    for key in [
        "name",
        "state_dir",
        "cluster_key_file",
        "period",
        "cpu_threshold_pct",
        "kind",
        "max_parallel_migrations",
        "socket",
        "listen",
    ] {
        assert!(text.contains(key), "{key} missing from\n{text}");
    }
    assert_eq!(parse(Path::new("x"), &text).unwrap(), RawConfig::default());
}

#[test]
fn unknown_key_is_refused_with_its_path() {
    let err = check("[monitor]\nperiodd = \"1s\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("monitor.periodd"), "{err}");
    assert!(err.contains("unknown field"), "{err}");
}

#[test]
fn wrong_type_names_the_key() {
    let err = check("[overlay]\nsite = \"one\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("overlay.site"), "{err}");
}

#[test]
fn bad_values_name_the_key_and_the_value() {
    let cases = [
        ("[node]\nname = \"h 0\"\n", "node.name", "h 0"),
        (
            "[monitor]\nperiod = \"soon\"\n",
            "monitor.period",
            "invalid duration",
        ),
        (
            "[monitor]\nperiod = \"10ms\"\n",
            "monitor.period",
            "out of range",
        ),
        (
            "[monitor]\nproc_root = \"proc\"\n",
            "monitor.proc_root",
            "absolute",
        ),
        (
            "[overlay]\nlisten = \"tcp:7946\"\n",
            "overlay.listen",
            "tcp:7946",
        ),
        ("[actuator]\nkind = \"magic\"\n", "actuator.kind", "magic"),
        (
            "[actuator]\nmax_parallel_migrations = 0\n",
            "actuator.max_parallel_migrations",
            "1 to 64",
        ),
        ("[metrics]\nlisten = \"9465\"\n", "metrics.listen", "9465"),
        (
            "[protocol]\ncpu_threshold_pct = 0\n",
            "protocol.cpu_threshold_pct",
            "1..=100",
        ),
        (
            "[protocol]\nmin_partition_size = 40\n",
            "protocol.max_partition_size",
            "min_partition_size",
        ),
    ];
    for (text, key, value) in cases {
        let text = if text.starts_with("[node]") {
            text.to_owned()
        } else {
            format!("[node]\nname = \"h00\"\n{text}")
        };
        let err = check(&text).unwrap_err().to_string();
        assert!(err.contains(key) && err.contains(value), "{text:?}: {err}");
    }
}

#[test]
fn cluster_key_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("cluster.key");
    std::fs::write(&key, "ab".repeat(32)).unwrap();
    let text = format!("[node]\nname = \"h00\"\n[overlay]\ncluster_key_file = {key:?}\n");
    let cfg = check(&text).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = cfg.cluster_key().unwrap_err().to_string();
    assert!(
        err.contains("overlay.cluster_key_file") && err.contains("0644"),
        "{err}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(cfg.cluster_key().is_ok());
    std::fs::write(&key, "not a key").unwrap();
    assert!(
        cfg.cluster_key()
            .unwrap_err()
            .to_string()
            .contains("not a key")
    );
}
