//! The JSON instance format of `dvms-sim solve`, and its answer.
//!
//! An instance names hosts and VMs with strings:
//!
//! ```json
//! {"hosts": [{"id": "h1", "cpu_milli": 7000, "mem_mib": 32768, "cpu_threshold_pct": 90}],
//!  "vms": [{"id": "v1", "host": "h1", "cpu_milli": 600, "mem_mib": 1024, "migratable": false}],
//!  "constraints": [{"kind": "ban", "vms": ["v1"], "hosts": ["h2"]}]}
//! ```
//!
//! Hosts: `id`, `cpu_milli` and `mem_mib` (both > 0), optional `cpu_threshold_pct` (1–255,
//! default 100) and `mem_threshold_pct` (1–100, default 100). VMs: `id`, `host`, `cpu_milli`,
//! `mem_mib` (> 0), optional `migratable` (default true). Constraints: `kind` is `ban` or
//! `fence` (with `vms` and `hosts`), `spread`, `gather` or `root` (with `vms`), or `among`
//! (with `vms` and `groups`, a list of host lists). Unknown fields, duplicate ids, unknown
//! references and empty lists are errors that name the field, e.g.
//! `vms[3].host: unknown host "h9"`.
//!
//! A driver reads the file, [`parse`]s it, times [`solve`](crate::solve) on
//! [`Instance::problem`] and prints [`outcome_to_json`]:
//!
//! ```
//! let inst = dvms_placement::instance::parse(
//!     r#"{"hosts":[{"id":"a","cpu_milli":1000,"mem_mib":4096},{"id":"b","cpu_milli":1000,"mem_mib":4096}],
//!         "vms":[{"id":"v1","host":"a","cpu_milli":700,"mem_mib":1024},
//!                {"id":"v2","host":"a","cpu_milli":700,"mem_mib":2048}]}"#,
//! )?;
//! let outcome = dvms_placement::solve(&inst.problem, &dvms_placement::Options::default());
//! let json = dvms_placement::instance::outcome_to_json(&inst, &outcome, 42);
//! assert!(json.starts_with(r#"{"status":"solved","steps":[[{"vm":"v1","from":"a","to":"b"}]]"#));
//! # Ok::<(), dvms_placement::instance::InstanceError>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};

use dvms_core::model::{
    Constraint, HostSpec, NodeId, Problem, Resources, Thresholds, Unsolvable, VmId, VmSpec,
};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::Outcome;

/// A parsed instance: the problem, with the names behind its numeric ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    /// The problem; host `i` of the file is `NodeId(i)`, VM `j` is `VmId(j)`.
    pub problem: Problem,
    /// Host names, by `NodeId`.
    pub host_names: Vec<String>,
    /// VM names, by `VmId`.
    pub vm_names: Vec<String>,
}

impl Instance {
    /// The name of a host.
    pub fn host_name(&self, id: NodeId) -> String {
        usize::try_from(id.0)
            .ok()
            .and_then(|i| self.host_names.get(i))
            .cloned()
            .unwrap_or_else(|| id.to_string())
    }

    /// The name of a VM.
    pub fn vm_name(&self, id: VmId) -> String {
        usize::try_from(id.0)
            .ok()
            .and_then(|i| self.vm_names.get(i))
            .cloned()
            .unwrap_or_else(|| id.to_string())
    }
}

/// Why an instance was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstanceError {
    /// The text is not JSON.
    #[error("not valid JSON")]
    Json {
        /// The parser's error (with line and column).
        #[source]
        source: serde_json::Error,
    },
    /// A field is missing, of the wrong type, or has a bad value.
    #[error("{field}: {problem}")]
    Field {
        /// Path of the field, e.g. `vms[3].host`.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
}

fn err(field: impl Into<String>, problem: impl Into<String>) -> InstanceError {
    InstanceError::Field {
        field: field.into(),
        problem: problem.into(),
    }
}

