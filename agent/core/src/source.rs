//! Running migrations: the source side (reserve, start, abort, report) and the destination side
//! (acknowledged reservations) of `docs/protocol.md` §9.1, §9.4 and §9.5.

use tracing::{info, warn};

use crate::Time;
use crate::incoming::Reservation;
use crate::model::{Epoch, HostSpec, MigrationId, NodeId, PartitionId, Resources, VmId};
use crate::msg::Msg;
use crate::node::{Node, Role};
use crate::output::{Event, MigrationCmd, MigrationOutcome, Output};

/// How many migration outcomes a source remembers for re-sent requests.
const REPORTED_KEPT: usize = 16;

/// A migration this host runs as source, on behalf of a leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Running {
    /// The leader to report to.
    pub(crate) leader: NodeId,
    /// The command.
    pub(crate) cmd: MigrationCmd,
    /// The VM's demand, as reserved on the destination.
    pub(crate) demand: Resources,
    /// Where the migration stands.
    pub(crate) state: RunState,
}

/// The steps of one migration at its source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RunState {
    /// Waiting for the destination to acknowledge the reservation; `Incoming` is re-sent at
    /// `next_try`, and the migration fails if no answer came by `since + lease`.
    Reserving {
        /// When the first `Incoming` went out.
        since: Time,
        /// When to re-send it.
        next_try: Time,
    },
    /// Handed to the actuator; aborted if still running at `abort_at` (§9.5).
    Started {
        /// `migrate_timeout` after the start.
        abort_at: Time,
    },
    /// The actuator was asked to abort; waiting for its outcome.
    Aborting,
}

impl RunState {
    fn deadline(self) -> Option<Time> {
        match self {
            RunState::Reserving { next_try, .. } => Some(next_try),
            RunState::Started { abort_at } => Some(abort_at),
            RunState::Aborting => None,
        }
    }
}

impl Node {
    /// The earliest deadline of the migrations this host runs.
    pub(crate) fn outgoing_deadline(&self) -> Option<Time> {
        self.running
            .values()
            .filter_map(|r| r.state.deadline())
            .min()
    }

    /// A leader asks this host to migrate one of its VMs (§9.1).
    pub(crate) fn on_migrate_request(&mut self, now: Time, from: NodeId, cmd: MigrationCmd) {
        // The leader re-sends unreported migrations (§9.2): one under way will report by
        // itself, one already finished reports its outcome again.
        let same = |id: MigrationId, p: PartitionId, e: Epoch| {
            id == cmd.id && p == cmd.partition && e == cmd.epoch
        };
        if self
            .running
            .values()
            .any(|r| same(r.cmd.id, r.cmd.partition, r.cmd.epoch))
        {
            return self.ignore("duplicate migration request");
        }
        if let Some(&(_, _, _, ok)) = self.reported.iter().find(|r| same(r.0, r.1, r.2)) {
            return self.report_to(now, from, cmd, ok);
        }
        // A later leadership than the one this host knows: its view was lost or overtaken.
        self.adopt_epoch(now, from, cmd.partition, cmd.epoch);
        let member_of = self.partition().is_some_and(|v| {
            v.id == cmd.partition && v.epoch == cmd.epoch && from == cmd.epoch.leader
        });
        let local = self
            .sample
            .as_ref()
            .is_some_and(|s| s.vms.iter().any(|v| v.id == cmd.vm));
        let busy_vm = self.running.values().any(|r| r.cmd.vm == cmd.vm);
        let target_member =
            cmd.to != self.id && self.partition().is_some_and(|v| v.contains(cmd.to));
        if !(member_of && local && !busy_vm && target_member) {
            self.ignore("migration request refused");
            return self.report_to(now, from, cmd, false);
        }
        self.start_migration(now, from, cmd);
    }

