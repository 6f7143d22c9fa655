//! Work accounting: the solver's budget, counted in work units, never wall time.

/// Work spent against a limit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Work {
    /// Units spent so far.
    pub(crate) used: u64,
    /// Units allowed.
    pub(crate) limit: u64,
}

impl Work {
    /// No work spent yet.
    pub(crate) fn new(limit: u64) -> Work {
        Work { used: 0, limit }
    }

    /// Spends `n` units; false once the limit is passed.
    pub(crate) fn tick(&mut self, n: u64) -> bool {
        self.used = self.used.saturating_add(n);
        self.used <= self.limit
    }

    /// A sub-budget with the units spent so far and at most `units` more (never past the
    /// limit); the caller adds its `used` back.
    pub(crate) fn slice(&self, units: u64) -> Work {
        Work {
            used: self.used,
            limit: self.used.saturating_add(units).min(self.limit),
        }
    }

    /// Units left before the limit.
    pub(crate) fn left(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }

    /// True once the limit is passed.
    pub(crate) fn exhausted(&self) -> bool {
        self.used > self.limit
    }
}
