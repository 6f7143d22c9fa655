//! `dvms-lab`: real dvmsd clusters on one machine.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    dvms_lab::cli::init_logging();
    let cli = dvms_lab::cli::Cli::parse();
    dvms_lab::cli::run(cli)
}
