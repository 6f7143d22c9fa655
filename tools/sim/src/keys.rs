//! Overlay keys and the closest-by-XOR candidate query.
//!
//! The real overlay (libp2p Kademlia) returns the peers closest to a key by XOR distance. The
//! simulator gives each host a fixed 64-bit key: a mixing hash of its index (`--keys random`),
//! or the same with the site index in the top 8 bits (`--keys topology`) so that hosts of one
//! site are XOR-close and partitions tend to stay within a site.
//!
//! Finding the `count` closest keys among 100,000 hosts: keys are kept sorted; the hosts sharing
//! the top `p` bits with the target form a contiguous range, and every host inside that aligned
//! block is closer than every host outside it. We widen the block (decrease `p`) until it holds
//! enough eligible hosts, then sort only that block by distance.

use crate::rng::splitmix64;

/// How overlay keys are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeysMode {
    /// A mixing hash of the host index.
    Random,
    /// The site index in the top 8 bits, a hash below.
    Topology,
}

/// The overlay key of every host, and the hosts sorted by key.
#[derive(Clone, Debug)]
pub struct Keys {
    /// `key[h]` is host `h`'s key.
    key: Vec<u64>,
    /// `(key, host)` sorted by key.
    sorted: Vec<(u64, u32)>,
}

impl Keys {
    /// Keys for hosts with the given site indices.
    pub fn new(sites: &[u32], mode: KeysMode) -> Keys {
        let key: Vec<u64> = sites
            .iter()
            .enumerate()
            .map(|(i, &site)| {
                let h = splitmix64(0xD5_u64 << 56 ^ i as u64);
                match mode {
                    KeysMode::Random => h,
                    KeysMode::Topology => (u64::from(site) & 0xFF) << 56 | (h >> 8),
                }
            })
            .collect();
        let mut sorted: Vec<(u64, u32)> = key
            .iter()
            .enumerate()
            .map(|(i, &k)| (k, u32::try_from(i).unwrap_or(u32::MAX)))
            .collect();
        sorted.sort_unstable();
        Keys { key, sorted }
    }

    /// Number of hosts.
    pub fn len(&self) -> usize {
        self.key.len()
    }

    /// True when there is no host.
    pub fn is_empty(&self) -> bool {
        self.key.is_empty()
    }

    /// Host `h`'s key.
    pub fn key(&self, h: usize) -> u64 {
        self.key[h]
    }

    /// Up to `count` hosts accepted by `eligible`, closest to host `near` by XOR, closest first.
    pub fn closest(&self, near: usize, count: usize, eligible: impl Fn(usize) -> bool) -> Vec<u32> {
        if count == 0 || self.sorted.is_empty() {
            return Vec::new();
        }
        let target = self.key[near];
        let mut prefix = 64u32;
        let (lo, hi) = loop {
            let mask = if prefix == 0 {
                0
            } else {
                u64::MAX << (64 - prefix)
            };
            let (start, end) = (target & mask, target | !mask);
            let lo = self.sorted.partition_point(|&(k, _)| k < start);
            let hi = self.sorted.partition_point(|&(k, _)| k <= end);
            let enough = self.sorted[lo..hi]
                .iter()
                .filter(|&&(_, h)| eligible(h as usize))
                .take(count)
                .count()
                >= count;
            if enough || prefix == 0 {
                break (lo, hi);
            }
            prefix -= 1;
        };
        let mut block: Vec<(u64, u32)> = self.sorted[lo..hi]
            .iter()
            .filter(|&&(_, h)| eligible(h as usize))
            .map(|&(k, h)| (k ^ target, h))
            .collect();
        block.sort_unstable();
        block.truncate(count);
        block.into_iter().map(|(_, h)| h).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(keys: &Keys, near: usize, count: usize, excl: &[u32]) -> Vec<u32> {
        let t = keys.key(near);
        let mut all: Vec<(u64, u32)> = (0..keys.key.len() as u32)
            .filter(|h| !excl.contains(h))
            .map(|h| (keys.key(h as usize) ^ t, h))
            .collect();
        all.sort_unstable();
        all.into_iter().take(count).map(|(_, h)| h).collect()
    }

    #[test]
    fn closest_matches_brute_force() {
        let sites: Vec<u32> = (0..2000).map(|i| i % 3).collect();
        for mode in [KeysMode::Random, KeysMode::Topology] {
            let keys = Keys::new(&sites, mode);
            for near in [0usize, 17, 1999] {
                let excl = [near as u32, 5, 6];
                let got = keys.closest(near, 8, |h| !excl.contains(&(h as u32)));
                assert_eq!(got, brute(&keys, near, 8, &excl));
            }
        }
    }

    #[test]
    fn topology_keys_keep_sites_close() {
        let sites: Vec<u32> = (0..300).map(|i| i % 3).collect();
        let keys = Keys::new(&sites, KeysMode::Topology);
        let got = keys.closest(4, 10, |h| h != 4);
        assert!(got.iter().all(|&h| sites[h as usize] == sites[4]));
    }
}
