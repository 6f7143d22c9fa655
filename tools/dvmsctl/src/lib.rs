//! dvmsctl: ask the local DVMS agent (`dvmsd`) what it sees and does, over its control socket.
//!
//! # Layout
//! - [`cli`]: the command line (the packaging renders dvmsctl(8) from it).
//! - [`client`]: one request, one answer over the Unix socket.
//! - [`render`]: tables for people (`--json` prints the answer as it came).

pub mod cli;
pub mod client;
pub mod render;

/// sysexits `EX_UNAVAILABLE`: the agent is not running.
pub const EX_UNAVAILABLE: u8 = 69;
