//! `dvms-lab cluster`.

use std::process::ExitCode;

/// `dvms-lab cluster` flags.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {}

/// Runs `dvms-lab cluster`.
pub fn main(_args: &ClusterArgs) -> ExitCode {
    ExitCode::FAILURE
}
