//! The `dvmsd` command line (clap derive; the packaging renders dvmsd(8) from it).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// dvmsd: the DVMS agent of a KVM hypervisor host.
///
/// Watches the host's VMs from the kernel, cooperates with nearby hosts over a peer-to-peer
/// overlay to fix overloads in small partitions, and migrates VMs through its actuator.
#[derive(Debug, Parser)]
#[command(name = "dvmsd", version, about, long_about)]
pub struct Cli {
    /// The config file.
    #[arg(long, global = true, value_name = "FILE", default_value = crate::config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// What to do (default: run).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `dvmsd` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent (the default).
    Run,
    /// Create the node identity (and with --cluster-key a cluster key file), mode 0600; never
    /// overwrites existing files, exits 0 when they already exist.
    Init {
        /// Also create `overlay.cluster_key_file` with a fresh random key.
        #[arg(long)]
        cluster_key: bool,
    },
    /// Validate the config file (and the cluster key file): exit 0 when good, 78 with the
    /// key named when not.
    CheckConfig,
}
