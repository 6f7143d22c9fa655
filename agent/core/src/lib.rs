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

pub mod model;
pub mod time;

pub use time::Time;
