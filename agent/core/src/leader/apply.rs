//! Applying a chosen plan: the safety check and the margin, then the steps of migrations
//! (`docs/protocol.md` §5.4–§5.6, §9).

use std::collections::BTreeMap;

use tracing::{info, warn};

use super::{Leader, Phase, Step};
use crate::Time;
use crate::model::{
    Constraint, Epoch, MigrationId, NodeId, PartitionId, Plan, Problem, Resources, VmId, VmSpec,
};
use crate::msg::{DissolveReason, EventKind, HostState, Msg, PartitionState};
use crate::node::{Node, Role};
use crate::output::{Event, MigrationCmd};
use crate::timer::Timer;

impl Node {
    /// Checks a plan against the safety rules and the margin, then starts applying it (§5, §9).
    pub(super) fn plan_found(&mut self, now: Time, l: &mut Leader, plan: Plan) -> Step {
        if let Err(why) = check_plan(l, &plan) {
            warn!(node = %self.id, partition = %l.view.id, error = why, "solver plan refused");
            return self.after_unsolvable(now, l);
        }
        let gain = badness(l, &Plan::default()).saturating_sub(badness(l, &plan));
        // An overload or an evacuation is always worth ending; the margin only keeps
        // consolidation from moving VMs for little (§5.5).
        let needed = match l.view.kind {
            EventKind::Underload => self.cfg.improvement_margin_milli.max(1),
            EventKind::Overload | EventKind::Evacuate => 1,
        };
        if gain < needed {
            return Step::Dissolve(DissolveReason::NotWorthIt);
        }
        l.view.state = PartitionState::Finishing;
        l.view.version += 1;
        self.push_view(&l.view, None);
        let (migrations, moved_mib) = (plan.migrations().count(), plan.moved_mib());
        info!(node = %self.id, partition = %l.view.id, size = l.view.members.len(), migrations, moved_mib, "plan chosen");
        self.stats.plans_chosen += 1;
        self.emit(Event::PlanChosen {
            partition: l.view.id,
            size: l.view.members.len(),
            migrations,
            moved_mib,
        });
        l.phase = Phase::Applying {
            plan,
            step: 0,
            pending: BTreeMap::new(),
            failure: None,
        };
        self.start_step(now, l)
    }

    /// Starts the next non-empty step of the plan, or dissolves when none is left (§9).
    fn start_step(&mut self, now: Time, l: &mut Leader) -> Step {
        l.renewals_in_step = 0;
        let Phase::Applying {
            plan,
            step,
            pending,
            ..
        } = &mut l.phase
        else {
            return Step::Stay;
        };
        while *step < plan.steps.len() && plan.steps[*step].is_empty() {
            *step += 1;
        }
        let Some(migrations) = plan.steps.get(*step).cloned() else {
            return Step::Dissolve(DissolveReason::Solved);
        };
        let (partition, epoch) = (l.view.id, l.view.epoch);
        for m in migrations {
            let id = MigrationId(self.fresh_id());
            pending.insert(id, m);
            let cmd = MigrationCmd {
                id,
                partition,
                epoch,
                vm: m.vm,
                to: m.to,
                mem_mib: m.mem_mib,
            };
            if m.from == self.id {
                self.start_migration(now, self.id, cmd);
            } else {
                let msg = Msg::Migrate {
                    partition,
                    epoch,
                    migration: id,
                    vm: m.vm,
                    to: m.to,
                    mem_mib: m.mem_mib,
                };
                self.send(m.from, msg);
            }
        }
        // Sources reserve (up to a lease), migrate (up to `migrate_timeout`), then abort and
        // report (§9.4, §9.5): the leader waits for all of it.
        let deadline = now + self.cfg.migrate_timeout + self.cfg.lease * 3;
        self.timers.set(Timer::Phase, deadline);
        Step::Stay
    }

