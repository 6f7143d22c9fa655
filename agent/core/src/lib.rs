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
//! - [`wire`]: the versioned, size-bounded encoding of messages and gossiped summaries.
//! - `detector`, `cooldown`, `member`, `leader`, `timer`: the sub-state-machines behind `Node`.
//!
//! The protocol is specified in `docs/protocol.md`; tests cite its sections.
//!
//! # Driving a node
//!
//! After every input, drain the outputs and re-arm the timer:
//!
//! ```
//! use std::time::Duration;
//! use dvms_core::model::{HostSample, NodeId, Resources, VmId, VmLoad};
//! use dvms_core::{Config, Node, Output, Time};
//!
//! let cfg = Config::default().validate().expect("defaults are valid");
//! let mut node = Node::new(NodeId(1), cfg, 42, Time::ZERO);
//! // Two VMs asking for 1.2 cores on a 1-core host: an overload.
//! let vm = |id, cpu| VmLoad { id: VmId(id), demand: Resources::new(cpu, 1024), migratable: true };
//! let sample = HostSample { capacity: Resources::new(1000, 8192), vms: vec![vm(1, 600), vm(2, 600)] };
//! node.handle_sample(Time::ZERO, sample);
//! while let Some(out) = node.poll_output() {
//!     // A real driver publishes the summary over gossip.
//!     assert!(matches!(out, Output::Publish(_)));
//! }
//! // The overload must hold (hysteresis): the node asks to be woken up at the end of the hold.
//! let wake = node.poll_timeout().expect("a detection timer");
//! assert_eq!(wake, Time::ZERO + Duration::from_secs(2));
//! node.handle_timeout(wake);
//! let outputs: Vec<Output> = std::iter::from_fn(|| node.poll_output()).collect();
//! // The event starts: the node leads a partition of one and asks the overlay for candidates.
//! assert!(outputs.iter().any(|o| matches!(o, Output::FindCandidates { .. })));
//! assert!(node.is_busy());
//! ```

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
mod incoming;
mod leader;
mod member;
mod source;
mod timer;

#[cfg(test)]
mod tests;
