//! Wire formats owned by the overlay: the request-response frame and the gossip envelope.
//!
//! Both start with a version byte so a future format can be told apart and refused cleanly.
//! Neither ever allocates more than its documented bound.
//!
//! **Frame** (request-response, protocol [`RR_PROTOCOL`]): `version: u8 = 1`,
//! `len: u32` big-endian, then `len` payload bytes, `len <= MAX_FRAME_LEN`. One frame per
//! stream; requests and responses use the same layout.
//!
//! **Summary envelope** (gossipsub, topic [`LOAD_TOPIC`]): `version: u8 = 1`, `flags: u8`
//! (bit 0: the author is topology-aware; other bits must be zero), `site: u16` BE,
//! `rack: u16` BE (both zero when flat), then the application's summary, between 1 and
//! [`MAX_SUMMARY_LEN`] bytes. The envelope is therefore at most
//! `ENVELOPE_HEADER_LEN + MAX_SUMMARY_LEN` = 70 bytes. The author is not in the envelope: it
//! is the gossipsub signer, checked by gossipsub in strict mode.
//!
//! **Peer-table sync** (request-response, protocol [`SYNC_PROTOCOL`], inside a frame): the
//! request is the asker's 32-byte overlay key; the response is `version: u8 = 1`,
//! `count: u16` BE (at most [`SYNC_MAX_ENTRIES`]), then `count` entries of: `id_len: u8`
//! (1..=64), the peer id bytes, `flags: u8`, `site: u16`, `rack: u16` (as in the envelope),
//! `age_ms: u32` BE (time since the answerer last heard of that peer), `summary_len: u8`
//! (0 = none, else at most [`MAX_SUMMARY_LEN`]), the summary bytes, `addr_len: u8` (0 = none,
//! else at most [`MAX_SYNC_ADDR_LEN`]), one listen address of that peer (multiaddr bytes), so
//! the asker can reach a peer it has never been connected to. A joining host asks the
//! peers it connects to, so it knows the cluster and its load in one round trip instead of
//! waiting for every host to republish.

use crate::config::Location;

/// Request-response protocol name.
pub const RR_PROTOCOL: &str = "/dvms/rr/1";
/// Gossipsub topic carrying load summaries.
pub const LOAD_TOPIC: &str = "dvms/load/1";
/// Peer-table sync protocol name.
pub const SYNC_PROTOCOL: &str = "/dvms/sync/1";
/// Kademlia protocol name (a private DHT, not the public IPFS one).
pub const KAD_PROTOCOL: &str = "/dvms/kad/1";
/// Identify protocol version string.
pub const IDENTIFY_PROTOCOL: &str = "/dvms/id/1";

/// Version byte of the request-response frame.
pub const FRAME_VERSION: u8 = 1;
/// Largest request or response payload, in bytes (64 KiB).
pub const MAX_FRAME_LEN: usize = 64 * 1024;
/// Length of the frame header (version + length).
pub const FRAME_HEADER_LEN: usize = 5;

/// Version byte of the summary envelope.
pub const ENVELOPE_VERSION: u8 = 1;
/// Length of the summary envelope header (version, flags, site, rack).
pub const ENVELOPE_HEADER_LEN: usize = 6;
/// Largest application summary carried in one gossip message, in bytes. The agent encodes a
/// fixed-size record no larger than this.
pub const MAX_SUMMARY_LEN: usize = 64;

const FLAG_LOCATED: u8 = 0b0000_0001;

/// Version byte of the sync response (2: entries carry a listen address).
pub const SYNC_VERSION: u8 = 2;
/// Longest listen address (multiaddr bytes) in a sync entry.
pub const MAX_SYNC_ADDR_LEN: usize = 128;
/// Most entries in one sync response (the answerer's peers closest to the asker's key).
pub const SYNC_MAX_ENTRIES: usize = 256;
/// Longest peer id accepted in a sync entry (libp2p ids are 38 bytes for ed25519).
const MAX_ID_LEN: usize = 64;

/// One known peer in a sync response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncEntry {
    /// The peer id bytes (`PeerId::to_bytes`), not yet validated as a peer id.
    pub id: Vec<u8>,
    /// Its position, `None` when flat.
    pub location: Option<Location>,
    /// Milliseconds since the answerer last heard of it.
    pub age_ms: u32,
    /// Its latest summary, if the answerer has one.
    pub summary: Option<Vec<u8>>,
    /// One of its listen addresses (multiaddr bytes, not yet validated), if known.
    pub addr: Option<Vec<u8>>,
}