    /// A member reports a migration's outcome (§9).
    pub(crate) fn leader_on_migrate_done(
        &mut self,
        now: Time,
        from: NodeId,
        id: PartitionId,
        epoch: Epoch,
        migration: MigrationId,
        ok: bool,
    ) {
        let current = matches!(&self.role, Role::Leader(l)
            if l.view.id == id && l.view.epoch == epoch && matches!(&l.phase, Phase::Applying { pending, .. } if pending.get(&migration).is_some_and(|m| m.from == from)));
        if !current {
            return self.ignore("stale migration report");
        }
        self.with_leader(now, |node, now, l| {
            let Phase::Applying {
                step,
                pending,
                failure,
                ..
            } = &mut l.phase
            else {
                return Step::Stay;
            };
            pending.remove(&migration);
            if !ok && failure.is_none() {
                *failure = Some(DissolveReason::MigrationFailed);
            }
            if !pending.is_empty() {
                // The other migrations of the step are in flight: their hosts stay members until
                // they report, so no host leaves while a VM is moving to or from it (§9.3).
                return Step::Stay;
            }
            if let Some(reason) = *failure {
                return Step::Dissolve(reason);
            }
            *step += 1;
            node.start_step(now, l)
        });
    }
}

/// The placement problem of a partition: its hosts, their VMs, and a ban that empties the hosts
/// to drain (evacuation, or the initiator of a consolidation).
pub(super) fn build_problem(l: &Leader) -> Problem {
    let hosts = l.hosts.iter().map(HostState::spec).collect();
    let vms: Vec<VmSpec> = l
        .hosts
        .iter()
        .flat_map(|h| {
            h.vms.iter().map(|v| VmSpec {
                id: v.id,
                host: h.id,
                demand: v.demand,
                migratable: v.migratable,
            })
        })
        .collect();
    let drained = drained_hosts(l);
    let constraints = if drained.is_empty() {
        Vec::new()
    } else {
        vec![Constraint::Ban {
            vms: vms.iter().map(|v| v.id).collect(),
            hosts: drained,
        }]
    };
    Problem {
        hosts,
        vms,
        constraints,
    }
}

fn drained_hosts(l: &Leader) -> Vec<NodeId> {
    l.hosts
        .iter()
        .filter(|h| {
            h.draining || (l.view.kind == EventKind::Underload && h.id == l.view.initiator())
        })
        .map(|h| h.id)
        .collect()
}

/// The safety rules a leader checks before applying any plan (DESIGN §5): every migration moves
/// a VM from where it is to another member.
fn check_plan(l: &Leader, plan: &Plan) -> Result<(), &'static str> {
    let mut at: BTreeMap<VmId, NodeId> = l
        .hosts
        .iter()
        .flat_map(|h| h.vms.iter().map(move |v| (v.id, h.id)))
        .collect();
    for m in plan.migrations() {
        if !l.view.contains(m.to) || m.to == m.from {
            return Err("migration to a host outside the partition");
        }
        match at.get_mut(&m.vm) {
            Some(host) if *host == m.from => *host = m.to,
            _ => return Err("migration of a vm not on its source"),
        }
    }
    Ok(())
}

/// How far the partition is from its goal after `plan`: CPU and memory above the thresholds,
/// plus a heavy weight per VM left on a host to drain.
fn badness(l: &Leader, plan: &Plan) -> u64 {
    let mut used: BTreeMap<NodeId, Resources> = l
        .hosts
        .iter()
        .map(|h| (h.id, h.vms.iter().map(|v| v.demand).sum()))
        .collect();
    let mut count: BTreeMap<NodeId, u64> =
        l.hosts.iter().map(|h| (h.id, h.vms.len() as u64)).collect();
    let demand: BTreeMap<VmId, Resources> = l
        .hosts
        .iter()
        .flat_map(|h| h.vms.iter().map(|v| (v.id, v.demand)))
        .collect();
    for m in plan.migrations() {
        let d = demand.get(&m.vm).copied().unwrap_or_default();
        if let Some(u) = used.get_mut(&m.from) {
            *u -= d;
        }
        *used.entry(m.to).or_default() += d;
        if let Some(c) = count.get_mut(&m.from) {
            *c = c.saturating_sub(1);
        }
        *count.entry(m.to).or_default() += 1;
    }
    let drained = drained_hosts(l);
    l.hosts
        .iter()
        .map(|h| {
            let spec = h.spec();
            let over = used
                .get(&h.id)
                .copied()
                .unwrap_or_default()
                .saturating_sub(spec.limit());
            let left = if drained.contains(&h.id) {
                count
                    .get(&h.id)
                    .copied()
                    .unwrap_or(0)
                    .saturating_mul(1_000_000)
            } else {
                0
            };
            over.cpu_milli
                .saturating_add(over.mem_mib)
                .saturating_add(left)
        })
        .fold(0u64, u64::saturating_add)
}
