//! The migrations this host runs: started on `Output::Migrate`, aborted on
//! `Output::AbortMigration`, their outcomes fed back to the core.

use dvms_core::model::{MigrationId, NodeId, VmId};
use dvms_core::{MigrationCmd, MigrationOutcome};

use super::{Driver, Local, Running};
use crate::actuator::{ABORT_GRACE, AbortRequest, Actuator, MigrateRequest};
use crate::metrics::OutcomeLabel;
use crate::record::partition_label;

impl Driver {
    pub(super) fn start_migration(&mut self, cmd: MigrationCmd) {
        let Some(vm_name) = self.monitor.name(cmd.vm).map(str::to_owned) else {
            let reason = format!("vm {:016x} is not on this host", cmd.vm.0);
            tracing::warn!(migration = %cmd.id, reason = %reason, "migration refused");
            self.local.push_back(Local::MigrationFailed(cmd.id, reason));
            return;
        };
        let Some(to) = self.dir.get(cmd.to).and_then(|i| i.name.clone()) else {
            let reason = format!("destination {:016x} has no known node name", cmd.to.0);
            tracing::warn!(migration = %cmd.id, vm = %vm_name, reason = %reason, "migration refused");
            self.local.push_back(Local::MigrationFailed(cmd.id, reason));
            return;
        };
        let p = partition_label(&self.dir, cmd.partition);
        tracing::info!(event = "migration_started", migration = %cmd.id, vm = %vm_name, to = %to, partition = %p, mem_mib = cmd.mem_mib, actuator = self.actuator.kind(), "migration started");
        self.record.push(
            "migration_started",
            Some(p),
            Some(vm_name.clone()),
            format!("to {to} ({} MiB) via {}", cmd.mem_mib, self.actuator.kind()),
        );
        let req = MigrateRequest {
            vm: vm_name.clone(),
            from: self.cfg.node_name.clone(),
            to: to.clone(),
            timeout: self
                .cfg
                .protocol
                .migrate_timeout
                .saturating_add(ABORT_GRACE),
        };
        self.running.insert(
            cmd.id,
            Running {
                vm: cmd.vm,
                vm_name,
                to,
                partition: cmd.partition,
                mem_mib: cmd.mem_mib,
            },
        );
        let actuator = self.actuator.clone();
        let permits = self.permits.clone();
        let id = cmd.id;
        self.migrations.spawn(async move {
            // Closed only at shutdown; then the migration is not started.
            let Ok(_permit) = permits.acquire_owned().await else {
                return (
                    id,
                    MigrationOutcome::Failed {
                        reason: "agent stopping".into(),
                    },
                );
            };
            (id, actuator.migrate(req).await)
        });
    }

    pub(super) fn migration_done(&mut self, id: MigrationId, outcome: MigrationOutcome) {
        let run = self.running.remove(&id);
        let (vm, to, partition) = run
            .as_ref()
            .map(|r| {
                (
                    r.vm_name.clone(),
                    r.to.clone(),
                    Some(partition_label(&self.dir, r.partition)),
                )
            })
            .unwrap_or_default();
        match &outcome {
            MigrationOutcome::Done => {
                tracing::info!(event = "migration_done", migration = %id, vm = %vm, to = %to, "migration done");
                self.record.push(
                    "migration_done",
                    partition,
                    Some(vm),
                    format!("now on {to}"),
                );
                self.metrics
                    .migrations
                    .get_or_create(&OutcomeLabel {
                        outcome: "ok".into(),
                    })
                    .inc();
            }
            MigrationOutcome::Failed { reason } => {
                tracing::warn!(event = "migration_failed", migration = %id, vm = %vm, to = %to, reason = %reason, "migration failed: the vm stays here");
                self.record.push(
                    "migration_failed",
                    partition,
                    Some(vm),
                    format!("to {to}: {reason}"),
                );
                self.metrics
                    .migrations
                    .get_or_create(&OutcomeLabel {
                        outcome: "failed".into(),
                    })
                    .inc();
            }
            MigrationOutcome::Aborted => {
                tracing::warn!(event = "migration_aborted", migration = %id, vm = %vm, to = %to, "migration aborted: the vm stays here");
                self.record.push(
                    "migration_aborted",
                    partition,
                    Some(vm),
                    format!("to {to}: aborted after migrate_timeout, the vm stays here"),
                );
                self.metrics
                    .migrations
                    .get_or_create(&OutcomeLabel {
                        outcome: "aborted".into(),
                    })
                    .inc();
            }
        }
        let now = self.clock.now();
        self.node.handle_migration(now, id, outcome);
    }

    /// The core gave up waiting for migration `id` (`migrate_timeout`): ask the actuator to
    /// abort it. Its outcome still comes from the migration's own task.
    pub(super) fn abort_migration(&mut self, id: MigrationId, vm: VmId, to: NodeId) {
        let Some(run) = self.running.get(&id) else {
            tracing::debug!(migration = %id, vm_id = %format_args!("{:016x}", vm.0), "abort of a migration not running here: ignored");
            return;
        };
        let p = partition_label(&self.dir, run.partition);
        let dest = self.dir.label(to);
        tracing::warn!(event = "migration_aborting", migration = %id, vm = %run.vm_name, to = %dest, partition = %p, "migration outlasted migrate_timeout: aborting it");
        self.record.push(
            "migration_aborting",
            Some(p),
            Some(run.vm_name.clone()),
            format!(
                "to {}: outlasted migrate_timeout, asking the hypervisor to abort",
                run.to
            ),
        );
        let req = AbortRequest {
            vm: run.vm_name.clone(),
            from: self.cfg.node_name.clone(),
            to: run.to.clone(),
        };
        let actuator = self.actuator.clone();
        self.aborts
            .spawn(async move { (id, actuator.abort(req).await) });
    }

    /// The actuator's answer to an abort request (not the migration's outcome).
    pub(super) fn abort_answered(&mut self, id: MigrationId, answer: Result<(), String>) {
        let vm = self
            .running
            .get(&id)
            .map(|r| r.vm_name.clone())
            .unwrap_or_default();
        match answer {
            Ok(()) => {
                tracing::info!(migration = %id, vm = %vm, "abort requested: waiting for the hypervisor to end the migration");
            }
            Err(reason) => {
                tracing::warn!(migration = %id, vm = %vm, reason = %reason, "abort refused: waiting for the migration's own outcome");
            }
        }
    }
}
