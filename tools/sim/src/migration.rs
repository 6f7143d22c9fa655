//! The live-migration time model: pre-copy, as in SimGrid's model that VMPlaceS uses.
//!
//! Round 0 sends the whole memory `M` at bandwidth `B`. While a round of length `t` runs, the VM
//! dirties `D * t` MiB, which the next round sends. Rounds stop when what is left can be sent
//! within the downtime target (30 ms), or after 30 rounds; then the VM is paused and the rest is
//! sent (the downtime). The dirty rate is `D = intensity * B * cpu_share`: a VM's intensity is
//! drawn once per VM, uniform in 10–80 % (VMPlaceS m1.small's "memory-dirtying intensity"), and
//! scaled by how busy its vCPU is (an idle VM dirties little).
//!
//! Migrations share the network: [`Precopy`] is the same model driven by the engine at a rate
//! that changes while it runs (each host's NIC is shared by every migration in and out of it,
//! see `crate::migrations`). Dirty pages keep arriving at `D` whatever the rate, so a
//! migration squeezed by others takes more rounds, or stops converging and pays a long
//! downtime. [`estimate`] is the constant-rate case.

use std::time::Duration;

/// Stop pre-copy when the rest fits in this downtime.
pub const DOWNTIME_TARGET_S: f64 = 0.03;
/// At most this many pre-copy rounds.
pub const MAX_ROUNDS: u32 = 30;

/// The duration of one live migration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    /// From start to the VM running on the destination.
    pub total: Duration,
    /// The stop-and-copy pause.
    pub downtime: Duration,
    /// Pre-copy rounds.
    pub rounds: u32,
    /// MiB sent over the network.
    pub sent_mib: f64,
}

/// A pre-copy migration in progress, driven at a rate that may change between calls.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Precopy {
    mem: f64,
    dirty: f64,
    /// MiB left to send in the current round (or in the stop-and-copy phase).
    left: f64,
    /// Seconds since the current round started.
    round_s: f64,
    /// Size of the current round when it started, MiB.
    round_mib: f64,
    rounds: u32,
    stop_copy: bool,
    /// MiB sent so far.
    pub sent_mib: f64,
}

impl Precopy {
    /// A migration of `mem_mib` whose VM dirties `dirty_mib_s`.
    pub fn new(mem_mib: f64, dirty_mib_s: f64) -> Precopy {
        let mem = mem_mib.max(0.0);
        Precopy {
            mem,
            dirty: dirty_mib_s.max(0.0),
            left: mem,
            round_s: 0.0,
            round_mib: mem,
            rounds: 0,
            stop_copy: false,
            sent_mib: 0.0,
        }
    }

    /// Sends at `rate_mib_s` for `dt_s` seconds (never past the end of the phase).
    pub fn progress(&mut self, rate_mib_s: f64, dt_s: f64) {
        let sent = (rate_mib_s.max(0.0) * dt_s.max(0.0)).min(self.left);
        self.left -= sent;
        self.sent_mib += sent;
        self.round_s += dt_s.max(0.0);
    }

    /// Seconds until the current phase ends at `rate_mib_s`.
    pub fn phase_left_s(&self, rate_mib_s: f64) -> f64 {
        self.left / rate_mib_s.max(1e-3)
    }

    /// The current phase has been sent (`left` is about zero): starts the next round, or the
    /// stop-and-copy, at `rate_mib_s`. Returns true when the migration is complete.
    pub fn phase_done(&mut self, rate_mib_s: f64) -> bool {
        self.sent_mib += self.left;
        self.left = 0.0;
        if self.stop_copy {
            return true;
        }
        self.rounds += 1;
        let dirtied = (self.dirty * self.round_s).min(self.mem);
        let rate = rate_mib_s.max(1e-3);
        if dirtied <= rate * DOWNTIME_TARGET_S
            || self.rounds >= MAX_ROUNDS
            || dirtied >= self.round_mib
        {
            // Fits the downtime, too many rounds, or not converging: pause and copy the rest.
            self.stop_copy = true;
        }
        self.left = dirtied;
        self.round_mib = dirtied;
        self.round_s = 0.0;
        if self.left <= 0.0 && self.stop_copy {
            return true;
        }
        false
    }

