//! The run report: JSON (stable field names) and a readable text summary.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::engine::Sim;
use crate::metrics::Dist;

/// What a run measured. Field names are part of the interface (scripts read the JSON).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Number of hosts.
    pub hosts: usize,
    /// Number of VMs.
    pub vms: usize,
    /// Simulated seconds.
    pub duration_s: f64,
    /// The seed.
    pub seed: u64,
    /// `dvms`, `entropy`, `centralized`, `oracle` or `none`.
    pub scheduler: String,
    /// The workload.
    pub workload: String,
    /// Number of sites.
    pub sites: usize,
    /// Host-seconds spent overloaded.
    pub cumulated_violation_s: f64,
    /// Events started (partitions for dvms; overload occurrences for the baselines).
    pub events_started: u64,
    /// Events ended solved (dvms: `Solved`, `NotNeeded`, `NotWorthIt`).
    pub events_solved: u64,
    /// Events ended unsolved (dvms: `Unsolvable`, `GaveUp`).
    pub events_unsolvable: u64,
    /// Events ended otherwise (dvms: `Expired`, `InitiatorLost`, `MigrationFailed`).
    pub events_expired: u64,
    /// dvms events ended, by reason (`solved`, `not_needed`, `not_worth_it`, `gave_up`, ...).
    pub events_ended_by_reason: BTreeMap<String, u64>,
    /// Events that ended without having started (a protocol anomaly if not zero).
    pub events_unmatched: u64,
    /// Events still open at the end of the run.
    pub events_open: u64,
    /// Detection to plan chosen, seconds.
    pub time_to_decide_s: Dist,
    /// Detection to the host no longer overloaded, seconds.
    pub time_to_solve_s: Dist,
    /// Partition sizes at dissolution.
    pub partition_size: Dist,
    /// Completed migrations.
    pub migrations: u64,
    /// Start to end of each completed migration, seconds (sharing the NICs).
    pub migration_time_s: Dist,
    /// Failed migrations.
    pub migrations_failed: u64,
    /// dvms migrations that ended after their partition had dissolved.
    pub migrations_after_dissolve: u64,
    /// MiB moved by completed migrations.
    pub migrated_mib: u64,
    /// Completed migrations between sites.
    pub inter_site_migrations: u64,
    /// Share of completed migrations that crossed sites (0 when none completed).
    pub inter_site_migration_share: f64,
    /// Messages sent.
    pub messages_sent: u64,
    /// Of which between sites.
    pub inter_site_messages: u64,
    /// Gossip publications.
    pub gossip_published: u64,
    /// Invariant violations.
    pub invariant_violations: u64,
    /// The first violations, described.
    pub violations: Vec<String>,
    /// Host crashes.
    pub crashes: u64,
    /// Host restarts.
    pub restarts: u64,
    /// Load changes applied.
    pub load_changes: u64,
    /// Partitions absorbed by merges.
    pub merges: u64,
    /// Takeovers after a lost leader or member.
    pub takeovers: u64,
    /// Migrations the nodes asked to abort after `migrate_timeout`.
    pub migrations_aborted: u64,
    /// Inputs the nodes ignored.
    pub ignored: u64,
    /// Solver calls.
    pub solver_calls: u64,
    /// Solver work units.
    pub solver_work_units: u64,
    /// Work units per solver call.
    pub solver_units_per_call: Dist,
    /// Wall seconds spent in the solver.
    pub solver_wall_s: f64,
    /// Simulated seconds charged for solving.
    pub solver_charged_s: f64,
    /// Computations (solver calls) and the simulated time each was charged, seconds.
    pub computation_s: Dist,
    /// Candidates returned with a summary (dvms).
    pub candidates_with_summary: u64,
    /// Of which the summary was stale: not the candidate's latest publication.
    pub candidates_stale: u64,
    /// Share of candidates with a summary whose summary was stale (0 when none).
    pub candidate_stale_share: f64,
    /// Candidates returned with no summary: gossip had brought the asking host none.
    pub candidates_unknown: u64,
    /// Largest number of scheduled events at once.
    pub queue_peak: usize,
    /// Wall seconds the run took.
    pub wall_s: f64,
    /// Hash of the whole event trace (same command, same hash).
    pub trace_hash: String,
    /// Scenario runs: where each VM ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_placement: Option<BTreeMap<String, String>>,
    /// Scenario runs: hosts still in a partition at the end (should be empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts_in_partition: Option<Vec<String>>,
    /// Scenario runs: up hosts above their CPU limit at the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overloaded_at_end: Option<Vec<String>>,
}

