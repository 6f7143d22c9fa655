//! Golden scenarios: `tests/testdata/*.txt`, readable input and the expected answer.
//!
//! A file holds cases separated by a line `====`. A case is input lines, a `solve` line, a
//! line `----` and the expected answer:
//!
//! ```text
//! # comment
//! host h1 cpu=7000 mem=32768 cpu_pct=90 mem_pct=100
//! vm v1 on=h1 cpu=600 mem=1024 pinned
//! ban v1 : h2 h3          (also fence; spread / gather / root take VMs only)
//! among v1 v2 : h1 h2 | h3 h4
//! solve repair cap=1      (options: mode repair, cap on migrations per host and step)
//! ----
//! step v1 h1->h2, v2 h1->h3
//! moved 2048 MiB in 2 migrations
//! ```
//!
//! The answer is `not needed`, steps and their cost, or `unsolvable: <reason>`. Run with
//! `DVMS_BLESS=1` to rewrite the expected answers from the solver's (then review the diff).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use dvms_core::model::{
    Constraint, HostSpec, NodeId, Problem, Resources, Thresholds, VmId, VmSpec,
};
use dvms_placement::instance::{Instance, outcome_to_json};
use dvms_placement::{Mode, Options, PlanOptions, solve_with, validate_plan};

struct Case {
    inst: Instance,
    opts: Options,
    plan_opts: PlanOptions,
}

fn kv(word: &str, key: &str) -> Option<u64> {
    word.strip_prefix(key)
        .and_then(|r| r.strip_prefix('='))
        .map(|n| n.parse().expect("a number"))
}

fn parse_case(input: &str) -> Case {
    let mut hosts: BTreeMap<String, NodeId> = BTreeMap::new();
    let mut vms: BTreeMap<String, VmId> = BTreeMap::new();
    let mut inst = Instance {
        problem: Problem::default(),
        host_names: Vec::new(),
        vm_names: Vec::new(),
    };
    let mut opts = Options::default();
    let mut plan_opts = PlanOptions::default();
    for line in input
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (head, rest) = line.split_once(':').map_or((line, ""), |(a, b)| (a, b));
        let words: Vec<&str> = head.split_whitespace().collect();
        let vm_list = |ws: &[&str]| -> Vec<VmId> { ws.iter().map(|w| vms[*w]).collect() };
        let host_list =
            |s: &str| -> Vec<NodeId> { s.split_whitespace().map(|w| hosts[w]).collect() };
        match words[0] {
            "host" => {
                let id = NodeId(inst.host_names.len() as u64);
                let get = |k: &str| words.iter().find_map(|w| kv(w, k));
                inst.problem.hosts.push(HostSpec {
                    id,
                    capacity: Resources::new(get("cpu").expect("cpu="), get("mem").expect("mem=")),
                    thresholds: Thresholds {
                        cpu_pct: u8::try_from(get("cpu_pct").unwrap_or(100)).unwrap(),
                        mem_pct: u8::try_from(get("mem_pct").unwrap_or(100)).unwrap(),
                    },
                });
                hosts.insert(words[1].to_owned(), id);
                inst.host_names.push(words[1].to_owned());
            }
            "vm" => {
                let id = VmId(inst.vm_names.len() as u64);
                let get = |k: &str| words.iter().find_map(|w| kv(w, k));
                let on = words
                    .iter()
                    .find_map(|w| w.strip_prefix("on="))
                    .expect("on=");
                inst.problem.vms.push(VmSpec {
                    id,
                    host: hosts[on],
                    demand: Resources::new(get("cpu").expect("cpu="), get("mem").expect("mem=")),
                    migratable: !words.contains(&"pinned"),
                });
                vms.insert(words[1].to_owned(), id);
                inst.vm_names.push(words[1].to_owned());
            }
            "ban" => inst.problem.constraints.push(Constraint::Ban {
                vms: vm_list(&words[1..]),
                hosts: host_list(rest),
            }),
            "fence" => {
                inst.problem.constraints.push(Constraint::Fence {
                    vms: vm_list(&words[1..]),
                    hosts: host_list(rest),
                });
            }
            "spread" => inst.problem.constraints.push(Constraint::Spread {
                vms: vm_list(&words[1..]),
            }),
            "gather" => inst.problem.constraints.push(Constraint::Gather {
                vms: vm_list(&words[1..]),
            }),
            "root" => inst.problem.constraints.push(Constraint::Root {
                vms: vm_list(&words[1..]),
            }),
            "among" => inst.problem.constraints.push(Constraint::Among {
                vms: vm_list(&words[1..]),
                groups: rest.split('|').map(host_list).collect(),
            }),
            "solve" => {
                if words.contains(&"repair") {
                    opts.mode = Mode::Repair;
                }
                if let Some(c) = words.iter().find_map(|w| kv(w, "cap")) {
                    plan_opts.max_per_host = usize::try_from(c).unwrap();
                }
                if let Some(b) = words.iter().find_map(|w| kv(w, "budget")) {
                    opts.budget.work_units = b;
                }
            }
            other => panic!("unknown golden line {other:?}"),
        }
    }
    Case {
        inst,
        opts,
        plan_opts,
    }
}