    /// Sends a migration's outcome to `leader` (or hands it to the local leader).
    fn report_to(&mut self, now: Time, leader: NodeId, cmd: MigrationCmd, ok: bool) {
        if leader == self.id {
            return self.leader_on_migrate_done(now, self.id, cmd.partition, cmd.epoch, cmd.id, ok);
        }
        self.send(
            leader,
            Msg::MigrateDone {
                partition: cmd.partition,
                epoch: cmd.epoch,
                migration: cmd.id,
                ok,
            },
        );
    }

    /// Runs a migration of a local VM for `leader`: first the destination reserves room for it
    /// (§9.4), then the actuator moves it.
    pub(crate) fn start_migration(&mut self, now: Time, leader: NodeId, cmd: MigrationCmd) {
        let demand = self
            .sample
            .as_ref()
            .and_then(|s| s.vms.iter().find(|v| v.id == cmd.vm))
            .map_or(Resources::new(0, cmd.mem_mib), |v| v.demand);
        self.send(cmd.to, incoming_msg(&cmd, demand));
        let state = RunState::Reserving {
            since: now,
            next_try: now + self.cfg.hop_timeout,
        };
        self.running.insert(
            cmd.id,
            Running {
                leader,
                cmd,
                demand,
                state,
            },
        );
    }

    /// The destination answered a reservation request (§9.4).
    pub(crate) fn on_incoming_ack(
        &mut self,
        now: Time,
        from: NodeId,
        migration: MigrationId,
        vm: VmId,
        granted: bool,
    ) {
        let Some(run) = self.running.get(&migration).copied() else {
            return self.ignore("ack for an unknown migration");
        };
        if run.cmd.to != from
            || run.cmd.vm != vm
            || !matches!(run.state, RunState::Reserving { .. })
        {
            return self.ignore("stale reservation ack");
        }
        let cmd = run.cmd;
        // The leadership that ordered it must still be the one this host follows, and the
        // destination still a member (§7.6, §9.1): a reservation acknowledged after a takeover,
        // or after the destination left, starts nothing.
        let current = self
            .partition()
            .is_some_and(|v| v.id == cmd.partition && v.epoch == cmd.epoch && v.contains(cmd.to));
        if granted && !current {
            warn!(node = %self.id, vm = %cmd.vm, to = %cmd.to, "leadership or partition changed before the reservation was acknowledged, vm stays");
            return self.finish_run(
                now,
                migration,
                &MigrationOutcome::Failed {
                    reason: "partition changed".into(),
                },
            );
        }
        if granted {
            let abort_at = now + self.cfg.migrate_timeout;
            if let Some(r) = self.running.get_mut(&migration) {
                r.state = RunState::Started { abort_at };
            }
            info!(node = %self.id, vm = %cmd.vm, to = %cmd.to, partition = %cmd.partition, "migration started");
            self.push(Output::Migrate(cmd));
        } else {
            warn!(node = %self.id, vm = %cmd.vm, to = %cmd.to, "destination refused the reservation, vm stays");
            self.finish_run(
                now,
                migration,
                &MigrationOutcome::Failed {
                    reason: "destination refused the reservation".into(),
                },
            );
        }
    }

    /// Re-sends unanswered reservations, gives up on silent destinations, aborts migrations that
    /// outlasted `migrate_timeout` (§9.4, §9.5).
    pub(crate) fn on_outgoing_timer(&mut self, now: Time) {
        let due: Vec<(MigrationId, RunState)> = self
            .running
            .iter()
            .filter(|(_, r)| r.state.deadline().is_some_and(|t| t <= now))
            .map(|(&id, r)| (id, r.state))
            .collect();
        for (id, state) in due {
            let Some(run) = self.running.get(&id).copied() else {
                continue;
            };
            match state {
                RunState::Reserving { since, .. } if now >= since + self.cfg.lease => {
                    warn!(node = %self.id, vm = %run.cmd.vm, to = %run.cmd.to, "destination never acknowledged the reservation, vm stays");
                    self.finish_run(
                        now,
                        id,
                        &MigrationOutcome::Failed {
                            reason: "no reservation".into(),
                        },
                    );
                }
                RunState::Reserving { since, .. } => {
                    self.send(run.cmd.to, incoming_msg(&run.cmd, run.demand));
                    let next_try = now + self.cfg.hop_timeout;
                    if let Some(r) = self.running.get_mut(&id) {
                        r.state = RunState::Reserving { since, next_try };
                    }
                }
                RunState::Started { .. } => {
                    warn!(node = %self.id, vm = %run.cmd.vm, to = %run.cmd.to, "migration outlasted its timeout, aborting");
                    if let Some(r) = self.running.get_mut(&id) {
                        r.state = RunState::Aborting;
                    }
                    let (vm, to) = (run.cmd.vm, run.cmd.to);
                    self.push(Output::AbortMigration { id, vm, to });
                    self.emit(Event::MigrationAborting {
                        migration: id,
                        vm,
                        to,
                    });
                }
                RunState::Aborting => {}
            }
        }
    }

