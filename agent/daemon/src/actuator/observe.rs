//! `observe`: logs each migration the protocol asks for and carries out none.

use dvms_core::MigrationOutcome;

use super::{AbortRequest, Actuator, MigrateRequest};

/// Never acts. Each migration is reported failed ("observe mode"), so the core keeps the VM
/// where it is, ends the partition and, if the problem persists, tries again after its
/// backoff; `dvmsctl plan` and the logs show what would have been done.
#[derive(Debug, Clone, Copy, Default)]
pub struct Observe;

/// The reason `observe` gives.
pub const NOT_EXECUTED: &str = "observe mode: migration not executed";

impl Actuator for Observe {
    fn kind(&self) -> &'static str {
        "observe"
    }

    async fn migrate(&self, req: MigrateRequest) -> MigrationOutcome {
        tracing::info!(vm = %req.vm, from = %req.from, to = %req.to, decision = "would_migrate", "observe mode: would migrate");
        MigrationOutcome::Failed {
            reason: NOT_EXECUTED.into(),
        }
    }

    /// Nothing runs, so there is nothing to abort.
    async fn abort(&self, req: AbortRequest) -> Result<(), String> {
        tracing::debug!(vm = %req.vm, "observe mode: nothing to abort");
        Ok(())
    }
}
