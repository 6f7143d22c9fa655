//! `dvms-sim`: see the library's documentation.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use dvms_sim::cli::{Cli, Command, Format, parse_scheduler};

/// sysexits: usage error.
const EX_USAGE: u8 = 64;
/// sysexits: malformed input data.
const EX_DATAERR: u8 = 65;
/// sysexits: input file missing or unreadable.
const EX_NOINPUT: u8 = 66;

fn print_chain(err: &dyn std::error::Error) {
    let mut msg = format!("dvms-sim: {err}");
    let mut src = err.source();
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    eprintln!("{msg}");
}

/// Reads a scenario or instance file (UTF-8, at most `input::MAX_FILE_BYTES`): a missing or
/// unreadable file exits 66, one too large or not UTF-8 65.
fn read_input(path: &std::path::Path) -> Result<String, ExitCode> {
    dvms_sim::input::read_text(path, dvms_sim::input::MAX_FILE_BYTES).map_err(|e| {
        print_chain(&e);
        ExitCode::from(if e.is_malformed() {
            EX_DATAERR
        } else {
            EX_NOINPUT
        })
    })
}

fn print_report(r: &dvms_sim::Report, f: Format) {
    match f {
        Format::Text => print!("{}", r.to_text()),
        Format::Json => println!("{}", r.to_json()),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EX_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Run(args) => {
            let (mut cfg, shape) = match args.to_config() {
                Ok(c) => c,
                Err(e) => {
                    print_chain(&e);
                    return ExitCode::from(EX_USAGE);
                }
            };
            // Progress by default on a terminal (unless every event is traced there already).
            cfg.progress |= std::io::stderr().is_terminal() && !cfg.trace;
            match dvms_sim::run(cfg, &shape) {
                Ok(r) => {
                    print_report(&r, args.report);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    print_chain(&e);
                    ExitCode::from(if e.is_malformed() {
                        EX_DATAERR
                    } else {
                        EX_NOINPUT
                    })
                }
            }
        }
        Command::Scenario(args) => {
            let scheduler = match args.scheduler.as_deref().map(parse_scheduler).transpose() {
                Ok(s) => s,
                Err(e) => {
                    print_chain(&e);
                    return ExitCode::from(EX_USAGE);
                }
            };
            let text = match read_input(&args.file) {
                Ok(t) => t,
                Err(code) => return code,
            };
            match dvms_sim::run_scenario(&text, scheduler, args.trace) {
                Ok(r) => {
                    print_report(&r, args.report);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("dvms-sim: {}:", args.file.display());
                    print_chain(&e);
                    ExitCode::from(EX_DATAERR)
                }
            }
        }
        Command::Solve(args) => solve(&args.instance),
    }
}

/// `dvms-sim solve INSTANCE.json`: parse, solve with the default options, print the answer.
fn solve(path: &std::path::Path) -> ExitCode {
    let text = match read_input(path) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let inst = match dvms_placement::instance::parse(&text) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("dvms-sim: {}:", path.display());
            print_chain(&e);
            return ExitCode::from(EX_DATAERR);
        }
    };
    // Wall time of the solve is part of the answer (the solver itself never reads a clock).
    let started = std::time::Instant::now();
    let outcome = dvms_placement::solve(&inst.problem, &dvms_placement::Options::default());
    let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    println!(
        "{}",
        dvms_placement::instance::outcome_to_json(&inst, &outcome, us)
    );
    ExitCode::SUCCESS
}
