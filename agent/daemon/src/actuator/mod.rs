//! Actuators: what carries out the migrations the protocol decides.
//!
//! One trait, [`Actuator`]; one implementation per `actuator.kind` (a config section each):
//! [`Observe`] never acts, [`Lab`] asks the dvms-lab hypervisor (CONTRACTS B), [`Libvirt`]
//! runs `dvms-libvirt` for each migration. The driver runs migrations concurrently, at most
//! `actuator.max_parallel_migrations` at once, and hands each outcome back to the core. When
//! the core gives up on a migration (`Output::AbortMigration`, `migrate_timeout` after its
//! start) the driver calls [`Actuator::abort`]; the migration's own future still ends it.

mod lab;
mod libvirt;
mod observe;

use std::future::Future;
use std::time::Duration;

use dvms_core::MigrationOutcome;

pub use lab::Lab;
pub use libvirt::{Inventory, Libvirt};
pub use observe::{NOT_EXECUTED, Observe};

use crate::config::ActuatorKind;

/// One live migration to carry out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrateRequest {
    /// The VM's name on the hypervisor.
    pub vm: String,
    /// This host's node name.
    pub from: String,
    /// The destination's node name.
    pub to: String,
    /// The last resort: stop waiting for the hypervisor (and report a failure) after this
    /// long. The core aborts the migration earlier (at `protocol.migrate_timeout`, through
    /// [`Actuator::abort`]); this bound is only for a hypervisor that never answers, so the
    /// driver sets it to `migrate_timeout` plus [`ABORT_GRACE`].
    pub timeout: Duration,
}

/// How long after asking for an abort the driver still waits for the hypervisor to end a
/// migration (libvirt's job may take a while to stop; `dvms-libvirt` waits 120 s too).
pub const ABORT_GRACE: Duration = Duration::from_secs(120);

/// The abort of one running migration (`Output::AbortMigration`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AbortRequest {
    /// The VM's name on the hypervisor.
    pub vm: String,
    /// This host's node name.
    pub from: String,
    /// The destination's node name.
    pub to: String,
}

/// Carries out live migrations.
pub trait Actuator: Send + Sync + 'static {
    /// The `actuator.kind` it implements.
    fn kind(&self) -> &'static str;

    /// Migrates one VM and reports how it ended. `Failed` means the VM still runs on this
    /// host. Cancel-safety: dropping the future does not stop a migration the hypervisor has
    /// started (as with libvirt); only the outcome is lost.
    fn migrate(&self, req: MigrateRequest) -> impl Future<Output = MigrationOutcome> + Send;

    /// Asks the hypervisor to abort the running migration of `req.vm` (libvirt:
    /// `virDomainAbortJob`). Returns once the hypervisor has taken the request (`Ok`) or
    /// refused it (`Err`, with why: no such migration, hypervisor unreachable). It does not
    /// report how the migration ends: the future [`Actuator::migrate`] returned for it does,
    /// with `Aborted` if the abort took (the VM stays on this host), `Done` if the migration
    /// had finished first, `Failed` otherwise. Must not panic or block on a bad answer.
    fn abort(&self, req: AbortRequest) -> impl Future<Output = Result<(), String>> + Send;
}

/// The actuator chosen by the config.
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyActuator {
    /// `observe`.
    Observe(Observe),
    /// `lab`.
    Lab(Lab),
    /// `libvirt`.
    Libvirt(Libvirt),
}

impl AnyActuator {
    /// Builds the actuator `kind` names.
    pub fn new(kind: &ActuatorKind) -> AnyActuator {
        match kind {
            ActuatorKind::Observe => AnyActuator::Observe(Observe),
            ActuatorKind::Lab { socket } => AnyActuator::Lab(Lab::new(socket.clone())),
            ActuatorKind::Libvirt(s) => AnyActuator::Libvirt(Libvirt::new((**s).clone())),
        }
    }
}

impl Actuator for AnyActuator {
    fn kind(&self) -> &'static str {
        match self {
            AnyActuator::Observe(a) => a.kind(),
            AnyActuator::Lab(a) => a.kind(),
            AnyActuator::Libvirt(a) => a.kind(),
        }
    }

    async fn migrate(&self, req: MigrateRequest) -> MigrationOutcome {
        match self {
            AnyActuator::Observe(a) => a.migrate(req).await,
            AnyActuator::Lab(a) => a.migrate(req).await,
            AnyActuator::Libvirt(a) => a.migrate(req).await,
        }
    }

    async fn abort(&self, req: AbortRequest) -> Result<(), String> {
        match self {
            AnyActuator::Observe(a) => a.abort(req).await,
            AnyActuator::Lab(a) => a.abort(req).await,
            AnyActuator::Libvirt(a) => Actuator::abort(a, req).await,
        }
    }
}