impl Sim {
    /// Events started and not ended: dvms events without `EventEnded`; baseline overloads
    /// still going on.
    fn open_events(&self) -> u64 {
        self.driver.as_ref().map_or(0, |d| d.open_events(self))
    }

    /// The report of the run so far. `wall_s` is left to the caller.
    pub fn report(&self) -> Report {
        let m = &self.metrics;
        let workload = match &self.cfg.workload {
            crate::config::Workload::Vmplaces => "vmplaces".to_owned(),
            crate::config::Workload::Planetlab(d) => format!("planetlab:{}", d.display()),
            crate::config::Workload::Scripted => "scripted".to_owned(),
        };
        Report {
            hosts: self.hosts.len(),
            vms: self.vms.len(),
            duration_s: self.now.as_secs_f64(),
            seed: self.cfg.seed,
            scheduler: self.cfg.scheduler.name().to_owned(),
            workload,
            sites: self.setup.sites.len().max(1),
            cumulated_violation_s: m.violation_s,
            events_started: m.events_started,
            events_solved: m.events_solved,
            events_unsolvable: m.events_unsolvable,
            events_expired: m.events_expired,
            events_ended_by_reason: m.ended_by_reason.clone(),
            events_unmatched: m.events_unmatched,
            events_open: self.open_events(),
            time_to_decide_s: Dist::of(&mut m.time_to_decide.clone()),
            time_to_solve_s: Dist::of(&mut m.time_to_solve.clone()),
            partition_size: Dist::of(&mut m.partition_size.clone()),
            migrations: m.migrations,
            migration_time_s: Dist::of(&mut m.migration_time.clone()),
            migrations_failed: m.migrations_failed,
            migrations_after_dissolve: m.migrations_after_dissolve,
            migrated_mib: m.migrated_mib,
            inter_site_migrations: m.inter_site_migrations,
            inter_site_migration_share: if m.migrations > 0 {
                m.inter_site_migrations as f64 / m.migrations as f64
            } else {
                0.0
            },
            messages_sent: m.messages_sent,
            inter_site_messages: m.inter_site_messages,
            gossip_published: self.gossip.published,
            invariant_violations: m.invariant_violations,
            violations: m.violations.clone(),
            crashes: m.crashes,
            restarts: m.restarts,
            load_changes: m.load_changes,
            merges: m.merges,
            takeovers: m.takeovers,
            migrations_aborted: m.migrations_aborted,
            ignored: m.ignored,
            solver_calls: m.solver_calls,
            solver_work_units: m.solver_work_units,
            solver_units_per_call: Dist::of(&mut m.solver_units.clone()),
            solver_wall_s: m.solver_wall_s,
            solver_charged_s: m.solver_charged_s,
            computation_s: Dist::of(&mut m.computation.clone()),
            candidates_with_summary: m.candidates_with_summary,
            candidates_stale: m.candidates_stale,
            candidate_stale_share: if m.candidates_with_summary > 0 {
                m.candidates_stale as f64 / m.candidates_with_summary as f64
            } else {
                0.0
            },
            candidates_unknown: m.candidates_unknown,
            queue_peak: self.queue_peak,
            wall_s: 0.0,
            trace_hash: m.hash.hex(),
            final_placement: None,
            hosts_in_partition: None,
            overloaded_at_end: None,
        }
    }
}

