//! Deterministic randomness: every random draw of the simulator comes from a `ChaCha8Rng`
//! stream derived from `--seed` and a fixed stream number, so that adding draws to one model
//! (say, the network) does not shift the workload another scheduler sees.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// A fixed 64-bit mixing function (splitmix64's finaliser).
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Independent random streams of one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// The workload: initial loads, load changes.
    Workload = 1,
    /// Network latency jitter and message loss.
    Net = 2,
    /// Host crashes and restarts.
    Crash = 3,
    /// Per-VM dirty rates of the migration model.
    Migration = 4,
    /// Gossip phases and losses.
    Gossip = 5,
}

/// The random stream `stream` of the run seeded with `seed`.
pub fn stream(seed: u64, stream: Stream) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(splitmix64(seed ^ splitmix64(stream as u64)))
}

/// A seed for node `index` in its `epoch`-th life.
pub fn node_seed(seed: u64, index: usize, epoch: u32) -> u64 {
    splitmix64(seed ^ splitmix64((index as u64) << 20 ^ u64::from(epoch)))
}

/// A uniform draw in `[0, 1)`.
pub fn unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// True with probability `p`.
pub fn chance(rng: &mut ChaCha8Rng, p: f64) -> bool {
    p > 0.0 && unit(rng) < p
}

/// An exponential draw with the given mean.
pub fn exponential(rng: &mut ChaCha8Rng, mean: f64) -> f64 {
    -mean * (1.0 - unit(rng)).ln()
}

/// A Gaussian draw (Box-Muller).
pub fn gaussian(rng: &mut ChaCha8Rng, mean: f64, sd: f64) -> f64 {
    let u1 = 1.0 - unit(rng);
    let u2 = unit(rng);
    mean + sd * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A uniform index below `n` (`n > 0`).
pub fn below(rng: &mut ChaCha8Rng, n: usize) -> usize {
    ((rng.next_u64() as u128 * n as u128) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a = stream(7, Stream::Net).next_u64();
        assert_eq!(a, stream(7, Stream::Net).next_u64());
        assert_ne!(a, stream(7, Stream::Workload).next_u64());
        assert_ne!(a, stream(8, Stream::Net).next_u64());
    }

    #[test]
    fn gaussian_has_roughly_the_right_mean() {
        let mut r = stream(1, Stream::Workload);
        let n = 20_000;
        let m: f64 = (0..n).map(|_| gaussian(&mut r, 60.0, 20.0)).sum::<f64>() / f64::from(n);
        assert!((m - 60.0).abs() < 1.0, "{m}");
        assert!((0..1000).all(|_| below(&mut r, 10) < 10));
    }
}
