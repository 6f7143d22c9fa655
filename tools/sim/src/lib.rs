//! dvms-sim: a deterministic discrete-event simulator of DVMS and its baselines.
//!
//! It drives the real protocol (`dvms-core`) and solver (`dvms-placement`) on thousands of
//! simulated hosts, with virtual time (it jumps from one scheduled event to the next and never
//! ticks hosts), a network model (latency, loss, cuts, sites), a gossip model, host crashes and a
//! pre-copy live-migration time model. Same configuration and seed, same `trace_hash`.
//!
//! # Layout
//! - [`config`]: run settings and duration parsing; [`cli`]: the command line; [`input`]: the
//!   bound of every input and capped file reads.
//! - [`workload`]: generated clusters, the VMPlaceS load model, PlanetLab traces.
//! - [`engine`]: the event queue, host and VM model; `events`: workload, crash and scripted
//!   events; `migrations`: migrations in flight sharing the NICs ([`migration`]: the pre-copy
//!   model); [`net`], [`gossip`] (per-host views), [`overlay`] (publishing, lookups), [`keys`].
//! - `sched`: the one interface the engine drives schedulers through; `dvms_driver` and `dvms`:
//!   one `dvms_core::Node` per host; `baseline`: entropy, centralized, oracle, none; `solver`:
//!   the placement solver and its charged time.
//! - `observe`: what the engine and drivers report; `invariants`: the checks made on it;
//!   [`metrics`], [`report`]: what is measured; `progress`: the stderr progress line.
//! - [`scenario`]: scripted TOML scenarios for regression tests.

pub mod cli;
pub mod config;
pub mod engine;
pub mod gossip;
pub mod input;
pub mod keys;
pub mod metrics;
pub mod migration;
pub mod net;
pub mod overlay;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod workload;

mod baseline;
mod dvms;
mod dvms_driver;
mod events;
mod invariants;
mod migrations;
mod observe;
mod progress;
mod sched;
mod solver;

pub use baseline::{ORACLE_HELPERS, entropy_time};
pub use config::{Scheduler, SimConfig};
pub use engine::{SetupError, Sim};
pub use report::Report;
pub use solver::{NS_PER_PROBLEM_ITEM, NS_PER_WORK_UNIT, REPAIR_UNITS_PER_ITEM};

/// Generates a cluster of `shape`, runs it under `cfg` and reports (with `wall_s`).
pub fn run(cfg: SimConfig, shape: &workload::Shape) -> Result<Report, SetupError> {
    let started = std::time::Instant::now();
    let setup = workload::generate(shape);
    let mut sim = Sim::new(cfg, setup)?;
    sim.run();
    let mut report = sim.report();
    report.wall_s = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Parses and runs a scenario file's text (with `wall_s`).
pub fn run_scenario(
    text: &str,
    scheduler: Option<Scheduler>,
    trace: bool,
) -> Result<Report, scenario::ScenarioError> {
    let started = std::time::Instant::now();
    let mut sc = scenario::parse(text)?;
    if let Some(s) = scheduler {
        sc.set_scheduler(s);
    }
    sc.set_trace(trace);
    let mut report = sc.run()?;
    report.wall_s = started.elapsed().as_secs_f64();
    Ok(report)
}
