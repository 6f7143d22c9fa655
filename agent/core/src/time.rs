//! Protocol time: a core-owned instant type that drivers construct freely.
//!
//! The core never reads a clock. Drivers convert their clock (tokio's `Instant`, the simulator's
//! virtual clock) into [`Time`] at a single point and pass it with every input.

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// An instant, in microseconds since an arbitrary, driver-chosen epoch.
///
/// Instants from different processes are not comparable; only durations cross the wire.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Time(pub u64);

impl Time {
    /// The epoch.
    pub const ZERO: Time = Time(0);

    /// Builds an instant from whole microseconds since the epoch.
    pub const fn from_micros(us: u64) -> Time {
        Time(us)
    }

    /// Builds an instant from whole seconds since the epoch.
    pub const fn from_secs(s: u64) -> Time {
        Time(s.saturating_mul(1_000_000))
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Seconds since the epoch, as a float (for reports).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }

    /// The duration from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Time) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Time {
    type Output = Time;
    fn add(self, d: Duration) -> Time {
        Time(self.0.saturating_add(duration_micros(d)))
    }
}

impl Sub<Duration> for Time {
    type Output = Time;
    fn sub(self, d: Duration) -> Time {
        Time(self.0.saturating_sub(duration_micros(d)))
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}s", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

/// A duration in whole microseconds, saturating at `u64::MAX`.
pub fn duration_micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_and_since_round_trip() {
        let t = Time::from_secs(3) + Duration::from_millis(250);
        assert_eq!(t.as_micros(), 3_250_000);
        assert_eq!(
            t.saturating_since(Time::from_secs(3)),
            Duration::from_millis(250)
        );
        assert_eq!(Time::from_secs(1).saturating_since(t), Duration::ZERO);
        assert_eq!(t.to_string(), "3.250000s");
    }
}
