//! Topology-aware overlay keys and XOR distance.
//!
//! This module is pure (no libp2p types, no I/O) so the simulator, which must not depend on
//! libp2p, can mirror it exactly. A key is 256 bits, compared as a big-endian integer.
//!
//! * [`flat_key`]`(id)` is `SHA-256(id)`. With `id` the bytes of a libp2p `PeerId`
//!   (`PeerId::to_bytes()`), this is the same 256-bit value libp2p Kademlia uses for that peer.
//! * [`overlay_key`]`(site, rack, id)` is `SHA-256(id)` with bytes 0..2 replaced by `site`
//!   (big-endian) and bytes 2..4 replaced by `rack` (big-endian). The hash keeps the low
//!   224 bits uniformly spread, while the high 32 bits group hosts: two hosts on the same site
//!   are always XOR-closer to each other than to any host on another site, and within a site,
//!   hosts on the same rack are closer than hosts on other racks.
//! * [`xor_distance`]`(a, b)` is the byte-wise XOR; compare distances with `Ord` on the array
//!   (lexicographic order on big-endian bytes is numeric order).

use sha2::{Digest, Sha256};

/// Length of an overlay key in bytes.
pub const KEY_LEN: usize = 32;

/// A 256-bit overlay key, big-endian.
pub type OverlayKey = [u8; KEY_LEN];

/// The key of a host without topology information: `SHA-256(id)`.
#[must_use]
pub fn flat_key(id: &[u8]) -> OverlayKey {
    Sha256::digest(id).into()
}

/// The topology-aware key of a host: `SHA-256(id)` with `site` in bytes 0..2 and `rack` in
/// bytes 2..4, both big-endian.
#[must_use]
pub fn overlay_key(site: u16, rack: u16, id: &[u8]) -> OverlayKey {
    let mut key = flat_key(id);
    key[0..2].copy_from_slice(&site.to_be_bytes());
    key[2..4].copy_from_slice(&rack.to_be_bytes());
    key
}

/// XOR distance between two keys; smaller (by `Ord`) is closer.
#[must_use]
pub fn xor_distance(a: &OverlayKey, b: &OverlayKey) -> OverlayKey {
    let mut out = [0u8; KEY_LEN];
    for (o, (x, y)) in out.iter_mut().zip(a.iter().zip(b.iter())) {
        *o = x ^ y;
    }
    out
}

/// Number of leading bits `a` and `b` share (256 when equal). A Kademlia bucket index is
/// `255 - common_prefix_len(a, b)` for distinct keys.
#[must_use]
pub fn common_prefix_len(a: &OverlayKey, b: &OverlayKey) -> u32 {
    let mut bits = 0;
    for byte in xor_distance(a, b) {
        if byte == 0 {
            bits += 8;
        } else {
            return bits + byte.leading_zeros();
        }
    }
    bits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_key_is_sha256_of_id() {
        // SHA-256("abc"), FIPS 180-2 test vector.
        let expected = [
            0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
            0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61,
            0xf2, 0x00, 0x15, 0xad,
        ];
        assert_eq!(flat_key(b"abc"), expected);
    }

    #[test]
    fn overlay_key_puts_site_then_rack_in_high_bytes() {
        let k = overlay_key(0x0102, 0x0304, b"abc");
        assert_eq!(&k[..4], &[1, 2, 3, 4]);
        assert_eq!(&k[4..], &flat_key(b"abc")[4..]);
    }

    #[test]
    fn same_site_is_always_closer_than_other_site() {
        let ids: Vec<Vec<u8>> = (0u32..64).map(|i| i.to_be_bytes().to_vec()).collect();
        let me = overlay_key(7, 1, b"me");
        for a in &ids {
            for b in &ids {
                let same_site = overlay_key(7, 9, a);
                let other_site = overlay_key(8, 1, b);
                assert!(xor_distance(&me, &same_site) < xor_distance(&me, &other_site));
                let same_rack = overlay_key(7, 1, a);
                assert!(xor_distance(&me, &same_rack) < xor_distance(&me, &same_site));
            }
        }
    }

    #[test]
    fn xor_distance_is_symmetric_and_zero_on_self() {
        let a = flat_key(b"a");
        let b = flat_key(b"b");
        assert_eq!(xor_distance(&a, &b), xor_distance(&b, &a));
        assert_eq!(xor_distance(&a, &a), [0u8; KEY_LEN]);
        assert_eq!(common_prefix_len(&a, &a), 256);
    }

    #[test]
    fn common_prefix_len_counts_leading_equal_bits() {
        let a = [0u8; KEY_LEN];
        let mut b = [0u8; KEY_LEN];
        b[2] = 0b0010_0000;
        assert_eq!(common_prefix_len(&a, &b), 18);
        assert_eq!(
            common_prefix_len(&overlay_key(1, 0, b"x"), &overlay_key(0, 0, b"x")),
            15
        );
    }
}