/// Reads an instance from JSON text.
pub fn parse(json: &str) -> Result<Instance, InstanceError> {
    let root: Value =
        serde_json::from_str(json).map_err(|source| InstanceError::Json { source })?;
    let root = as_object(&root, "instance")?;
    check_fields(root, "", &["hosts", "vms", "constraints"])?;
    let hosts = as_array(
        root.get("hosts").ok_or_else(|| err("hosts", "missing"))?,
        "hosts",
    )?;
    if hosts.is_empty() {
        return Err(err("hosts", "must not be empty"));
    }
    let mut host_ids: BTreeMap<String, NodeId> = BTreeMap::new();
    let mut problem = Problem::default();
    let mut host_names = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        let at = format!("hosts[{i}]");
        let o = as_object(h, &at)?;
        check_fields(
            o,
            &at,
            &[
                "id",
                "cpu_milli",
                "mem_mib",
                "cpu_threshold_pct",
                "mem_threshold_pct",
            ],
        )?;
        let name = string_field(o, &at, "id")?;
        let id = NodeId(i as u64);
        if host_ids.insert(name.clone(), id).is_some() {
            return Err(err(format!("{at}.id"), format!("duplicate host {name:?}")));
        }
        let cpu = positive(o, &at, "cpu_milli")?;
        let mem = positive(o, &at, "mem_mib")?;
        let cpu_pct = pct(o, &at, "cpu_threshold_pct", 255)?;
        let mem_pct = pct(o, &at, "mem_threshold_pct", 100)?;
        problem.hosts.push(HostSpec {
            id,
            capacity: Resources::new(cpu, mem),
            thresholds: Thresholds { cpu_pct, mem_pct },
        });
        host_names.push(name);
    }
    let vms = as_array(root.get("vms").ok_or_else(|| err("vms", "missing"))?, "vms")?;
    let mut vm_ids: BTreeMap<String, VmId> = BTreeMap::new();
    let mut vm_names = Vec::new();
    for (i, v) in vms.iter().enumerate() {
        let at = format!("vms[{i}]");
        let o = as_object(v, &at)?;
        check_fields(
            o,
            &at,
            &["id", "host", "cpu_milli", "mem_mib", "migratable"],
        )?;
        let name = string_field(o, &at, "id")?;
        let id = VmId(i as u64);
        if vm_ids.insert(name.clone(), id).is_some() {
            return Err(err(format!("{at}.id"), format!("duplicate vm {name:?}")));
        }
        let host_name = string_field(o, &at, "host")?;
        let host = *host_ids
            .get(&host_name)
            .ok_or_else(|| err(format!("{at}.host"), format!("unknown host {host_name:?}")))?;
        let cpu = integer(o.get("cpu_milli"), &format!("{at}.cpu_milli"))?;
        let mem = positive(o, &at, "mem_mib")?;
        let migratable = match o.get("migratable") {
            None => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(err(format!("{at}.migratable"), "expected true or false")),
        };
        problem.vms.push(VmSpec {
            id,
            host,
            demand: Resources::new(cpu, mem),
            migratable,
        });
        vm_names.push(name);
    }
    if let Some(cs) = root.get("constraints") {
        for (i, c) in as_array(cs, "constraints")?.iter().enumerate() {
            problem.constraints.push(constraint(
                c,
                &format!("constraints[{i}]"),
                &host_ids,
                &vm_ids,
            )?);
        }
    }
    Ok(Instance {
        problem,
        host_names,
        vm_names,
    })
}

