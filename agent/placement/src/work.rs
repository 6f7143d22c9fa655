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

    /// True once the limit is passed.
    pub(crate) fn exhausted(&self) -> bool {
        self.used > self.limit
    }
}
