//! dvms-core: the sans-IO heart of DVMS.
//!
//! The Iterative Scheduling Procedure (ISP) as a plain state machine, the model types it shares
//! with the placement solver, and the wire messages hosts exchange. Nothing here reads a clock,
//! opens a socket or draws OS entropy: drivers (the agent, the simulator, tests) feed inputs and
//! drain outputs.
//!
//! # Layout
//! - [`model`]: identifiers, resources, samples, placement problems and plans.
//! - [`time`]: the protocol's [`Time`] type.
//! - [`config`]: validated protocol settings.
//! - [`msg`]: messages between hosts and the partition view.
//! - [`output`]: what a node asks its driver to do, and the events it reports.
//! - [`node`]: the state machine, [`Node`].

pub mod config;
pub mod model;
pub mod msg;
pub mod node;
pub mod output;
pub mod stats;
pub mod time;

pub use config::Config;
pub use node::Node;
pub use output::{Event, MigrationCmd, MigrationOutcome, Output};
pub use time::Time;
pub mod wire;

mod cooldown;
mod detector;
mod leader;
mod member;
mod timer;

#[cfg(test)]
mod tests;