fn constraint(
    c: &Value,
    at: &str,
    host_ids: &BTreeMap<String, NodeId>,
    vm_ids: &BTreeMap<String, VmId>,
) -> Result<Constraint, InstanceError> {
    let o = as_object(c, at)?;
    let kind = string_field(o, at, "kind")?;
    let fields: &[&str] = match kind.as_str() {
        "ban" | "fence" => &["kind", "vms", "hosts"],
        "spread" | "gather" | "root" => &["kind", "vms"],
        "among" => &["kind", "vms", "groups"],
        other => {
            return Err(err(
                format!("{at}.kind"),
                format!(
                    "unknown constraint kind {other:?} (expected ban, fence, spread, gather, among or root)"
                ),
            ));
        }
    };
    check_fields(o, at, fields)?;
    let vms = id_list(o, at, "vms", vm_ids, "vm")?;
    let hosts = |field: &str| id_list(o, at, field, host_ids, "host");
    Ok(match kind.as_str() {
        "ban" => Constraint::Ban {
            vms,
            hosts: hosts("hosts")?,
        },
        "fence" => Constraint::Fence {
            vms,
            hosts: hosts("hosts")?,
        },
        "spread" => Constraint::Spread { vms },
        "gather" => Constraint::Gather { vms },
        "root" => Constraint::Root { vms },
        _ => {
            let field = format!("{at}.groups");
            let groups = as_array(
                o.get("groups").ok_or_else(|| err(&field, "missing"))?,
                &field,
            )?;
            if groups.is_empty() {
                return Err(err(field, "must not be empty"));
            }
            let mut out = Vec::new();
            for (g, list) in groups.iter().enumerate() {
                out.push(ids(list, &format!("{field}[{g}]"), host_ids, "host")?);
            }
            Constraint::Among { vms, groups: out }
        }
    })
}

fn as_object<'a>(v: &'a Value, at: &str) -> Result<&'a Map<String, Value>, InstanceError> {
    v.as_object().ok_or_else(|| err(at, "expected an object"))
}

fn as_array<'a>(v: &'a Value, at: &str) -> Result<&'a Vec<Value>, InstanceError> {
    v.as_array().ok_or_else(|| err(at, "expected a list"))
}

fn join(at: &str, field: &str) -> String {
    if at.is_empty() {
        field.to_owned()
    } else {
        format!("{at}.{field}")
    }
}