    /// Pre-copy rounds completed so far.
    pub fn rounds(&self) -> u32 {
        self.rounds
    }

    /// Seconds to completion if the rate stayed at `rate_mib_s`.
    pub fn remaining_s(&self, rate_mib_s: f64) -> f64 {
        let mut p = *self;
        let mut total = 0.0;
        loop {
            let t = p.phase_left_s(rate_mib_s);
            total += t;
            p.progress(rate_mib_s, t);
            if p.phase_done(rate_mib_s) {
                return total;
            }
        }
    }
}

/// Estimates a pre-copy migration of `mem_mib` at `bw_mib_s` with dirty rate `dirty_mib_s`.
pub fn estimate(mem_mib: f64, bw_mib_s: f64, dirty_mib_s: f64) -> Estimate {
    let bw = bw_mib_s.max(1e-3);
    let mut p = Precopy::new(mem_mib, dirty_mib_s);
    let mut total = 0.0;
    loop {
        let t = p.phase_left_s(bw);
        let in_stop_copy = p.stop_copy;
        total += t;
        p.progress(bw, t);
        if p.phase_done(bw) {
            let downtime = if in_stop_copy { t } else { 0.0 };
            return Estimate {
                total: Duration::from_secs_f64(total),
                downtime: Duration::from_secs_f64(downtime),
                rounds: p.rounds,
                sent_mib: p.sent_mib,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_vm_moves_at_line_rate() {
        let e = estimate(1024.0, 128.0, 0.0);
        assert!((e.total.as_secs_f64() - 8.0).abs() < 1e-6, "{e:?}");
        assert_eq!(e.rounds, 1);
    }

    #[test]
    fn dirtying_lengthens_the_migration_and_converges() {
        let e = estimate(1024.0, 128.0, 64.0);
        // Geometric series 8 * (1 + 1/2 + 1/4 + ...) ~ 16 s.
        assert!(
            e.total.as_secs_f64() > 15.0 && e.total.as_secs_f64() < 16.1,
            "{e:?}"
        );
        assert!(e.downtime.as_secs_f64() <= DOWNTIME_TARGET_S + 1e-9);
        let slow = estimate(1024.0, 128.0, 200.0);
        assert!(slow.rounds <= 2, "{slow:?}");
        assert!(slow.total.as_secs_f64() > 8.0);
    }

    #[test]
    fn a_slower_share_takes_longer_and_may_stop_converging() {
        // Alone at 128 MiB/s the VM converges; at a quarter of that it dirties faster than
        // it is sent and ends in a long stop-and-copy.
        let alone = estimate(1024.0, 128.0, 64.0);
        let shared = estimate(1024.0, 32.0, 64.0);
        assert!(shared.total.as_secs_f64() > 4.0 * 8.0, "{shared:?}");
        assert!(shared.downtime > alone.downtime, "{shared:?} vs {alone:?}");
    }

    #[test]
    fn a_rate_change_midway_is_honoured() {
        // Idle VM, 1024 MiB: 4 s at 128 MiB/s (512 MiB), then the rest at 64 MiB/s (8 s).
        let mut p = Precopy::new(1024.0, 0.0);
        p.progress(128.0, 4.0);
        let t = p.phase_left_s(64.0);
        assert!((t - 8.0).abs() < 1e-9, "{t}");
        p.progress(64.0, t);
        assert!(p.phase_done(64.0));
        assert!((p.sent_mib - 1024.0).abs() < 1e-9);
        assert!((Precopy::new(1024.0, 0.0).remaining_s(128.0) - 8.0).abs() < 1e-9);
    }
}