fn render(case: &Case) -> String {
    let out = solve_with(&case.inst.problem, &case.opts, &case.plan_opts);
    let mut s = String::new();
    match &out.result {
        Ok(plan) if plan.is_empty() => s.push_str("not needed\n"),
        Ok(plan) => {
            if let Err(e) = validate_plan(&case.inst.problem, plan, case.plan_opts.max_per_host) {
                panic!("unsafe plan: {e}");
            }
            for step in &plan.steps {
                let moves: Vec<String> = step
                    .iter()
                    .map(|m| {
                        format!(
                            "{} {}->{}",
                            case.inst.vm_name(m.vm),
                            case.inst.host_name(m.from),
                            case.inst.host_name(m.to)
                        )
                    })
                    .collect();
                writeln!(s, "step {}", moves.join(", ")).unwrap();
            }
            writeln!(
                s,
                "moved {} MiB in {} migrations",
                plan.moved_mib(),
                plan.migrations().count()
            )
            .unwrap();
        }
        Err(_) => {
            let json: serde_json::Value =
                serde_json::from_str(&outcome_to_json(&case.inst, &out, 0)).unwrap();
            writeln!(s, "unsolvable: {}", json["reason"].as_str().unwrap()).unwrap();
        }
    }
    s
}

/// Splits `text` at lines equal to `sep`.
fn split_lines(text: &str, sep: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    for line in text.lines() {
        if line.trim() == sep {
            parts.push(String::new());
        } else {
            let last = parts.last_mut().unwrap();
            last.push_str(line);
            last.push('\n');
        }
    }
    parts
}

#[test]
fn golden_scenarios_match() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata");
    let bless = std::env::var_os("DVMS_BLESS").is_some();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut failures = Vec::new();
    let mut cases = 0;
    for path in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
    {
        let text = std::fs::read_to_string(path).unwrap();
        let mut blessed = Vec::new();
        for (i, chunk) in split_lines(&text, "====").into_iter().enumerate() {
            let parts = split_lines(&chunk, "----");
            let [input, expected] = parts.as_slice() else {
                panic!("{} case {i}: one ---- line", path.display())
            };
            let input = input.trim_end();
            let got = render(&parse_case(input));
            cases += 1;
            if got.trim() != expected.trim() {
                failures.push(format!(
                    "{} case {i}:\n--- expected\n{}\n--- got\n{}",
                    path.display(),
                    expected.trim(),
                    got.trim()
                ));
            }
            blessed.push(format!("{input}\n----\n{}", got.trim_end()));
        }
        if bless {
            std::fs::write(path, blessed.join("\n====\n") + "\n").unwrap();
        }
    }
    assert!(cases > 0, "no golden cases found in {}", dir.display());
    assert!(
        bless || failures.is_empty(),
        "{} golden failures:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
