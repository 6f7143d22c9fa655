//! The command line: exit codes and flag errors.

use std::process::Command;

fn sim(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dvms-sim"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bad_flags_exit_with_usage_error_naming_the_flag() {
    for (args, needle) in [
        (&["run", "--duration", "1x"][..], "--duration"),
        (&["run", "--scheduler", "magic"][..], "magic"),
        (&["run", "--loss", "2"][..], "--loss"),
        (&["run", "--hosts", "0"][..], "--hosts"),
        (&["run", "--workload", "traces"][..], "--workload"),
        (&["run", "--keys", "nope"][..], "--keys"),
        (&["run", "--no-such-flag"][..], "no-such-flag"),
        (&["run", "--hosts", "many"][..], "many"),
    ] {
        let o = sim(args);
        assert_eq!(o.status.code(), Some(64), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn run_prints_a_json_report() {
    let o = sim(&[
        "run",
        "--hosts",
        "8",
        "--duration",
        "2m",
        "--report",
        "json",
        "--seed",
        "4",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["hosts"], 8);
    assert_eq!(v["seed"], 4);
    assert_eq!(v["duration_s"], 120.0);
}

#[test]
fn scenario_file_errors_have_their_own_exit_codes() {
    let o = sim(&["scenario", "/nonexistent/x.toml"]);
    assert_eq!(o.status.code(), Some(66), "{}", stderr(&o));
    let dir = std::env::temp_dir().join(format!("dvms-sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[[host]]\nid = 3\n").unwrap();
    let o = sim(&["scenario", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(65), "{}", stderr(&o));
    assert!(stderr(&o).contains("bad.toml"), "{}", stderr(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_traces_are_named() {
    let o = sim(&[
        "run",
        "--hosts",
        "2",
        "--workload",
        "planetlab:/nonexistent/dir",
    ]);
    assert_eq!(o.status.code(), Some(66));
    assert!(stderr(&o).contains("/nonexistent/dir"), "{}", stderr(&o));
}

#[test]
fn solve_prints_the_plan_and_maps_errors_to_exit_codes() {
    let dir = std::env::temp_dir().join(format!("dvms-sim-solve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.json");
    std::fs::write(
        &good,
        r#"{"hosts":[{"id":"a","cpu_milli":1000,"mem_mib":4096},{"id":"b","cpu_milli":1000,"mem_mib":4096}],
            "vms":[{"id":"v1","host":"a","cpu_milli":700,"mem_mib":1024},
                   {"id":"v2","host":"a","cpu_milli":700,"mem_mib":2048}]}"#,
    )
    .unwrap();
    let o = sim(&["solve", good.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["status"], "solved");
    assert_eq!(v["migrations"], 1);

    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"hosts": 3}"#).unwrap();
    let o = sim(&["solve", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(65), "{}", stderr(&o));
    assert!(stderr(&o).contains("hosts"), "{}", stderr(&o));

    let o = sim(&["solve", dir.join("missing.json").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(66));
    let o = sim(&["solve"]);
    assert_eq!(o.status.code(), Some(64));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn help_lists_the_flags() {
    let o = sim(&["run", "--help"]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--hosts",
        "--vms-per-host",
        "--host-cores",
        "--host-mem-gib",
        "--vm-mem-gib",
        "--duration",
        "--seed",
        "--scheduler",
        "--workload",
        "--latency",
        "--loss",
        "--crash-rate",
        "--sites",
        "--keys",
        "--charge-solver",
        "--report",
    ] {
        assert!(out.contains(flag), "{flag} missing from --help");
    }
}

#[test]
fn out_of_range_flags_exit_64_naming_the_flag() {
    for (args, needle) in [
        (&["run", "--hosts", "1000000000"][..], "--hosts"),
        (&["run", "--hosts", "18446744073709551615"][..], "--hosts"),
        (&["run", "--hosts", "-5"][..], "--hosts"),
        (
            &["run", "--vms-per-host", "4611686018427387904"][..],
            "--vms-per-host",
        ),
        (&["run", "--vms-per-host", "-1"][..], "--vms-per-host"),
        (
            &["run", "--hosts", "200000", "--vms-per-host", "1000"][..],
            "VMs",
        ),
        (&["run", "--host-cores", "1e300"][..], "--host-cores"),
        (&["run", "--host-cores", "-1"][..], "--host-cores"),
        (&["run", "--host-cores", "0"][..], "--host-cores"),
        (&["run", "--host-mem-gib", "1e300"][..], "--host-mem-gib"),
        (&["run", "--vm-mem-gib", "-2"][..], "--vm-mem-gib"),
        (&["run", "--nic-mbs", "0"][..], "--nic-mbs"),
        (&["run", "--bandwidth-mbs", "1e300"][..], "--bandwidth-mbs"),
        (&["run", "--crash-rate", "-1"][..], "--crash-rate"),
        (&["run", "--loss", "-0.5"][..], "--loss"),
        (&["run", "--seed", "-1"][..], "--seed"),
        (&["run", "--duration", "31d"][..], "--duration"),
        (&["run", "--latency", "2h"][..], "--latency"),
        (&["run", "--lease", "2h"][..], "--lease"),
        (&["run", "--view-size", "0"][..], "--view-size"),
        (&["run", "--gossip-fanout", "1"][..], "--gossip-fanout"),
        // Negative durations name their flag too (not "unexpected argument '-1'").
        (&["run", "--duration", "-1h"][..], "--duration"),
        (&["run", "--jitter", "-1s"][..], "--jitter"),
        (&["run", "--latency", "-1ms"][..], "--latency"),
        (
            &["run", "--inter-site-latency", "-1ms"][..],
            "--inter-site-latency",
        ),
        (&["run", "--restart-after", "-5m"][..], "--restart-after"),
        (&["run", "--central-period", "-3s"][..], "--central-period"),
        (&["run", "--lease", "-1s"][..], "--lease"),
        (&["run", "--detect-hold", "-1s"][..], "--detect-hold"),
        (&["run", "--seed", "18446744073709551616"][..], "--seed"),
        (&["run", "--loss", "nan"][..], "--loss"),
        (&["run", "--host-cores", "inf"][..], "--host-cores"),
        (&["run", "--sites", "100000"][..], "--sites"),
        (&["run", "--jitter", "1e300"][..], "--jitter"),
    ] {
        let o = sim(args);
        assert_eq!(o.status.code(), Some(64), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn malformed_files_exit_65_naming_the_file_or_field() {
    let dir = std::env::temp_dir().join(format!("dvms-sim-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let host = |mem: &str| format!("[[host]]\nid = \"h1\"\ncores = 7\nmem_gib = {mem}\n");
    let cases = [
        (
            write("utf8.toml", b"seed = 1\n# \xff\xfe\n"),
            "UTF-8".to_owned(),
        ),
        (
            write("negmem.toml", host("-1").as_bytes()),
            "mem_gib".to_owned(),
        ),
        (
            write("zeromem.toml", host("0").as_bytes()),
            "mem_gib".to_owned(),
        ),
        (
            write("hugemem.toml", host("1e300").as_bytes()),
            "mem_gib".to_owned(),
        ),
        ("/dev/zero".to_owned(), "limit".to_owned()),
    ];
    for (path, needle) in &cases {
        if !std::path::Path::new(path).exists() {
            continue;
        }
        let o = sim(&["scenario", path]);
        assert_eq!(o.status.code(), Some(65), "{path}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(needle.as_str()),
            "{path}: {}",
            stderr(&o)
        );
    }
    let o = sim(&["solve", &write("bad.json", b"{\"hosts\": \xff}")]);
    assert_eq!(o.status.code(), Some(65), "{}", stderr(&o));
    // A trace value above 100 % of a core, and a non-UTF-8 trace.
    let traces = dir.join("traces");
    std::fs::create_dir_all(&traces).unwrap();
    for (content, needle) in [(&b"10\n65535\n"[..], ":2:"), (&b"10\n\xff\n"[..], "UTF-8")] {
        std::fs::write(traces.join("vm1"), content).unwrap();
        let w = format!("planetlab:{}", traces.display());
        let o = sim(&["run", "--hosts", "2", "--workload", &w]);
        assert_eq!(o.status.code(), Some(65), "{}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{}", stderr(&o));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn progress_is_shown_on_request() {
    let o = sim(&["run", "--hosts", "10", "--duration", "2m", "--progress"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("120 of 120 s simulated") && e.contains("events"),
        "{e}"
    );
    let o = sim(&["run", "--hosts", "10", "--duration", "2m"]);
    assert!(!stderr(&o).contains("simulated"), "{}", stderr(&o));
}

#[test]
fn planetlab_runs_default_to_loaded_hosts() {
    let Some(dir) = super::planetlab_dir() else {
        return;
    };
    let w = format!("planetlab:{}", dir.display());
    let args = [
        "run",
        "--hosts",
        "30",
        "--duration",
        "30m",
        "--scheduler",
        "none",
    ];
    let o = sim(&[&args[..], &["--workload", &w, "--report", "json"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // 20 VMs on 3 cores by default with PlanetLab: hosts do get overloaded.
    assert_eq!(v["vms"], 600);
    assert!(v["cumulated_violation_s"].as_f64().unwrap() > 0.0, "{v}");
}
