//! The JSON instance format: parsing, errors that name the field, the answer's shape.

use dvms_placement::instance::{InstanceError, outcome_to_json, parse};
use dvms_placement::{Options, solve};

use crate::solve_checked;

const EXAMPLE: &str = include_str!("../../examples/instance.json");

fn field_error(json: &str) -> String {
    match parse(json) {
        Err(e @ InstanceError::Field { .. }) => e.to_string(),
        Err(e) => panic!("expected a field error, got {e}"),
        Ok(_) => panic!("expected an error for {json}"),
    }
}

const HOSTS: &str = r#""hosts":[{"id":"h1","cpu_milli":7000,"mem_mib":32768},{"id":"h2","cpu_milli":7000,"mem_mib":32768}]"#;

#[test]
fn example_instance_solves_and_prints_the_plan() {
    let inst = parse(EXAMPLE).unwrap();
    assert_eq!(inst.problem.hosts.len(), 4);
    assert!(!inst.problem.vms[2].migratable);
    let out = solve_checked(&inst.problem, &Options::default());
    let json: serde_json::Value = serde_json::from_str(&outcome_to_json(&inst, &out, 7)).unwrap();
    assert_eq!(json["status"], "solved", "{json}");
    assert_eq!(json["solve_us"], 7);
    let moves: Vec<&serde_json::Value> = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s.as_array().unwrap())
        .collect();
    assert_eq!(json["migrations"], moves.len());
    assert!(
        moves.iter().all(|m| m["vm"] != "db"),
        "db opted out of migration: {json}"
    );
    assert!(
        moves.iter().any(|m| m["vm"] == "old"),
        "old is banned from h3: {json}"
    );
}

#[test]
fn issue_example_has_the_documented_shape() {
    let inst = parse(
        r#"{"hosts":[{"id":"h1","cpu_milli":7000,"mem_mib":32768},{"id":"h2","cpu_milli":7000,"mem_mib":32768}],
            "vms":[{"id":"v1","host":"h1","cpu_milli":600,"mem_mib":1024}],
            "constraints":[{"kind":"ban","vms":["v1"],"hosts":["h1"]}]}"#,
    )
    .unwrap();
    let out = solve(&inst.problem, &Options::default());
    let json = outcome_to_json(&inst, &out, 123);
    assert_eq!(
        json,
        format!(
            r#"{{"status":"solved","steps":[[{{"vm":"v1","from":"h1","to":"h2"}}]],"migrations":1,"moved_mib":1024,"work_units":{},"solve_us":123}}"#,
            out.work_units
        )
    );
}

#[test]
fn not_needed_and_unsolvable_answers() {
    let ok = parse(&format!(
        r#"{{{HOSTS},"vms":[{{"id":"v1","host":"h1","cpu_milli":600,"mem_mib":1024}}]}}"#
    ))
    .unwrap();
    let json = outcome_to_json(&ok, &solve(&ok.problem, &Options::default()), 1);
    assert!(
        json.starts_with(r#"{"status":"not_needed","steps":[],"migrations":0"#),
        "{json}"
    );

    let full = parse(&format!(
        r#"{{{HOSTS},"vms":[{{"id":"a","host":"h1","cpu_milli":5000,"mem_mib":1024}},
            {{"id":"b","host":"h1","cpu_milli":5000,"mem_mib":1024}},{{"id":"c","host":"h2","cpu_milli":5000,"mem_mib":1024}}]}}"#
    ))
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&outcome_to_json(
        &full,
        &solve(&full.problem, &Options::default()),
        1,
    ))
    .unwrap();
    assert_eq!(json["status"], "unsolvable");
    assert_eq!(json["reason"], "not enough capacity to fix host h1");
    assert_eq!(json["host"], "h1");

    let blocked = parse(&format!(
        r#"{{{HOSTS},"vms":[{{"id":"a","host":"h1","cpu_milli":5000,"mem_mib":1024}},
            {{"id":"b","host":"h1","cpu_milli":5000,"mem_mib":1024}}],
            "constraints":[{{"kind":"gather","vms":["a","b"]}}]}}"#
    ))
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&outcome_to_json(
        &blocked,
        &solve(&blocked.problem, &Options::default()),
        1,
    ))
    .unwrap();
    assert_eq!(json["status"], "unsolvable");
    assert_eq!(
        json["reason"],
        "constraint 0 (gather) blocks every fix of host h1"
    );
    assert_eq!(json["constraint"], 0);
}