    /// The actuator's outcome of a migration this host ran.
    pub(crate) fn on_migration(&mut self, now: Time, id: MigrationId, outcome: MigrationOutcome) {
        match self.running.get(&id) {
            None => self.ignore("unknown migration"),
            Some(r) if matches!(r.state, RunState::Reserving { .. }) => {
                self.ignore("outcome of a migration not started");
            }
            Some(_) => self.finish_run(now, id, &outcome),
        }
    }

    /// A migration ended (or never started): release the destination's room, hand the history
    /// over, report to the leader.
    fn finish_run(&mut self, now: Time, id: MigrationId, outcome: &MigrationOutcome) {
        let Some(run) = self.running.remove(&id) else {
            return;
        };
        let ok = matches!(outcome, MigrationOutcome::Done);
        let cmd = run.cmd;
        if ok {
            self.stats.migrations_ok += 1;
            info!(node = %self.id, vm = %cmd.vm, to = %cmd.to, partition = %cmd.partition, "migration finished");
            let moves = self
                .cooldowns
                .moves(cmd.vm, now, self.cfg.cooldown_max)
                .saturating_add(1);
            self.cooldowns.forget(cmd.vm);
            self.send(
                cmd.to,
                Msg::Handoff {
                    migration: id,
                    vm: cmd.vm,
                    moves,
                },
            );
        } else {
            self.stats.migrations_failed += 1;
            self.send(
                cmd.to,
                Msg::IncomingCancelled {
                    migration: id,
                    vm: cmd.vm,
                },
            );
            match outcome {
                MigrationOutcome::Failed { reason } => {
                    warn!(node = %self.id, vm = %cmd.vm, to = %cmd.to, error = %reason, "migration failed, vm stays");
                }
                MigrationOutcome::Aborted => {
                    warn!(node = %self.id, vm = %cmd.vm, to = %cmd.to, "migration aborted, vm stays");
                }
                MigrationOutcome::Done => {}
            }
        }
        self.emit(Event::MigrationFinished {
            migration: id,
            vm: cmd.vm,
            to: cmd.to,
            ok,
        });
        self.cooldowns.prune(now, self.cfg.cooldown_max);
        if run.leader != self.id {
            if self.reported.len() >= REPORTED_KEPT {
                self.reported.pop_front();
            }
            self.reported.push_back((id, cmd.partition, cmd.epoch, ok));
        }
        self.report_to(now, run.leader, cmd, ok);
    }

    /// `peer` is unreachable: reservations it holds here are released once it has failed
    /// several requests in a row (a host that is gone migrates nothing), and reservations this
    /// host waits for there fail.
    pub(crate) fn migrations_on_unreachable(&mut self, now: Time, peer: NodeId) {
        self.incoming.source_unreachable(peer);
        let waiting: Vec<MigrationId> = self
            .running
            .iter()
            .filter(|(_, r)| r.cmd.to == peer && matches!(r.state, RunState::Reserving { .. }))
            .map(|(&id, _)| id)
            .collect();
        for id in waiting {
            self.finish_run(
                now,
                id,
                &MigrationOutcome::Failed {
                    reason: "destination unreachable".into(),
                },
            );
        }
    }

    // --- destination side ---

