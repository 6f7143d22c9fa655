//! The command line: one subcommand per family. `cluster` runs real agents on fake hypervisor
//! roots; `libvirt` runs them on real KVM guests (`src/libvirt/`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::cluster::ClusterArgs;

/// Real dvmsd clusters on one machine.
#[derive(Debug, Parser)]
#[command(name = "dvms-lab", version, about)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum Command {
    /// Start N real dvmsd processes on loopback over fake hypervisor roots that a load generator
    /// keeps busy, run for a while, and report (the README's first command).
    Cluster(ClusterArgs),
    /// Real KVM guests through libvirt: hosts in namespaces on this machine, guests whose CPU
    /// demand follows a workload, a dvmsd per host that live-migrates them (needs root and
    /// tools/setup-libvirt.sh).
    Libvirt(crate::libvirt::LibvirtArgs),
}

/// Exit code for a usage error (sysexits `EX_USAGE`).
pub const EX_USAGE: u8 = 64;

/// Installs the log subscriber: `DVMS_LOG` (default `info`), on stderr.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DVMS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Cluster(args) => crate::cluster::main(&args),
        Command::Libvirt(args) => crate::libvirt::main(&args),
    }
}
