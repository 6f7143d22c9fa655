//! The `dvmsctl` command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// dvmsctl: ask the local DVMS agent what it sees and does.
///
/// Talks to dvmsd over its control socket (`control.socket` in /etc/dvms/dvms.toml). Exits 69
/// when the agent is not running, 1 when it refuses a request.
#[derive(Debug, Parser)]
#[command(name = "dvmsctl", version, about, long_about)]
pub struct Cli {
    /// The agent's control socket.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        default_value = "/run/dvms/control.sock"
    )]
    pub socket: PathBuf,
    /// Print the agent's answer as JSON (for scripts).
    #[arg(long, global = true)]
    pub json: bool,
    /// What to ask.
    #[command(subcommand)]
    pub command: Command,
}

/// `dvmsctl` subcommands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// This host: its load, its role in a partition, its counters.
    Status,
    /// The VMs on this host with their CPU demand and memory.
    Vms,
    /// The hosts this agent knows, with their gossiped load.
    Peers,
    /// Recent events and decisions, with their reasons (oldest first).
    Events,
    /// The latest plan this host computed and the migrations it runs now.
    Plan,
    /// Evacuate this host for maintenance: its VMs move away, none arrive.
    Drain,
    /// Cancel an evacuation.
    Undrain,
}
