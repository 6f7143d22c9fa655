//! Invariant sweeps of issue 10 ("protocol safety before real VMs"): memory-tight hosts, lost,
//! jittered and reordered messages, crashes. Every invariant (capacity after every migration,
//! CPU over the limit caused by a plan, exclusivity with epochs) is asserted inside `small_run`.

use std::time::Duration;

use dvms_sim::config::Scheduler;

use super::small_run;

// Reference: protocol.md §7.6, §9.4 (11 GiB hosts with ten 1 GiB VMs: one free GiB each).
#[test]
fn memory_tight_lossy_sweep_keeps_every_invariant() {
    for seed in 0..6 {
        let r = small_run(200, 15, Scheduler::Dvms, seed, |c, sh| {
            sh.host_mem_gib = 11.0;
            c.net.loss = 0.05;
            c.crash_rate = 0.5;
            c.restart_after = Duration::from_secs(60);
        });
        assert!(r.migrations > 0, "seed {seed}: no migration at all");
    }
}

// Reference: protocol.md §7.6 (reordered links).
#[test]
fn reordering_sweep_keeps_every_invariant() {
    for seed in 0..6 {
        let r = small_run(200, 15, Scheduler::Dvms, seed, |c, sh| {
            sh.host_mem_gib = 12.0;
            c.net.jitter = Duration::from_millis(20);
            c.net.reorder = true;
            c.net.loss = 0.01;
        });
        assert!(r.migrations > 0, "seed {seed}: no migration at all");
        assert_eq!(
            r.events_ended_by_reason
                .get("not_worth_it")
                .copied()
                .unwrap_or(0),
            0,
            "seed {seed}: an overload dropped as not worth it"
        );
    }
}
