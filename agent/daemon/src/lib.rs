//! dvms-agent: `dvmsd`, the DVMS agent every hypervisor host runs.
//!
//! It samples the host and its VMs from the kernel (dvms-host), drives the protocol core
//! (dvms-core) with the solver (dvms-placement) over the overlay (dvms-overlay), and carries
//! out migrations through an actuator. `dvmsctl` talks to it over a Unix socket.
//!
//! # Layout
//! - [`cli`]: the command line; [`config`]: the config file, validated; [`init`]: identity
//!   and cluster key creation; [`logging`]: journald or stderr.
//! - [`run`]: wiring, signals, sd_notify; [`driver`]: the task that owns the core `Node`;
//!   [`net`]: the overlay side of the driver; [`directory`]: `NodeId`s, peer names and the
//!   gossiped summary format; [`monitor`]: kernel samples into core samples.
//! - [`actuator`]: `observe` and `lab`; [`record`]: decisions for logs and `dvmsctl events`;
//!   [`control`]: the control socket and its protocol; [`metrics`]: Prometheus.

pub mod actuator;
pub mod cli;
pub mod config;
pub mod control;
pub mod directory;
pub mod driver;
pub mod init;
pub mod logging;
pub mod metrics;
pub mod monitor;
pub mod net;
pub mod record;
pub mod run;

/// sysexits `EX_USAGE`: bad command line.
pub const EX_USAGE: u8 = 64;
/// sysexits `EX_UNAVAILABLE`: a dependency (the kernel's files, a socket) is unavailable.
pub const EX_UNAVAILABLE: u8 = 69;
/// sysexits `EX_CONFIG`: bad config file.
pub const EX_CONFIG: u8 = 78;
