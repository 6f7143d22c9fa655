//! Test cases, by theme.

mod cli;
mod determinism;
mod safety;
mod scenarios;
mod schedulers;

use dvms_sim::config::{Scheduler, SimConfig};
use dvms_sim::workload::Shape;
use dvms_sim::{Report, run};

/// A small VMPlaceS cluster.
pub(crate) fn shape(hosts: usize) -> Shape {
    Shape {
        hosts,
        vms_per_host: 10,
        host_cores: 7.0,
        host_mem_gib: 32.0,
        vm_mem_gib: 1.0,
        sites: 1,
    }
}

/// Runs `hosts` hosts for `minutes` with `scheduler` and `seed`, after `tweak`.
pub(crate) fn small_run(
    hosts: usize,
    minutes: u64,
    scheduler: Scheduler,
    seed: u64,
    tweak: impl FnOnce(&mut SimConfig, &mut Shape),
) -> Report {
    let mut cfg = SimConfig {
        seed,
        scheduler,
        duration: std::time::Duration::from_secs(minutes * 60),
        ..SimConfig::default()
    };
    let mut sh = shape(hosts);
    tweak(&mut cfg, &mut sh);
    let r = run(cfg, &sh).expect("the generated cluster is valid");
    assert_eq!(
        r.invariant_violations, 0,
        "seed {seed}, {scheduler:?}: {:#?}",
        r.violations
    );
    r
}

/// The PlanetLab traces of 2011-03-03 (`../shared/traces`), or `None` (the test is skipped,
/// with a note). In CI (`CI` set and not `false`/`0`) missing traces fail the test: a replay
/// test that passes without running proves nothing.
pub(crate) fn planetlab_dir() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/traces/planetlab/20110303");
    if dir.is_dir() {
        return Some(dir);
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(!ci, "CI: PlanetLab traces missing at {}", dir.display());
    eprintln!("skipped: no traces at {}", dir.display());
    None
}

/// True once the real placement solver is in: it can move a VM off an overloaded host.
pub(crate) fn solver_is_real() -> bool {
    use dvms_core::model::{HostSpec, NodeId, Problem, Resources, Thresholds, VmId, VmSpec};
    let host = |i| HostSpec {
        id: NodeId(i),
        capacity: Resources::new(2000, 4096),
        thresholds: Thresholds::default(),
    };
    let vm = |i| VmSpec {
        id: VmId(i),
        host: NodeId(1),
        demand: Resources::new(1500, 1024),
        migratable: true,
    };
    let p = Problem {
        hosts: vec![host(1), host(2)],
        vms: vec![vm(1), vm(2)],
        constraints: vec![],
    };
    let out = dvms_placement::solve(&p, &dvms_placement::Options::default());
    out.result.is_ok_and(|plan| !plan.is_empty())
}
