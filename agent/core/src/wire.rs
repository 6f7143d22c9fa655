//! The wire format (`docs/protocol.md` §11): a version byte, then CBOR, within a size bound; and
//! the fixed-size record of a gossiped load summary.
//!
//! Every message from a peer is untrusted: [`decode`] checks the size before parsing and the
//! collection bounds after, and never panics.

use std::collections::BTreeSet;

use crate::config::MAX_PARTITION_SIZE;
use crate::model::{LoadSummary, Resources, Thresholds};
use crate::msg::{HostState, Msg, PartitionView};

/// The format version this build speaks.
pub const VERSION: u8 = 1;

/// The largest encoded message accepted (a 64-host ISP with 1,024 VMs per host fits well within).
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// The most VMs one host may report in an ISP.
pub const MAX_VMS_PER_HOST: usize = 1024;

/// The largest CPU amount a peer may announce, in milli-cores (a million cores).
pub const MAX_CPU_MILLI: u64 = 1_000_000_000;

/// The largest memory amount a peer may announce, in MiB (a pebibyte).
pub const MAX_MEM_MIB: u64 = 1 << 30;

/// Why bytes from a peer were refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The message is empty.
    #[error("empty message")]
    Empty,
    /// The message exceeds [`MAX_MESSAGE_BYTES`].
    #[error("message of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The version byte is not one this build speaks.
    #[error("unsupported wire version {0}")]
    Version(u8),
    /// The CBOR body does not decode to a message.
    #[error("malformed message body")]
    Body(#[source] ciborium::de::Error<std::io::Error>),
    /// A collection exceeds its bound.
    #[error("{field} has {len} entries, more than {max}")]
    Bounds {
        /// Which collection.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// A number or an id cannot be real (a capacity beyond any host, a threshold above 100 %,
    /// a leader outside its partition, a VM listed twice).
    #[error("{field}: {reason}")]
    Value {
        /// Which value.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A gossip record has the wrong size.
    #[error("summary record of {len} bytes, expected {expected}")]
    SummarySize {
        /// Its length.
        len: usize,
        /// The expected length.
        expected: usize,
    },
}

/// Why a message could not be encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The CBOR serializer failed.
    #[error("cbor encoding failed")]
    Cbor(#[source] ciborium::ser::Error<std::io::Error>),
    /// The encoded message would exceed [`MAX_MESSAGE_BYTES`].
    #[error("encoded message of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Encodes a message: version byte, then CBOR.
pub fn encode(msg: &Msg) -> Result<Vec<u8>, EncodeError> {
    let mut buf = vec![VERSION];
    ciborium::into_writer(msg, &mut buf).map_err(EncodeError::Cbor)?;
    if buf.len() > MAX_MESSAGE_BYTES {
        return Err(EncodeError::TooLarge {
            len: buf.len(),
            max: MAX_MESSAGE_BYTES,
        });
    }
    Ok(buf)
}

/// Decodes and bounds-checks a message from a peer.
pub fn decode(bytes: &[u8]) -> Result<Msg, DecodeError> {
    let (&version, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            max: MAX_MESSAGE_BYTES,
        });
    }
    if version != VERSION {
        return Err(DecodeError::Version(version));
    }
    let msg: Msg = ciborium::from_reader(body).map_err(DecodeError::Body)?;
    check_bounds(&msg)?;
    check_values(&msg)?;
    Ok(msg)
}

fn bound(field: &'static str, len: usize, max: usize) -> Result<(), DecodeError> {
    if len > max {
        Err(DecodeError::Bounds { field, len, max })
    } else {
        Ok(())
    }
}

fn check_bounds(msg: &Msg) -> Result<(), DecodeError> {
    match msg {
        Msg::Isp { view, hosts } => {
            bound("view.members", view.members.len(), MAX_PARTITION_SIZE)?;
            bound("hosts", hosts.len(), MAX_PARTITION_SIZE)?;
            for h in hosts {
                bound("hosts[].vms", h.vms.len(), MAX_VMS_PER_HOST)?;
            }
            Ok(())
        }
        Msg::View { view, .. } => bound("view.members", view.members.len(), MAX_PARTITION_SIZE),
        Msg::State { host, .. } => bound("host.vms", host.vms.len(), MAX_VMS_PER_HOST),
        _ => Ok(()),
    }
}

fn value(ok: bool, field: &'static str, reason: &'static str) -> Result<(), DecodeError> {
    if ok {
        Ok(())
    } else {
        Err(DecodeError::Value { field, reason })
    }
}

fn check_resources(field: &'static str, r: Resources) -> Result<(), DecodeError> {
    value(r.cpu_milli <= MAX_CPU_MILLI, field, "cpu above any host")?;
    value(r.mem_mib <= MAX_MEM_MIB, field, "memory above any host")
}

fn check_thresholds(t: Thresholds) -> Result<(), DecodeError> {
    value(
        (1..=100).contains(&t.cpu_pct) && (1..=100).contains(&t.mem_pct),
        "thresholds",
        "outside 1..=100 %",
    )
}

fn check_view(view: &PartitionView) -> Result<(), DecodeError> {
    let unique: BTreeSet<_> = view.members.iter().collect();
    value(!view.members.is_empty(), "view.members", "empty")?;
    value(
        unique.len() == view.members.len(),
        "view.members",
        "a host listed twice",
    )?;
    value(view.contains(view.leader), "view.leader", "not a member")?;
    value(
        view.epoch.leader == view.leader,
        "view.epoch",
        "names another leader than the view",
    )
}

fn check_host(h: &HostState) -> Result<(), DecodeError> {
    check_resources("host.capacity", h.capacity)?;
    check_thresholds(h.thresholds)?;
    let mut seen = BTreeSet::new();
    for v in &h.vms {
        check_resources("host.vms[].demand", v.demand)?;
        value(seen.insert(v.id), "host.vms[].id", "a vm listed twice")?;
    }
    Ok(())
}

/// Range checks on every number of a message from a peer (`docs/protocol.md` §11).
fn check_values(msg: &Msg) -> Result<(), DecodeError> {
    match msg {
        Msg::Isp { view, hosts } => {
            check_view(view)?;
            hosts.iter().try_for_each(check_host)
        }
        Msg::View { view, .. } => check_view(view),
        Msg::State { host, .. } => check_host(host),
        Msg::Migrate { mem_mib, .. } => value(*mem_mib <= MAX_MEM_MIB, "mem_mib", "above any host"),
        Msg::Incoming { demand, .. } => check_resources("demand", *demand),
        _ => Ok(()),
    }
}

/// Size of an encoded [`LoadSummary`]: version byte, four little-endian `u64`, one flag byte.
pub const SUMMARY_BYTES: usize = 1 + 4 * 8 + 1;

/// Encodes a load summary as a fixed-size record for gossip.
pub fn encode_summary(s: &LoadSummary) -> [u8; SUMMARY_BYTES] {
    let mut out = [0u8; SUMMARY_BYTES];
    out[0] = VERSION;
    let words = [
        s.capacity.cpu_milli,
        s.capacity.mem_mib,
        s.demand.cpu_milli,
        s.demand.mem_mib,
    ];
    for (i, w) in words.iter().enumerate() {
        out[1 + 8 * i..9 + 8 * i].copy_from_slice(&w.to_le_bytes());
    }
    out[SUMMARY_BYTES - 1] = u8::from(s.busy)
        | u8::from(s.blocked) << 1
        | u8::from(s.migrating) << 2
        | u8::from(s.draining) << 3;
    out
}

/// Decodes a gossiped load summary.
pub fn decode_summary(bytes: &[u8]) -> Result<LoadSummary, DecodeError> {
    if bytes.len() != SUMMARY_BYTES {
        return Err(DecodeError::SummarySize {
            len: bytes.len(),
            expected: SUMMARY_BYTES,
        });
    }
    if bytes[0] != VERSION {
        return Err(DecodeError::Version(bytes[0]));
    }
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[1 + 8 * i..9 + 8 * i]);
        u64::from_le_bytes(w)
    };
    let flags = bytes[SUMMARY_BYTES - 1];
    check_resources("summary.capacity", Resources::new(word(0), word(1)))?;
    check_resources("summary.demand", Resources::new(word(2), word(3)))?;
    value(flags < 16, "summary.flags", "unknown flag")?;
    Ok(LoadSummary {
        capacity: Resources::new(word(0), word(1)),
        demand: Resources::new(word(2), word(3)),
        busy: flags & 1 != 0,
        blocked: flags & 2 != 0,
        migrating: flags & 4 != 0,
        draining: flags & 8 != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NodeId, PartitionId, Thresholds, VmId};
    use crate::msg::{EventKind, HostState, PartitionState, PartitionView, VmState};
    use proptest::prelude::*;

    fn isp(members: usize, vms: usize) -> Msg {
        let ids: Vec<NodeId> = (0..members as u64).map(NodeId).collect();
        Msg::Isp {
            view: PartitionView {
                id: PartitionId {
                    initiator: NodeId(0),
                    seq: 1,
                },
                version: 3,
                epoch: crate::model::Epoch::first(NodeId(0)),
                leader: NodeId(0),
                members: ids.clone(),
                state: PartitionState::Growing,
                kind: EventKind::Overload,
            },
            hosts: ids
                .iter()
                .map(|&id| HostState {
                    id,
                    capacity: Resources::new(7000, 32768),
                    thresholds: Thresholds::default(),
                    draining: false,
                    vms: (0..vms as u64)
                        .map(|v| VmState {
                            id: VmId(v),
                            demand: Resources::new(600, 1024),
                            migratable: true,
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    // Reference: protocol.md §11.
    #[test]
    fn messages_round_trip() {
        let msg = isp(4, 10);
        let bytes = encode(&msg).unwrap();
        assert_eq!(bytes[0], VERSION);
        assert_eq!(decode(&bytes).unwrap(), msg);
    }

    #[test]
    fn largest_legal_isp_fits_the_size_bound() {
        let bytes = encode(&isp(MAX_PARTITION_SIZE, 64)).unwrap();
        assert!(bytes.len() < MAX_MESSAGE_BYTES, "{}", bytes.len());
    }

    #[test]
    fn oversized_unknown_version_and_garbage_are_refused() {
        assert!(matches!(decode(&[]), Err(DecodeError::Empty)));
        assert!(matches!(decode(&[9, 0xa0]), Err(DecodeError::Version(9))));
        assert!(matches!(
            decode(&[VERSION, 0xff, 0x00]),
            Err(DecodeError::Body(_))
        ));
        let big = vec![VERSION; MAX_MESSAGE_BYTES + 1];
        assert!(matches!(decode(&big), Err(DecodeError::TooLarge { .. })));
    }

    #[test]
    fn too_many_members_are_refused() {
        let mut bytes = vec![VERSION];
        ciborium::into_writer(&isp(MAX_PARTITION_SIZE + 1, 0), &mut bytes).unwrap();
        assert!(matches!(
            decode(&bytes),
            Err(DecodeError::Bounds {
                field: "view.members",
                ..
            })
        ));
    }

    #[test]
    fn summaries_round_trip_and_wrong_sizes_are_refused() {
        let s = LoadSummary {
            capacity: Resources::new(7000, 32768),
            demand: Resources::new(6500, 10240),
            busy: true,
            blocked: false,
            migrating: true,
            draining: false,
        };
        let bytes = encode_summary(&s);
        assert_eq!(decode_summary(&bytes).unwrap(), s);
        assert!(matches!(
            decode_summary(&bytes[1..]),
            Err(DecodeError::SummarySize { .. })
        ));
        let mut bad = bytes;
        bad[0] = 7;
        assert!(matches!(decode_summary(&bad), Err(DecodeError::Version(7))));
    }

    fn framed(msg: &Msg) -> Vec<u8> {
        let mut bytes = vec![VERSION];
        ciborium::into_writer(msg, &mut bytes).unwrap();
        bytes
    }

    // Reference: protocol.md §11 (every number range-checked at decode time).
    #[test]
    fn finding6_numbers_that_cannot_be_real_are_refused() {
        let field = |msg: &Msg| match decode(&framed(msg)) {
            Err(DecodeError::Value { field, .. }) => field,
            other => panic!("accepted or wrong error: {other:?}"),
        };
        let mut m = isp(2, 2);
        if let Msg::Isp { hosts, .. } = &mut m {
            hosts[1].capacity = Resources::new(u64::MAX, 1024);
        }
        assert_eq!(field(&m), "host.capacity");
        let mut m = isp(2, 2);
        if let Msg::Isp { hosts, .. } = &mut m {
            hosts[0].vms[1].demand.mem_mib = MAX_MEM_MIB + 1;
        }
        assert_eq!(field(&m), "host.vms[].demand");
        let mut m = isp(2, 2);
        if let Msg::Isp { hosts, .. } = &mut m {
            hosts[0].thresholds.cpu_pct = 200;
        }
        assert_eq!(field(&m), "thresholds");
        let mut m = isp(2, 2);
        if let Msg::Isp { hosts, .. } = &mut m {
            hosts[0].vms[1].id = hosts[0].vms[0].id;
        }
        assert_eq!(field(&m), "host.vms[].id");
        let mut m = isp(2, 0);
        if let Msg::Isp { view, .. } = &mut m {
            view.leader = NodeId(77);
        }
        assert_eq!(field(&m), "view.leader");
        let mut m = isp(2, 0);
        if let Msg::Isp { view, .. } = &mut m {
            view.members[1] = view.members[0];
        }
        assert_eq!(field(&m), "view.members");
        let mut m = isp(2, 0);
        if let Msg::Isp { view, .. } = &mut m {
            view.epoch.leader = NodeId(1);
        }
        assert_eq!(field(&m), "view.epoch");
        let incoming = Msg::Incoming {
            partition: PartitionId {
                initiator: NodeId(0),
                seq: 1,
            },
            epoch: crate::model::Epoch::first(NodeId(0)),
            migration: crate::model::MigrationId(1),
            vm: VmId(1),
            demand: Resources::new(MAX_CPU_MILLI + 1, 1),
        };
        assert_eq!(field(&incoming), "demand");
        let mut summary = encode_summary(&LoadSummary::default());
        summary[1..9].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            decode_summary(&summary),
            Err(DecodeError::Value { .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
            let _ = decode_summary(&bytes);
        }

        #[test]
        fn decode_never_panics_on_versioned_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut framed = vec![VERSION];
            framed.extend(bytes);
            let _ = decode(&framed);
        }
    }
}
