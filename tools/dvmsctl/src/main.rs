//! `dvmsctl`: exit 0 on success, 1 when the agent refuses, 64 on usage errors, 69 when the
//! agent is not running.

use std::process::ExitCode;

use clap::Parser;
use dvms_agent::control::proto::Request;
use dvmsctl::cli::{Cli, Command};
use dvmsctl::client::{ClientError, ask};
use dvmsctl::{EX_UNAVAILABLE, render};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(64)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let request = match cli.command {
        Command::Status => Request::Status,
        Command::Vms => Request::Vms,
        Command::Peers => Request::Peers,
        Command::Events => Request::Events,
        Command::Plan => Request::Plan,
        Command::Drain => Request::Drain,
        Command::Undrain => Request::Undrain,
    };
    let response = match ask(&cli.socket, &request) {
        Ok(r) => r,
        Err(e @ ClientError::NotRunning { .. }) => {
            eprintln!("dvmsctl: {e}");
            return ExitCode::from(EX_UNAVAILABLE);
        }
        Err(e) => {
            eprintln!("dvmsctl: {e}");
            return ExitCode::FAILURE;
        }
    };
    let out = if cli.json {
        render::json(&response)
    } else {
        render::human(&response)
    };
    match out {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("dvmsctl: the agent refused: {message}");
            ExitCode::FAILURE
        }
    }
}
