//! `dvms-lab cluster` end to end with real `dvmsd` processes (kept small: a few hosts, a few
//! seconds). Needs `dvmsd` and `dvmsctl` built next to `dvms-lab` (`cargo test --workspace`
//! builds them; alone: `cargo build -p dvms-agent -p dvmsctl`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn lab() -> Command {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_dvms-lab"));
    let dir = exe.parent().expect("target dir");
    for b in ["dvmsd", "dvmsctl"] {
        assert!(
            dir.join(b).is_file(),
            "{b} is not built in {}: run `cargo build -p dvms-agent -p dvmsctl` first",
            dir.display()
        );
    }
    Command::new(exe)
}

fn work_dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dvms-lab-it-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Pids of running agents (`dvmsd --config DIR/hNN/dvmsd.toml run`) of the lab in `dir`.
fn processes_using(dir: &Path) -> Vec<u32> {
    let needle = dir.display().to_string();
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd);
        if cmd.contains(&needle) && cmd.contains("dvmsd.toml") {
            pids.push(pid);
        }
    }
    pids
}

#[test]
fn a_small_cluster_runs_and_reports_without_losing_a_vm() {
    let dir = work_dir("smoke");
    // 5 cores for 10 VMs of mean 0.6 core: overloaded from the start, so the lab has overload
    // to measure and the agents have work to do.
    let out = lab()
        .args([
            "cluster",
            "--hosts",
            "3",
            "--vms-per-host",
            "10",
            "--host-cores",
            "5",
        ])
        .args([
            "--duration",
            "8s",
            "--seed",
            "2",
            "--report",
            "json",
            "--quiet",
        ])
        .arg("--dir")
        .arg(&dir)
        .stdin(Stdio::null())
        .output()
        .expect("run dvms-lab");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "dvms-lab failed: {stderr}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(r["hosts"], 3);
    assert_eq!(r["vms"], 30);
    assert_eq!(r["scheduler"], "dvms");
    assert_eq!(r["vms_lost"], 0, "{r:#}");
    assert_eq!(r["vms_duplicated"], 0, "{r:#}");
    assert_eq!(r["vms_misplaced"], 0, "{r:#}");
    assert_eq!(r["agents_exited"], 0, "{r:#}");
    assert!(
        r["cumulated_violation_s"].as_f64().unwrap_or(0.0) > 0.0,
        "{r:#}"
    );
    assert!(
        r["agent_rss_mib_max"].as_f64().unwrap_or(0.0) > 0.0,
        "{r:#}"
    );
    assert!(r["duration_s"].as_f64().unwrap_or(0.0) >= 8.0, "{r:#}");
    // The working directory is removed and no agent is left behind.
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(processes_using(&dir).is_empty());
}

#[test]
fn ctrl_c_stops_every_agent_it_started() {
    let dir = work_dir("sigint");
    let mut child = lab()
        .args([
            "cluster",
            "--hosts",
            "2",
            "--vms-per-host",
            "2",
            "--duration",
            "10m",
        ])
        .args(["--scheduler", "none"])
        .arg("--dir")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dvms-lab");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let line = lines
            .next()
            .expect("dvms-lab ended before its agents were ready")
            .expect("read stderr");
        if line.contains("agents ready in") {
            break;
        }
        assert!(Instant::now() < deadline, "agents never ready");
    }
    let agents = processes_using(&dir);
    assert_eq!(agents.len(), 2, "two dvmsd processes run: {agents:?}");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).expect("SIGINT");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130), "exit code after Ctrl-C");
    assert!(
        processes_using(&dir).is_empty(),
        "agents left running after Ctrl-C"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_trace_directory_is_a_usage_error_that_starts_nothing() {
    let dir = work_dir("usage");
    let out = lab()
        .args([
            "cluster",
            "--hosts",
            "2",
            "--workload",
            "planetlab:/nonexistent-traces",
        ])
        .arg("--dir")
        .arg(&dir)
        .stdin(Stdio::null())
        .output()
        .expect("run dvms-lab");
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent-traces"), "{stderr}");
    assert!(processes_using(&dir).is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}
