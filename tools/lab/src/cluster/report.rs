//! The report of a lab cluster run: the simulator's field names where they mean the same
//! thing (`dvms_sim::Report`), plus what only a real cluster can measure.

use std::fmt::Write as _;

use dvms_sim::metrics::Dist;
use serde::Serialize;

/// What a `dvms-lab cluster` run measured. Field names are part of the interface.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LabReport {
    /// Number of hosts (agents).
    pub hosts: usize,
    /// Number of VMs.
    pub vms: usize,
    /// Seconds measured (from all agents ready to the end of the run).
    pub duration_s: f64,
    /// The workload's seed.
    pub seed: u64,
    /// `dvms` (agents act through the lab) or `none` (agents in `observe` mode).
    pub scheduler: String,
    /// The workload.
    pub workload: String,
    /// Mean time between two load changes of one VM, seconds.
    pub load_period_s: f64,
    /// Cores per host.
    pub host_cores: u64,
    /// Migration bandwidth, MiB/s.
    pub bandwidth_mbs: f64,
    /// Overload threshold, percent of a host's CPU capacity.
    pub cpu_threshold_pct: u8,
    /// Host-seconds spent with demand above capacity × threshold (the simulator's measure).
    pub cumulated_violation_s: f64,
    /// Overload onsets seen by the lab (the simulator's baselines count these as events).
    pub overloads: u64,
    /// Events started by agents (partitions initiated), from their status.
    pub events_started: u64,
    /// Plans chosen by leaders, from their status.
    pub plans_chosen: u64,
    /// Overload onset to the first migration asked off that host, seconds. The simulator's
    /// `time_to_decide_s` starts after the detection hold; this one includes it (and the
    /// sampling period), and ends when the lab receives the migration.
    pub time_to_decide_s: Dist,
    /// Duration of each overload episode, seconds.
    pub overload_episode_s: Dist,
    /// Completed migrations.
    pub migrations: u64,
    /// Failed migrations (refused or failed by the lab).
    pub migrations_failed: u64,
    /// Migrations aborted by an agent.
    pub migrations_aborted: u64,
    /// Migrations still running when the run ended.
    pub migrations_in_flight_at_end: usize,
    /// MiB moved by completed migrations.
    pub migrated_mib: u64,
    /// Duration of each completed migration, seconds.
    pub migration_s: Dist,
    /// Messages sent by all agents (their core counters).
    pub messages_sent: u64,
    /// Load changes applied.
    pub load_changes: u64,
    /// VMs found in no host root at the end.
    pub vms_lost: usize,
    /// VMs found in more than one host root at the end.
    pub vms_duplicated: usize,
    /// VMs found in another root than the lab's ground truth.
    pub vms_misplaced: usize,
    /// Largest peak RSS of an agent (`VmHWM`), MiB.
    pub agent_rss_mib_max: f64,
    /// Mean CPU of one agent over the run, percent of one core.
    pub agent_cpu_pct_mean: f64,
    /// Largest CPU of one agent over the run, percent of one core.
    pub agent_cpu_pct_max: f64,
    /// Seconds from the first agent's start to all agents ready.
    pub startup_s: f64,
    /// Agents that exited during the run (should be 0).
    pub agents_exited: usize,
    /// Wall seconds the whole command took.
    pub wall_s: f64,
    /// Set when the run was cut short (Ctrl-C).
    pub interrupted: bool,
}

impl LabReport {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// A readable summary.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "dvms-lab cluster: {} real dvmsd agents ({} cores, overload above {} %), {} VMs, {:.0} s measured, scheduler {}, workload {} (load period {:.0} s), seed {}{}",
            self.hosts,
            self.host_cores,
            self.cpu_threshold_pct,
            self.vms,
            self.duration_s,
            self.scheduler,
            self.workload,
            self.load_period_s,
            self.seed,
            if self.interrupted {
                " (interrupted)"
            } else {
                ""
            }
        );
        let per_host = self.cumulated_violation_s / self.hosts.max(1) as f64;
        let _ = writeln!(
            s,
            "  overload:      {:.1} host-seconds ({per_host:.2} s per host), {} onsets",
            self.cumulated_violation_s, self.overloads
        );
        let _ = writeln!(s, "  overload episode (s): {}", &self.overload_episode_s);
        let _ = writeln!(
            s,
            "  time to decide (s):   {}  (onset to the first migration asked)",
            &self.time_to_decide_s
        );
        let _ = writeln!(
            s,
            "  agents:        {} events started, {} plans chosen, {} messages sent",
            self.events_started, self.plans_chosen, self.messages_sent
        );
        let _ = writeln!(
            s,
            "  migrations:    {} done ({} MiB), {} failed, {} aborted, {} still running at the end",
            self.migrations,
            self.migrated_mib,
            self.migrations_failed,
            self.migrations_aborted,
            self.migrations_in_flight_at_end
        );
        let _ = writeln!(s, "  migration time (s):   {}", &self.migration_s);
        let _ = writeln!(
            s,
            "  VMs:           {} lost, {} duplicated, {} misplaced; {} load changes",
            self.vms_lost, self.vms_duplicated, self.vms_misplaced, self.load_changes
        );
        let _ = writeln!(
            s,
            "  agent footprint: RSS max {:.1} MiB, CPU mean {:.2} % (max {:.2} %) of a core; startup {:.1} s; {} exited early",
            self.agent_rss_mib_max,
            self.agent_cpu_pct_mean,
            self.agent_cpu_pct_max,
            self.startup_s,
            self.agents_exited
        );
        let _ = writeln!(s, "  wall time: {:.1} s", self.wall_s);
        s
    }
}
