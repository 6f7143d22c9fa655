//! `dvmsd`: reads its config, starts logging, runs the agent, maps errors to exit codes
//! (64 usage, 69 unavailable, 78 config, 1 other).

use std::process::ExitCode;

use clap::Parser;
use dvms_agent::cli::{Cli, Command};
use dvms_agent::{EX_CONFIG, EX_USAGE, config, init, logging, run};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EX_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let path = cli.config.clone();
    let load = || {
        config::load(&path).map_err(|e| {
            eprintln!("dvmsd: {}: {e}", path.display());
            ExitCode::from(EX_CONFIG)
        })
    };
    match cli.command.unwrap_or(Command::Run) {
        Command::CheckConfig => {
            let cfg = match load() {
                Ok(cfg) => cfg,
                Err(code) => return code,
            };
            if let Err(e) = cfg.cluster_key() {
                eprintln!("dvmsd: {}: {e}", path.display());
                return ExitCode::from(EX_CONFIG);
            }
            println!("{}: ok (node {})", path.display(), cfg.node_name);
            ExitCode::SUCCESS
        }
        Command::Init { cluster_key } => {
            let cfg = match load() {
                Ok(cfg) => cfg,
                Err(code) => return code,
            };
            match init::identity(&cfg) {
                Ok(peer) => println!("node identity in {}: peer {peer}", cfg.state_dir.display()),
                Err(e) => {
                    eprintln!("dvmsd: {e:#}");
                    return ExitCode::FAILURE;
                }
            }
            if cluster_key {
                match init::cluster_key(&cfg.cluster_key_file) {
                    Ok(init::Created::New) => {
                        println!("cluster key created: {}", cfg.cluster_key_file.display());
                    }
                    Ok(init::Created::Kept) => {
                        println!("cluster key kept: {}", cfg.cluster_key_file.display());
                    }
                    Err(e) => {
                        eprintln!("dvmsd: {e:#}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Command::Run => {
            let (format, note) = logging::init();
            std::panic::set_hook(Box::new(|info| {
                tracing::error!(panic = %info, "dvmsd panicked");
                eprintln!("dvmsd panicked: {info}");
            }));
            if let Some(note) = note {
                tracing::warn!(format = ?format, "{note}");
            }
            let cfg = match load() {
                Ok(cfg) => cfg,
                Err(code) => return code,
            };
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .max_blocking_threads(4)
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("dvmsd: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(run::run(cfg)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = ?anyhow::Error::from(e_clone_msg(&e)), "dvmsd failed");
                    eprintln!("dvmsd: {:#}", anyhow::Error::from(e_clone_msg(&e)));
                    ExitCode::from(e.exit_code())
                }
            }
        }
    }
}

/// The error chain as one message (RunError is not Clone).
fn e_clone_msg(e: &run::RunError) -> anyhow::Error {
    let mut chain = vec![e.to_string()];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        chain.push(s.to_string());
        source = s.source();
    }
    anyhow::anyhow!(chain.join(": "))
}
