//! The live-migration time model: pre-copy, as in SimGrid's model that VMPlaceS uses.
//!
//! Round 0 sends the whole memory `M` at bandwidth `B`. While a round of length `t` runs, the VM
//! dirties `D * t` MiB, which the next round sends. Rounds stop when what is left can be sent
//! within the downtime target (30 ms), or after 30 rounds; then the VM is paused and the rest is
//! sent (the downtime). The dirty rate is `D = intensity * B * cpu_share`: a VM's intensity is
//! drawn once per VM, uniform in 10–80 % (VMPlaceS m1.small's "memory-dirtying intensity"), and
//! scaled by how busy its vCPU is (an idle VM dirties little). Concurrent migrations do not share
//! bandwidth (no NIC contention modelled).

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

/// Estimates a pre-copy migration of `mem_mib` at `bw_mib_s` with dirty rate `dirty_mib_s`.
pub fn estimate(mem_mib: f64, bw_mib_s: f64, dirty_mib_s: f64) -> Estimate {
    let bw = bw_mib_s.max(1e-3);
    let stop_below = bw * DOWNTIME_TARGET_S;
    let mut to_send = mem_mib.max(0.0);
    let mut total = 0.0;
    let mut sent = 0.0;
    let mut rounds = 0;
    while rounds < MAX_ROUNDS && to_send > stop_below {
        let t = to_send / bw;
        total += t;
        sent += to_send;
        rounds += 1;
        let dirtied = (dirty_mib_s * t).min(mem_mib);
        if dirtied >= to_send {
            // Not converging: more is dirtied than sent; stop and copy.
            to_send = dirtied;
            break;
        }
        to_send = dirtied;
    }
    let downtime = to_send / bw;
    total += downtime;
    sent += to_send;
    Estimate {
        total: Duration::from_secs_f64(total),
        downtime: Duration::from_secs_f64(downtime),
        rounds,
        sent_mib: sent,
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
}