    /// A source asks this host to reserve room for a VM (§9.4).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_incoming(
        &mut self,
        now: Time,
        from: NodeId,
        partition: PartitionId,
        epoch: Epoch,
        migration: MigrationId,
        vm: VmId,
        demand: Resources,
    ) {
        let again = self
            .incoming
            .get(vm)
            .is_some_and(|r| r.source == from && r.migration == migration);
        let granted = again || {
            // A member of the partition under this leadership or an older one (a later one
            // fences it), or a host being absorbed into the leader's partition (§6).
            let member = self.partition().is_some_and(|v| {
                (v.id == partition && v.epoch <= epoch)
                    || (v.id != partition && v.leader == epoch.leader)
            });
            let ok = member && !self.draining && self.incoming.has_room() && self.room_for(demand);
            if ok {
                let next_query = now + self.cfg.lease;
                self.incoming.reserve(
                    vm,
                    Reservation {
                        demand,
                        source: from,
                        migration,
                        next_query,
                        failures: 0,
                    },
                );
            } else {
                self.ignore("reservation refused");
            }
            ok
        };
        self.send(
            from,
            Msg::IncomingAck {
                migration,
                vm,
                granted,
            },
        );
    }

    /// True when `demand` fits on this host with its VMs and its other reservations (memory
    /// strictly, CPU within the threshold): the last check before a VM may come (§9.4).
    fn room_for(&self, demand: Resources) -> bool {
        let Some(s) = self.sample.as_ref() else {
            return false;
        };
        let limit = HostSpec {
            id: self.id,
            capacity: s.capacity,
            thresholds: self.cfg.thresholds,
        }
        .limit();
        let reserved: Resources = self.incoming.pending(s).map(|(_, d)| d).sum();
        (s.demand() + reserved + demand).fits_in(limit)
    }

    /// A destination asks whether a migration it holds room for still runs.
    pub(crate) fn on_incoming_query(&mut self, from: NodeId, migration: MigrationId, vm: VmId) {
        let running = self
            .running
            .get(&migration)
            .is_some_and(|r| r.cmd.vm == vm && r.cmd.to == from);
        self.send(
            from,
            Msg::IncomingStatus {
                migration,
                vm,
                running,
            },
        );
    }

    /// Asks the sources of reservations due a check whether their migrations still run.
    pub(crate) fn on_incoming_timer(&mut self, now: Time) {
        let next = now + self.cfg.lease;
        for (source, migration, vm) in self.incoming.due_queries(now, next) {
            self.send(source, Msg::IncomingQuery { migration, vm });
        }
    }

    /// Adopts a later leadership of this host's partition announced by its leader `from`
    /// (a renewal, state request, command or dissolution that overtook or outlived a lost view,
    /// §7.6). A leader that learns it was deposed steps down and follows the new leader.
    pub(crate) fn adopt_epoch(&mut self, now: Time, from: NodeId, id: PartitionId, epoch: Epoch) {
        let view = match &self.role {
            Role::Member(v) => v,
            Role::Leader(l) => &l.view,
            Role::Free | Role::Reserved { .. } => return,
        };
        if !(view.id == id && epoch > view.epoch && from == epoch.leader) {
            return;
        }
        let mut view = view.clone();
        view.epoch = epoch;
        view.leader = from;
        // The epoch's leader is a member of its own view: a host that joined and leads now is
        // a valid destination even before its view arrives (a `Migrate` overtaking the join's
        // `View`, §7.7).
        if !view.members.contains(&from) && view.members.len() < crate::config::MAX_PARTITION_SIZE {
            view.members.push(from);
        }
        if self.is_leader() {
            info!(node = %self.id, partition = %id, leader = %from, %epoch, "deposed, stepping down");
        }
        self.become_member(now, view);
    }
}

fn incoming_msg(cmd: &MigrationCmd, demand: Resources) -> Msg {
    Msg::Incoming {
        partition: cmd.partition,
        epoch: cmd.epoch,
        migration: cmd.id,
        vm: cmd.vm,
        demand,
    }
}
