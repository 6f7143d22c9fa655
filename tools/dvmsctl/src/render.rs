//! Tables for people.

use std::fmt::Write;

use dvms_agent::control::proto::{EventRow, Load, PeerRow, PlanView, Response, Status, VmRow};

/// Left-aligned columns separated by two spaces.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = width.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, c) in cells.enumerate() {
            let w = width.get(i).copied().unwrap_or(0);
            let _ = write!(l, "{c:<w$}  ");
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

fn cores(milli: u64) -> String {
    format!("{}.{:02}", milli / 1000, (milli % 1000) / 10)
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{}%", part.saturating_mul(100) / whole)
    }
}

fn load(l: &Load) -> String {
    format!(
        "cpu {} / {} cores ({}), mem {} / {} MiB ({})",
        cores(l.cpu_demand_milli),
        cores(l.cpu_capacity_milli),
        pct(l.cpu_demand_milli, l.cpu_capacity_milli),
        l.mem_demand_mib,
        l.mem_capacity_mib,
        pct(l.mem_demand_mib, l.mem_capacity_mib)
    )
}

fn status(s: &Status) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "host        {} (node {}, dvmsd {})",
        s.name, s.node_id, s.version
    );
    let _ = writeln!(
        o,
        "state       {}{}{}",
        if s.ready { "ready" } else { "starting" },
        if s.draining { ", draining" } else { "" },
        if s.overloaded { ", OVERLOADED" } else { "" }
    );
    let _ = writeln!(o, "load        {}", load(&s.load));
    let _ = writeln!(o, "vms         {}", s.vms);
    let _ = writeln!(o, "role        {}", s.role);
    if let Some(p) = &s.partition {
        let _ = writeln!(
            o,
            "partition   {} v{} {} ({}), leader {}, members {}",
            p.id,
            p.version,
            p.state,
            p.kind,
            p.leader,
            p.members.join(" ")
        );
    }
    let _ = writeln!(o, "peers       {}", s.peers);
    let _ = writeln!(
        o,
        "actuator    {} ({} migrations running)",
        s.actuator, s.migrations_running
    );
    let _ = writeln!(o, "listen      {}", s.listen.join(" "));
    let _ = writeln!(
        o,
        "uptime      {} s, {} samples ({} failed)",
        s.uptime_s, s.samples, s.sample_errors
    );
    let c = &s.stats;
    let _ = writeln!(
        o,
        "counters    {} events started, {} plans, {} migrations ok, {} failed, {} msgs sent, {} received",
        c.events_started,
        c.plans_chosen,
        c.migrations_ok,
        c.migrations_failed,
        c.messages_sent,
        c.messages_received
    );
    o
}

fn vms(rows: &[VmRow]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|v| {
            vec![
                v.name.clone(),
                v.vcpus.to_string(),
                cores(v.cpu_use_milli),
                cores(v.cpu_demand_milli),
                v.mem_used_mib.to_string(),
                v.mem_size_mib.to_string(),
                v.migrating_to
                    .clone()
                    .map_or_else(String::new, |t| format!("-> {t}")),
            ]
        })
        .collect();
    table(
        &[
            "VM",
            "VCPUS",
            "CPU_USE",
            "CPU_DEMAND",
            "MEM_USED_MIB",
            "MEM_MIB",
            "MIGRATING",
        ],
        &rows,
    )
}

fn peers(rows: &[PeerRow]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|p| {
            let (cpu, mem) = p.load.map_or(("-".into(), "-".into()), |l| {
                (
                    format!(
                        "{}/{}",
                        cores(l.cpu_demand_milli),
                        cores(l.cpu_capacity_milli)
                    ),
                    format!("{}/{}", l.mem_demand_mib, l.mem_capacity_mib),
                )
            });
            let state = match (p.busy, p.draining) {
                (_, true) => "draining",
                (true, _) => "busy",
                _ => "free",
            };
            vec![
                p.name.clone().unwrap_or_else(|| "?".into()),
                p.node_id.clone(),
                cpu,
                mem,
                state.into(),
                format!("{}s", p.seen_s_ago),
            ]
        })
        .collect();
    table(
        &["HOST", "NODE_ID", "CPU(cores)", "MEM(MiB)", "STATE", "SEEN"],
        &rows,
    )
}

