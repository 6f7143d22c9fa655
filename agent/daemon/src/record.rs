//! Decisions and events: one log line each (with structured fields for journald), a ring of
//! recent ones for `dvmsctl events`, and the latest plan for `dvmsctl plan`.

use std::collections::VecDeque;
use std::time::SystemTime;

use dvms_core::Event;
use dvms_core::model::{PartitionId, Plan, Unsolvable};

use crate::control::proto::{EventRow, LatestPlan, PlanMove};
use crate::directory::Directory;

/// Events remembered for `dvmsctl events`.
pub const MAX_EVENTS: usize = 512;

/// Recent events and the latest plan.
#[derive(Debug, Default)]
pub struct Record {
    events: VecDeque<EventRow>,
    latest: Option<LatestPlan>,
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// `initiator-name#seq`.
pub fn partition_label(dir: &Directory, p: PartitionId) -> String {
    format!("{}#{}", dir.label(p.initiator), p.seq)
}

impl Record {
    /// Remembers one event.
    pub fn push(
        &mut self,
        event: &str,
        partition: Option<String>,
        vm: Option<String>,
        detail: String,
    ) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(EventRow {
            at: now_rfc3339(),
            event: event.to_owned(),
            partition,
            vm,
            detail,
        });
    }

    /// Recent events, oldest first.
    pub fn events(&self) -> Vec<EventRow> {
        self.events.iter().cloned().collect()
    }

    /// The latest solver answer.
    pub fn latest(&self) -> Option<LatestPlan> {
        self.latest.clone()
    }

