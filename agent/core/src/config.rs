//! Protocol settings, validated once into a [`Config`] whose fields are always consistent.

use std::time::Duration;

use crate::model::Thresholds;

/// Protocol settings of one node. Build with [`Config::default`] and the `with_*` methods, then
/// call [`Config::validate`]: the drivers only ever hand a validated config to a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Per-resource overload thresholds of this host, in percent of capacity.
    pub thresholds: Thresholds,
    /// How long a threshold must be held before a problem is raised (the hysteresis).
    pub detect_hold: Duration,
    /// Raise consolidation events for underloaded hosts.
    pub underload_enabled: bool,
    /// A host whose CPU demand stays below this share of capacity is worth emptying.
    pub underload_cpu_pct: u8,
    /// How long the underload must hold before a consolidation event starts.
    pub underload_hold: Duration,
    /// Pause before raising again a problem whose event ended unsolved; doubles per failure.
    pub retry_backoff: Duration,
    /// Ceiling of the doubling retry backoff.
    pub retry_backoff_max: Duration,
    /// Membership expires when nothing is heard from the leader for this long.
    pub lease: Duration,
    /// How often a leader renews its members' leases.
    pub renew_period: Duration,
    /// How long a leader waits for a candidate to take the ISP before trying the next one.
    pub hop_timeout: Duration,
    /// How long a leader waits for the solver.
    pub solve_timeout: Duration,
    /// How long a migration may run before its source aborts it (`docs/protocol.md` §9.5).
    pub migrate_timeout: Duration,
    /// The partition size below which the solver is not asked.
    pub min_partition_size: usize,
    /// The largest partition; an overload not solved at this size is unsolvable.
    pub max_partition_size: usize,
    /// The largest partition a consolidation event may grow to.
    pub max_consolidation_size: usize,
    /// How many candidates a leader asks for at once.
    pub candidates_per_query: usize,
    /// How long a partition may stay `Blocked` before it gives up.
    pub blocked_budget: Duration,
    /// Pause between two attempts of a blocked partition to find a free host or a merge.
    pub blocked_retry: Duration,
    /// A consolidation plan is applied only if it lowers the partition's badness by at least
    /// this much; an overload or an evacuation is always worth ending (`docs/protocol.md` §5.5).
    pub improvement_margin_milli: u64,
    /// Cooldown after a VM's first move; doubles with each further move.
    pub cooldown_base: Duration,
    /// Ceiling of the doubling cooldown.
    pub cooldown_max: Duration,
    /// Minimum interval between two gossiped summaries.
    pub gossip_min_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            thresholds: Thresholds::default(),
            detect_hold: Duration::from_secs(2),
            underload_enabled: false,
            underload_cpu_pct: 20,
            underload_hold: Duration::from_secs(60),
            retry_backoff: Duration::from_secs(5),
            retry_backoff_max: Duration::from_secs(60),
            lease: Duration::from_secs(5),
            renew_period: Duration::from_secs(1),
            hop_timeout: Duration::from_millis(500),
            solve_timeout: Duration::from_secs(5),
            migrate_timeout: Duration::from_secs(300),
            min_partition_size: 2,
            max_partition_size: 32,
            max_consolidation_size: 8,
            candidates_per_query: 32,
            blocked_budget: Duration::from_secs(5),
            blocked_retry: Duration::from_millis(250),
            improvement_margin_milli: 10,
            cooldown_base: Duration::from_secs(120),
            cooldown_max: Duration::from_secs(3600),
            gossip_min_interval: Duration::from_secs(1),
        }
    }
}

/// The longest duration any setting may have (a year): every sum and product the node makes of
/// settings then stays far from overflow.
pub const MAX_SETTING: Duration = Duration::from_secs(365 * 24 * 3600);

/// The largest partition the wire format accepts.
pub const MAX_PARTITION_SIZE: usize = 64;

/// Why a configuration was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value is outside its allowed range.
    #[error("{key} = {value} is out of range: {expected}")]
    OutOfRange {
        /// The setting.
        key: &'static str,
        /// The value given, rendered.
        value: String,
        /// What is allowed.
        expected: &'static str,
    },
}

fn check(
    ok: bool,
    key: &'static str,
    value: impl std::fmt::Debug,
    expected: &'static str,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange {
            key,
            value: format!("{value:?}"),
            expected,
        })
    }
}