/// Encodes a sync response; entries beyond [`SYNC_MAX_ENTRIES`] or with an invalid id or
/// summary length are skipped.
#[must_use]
pub fn encode_sync(entries: &[SyncEntry]) -> Vec<u8> {
    let valid: Vec<&SyncEntry> = entries
        .iter()
        .filter(|e| (1..=MAX_ID_LEN).contains(&e.id.len()))
        .filter(|e| {
            e.summary
                .as_ref()
                .is_none_or(|s| check_summary_len(s.len()).is_ok())
        })
        .filter(|e| {
            e.addr
                .as_ref()
                .is_none_or(|a| (1..=MAX_SYNC_ADDR_LEN).contains(&a.len()))
        })
        .take(SYNC_MAX_ENTRIES)
        .collect();
    let mut out = vec![SYNC_VERSION];
    let count = u16::try_from(valid.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&count.to_be_bytes());
    for e in valid {
        let id_len = u8::try_from(e.id.len()).unwrap_or(u8::MAX);
        out.push(id_len);
        out.extend_from_slice(&e.id);
        let loc = e.location.unwrap_or_default();
        out.push(if e.location.is_some() {
            FLAG_LOCATED
        } else {
            0
        });
        out.extend_from_slice(&loc.site.to_be_bytes());
        out.extend_from_slice(&loc.rack.to_be_bytes());
        out.extend_from_slice(&e.age_ms.to_be_bytes());
        let summary = e.summary.as_deref().unwrap_or_default();
        out.push(u8::try_from(summary.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(summary);
        let addr = e.addr.as_deref().unwrap_or_default();
        out.push(u8::try_from(addr.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(addr);
    }
    out
}

/// Decodes a sync response.
///
/// # Errors
/// Unknown version, too many entries, or any malformed entry.
pub fn decode_sync(data: &[u8]) -> Result<Vec<SyncEntry>, DecodeError> {
    let mut r = Reader(data);
    let version = r.u8()?;
    if version != SYNC_VERSION {
        return Err(DecodeError::UnknownVersion { version });
    }
    let count = usize::from(r.u16()?);
    if count > SYNC_MAX_ENTRIES {
        return Err(DecodeError::Oversized {
            len: count,
            max: SYNC_MAX_ENTRIES,
        });
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let id_len = usize::from(r.u8()?);
        if !(1..=MAX_ID_LEN).contains(&id_len) {
            return Err(DecodeError::Malformed);
        }
        let id = r.take(id_len)?.to_vec();
        let flags = r.u8()?;
        let site = r.u16()?;
        let rack = r.u16()?;
        let location = match flags {
            0 if site == 0 && rack == 0 => None,
            FLAG_LOCATED => Some(Location { site, rack }),
            _ => return Err(DecodeError::Malformed),
        };
        let age_ms = r.u32()?;
        let summary_len = usize::from(r.u8()?);
        let summary = if summary_len == 0 {
            None
        } else {
            check_summary_len(summary_len)?;
            Some(r.take(summary_len)?.to_vec())
        };
        let addr_len = usize::from(r.u8()?);
        if addr_len > MAX_SYNC_ADDR_LEN {
            return Err(DecodeError::Malformed);
        }
        let addr = if addr_len == 0 {
            None
        } else {
            Some(r.take(addr_len)?.to_vec())
        };
        out.push(SyncEntry {
            id,
            location,
            age_ms,
            summary,
            addr,
        });
    }
    if !r.0.is_empty() {
        return Err(DecodeError::Malformed);
    }
    Ok(out)
}

/// A bounds-checked cursor.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Malformed);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Why a frame header or envelope was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
#[non_exhaustive]
pub enum DecodeError {
    /// The version byte is not one this build understands.
    #[error("unknown version {version}")]
    UnknownVersion {
        /// The version byte received.
        version: u8,
    },
    /// The announced or actual length is above the limit.
    #[error("length {len} above limit {max}")]
    Oversized {
        /// The length received.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The input is too short, empty where content is required, or has unknown flags.
    #[error("malformed input")]
    Malformed,
}

/// Encodes a frame header for a payload of `len` bytes.
///
/// # Errors
/// [`DecodeError::Oversized`] when `len > MAX_FRAME_LEN`.
pub fn frame_header(len: usize) -> Result<[u8; FRAME_HEADER_LEN], DecodeError> {
    let small = u32::try_from(len)
        .ok()
        .filter(|_| len <= MAX_FRAME_LEN)
        .ok_or(DecodeError::Oversized {
            len,
            max: MAX_FRAME_LEN,
        })?;
    let mut out = [0u8; FRAME_HEADER_LEN];
    out[0] = FRAME_VERSION;
    out[1..].copy_from_slice(&small.to_be_bytes());
    Ok(out)
}

/// Parses a frame header and returns the payload length it announces.
///
/// # Errors
/// Unknown version or a length above [`MAX_FRAME_LEN`].
pub fn parse_frame_header(header: [u8; FRAME_HEADER_LEN]) -> Result<usize, DecodeError> {
    if header[0] != FRAME_VERSION {
        return Err(DecodeError::UnknownVersion { version: header[0] });
    }
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    let len = usize::try_from(len).map_err(|_| DecodeError::Malformed)?;
    if len > MAX_FRAME_LEN {
        return Err(DecodeError::Oversized {
            len,
            max: MAX_FRAME_LEN,
        });
    }
    Ok(len)
}

/// Wraps an application summary in the gossip envelope.
///
/// # Errors
/// [`DecodeError::Malformed`] for an empty summary, [`DecodeError::Oversized`] above
/// [`MAX_SUMMARY_LEN`].
pub fn encode_envelope(location: Option<Location>, summary: &[u8]) -> Result<Vec<u8>, DecodeError> {
    check_summary_len(summary.len())?;
    let mut out = Vec::with_capacity(ENVELOPE_HEADER_LEN + summary.len());
    out.push(ENVELOPE_VERSION);
    let loc = location.unwrap_or_default();
    out.push(if location.is_some() { FLAG_LOCATED } else { 0 });
    out.extend_from_slice(&loc.site.to_be_bytes());
    out.extend_from_slice(&loc.rack.to_be_bytes());
    out.extend_from_slice(summary);
    Ok(out)
}

/// Validates a gossip envelope and returns the author's location (`None` when flat) and the
/// summary bytes.
///
/// # Errors
/// Any deviation from the layout in the module documentation.
pub fn decode_envelope(data: &[u8]) -> Result<(Option<Location>, &[u8]), DecodeError> {
    if data.len() > ENVELOPE_HEADER_LEN + MAX_SUMMARY_LEN {
        return Err(DecodeError::Oversized {
            len: data.len(),
            max: ENVELOPE_HEADER_LEN + MAX_SUMMARY_LEN,
        });
    }
    let (header, summary) = data
        .split_first_chunk::<ENVELOPE_HEADER_LEN>()
        .ok_or(DecodeError::Malformed)?;
    if header[0] != ENVELOPE_VERSION {
        return Err(DecodeError::UnknownVersion { version: header[0] });
    }
    check_summary_len(summary.len())?;
    let site = u16::from_be_bytes([header[2], header[3]]);
    let rack = u16::from_be_bytes([header[4], header[5]]);
    let location = match header[1] {
        0 if site == 0 && rack == 0 => None,
        FLAG_LOCATED => Some(Location { site, rack }),
        _ => return Err(DecodeError::Malformed),
    };
    Ok((location, summary))
}

/// Checks an application summary length against `1..=MAX_SUMMARY_LEN`.
///
/// # Errors
/// Empty or oversized.
pub fn check_summary_len(len: usize) -> Result<(), DecodeError> {
    if len == 0 {
        Err(DecodeError::Malformed)
    } else if len > MAX_SUMMARY_LEN {
        Err(DecodeError::Oversized {
            len,
            max: MAX_SUMMARY_LEN,
        })
    } else {
        Ok(())
    }
}

/// The identify agent version announcing this host's position in the key space:
/// `dvms-overlay/1 site=<u16> rack=<u16>` or `dvms-overlay/1 flat`.
pub(crate) fn agent_version(location: Option<Location>) -> String {
    match location {
        Some(l) => format!("dvms-overlay/1 site={} rack={}", l.site, l.rack),
        None => "dvms-overlay/1 flat".to_owned(),
    }
}

/// Parses [`agent_version`]; `None` for anything else (another program or version).
pub(crate) fn parse_agent_version(s: &str) -> Option<Option<Location>> {
    let rest = s.strip_prefix("dvms-overlay/1 ")?;
    if rest == "flat" {
        return Some(None);
    }
    let (site, rack) = rest.split_once(' ')?;
    let site = site.strip_prefix("site=")?.parse().ok()?;
    let rack = rack.strip_prefix("rack=")?.parse().ok()?;
    Some(Some(Location { site, rack }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_header_round_trips() {
        let h = frame_header(1234).unwrap();
        assert_eq!(parse_frame_header(h), Ok(1234));
        assert_eq!(parse_frame_header(frame_header(0).unwrap()), Ok(0));
    }

    #[test]
    fn oversized_frame_is_refused_both_ways() {
        assert!(matches!(
            frame_header(MAX_FRAME_LEN + 1),
            Err(DecodeError::Oversized { .. })
        ));
        let mut h = frame_header(MAX_FRAME_LEN).unwrap();
        h[1..].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            parse_frame_header(h),
            Err(DecodeError::Oversized { .. })
        ));
    }

    #[test]
    fn unknown_frame_version_is_refused() {
        let mut h = frame_header(3).unwrap();
        h[0] = 2;
        assert_eq!(
            parse_frame_header(h),
            Err(DecodeError::UnknownVersion { version: 2 })
        );
    }

    #[test]
    fn envelope_round_trips_with_and_without_location() {
        let loc = Location { site: 3, rack: 9 };
        let e = encode_envelope(Some(loc), b"load").unwrap();
        assert_eq!(e.len(), ENVELOPE_HEADER_LEN + 4);
        assert_eq!(decode_envelope(&e), Ok((Some(loc), &b"load"[..])));
        let e = encode_envelope(None, b"x").unwrap();
        assert_eq!(decode_envelope(&e), Ok((None, &b"x"[..])));
    }

    #[test]
    fn bad_envelopes_are_refused() {
        assert!(encode_envelope(None, b"").is_err());
        assert!(encode_envelope(None, &[0; MAX_SUMMARY_LEN + 1]).is_err());
        let good = encode_envelope(None, b"abc").unwrap();
        for cut in 0..ENVELOPE_HEADER_LEN + 1 {
            assert!(decode_envelope(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = good.clone();
        bad[0] = 9;
        assert_eq!(
            decode_envelope(&bad),
            Err(DecodeError::UnknownVersion { version: 9 })
        );
        let mut bad = good.clone();
        bad[1] = 0b10;
        assert_eq!(decode_envelope(&bad), Err(DecodeError::Malformed));
        let mut bad = good;
        bad[3] = 1; // site set but flat flag
        assert_eq!(decode_envelope(&bad), Err(DecodeError::Malformed));
        let big = vec![ENVELOPE_VERSION; ENVELOPE_HEADER_LEN + MAX_SUMMARY_LEN + 1];
        assert!(matches!(
            decode_envelope(&big),
            Err(DecodeError::Oversized { .. })
        ));
    }

    #[test]
    fn garbage_envelopes_never_panic() {
        // A small deterministic generator: every input of length 0..80 from a fixed LCG.
        let mut x: u32 = 12345;
        for len in 0..80 {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    x.to_be_bytes()[0]
                })
                .collect();
            let _ = decode_envelope(&data);
        }
    }

    #[test]
    fn sync_round_trips_and_refuses_garbage() {
        let entries = vec![
            SyncEntry {
                id: vec![1; 38],
                location: Some(Location { site: 2, rack: 3 }),
                age_ms: 1500,
                summary: Some(b"s".to_vec()),
                addr: Some(vec![4, 127, 0, 0, 1]),
            },
            SyncEntry {
                id: vec![2; 38],
                location: None,
                age_ms: 0,
                summary: None,
                addr: None,
            },
        ];
        let bytes = encode_sync(&entries);
        assert_eq!(decode_sync(&bytes), Ok(entries));
        for cut in 0..bytes.len() {
            assert!(decode_sync(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(decode_sync(&trailing), Err(DecodeError::Malformed));
        let mut many = vec![SYNC_VERSION];
        many.extend_from_slice(&u16::MAX.to_be_bytes());
        assert!(matches!(
            decode_sync(&many),
            Err(DecodeError::Oversized { .. })
        ));
    }

    #[test]
    fn agent_version_round_trips() {
        let loc = Location {
            site: 1,
            rack: 65535,
        };
        assert_eq!(
            parse_agent_version(&agent_version(Some(loc))),
            Some(Some(loc))
        );
        assert_eq!(parse_agent_version(&agent_version(None)), Some(None));
        assert_eq!(parse_agent_version("rust-libp2p/0.47"), None);
        assert_eq!(parse_agent_version("dvms-overlay/1 site=x rack=1"), None);
    }
}
