//! Counters, samples and the trace hash of a run.

use dvms_core::Time;

/// FNV-1a, 64 bits: a fixed, hand-written hash for the trace (std's hashers may change).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceHash(u64);

impl Default for TraceHash {
    fn default() -> Self {
        TraceHash(0xcbf2_9ce4_8422_2325)
    }
}

impl TraceHash {
    /// Folds bytes in.
    pub fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 ^= u64::from(x);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01B3);
        }
    }

    /// Folds a number in.
    pub fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }

    /// Folds a record: time, host, a tag and a payload.
    pub fn record(&mut self, now: Time, host: usize, tag: &str, payload: &[u64]) {
        self.u64(now.as_micros());
        self.u64(host as u64);
        self.bytes(tag.as_bytes());
        for &p in payload {
            self.u64(p);
        }
    }

    /// The hash, as 16 hex digits.
    pub fn hex(self) -> String {
        format!("{:016x}", self.0)
    }
}

/// Distribution summary of a sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Dist {
    /// Number of samples (extra field).
    pub count: usize,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Maximum.
    pub max: f64,
}

/// `n=.. mean=.. p50=.. p99=.. max=..`, as the text reports print it.
impl std::fmt::Display for Dist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "n={} mean={:.3} p50={:.3} p99={:.3} max={:.3}",
            self.count, self.mean, self.p50, self.p99, self.max
        )
    }
}

impl Dist {
    /// Summarises `v` (sorted in place).
    pub fn of(v: &mut [f64]) -> Dist {
        if v.is_empty() {
            return Dist::default();
        }
        v.sort_by(f64::total_cmp);
        let rank = |q: f64| {
            let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
            v[i]
        };
        Dist {
            count: v.len(),
            mean: v.iter().sum::<f64>() / v.len() as f64,
            p50: rank(0.5),
            p99: rank(0.99),
            max: v[v.len() - 1],
        }
    }
}

/// Everything counted during a run.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    /// Host-seconds spent overloaded (up hosts whose VMs' CPU demand exceeds the limit).
    pub violation_s: f64,
    /// Events (partitions for dvms, overload occurrences for the baselines) started.
    pub events_started: u64,
    /// Ended solved (or with nothing left to do).
    pub events_solved: u64,
    /// Ended without a plan.
    pub events_unsolvable: u64,
    /// Ended by a lease, a lost initiator or a failed migration; for the baselines, overloads
    /// that ended with no decision.
    pub events_expired: u64,
    /// dvms events ended, by `DissolveReason` name.
    pub ended_by_reason: std::collections::BTreeMap<String, u64>,
    /// `EventEnded` without a matching `EventStarted` (a protocol anomaly if not zero).
    pub events_unmatched: u64,
    /// Detection to plan chosen, seconds.
    pub time_to_decide: Vec<f64>,
    /// Detection to the host no longer overloaded, seconds.
    pub time_to_solve: Vec<f64>,
    /// Partition sizes at dissolution.
    pub partition_size: Vec<f64>,
    /// Migrations completed.
    pub migrations: u64,
    /// Start to end of each completed migration, seconds.
    pub migration_time: Vec<f64>,
    /// Simulated time charged for each computation (solver call), seconds.
    pub computation: Vec<f64>,
    /// Candidates returned to a query with a summary.
    pub candidates_with_summary: u64,
    /// Of which the summary was not the candidate's latest publication (stale).
    pub candidates_stale: u64,
    /// Candidates returned with no summary (none reached the asking host).
    pub candidates_unknown: u64,
    /// Migrations that failed.
    pub migrations_failed: u64,
    /// dvms migrations that ended after their partition had dissolved (see NOTES-for-core §7).
    pub migrations_after_dissolve: u64,
    /// MiB of VM memory moved by completed migrations.
    pub migrated_mib: u64,
    /// Completed migrations between sites.
    pub inter_site_migrations: u64,
    /// Messages handed to the network.
    pub messages_sent: u64,
    /// Of which between sites.
    pub inter_site_messages: u64,
    /// Invariant violations (details in `violations`).
    pub invariant_violations: u64,
    /// The first violations, described.
    pub violations: Vec<String>,
    /// Solver calls.
    pub solver_calls: u64,
    /// Work units the solver reported in total.
    pub solver_work_units: u64,
    /// Work units of each call.
    pub solver_units: Vec<f64>,
    /// Wall time spent in the solver, seconds.
    pub solver_wall_s: f64,
    /// Simulated time charged for solving, seconds.
    pub solver_charged_s: f64,
    /// Host crashes.
    pub crashes: u64,
    /// Host restarts.
    pub restarts: u64,
    /// Partitions absorbed by merges.
    pub merges: u64,
    /// Leaders that took over after a lost leader or member.
    pub takeovers: u64,
    /// Migrations a node asked to abort (`Output::AbortMigration`).
    pub migrations_aborted: u64,
    /// Events the nodes reported as `Ignored`.
    pub ignored: u64,
    /// Load changes applied.
    pub load_changes: u64,
    /// The trace hash.
    pub hash: TraceHash,
}

impl Metrics {
    /// Records an invariant violation (the first 20 are kept in full).
    pub fn violation(&mut self, now: Time, what: String) {
        self.invariant_violations += 1;
        self.hash.record(now, 0, "violation", &[]);
        if self.violations.len() < 20 {
            self.violations.push(format!("at {now}: {what}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_reference_vector() {
        let mut h = TraceHash::default();
        h.bytes(b"a");
        assert_eq!(h.hex(), "af63dc4c8601ec8c");
    }

    #[test]
    fn dist_uses_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        let d = Dist::of(&mut v);
        assert_eq!((d.p50, d.p99, d.max, d.count), (50.0, 99.0, 100.0, 100));
        assert_eq!(Dist::of(&mut []), Dist::default());
    }
}