#[test]
fn malformed_instances_name_the_field() {
    let vm = |extra: &str| {
        format!(
            r#"{{{HOSTS},"vms":[{{"id":"v1","host":"h1","cpu_milli":600,"mem_mib":1024{extra}}}]}}"#
        )
    };
    let cases: Vec<(String, &str)> = vec![
        (r#"{"vms":[]}"#.into(), "hosts: missing"),
        (r#"{"hosts":[],"vms":[]}"#.into(), "hosts: must not be empty"),
        (format!(r#"{{{HOSTS}}}"#), "vms: missing"),
        (format!(r#"{{{HOSTS},"vms":[],"extra":1}}"#), "extra: unknown field"),
        (r#"{"hosts":[{"id":"h1","cpu_milli":0,"mem_mib":1}],"vms":[]}"#.into(), "hosts[0].cpu_milli: must be greater than 0"),
        (r#"{"hosts":[{"id":"h1","cpu_milli":1,"mem_mib":-4}],"vms":[]}"#.into(), "hosts[0].mem_mib: expected a non-negative integer"),
        (r#"{"hosts":[{"id":"h1","cpu_milli":1,"mem_mib":1},{"id":"h1","cpu_milli":1,"mem_mib":1}],"vms":[]}"#.into(), "hosts[1].id: duplicate host \"h1\""),
        (r#"{"hosts":[{"id":"h1","cpu_milli":1,"mem_mib":1,"mem_threshold_pct":120}],"vms":[]}"#.into(), "hosts[0].mem_threshold_pct: must be between 1 and 100"),
        (r#"{"hosts":[{"id":"h1","cpu_milli":1,"mem_mib":1,"color":"red"}],"vms":[]}"#.into(), "hosts[0].color: unknown field"),
        (r#"{"hosts":[{"cpu_milli":1,"mem_mib":1}],"vms":[]}"#.into(), "hosts[0].id: missing"),
        (format!(r#"{{{HOSTS},"vms":[{{"id":"v1","host":"h9","cpu_milli":600,"mem_mib":1024}}]}}"#), "vms[0].host: unknown host \"h9\""),
        (vm(r#","migratable":"no""#), "vms[0].migratable: expected true or false"),
        (format!(r#"{{{HOSTS},"vms":[{{"id":"v1","host":"h1","cpu_milli":6.5,"mem_mib":1024}}]}}"#), "vms[0].cpu_milli: expected a non-negative integer"),
        (format!(r#"{{{HOSTS},"vms":[{{"id":"v1","host":"h1","cpu_milli":1,"mem_mib":1}},{{"id":"v1","host":"h2","cpu_milli":1,"mem_mib":1}}]}}"#), "vms[1].id: duplicate vm \"v1\""),
    ];
    for (json, want) in cases {
        let got = field_error(&json);
        assert!(
            got.starts_with(want),
            "{json}\n  got:  {got}\n  want: {want}"
        );
    }
    let cons = |c: &str| {
        format!(
            r#"{{{HOSTS},"vms":[{{"id":"v1","host":"h1","cpu_milli":600,"mem_mib":1024}}],"constraints":[{c}]}}"#
        )
    };
    let cases = [
        (
            r#"{"kind":"pin","vms":["v1"]}"#,
            "constraints[0].kind: unknown constraint kind \"pin\"",
        ),
        (r#"{"vms":["v1"]}"#, "constraints[0].kind: missing"),
        (
            r#"{"kind":"ban","vms":["v1"]}"#,
            "constraints[0].hosts: missing",
        ),
        (
            r#"{"kind":"ban","vms":["v2"],"hosts":["h1"]}"#,
            "constraints[0].vms[0]: unknown vm \"v2\"",
        ),
        (
            r#"{"kind":"fence","vms":["v1"],"hosts":["h1","h3"]}"#,
            "constraints[0].hosts[1]: unknown host \"h3\"",
        ),
        (
            r#"{"kind":"spread","vms":["v1"],"hosts":["h1"]}"#,
            "constraints[0].hosts: unknown field",
        ),
        (
            r#"{"kind":"gather","vms":[]}"#,
            "constraints[0].vms: must not be empty",
        ),
        (
            r#"{"kind":"root","vms":["v1","v1"]}"#,
            "constraints[0].vms[1]: duplicate vm \"v1\"",
        ),
        (
            r#"{"kind":"among","vms":["v1"],"groups":[["h1"],[]]}"#,
            "constraints[0].groups[1]: must not be empty",
        ),
        (
            r#"{"kind":"among","vms":["v1"],"groups":[["h1"],["h7"]]}"#,
            "constraints[0].groups[1][0]: unknown host \"h7\"",
        ),
        (
            r#"{"kind":"among","vms":["v1"]}"#,
            "constraints[0].groups: missing",
        ),
    ];
    for (c, want) in cases {
        let got = field_error(&cons(c));
        assert!(got.starts_with(want), "{c}\n  got:  {got}\n  want: {want}");
    }
}

#[test]
fn invalid_json_is_an_error_not_a_panic() {
    for text in ["", "{", "[1,2]", "null", r#"{"hosts":{"#] {
        assert!(parse(text).is_err(), "{text:?}");
    }
    assert!(matches!(parse("{"), Err(InstanceError::Json { .. })));
}