impl Config {
    /// Checks every range and the relations between settings.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let t = self.thresholds;
        check(
            (1..=100).contains(&t.cpu_pct),
            "thresholds.cpu_pct",
            t.cpu_pct,
            "1..=100",
        )?;
        check(
            (1..=100).contains(&t.mem_pct),
            "thresholds.mem_pct",
            t.mem_pct,
            "1..=100",
        )?;
        check(
            self.underload_cpu_pct < t.cpu_pct,
            "underload_cpu_pct",
            self.underload_cpu_pct,
            "below thresholds.cpu_pct",
        )?;
        let durations = [
            ("detect_hold", self.detect_hold),
            ("underload_hold", self.underload_hold),
            ("retry_backoff", self.retry_backoff),
            ("retry_backoff_max", self.retry_backoff_max),
            ("lease", self.lease),
            ("renew_period", self.renew_period),
            ("hop_timeout", self.hop_timeout),
            ("solve_timeout", self.solve_timeout),
            ("migrate_timeout", self.migrate_timeout),
            ("blocked_budget", self.blocked_budget),
            ("blocked_retry", self.blocked_retry),
            ("cooldown_base", self.cooldown_base),
            ("cooldown_max", self.cooldown_max),
            ("gossip_min_interval", self.gossip_min_interval),
        ];
        for (key, d) in durations {
            check(d <= MAX_SETTING, key, d, "at most 365 days")?;
        }
        check(!self.lease.is_zero(), "lease", self.lease, "more than zero")?;
        // A zero period would re-arm the renewal timer at the instant it fires: the node would
        // spin inside `handle_timeout`.
        check(
            !self.renew_period.is_zero(),
            "renew_period",
            self.renew_period,
            "more than zero",
        )?;
        // §7.2: the initiator suspects its leader after 7/10 of the lease; at most a fifth of the
        // lease per renewal lets two renewals in a row be lost without any suspicion.
        check(
            self.renew_period
                .checked_mul(5)
                .is_some_and(|d| d <= self.lease),
            "renew_period",
            self.renew_period,
            "at most a fifth of the lease",
        )?;
        check(
            !self.hop_timeout.is_zero(),
            "hop_timeout",
            self.hop_timeout,
            "more than zero",
        )?;
        check(
            !self.solve_timeout.is_zero(),
            "solve_timeout",
            self.solve_timeout,
            "more than zero",
        )?;
        check(
            !self.migrate_timeout.is_zero(),
            "migrate_timeout",
            self.migrate_timeout,
            "more than zero",
        )?;
        check(
            (1..=MAX_PARTITION_SIZE).contains(&self.min_partition_size),
            "min_partition_size",
            self.min_partition_size,
            "1..=64",
        )?;
        check(
            (self.min_partition_size..=MAX_PARTITION_SIZE).contains(&self.max_partition_size),
            "max_partition_size",
            self.max_partition_size,
            "min_partition_size..=64",
        )?;
        check(
            (2..=self.max_partition_size).contains(&self.max_consolidation_size),
            "max_consolidation_size",
            self.max_consolidation_size,
            "2..=max_partition_size",
        )?;
        check(
            (1..=64).contains(&self.candidates_per_query),
            "candidates_per_query",
            self.candidates_per_query,
            "1..=64",
        )?;
        check(
            !self.blocked_retry.is_zero(),
            "blocked_retry",
            self.blocked_retry,
            "more than zero",
        )?;
        check(
            self.cooldown_base <= self.cooldown_max,
            "cooldown_base",
            self.cooldown_base,
            "at most cooldown_max",
        )?;
        check(
            self.retry_backoff <= self.retry_backoff_max,
            "retry_backoff",
            self.retry_backoff,
            "at most retry_backoff_max",
        )?;
        Ok(self)
    }

    /// The initiator suspects its leader after this much silence: 7/10 of the lease, so at
    /// least two renewals in a row may be lost (the renewal period is at most a fifth of the
    /// lease) and the initiator still takes over before the other members' memberships expire.
    pub fn leader_suspect_after(&self) -> Duration {
        self.lease * 7 / 10
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn out_of_range_value_is_named() {
        let cfg = Config {
            min_partition_size: 0,
            ..Config::default()
        };
        let err = cfg.validate().unwrap_err();
        assert!(err.to_string().contains("min_partition_size"), "{err}");
        let cfg = Config {
            renew_period: Duration::from_secs(2),
            ..Config::default()
        };
        assert!(
            cfg.validate()
                .unwrap_err()
                .to_string()
                .contains("renew_period")
        );
    }

    // Reference: protocol.md §7.2 (two lost renewals are tolerated).
    #[test]
    fn finding3_two_lost_renewals_do_not_raise_suspicion() {
        let cfg = Config::default().validate().unwrap();
        assert!(cfg.renew_period * 3 < cfg.leader_suspect_after());
        assert!(cfg.leader_suspect_after() < cfg.lease);
    }

    #[test]
    fn finding6_huge_durations_are_refused_without_panicking() {
        let cfg = Config {
            renew_period: Duration::MAX,
            ..Config::default()
        };
        let err = cfg.validate().unwrap_err();
        assert!(err.to_string().contains("renew_period"), "{err}");
        let cfg = Config {
            lease: Duration::MAX,
            renew_period: Duration::from_secs(u64::MAX / 4),
            ..Config::default()
        };
        assert!(cfg.validate().is_err());
        let cfg = Config {
            hop_timeout: Duration::from_secs(u64::MAX),
            ..Config::default()
        };
        let err = cfg.validate().unwrap_err();
        assert!(err.to_string().contains("hop_timeout"), "{err}");
    }

    #[test]
    fn zero_renew_period_is_refused() {
        let cfg = Config {
            renew_period: Duration::ZERO,
            ..Config::default()
        };
        let err = cfg.validate().unwrap_err();
        assert!(err.to_string().contains("renew_period"), "{err}");
    }
}
