//! Actuators: what carries out the migrations the protocol decides.
//!
//! One trait, [`Actuator`]; one implementation per `actuator.kind` (a config section each):
//! [`Observe`] never acts, [`Lab`] asks the dvms-lab hypervisor (CONTRACTS B), [`Libvirt`]
//! runs `dvms-libvirt` for each migration. The driver runs migrations concurrently, at most
//! `actuator.max_parallel_migrations` at once, and hands each outcome back to the core.

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
    /// Give up (and report a failure) after this long.
    pub timeout: Duration,
}

/// Carries out live migrations.
pub trait Actuator: Send + Sync + 'static {
    /// The `actuator.kind` it implements.
    fn kind(&self) -> &'static str;

    /// Migrates one VM and reports how it ended. `Failed` means the VM still runs on this
    /// host. Cancel-safety: dropping the future does not stop a migration the hypervisor has
    /// started (as with libvirt); only the outcome is lost.
    fn migrate(&self, req: MigrateRequest) -> impl Future<Output = MigrationOutcome> + Send;
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
}