fn events(rows: &[EventRow]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|e| {
            vec![
                e.at.clone(),
                e.event.clone(),
                e.partition.clone().unwrap_or_else(|| "-".into()),
                e.vm.clone().unwrap_or_else(|| "-".into()),
                e.detail.clone(),
            ]
        })
        .collect();
    table(&["TIME", "EVENT", "PARTITION", "VM", "DETAIL"], &rows)
}

fn plan(p: &PlanView) -> String {
    let mut o = String::new();
    if p.actuator == "observe" {
        o.push_str("actuator: observe (plans are shown, never carried out)\n");
    } else {
        let _ = writeln!(o, "actuator: {}", p.actuator);
    }
    match &p.latest {
        None => o.push_str(
            "no plan computed on this host yet (only a partition's leader computes one)\n",
        ),
        Some(l) => {
            let _ = writeln!(
                o,
                "latest plan: {} partition {} over {} hosts",
                l.at,
                l.partition.as_deref().unwrap_or("-"),
                l.hosts
            );
            if let Some(why) = &l.unsolvable {
                let _ = writeln!(o, "  no plan: {why}");
            } else if l.moves.is_empty() {
                o.push_str("  nothing to move\n");
            } else {
                let rows: Vec<Vec<String>> = l
                    .moves
                    .iter()
                    .map(|m| {
                        vec![
                            m.step.to_string(),
                            m.vm.clone(),
                            m.from.clone(),
                            m.to.clone(),
                            m.mem_mib.to_string(),
                        ]
                    })
                    .collect();
                o.push_str(&table(&["STEP", "VM", "FROM", "TO", "MEM_MIB"], &rows));
            }
        }
    }
    if !p.running.is_empty() {
        o.push_str("running on this host:\n");
        let rows: Vec<Vec<String>> = p
            .running
            .iter()
            .map(|m| vec![m.vm.clone(), m.to.clone(), m.mem_mib.to_string()])
            .collect();
        o.push_str(&table(&["VM", "TO", "MEM_MIB"], &rows));
    }
    o
}

/// Renders an answer for people; `Err` carries the agent's refusal.
///
/// # Errors
/// The agent's message when it refused the request.
pub fn human(r: &Response) -> Result<String, String> {
    Ok(match r {
        Response::Status(s) => status(s),
        Response::Vms(v) => vms(v),
        Response::Peers(p) => peers(p),
        Response::Events(e) => events(e),
        Response::Plan(p) => plan(p),
        Response::Done { message } => format!("{message}\n"),
        Response::Error { message } => return Err(message.clone()),
        other => format!("{other:?}\n"),
    })
}

/// The answer's payload as JSON; `Err` carries the agent's refusal.
///
/// # Errors
/// The agent's message when it refused the request.
pub fn json(r: &Response) -> Result<String, String> {
    let value = match r {
        Response::Status(s) => serde_json::to_value(s),
        Response::Vms(v) => serde_json::to_value(v),
        Response::Peers(p) => serde_json::to_value(p),
        Response::Events(e) => serde_json::to_value(e),
        Response::Plan(p) => serde_json::to_value(p),
        Response::Done { message } => Ok(serde_json::json!({ "message": message })),
        Response::Error { message } => return Err(message.clone()),
        other => serde_json::to_value(other),
    };
    value
        .and_then(|v| serde_json::to_string_pretty(&v))
        .map(|s| s + "\n")
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(&["A", "LONG"], &[vec!["xyz".into(), "1".into()]]);
        assert_eq!(t, "A    LONG\nxyz  1\n");
    }

    #[test]
    fn refusal_is_an_error() {
        let r = Response::Error {
            message: "no".into(),
        };
        assert_eq!(human(&r), Err("no".into()));
        assert_eq!(json(&r), Err("no".into()));
    }
}