    /// Logs and remembers a core event; returns its name (for metrics).
    pub fn core_event(&mut self, ev: &Event, dir: &Directory) -> &'static str {
        let part = |p: &PartitionId| partition_label(dir, *p);
        match ev {
            Event::EventStarted { partition, kind } => {
                let p = part(partition);
                tracing::info!(event = "event_started", partition = %p, kind = %kind, "problem detected: partition started");
                self.push(
                    "event_started",
                    Some(p),
                    None,
                    format!("{kind} detected on this host"),
                );
                "event_started"
            }
            Event::BecameLeader {
                partition,
                version,
                size,
            } => {
                let p = part(partition);
                tracing::info!(event = "became_leader", partition = %p, version, size, "leading the partition");
                self.push(
                    "became_leader",
                    Some(p),
                    None,
                    format!("leader at version {version}, {size} hosts"),
                );
                "became_leader"
            }
            Event::EventDecided { partition } => {
                let p = part(partition);
                tracing::info!(event = "event_decided", partition = %p, "a plan was chosen for this host's problem");
                self.push(
                    "event_decided",
                    Some(p),
                    None,
                    "a plan was chosen for this host's problem".into(),
                );
                "event_decided"
            }
            Event::Blocked { partition } => {
                let p = part(partition);
                tracing::info!(event = "blocked", partition = %p, decision = "wait", "no free host near the partition: blocked, waiting for one or a merge");
                self.push(
                    "blocked",
                    Some(p),
                    None,
                    "no free host near the partition: waiting for one or a merge".into(),
                );
                "blocked"
            }
            Event::Merged {
                partition,
                absorbed,
                size,
            } => {
                let (p, a) = (part(partition), part(absorbed));
                tracing::info!(event = "merged", partition = %p, absorbed = %a, size, "partitions merged");
                self.push(
                    "merged",
                    Some(p),
                    None,
                    format!("absorbed {a}, now {size} hosts"),
                );
                "merged"
            }
            Event::TookOver { partition, lost } => {
                let (p, l) = (part(partition), dir.label(*lost));
                tracing::warn!(event = "took_over", partition = %p, peer = %l, "host lost: this host took over as leader");
                self.push(
                    "took_over",
                    Some(p),
                    None,
                    format!("lost {l}; took over as leader"),
                );
                "took_over"
            }
            Event::PlanChosen {
                partition,
                size,
                migrations,
                moved_mib,
            } => {
                let p = part(partition);
                tracing::info!(event = "plan_chosen", partition = %p, decision = "migrate", size, migrations, moved_mib, "plan chosen");
                self.push(
                    "plan_chosen",
                    Some(p),
                    None,
                    format!("{migrations} migrations ({moved_mib} MiB) over {size} hosts"),
                );
                "plan_chosen"
            }
            Event::Dissolved {
                partition,
                reason,
                size,
            } => {
                let p = part(partition);
                let why = dissolve_words(&reason.to_string());
                tracing::info!(event = "dissolved", partition = %p, reason = %reason, size, "partition dissolved: {why}");
                self.push(
                    "dissolved",
                    Some(p),
                    None,
                    format!("{reason}: {why} ({size} hosts)"),
                );
                "dissolved"
            }
            Event::EventEnded {
                partition,
                kind,
                reason,
            } => {
                let p = part(partition);
                tracing::info!(event = "event_ended", partition = %p, kind = %kind, reason = %reason, "this host's {kind} event ended: {reason}");
                self.push(
                    "event_ended",
                    Some(p),
                    None,
                    format!("{kind} event ended: {reason}"),
                );
                "event_ended"
            }
            Event::MigrationFinished {
                migration,
                vm,
                to,
                ok,
            } => {
                let t = dir.label(*to);
                let vm = format!("{:016x}", vm.0);
                if *ok {
                    tracing::info!(event = "migration_finished", migration = %migration, vm_id = %vm, to = %t, "migration finished");
                } else {
                    tracing::warn!(event = "migration_failed", migration = %migration, vm_id = %vm, to = %t, "migration failed: the vm stays here");
                }
                "migration_finished"
            }
            // The driver logs it with the VM's name when it asks the actuator to abort.
            Event::MigrationAborting { .. } => "migration_aborting",
            Event::Ignored { reason } => {
                tracing::debug!(event = "ignored", reason, "input ignored");
                "ignored"
            }
            other => {
                tracing::debug!(event = ?other, "core event");
                "other"
            }
        }
    }

    /// Logs and remembers a solver answer.
    pub fn solved(
        &mut self,
        dir: &Directory,
        partition: Option<PartitionId>,
        hosts: usize,
        result: &Result<Plan, Unsolvable>,
        vm_name: impl Fn(dvms_core::model::VmId) -> String,
        work_units: u64,
    ) {
        let p = partition.map(|p| partition_label(dir, p));
        let (moves, unsolvable) = match result {
            Ok(plan) => {
                let moves = plan
                    .steps
                    .iter()
                    .enumerate()
                    .flat_map(|(i, step)| step.iter().map(move |m| (i, m)))
                    .map(|(step, m)| PlanMove {
                        step,
                        vm: vm_name(m.vm),
                        from: dir.label(m.from),
                        to: dir.label(m.to),
                        mem_mib: m.mem_mib,
                    })
                    .collect::<Vec<_>>();
                tracing::info!(
                    event = "solved",
                    partition = p.as_deref().unwrap_or("-"),
                    hosts,
                    migrations = moves.len(),
                    work_units,
                    "solver found a plan"
                );
                for m in &moves {
                    tracing::info!(event = "plan_move", partition = p.as_deref().unwrap_or("-"), vm = %m.vm, from = %m.from, to = %m.to, step = m.step, mem_mib = m.mem_mib, "plan: migrate");
                }
                (moves, None)
            }
            Err(e) => {
                let why = unsolvable_words(dir, e);
                tracing::info!(event = "unsolvable", partition = p.as_deref().unwrap_or("-"), decision = "no_plan", hosts, work_units, reason = %why, "no plan within this partition: {why}");
                self.push(
                    "unsolvable",
                    p.clone(),
                    None,
                    format!("{hosts} hosts: {why}"),
                );
                (Vec::new(), Some(why))
            }
        };
        self.latest = Some(LatestPlan {
            at: now_rfc3339(),
            partition: p,
            hosts,
            moves,
            unsolvable,
        });
    }
}

/// An operator's reading of a dissolve reason.
fn dissolve_words(reason: &str) -> &'static str {
    match reason {
        "solved" => "the plan was applied",
        "not_needed" => "the problem went away by itself",
        "not_worth_it" => "no plan would lower the overload enough",
        "unsolvable" => "even the largest partition cannot fix it",
        "gave_up" => "blocked too long without a free host or a merge",
        "expired" => "the leader was not heard from within the lease",
        "initiator_lost" => "the host with the problem is gone",
        "migration_failed" => "a migration failed; the plan stopped",
        _ => "see the reason",
    }
}

/// The solver's reason, with host names.
fn unsolvable_words(dir: &Directory, e: &Unsolvable) -> String {
    match e {
        Unsolvable::NotEnoughCapacity { host } => format!(
            "not enough free capacity in the partition to bring {} under its thresholds",
            dir.label(*host)
        ),
        Unsolvable::ConstraintBlocks { host, constraint } => format!(
            "placement constraint #{constraint} blocks every fix of {}",
            dir.label(*host)
        ),
        Unsolvable::BudgetExhausted { host } => format!(
            "solver budget exhausted before {} was fixed",
            dir.label(*host)
        ),
        other => other.to_string(),
    }
}