fn check_fields(o: &Map<String, Value>, at: &str, allowed: &[&str]) -> Result<(), InstanceError> {
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(err(
            join(at, k),
            format!("unknown field (expected one of: {})", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

fn string_field(o: &Map<String, Value>, at: &str, field: &str) -> Result<String, InstanceError> {
    let path = join(at, field);
    match o.get(field) {
        None => Err(err(path, "missing")),
        Some(Value::String(s)) if s.is_empty() => Err(err(path, "must not be empty")),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(err(path, "expected a string")),
    }
}

fn integer(v: Option<&Value>, path: &str) -> Result<u64, InstanceError> {
    let v = v.ok_or_else(|| err(path, "missing"))?;
    v.as_u64()
        .ok_or_else(|| err(path, format!("expected a non-negative integer, got {v}")))
}

fn positive(o: &Map<String, Value>, at: &str, field: &str) -> Result<u64, InstanceError> {
    let path = join(at, field);
    match integer(o.get(field), &path)? {
        0 => Err(err(path, "must be greater than 0")),
        n => Ok(n),
    }
}

fn pct(o: &Map<String, Value>, at: &str, field: &str, max: u8) -> Result<u8, InstanceError> {
    let path = join(at, field);
    if o.get(field).is_none() {
        return Ok(100);
    }
    match u8::try_from(integer(o.get(field), &path)?) {
        Ok(p) if (1..=max).contains(&p) => Ok(p),
        _ => Err(err(path, format!("must be between 1 and {max}"))),
    }
}

fn id_list<T: Copy>(
    o: &Map<String, Value>,
    at: &str,
    field: &str,
    known: &BTreeMap<String, T>,
    what: &str,
) -> Result<Vec<T>, InstanceError> {
    let path = join(at, field);
    ids(
        o.get(field).ok_or_else(|| err(&path, "missing"))?,
        &path,
        known,
        what,
    )
}

fn ids<T: Copy>(
    v: &Value,
    path: &str,
    known: &BTreeMap<String, T>,
    what: &str,
) -> Result<Vec<T>, InstanceError> {
    let list = as_array(v, path)?;
    if list.is_empty() {
        return Err(err(path, "must not be empty"));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let name = item
            .as_str()
            .ok_or_else(|| err(&at, format!("expected a {what} id")))?;
        let id = *known
            .get(name)
            .ok_or_else(|| err(&at, format!("unknown {what} {name:?}")))?;
        if !seen.insert(name) {
            return Err(err(&at, format!("duplicate {what} {name:?}")));
        }
        out.push(id);
    }
    Ok(out)
}

/// One migration of the answer.
#[derive(Serialize)]
struct Move {
    vm: String,
    from: String,
    to: String,
}

/// The answer, fields in this order.
#[derive(Serialize)]
struct Answer {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    constraint: Option<usize>,
    steps: Vec<Vec<Move>>,
    migrations: usize,
    moved_mib: u64,
    work_units: u64,
    solve_us: u64,
}

/// Renders a solver outcome as the one-line JSON answer of `dvms-sim solve`.
///
/// `status` is `not_needed` (empty plan), `solved` or `unsolvable`; an unsolvable answer adds
/// `reason` (a sentence), and `host` and `constraint` (index in `constraints`) when known.
/// `solve_us` is the caller's measurement of the solve time.
pub fn outcome_to_json(inst: &Instance, outcome: &Outcome, solve_us: u64) -> String {
    let mut ans = Answer {
        status: "solved",
        reason: None,
        host: None,
        constraint: None,
        steps: Vec::new(),
        migrations: 0,
        moved_mib: 0,
        work_units: outcome.work_units,
        solve_us,
    };
    match &outcome.result {
        Ok(plan) => {
            if plan.is_empty() {
                ans.status = "not_needed";
            }
            ans.steps = plan
                .steps
                .iter()
                .map(|s| {
                    s.iter()
                        .map(|m| Move {
                            vm: inst.vm_name(m.vm),
                            from: inst.host_name(m.from),
                            to: inst.host_name(m.to),
                        })
                        .collect()
                })
                .collect();
            ans.migrations = plan.migrations().count();
            ans.moved_mib = plan.moved_mib();
        }
        Err(e) => {
            ans.status = "unsolvable";
            let (reason, host, constraint) = describe(inst, e);
            ans.reason = Some(reason);
            ans.host = host;
            ans.constraint = constraint;
        }
    }
    serde_json::to_string(&ans).expect("plain structs of strings and integers serialize")
}

/// A sentence with the instance's names, the host and the constraint of an unsolvable answer.
fn describe(inst: &Instance, e: &Unsolvable) -> (String, Option<String>, Option<usize>) {
    match e {
        Unsolvable::NotEnoughCapacity { host } => {
            let h = inst.host_name(*host);
            (
                format!("not enough capacity to fix host {h}"),
                Some(h),
                None,
            )
        }
        Unsolvable::ConstraintBlocks { host, constraint } => {
            let h = inst.host_name(*host);
            let kind = match inst.problem.constraints.get(*constraint) {
                Some(Constraint::Ban { .. }) => "ban",
                Some(Constraint::Fence { .. }) => "fence",
                Some(Constraint::Spread { .. }) => "spread",
                Some(Constraint::Gather { .. }) => "gather",
                Some(Constraint::Among { .. }) => "among",
                Some(Constraint::Root { .. }) => "root",
                _ => "unknown",
            };
            (
                format!("constraint {constraint} ({kind}) blocks every fix of host {h}"),
                Some(h),
                Some(*constraint),
            )
        }
        Unsolvable::BudgetExhausted { host } => {
            let h = inst.host_name(*host);
            (
                format!("budget exhausted before host {h} was fixed"),
                Some(h),
                None,
            )
        }
        other => (other.to_string(), None, None),
    }
}
