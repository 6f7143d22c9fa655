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