impl Report {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// A readable summary.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "dvms-sim: {} hosts, {} VMs, {} site(s), {:.0} s simulated, scheduler {}, workload {}, seed {}",
            self.hosts,
            self.vms,
            self.sites,
            self.duration_s,
            self.scheduler,
            self.workload,
            self.seed
        );
        let per_host = if self.hosts > 0 {
            self.cumulated_violation_s / self.hosts as f64
        } else {
            0.0
        };
        let _ = writeln!(
            s,
            "  overload:      {:.1} host-seconds ({per_host:.2} s per host)",
            self.cumulated_violation_s
        );
        let _ = writeln!(
            s,
            "  events:        {} started, {} solved, {} unsolvable, {} expired, {} open at the end",
            self.events_started,
            self.events_solved,
            self.events_unsolvable,
            self.events_expired,
            self.events_open
        );
        if !self.events_ended_by_reason.is_empty() {
            let reasons: Vec<String> = self
                .events_ended_by_reason
                .iter()
                .map(|(r, n)| format!("{r} {n}"))
                .collect();
            let _ = writeln!(s, "  ended by reason: {}", reasons.join(", "));
        }
        let _ = writeln!(s, "  time to decide (s): {}", &self.time_to_decide_s);
        let _ = writeln!(s, "  time to solve (s):  {}", &self.time_to_solve_s);
        let _ = writeln!(s, "  partition size:     {}", &self.partition_size);
        let _ = writeln!(
            s,
            "  migrations:    {} done ({} MiB, {} between sites), {} failed ({} aborted), {} ended after their partition",
            self.migrations,
            self.migrated_mib,
            self.inter_site_migrations,
            self.migrations_failed,
            self.migrations_aborted,
            self.migrations_after_dissolve
        );
        let _ = writeln!(s, "  migration time (s): {}", &self.migration_time_s);
        let _ = writeln!(
            s,
            "  messages:      {} sent ({} between sites), {} gossip publications",
            self.messages_sent, self.inter_site_messages, self.gossip_published
        );
        let _ = writeln!(
            s,
            "  candidates:    {} with a summary, {} of them stale ({:.1} %), {} unknown",
            self.candidates_with_summary,
            self.candidates_stale,
            100.0 * self.candidate_stale_share,
            self.candidates_unknown
        );
        let _ = writeln!(
            s,
            "  solver:        {} calls, {} work units, {:.3} s wall, {:.3} s charged",
            self.solver_calls, self.solver_work_units, self.solver_wall_s, self.solver_charged_s
        );
        let _ = writeln!(s, "  computations (s charged): {}", &self.computation_s);
        let _ = writeln!(
            s,
            "  solver units per call: {}",
            &self.solver_units_per_call
        );
        let _ = writeln!(
            s,
            "  faults:        {} crashes, {} restarts; protocol: {} merges, {} takeovers, {} inputs ignored",
            self.crashes, self.restarts, self.merges, self.takeovers, self.ignored
        );
        let _ = writeln!(s, "  invariant violations: {}", self.invariant_violations);
        for v in &self.violations {
            let _ = writeln!(s, "    - {v}");
        }
        if let Some(p) = &self.final_placement {
            let _ = writeln!(s, "  final placement:");
            for (vm, host) in p {
                let _ = writeln!(s, "    {vm} -> {host}");
            }
        }
        if let Some(h) = &self.hosts_in_partition {
            let _ = writeln!(s, "  hosts in partition at the end: {h:?}");
        }
        if let Some(h) = &self.overloaded_at_end {
            let _ = writeln!(s, "  hosts overloaded at the end: {h:?}");
        }
        let _ = writeln!(
            s,
            "  wall time: {:.2} s, trace hash {}",
            self.wall_s, self.trace_hash
        );
        s
    }
}
