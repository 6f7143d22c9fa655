//! Overlay configuration, validated once by [`Overlay::new`](crate::Overlay::new).

use std::{fmt, path::PathBuf, str::FromStr, time::Duration};

use libp2p::Multiaddr;

use crate::guard::Limits;

/// A host's position in the data centre, used for topology-aware keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// Site (data centre) number.
    pub site: u16,
    /// Rack number within the site.
    pub rack: u16,
}

/// The cluster's 256-bit private-network pre-shared key (libp2p pnet).
///
/// Hosts without the same key cannot complete a connection: every byte after the nonce
/// exchange is encrypted with it. `Debug` and `Display` show only a fingerprint.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Psk([u8; 32]);

impl Psk {
    /// Wraps raw key bytes.
    #[must_use]
    pub const fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub(crate) fn to_libp2p(self) -> libp2p::pnet::PreSharedKey {
        libp2p::pnet::PreSharedKey::new(self.0)
    }
}

impl FromStr for Psk {
    type Err = ConfigError;

    /// Parses 64 hex digits, or the libp2p/IPFS `swarm.key` file format
    /// (`/key/swarm/psk/1.0.0/`, `/base16/`, 64 hex digits).
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        let hex = s
            .trim()
            .strip_prefix("/key/swarm/psk/1.0.0/")
            .map_or(s.trim(), |rest| {
                rest.trim_start()
                    .strip_prefix("/base16/")
                    .unwrap_or(rest)
                    .trim()
            });
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(ConfigError::InvalidPsk);
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            let pair = hex.get(2 * i..2 * i + 2).ok_or(ConfigError::InvalidPsk)?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| ConfigError::InvalidPsk)?;
        }
        Ok(Self(out))
    }
}

impl fmt::Debug for Psk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Psk(fingerprint {})", self.to_libp2p().fingerprint())
    }
}

/// Which transport the overlay runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportKind {
    /// TCP (`/ip4/.../tcp/...`), then pnet, Noise and Yamux.
    Tcp,
    /// libp2p's in-process memory transport (`/memory/N`), then pnet, Noise and Yamux. For
    /// tests and single-process benchmarks.
    Memory,
}

/// Where the host's ed25519 identity comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Identity {
    /// Load `<dir>/overlay-identity.key`, creating it (mode 0600) on first start, so the
    /// peer id survives restarts.
    StateDir(PathBuf),
    /// A fresh key each start (tests, benchmarks).
    Ephemeral,
}

/// Overlay configuration. Build with [`Config::new`] and adjust fields or `with_*` methods.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Cluster pre-shared key.
    pub psk: Psk,
    /// Host identity source.
    pub identity: Identity,
    /// Transport to use.
    pub transport: TransportKind,
    /// Addresses to listen on (e.g. `/ip4/0.0.0.0/tcp/7946` or `/memory/0`).
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start; Kademlia bootstraps from whichever answer. An address ending
    /// in `/p2p/<peer id>` is also put in the routing table at once.
    pub bootstrap: Vec<Multiaddr>,
    /// Site and rack for a topology-aware key; `None` for a flat key.
    pub location: Option<Location>,
    /// Capacity of the handle-to-loop command queue.
    pub command_queue: usize,
    /// Capacity of the loop-to-application event queue; events beyond it are dropped and
    /// counted.
    pub event_queue: usize,
    /// Inbound requests awaiting [`Handle::respond`](crate::Handle::respond) at most; more
    /// are refused and counted.
    pub max_pending_inbound: usize,
    /// Outbound requests awaiting a response at most.
    pub max_pending_outbound: usize,
    /// Request-response timeout.
    pub request_timeout: Duration,
    /// Close connections idle for this long. Connections in the gossip mesh are never idle;
    /// the others (Kademlia lookups, identify, sync, requests) are re-dialed when needed, so
    /// a short timeout keeps the connection count, and memory, low.
    pub idle_connection_timeout: Duration,
    /// Most established connections (inbound plus outbound) at once; more are refused. The
    /// part above [`max_outbound_connections`](Self::max_outbound_connections) is headroom
    /// for inbound connections, such as joiners dialing a bootstrap host.
    pub max_connections: u32,
    /// Most established outbound connections at once; dials beyond it fail at once. This
    /// bounds the cluster-wide average to twice this many connections per host.
    pub max_outbound_connections: u32,
    /// Give up a connection whose handshake (pnet, Noise, Yamux) takes longer. A host with
    /// the wrong pre-shared key is refused at the latest after this long: pnet itself cannot
    /// tell a wrong key from garbage, so the handshake stalls or fails on garbage.
    pub handshake_timeout: Duration,
    /// Gossipsub heartbeat interval.
    pub gossip_heartbeat: Duration,
    /// Minimum time between two summary publications.
    pub summary_min_interval: Duration,
    /// Republish the unchanged summary after this long, so new hosts and peer-table expiry
    /// see it.
    pub summary_refresh: Duration,
    /// Forget a peer that is not connected and sent no summary for this long.
    pub peer_ttl: Duration,
    /// Per-peer limits against hostile peers that hold the cluster key.
    pub limits: Limits,
}

impl Config {
    /// Defaults for a TCP overlay with an ephemeral identity, no listen address and no
    /// bootstrap peers.
    #[must_use]
    pub fn new(psk: Psk) -> Self {
        Self {
            psk,
            identity: Identity::Ephemeral,
            transport: TransportKind::Tcp,
            listen: Vec::new(),
            bootstrap: Vec::new(),
            location: None,
            command_queue: 256,
            event_queue: 1024,
            max_pending_inbound: 1024,
            max_pending_outbound: 1024,
            request_timeout: Duration::from_secs(10),
            idle_connection_timeout: Duration::from_secs(1),
            max_connections: 64,
            max_outbound_connections: 8,
            handshake_timeout: Duration::from_secs(10),
            gossip_heartbeat: Duration::from_millis(500),
            summary_min_interval: Duration::from_millis(500),
            summary_refresh: Duration::from_secs(30),
            peer_ttl: Duration::from_secs(90),
            limits: Limits::default(),
        }
    }

    /// Sets the transport.
    #[must_use]
    pub fn with_transport(mut self, transport: TransportKind) -> Self {
        self.transport = transport;
        self
    }

    /// Adds a listen address.
    #[must_use]
    pub fn with_listen(mut self, addr: Multiaddr) -> Self {
        self.listen.push(addr);
        self
    }

    /// Adds a bootstrap peer address.
    #[must_use]
    pub fn with_bootstrap(mut self, addr: Multiaddr) -> Self {
        self.bootstrap.push(addr);
        self
    }

    /// Sets the topology location (enables a topology-aware key).
    #[must_use]
    pub fn with_location(mut self, location: Location) -> Self {
        self.location = Some(location);
        self
    }

    /// Sets the identity source.
    #[must_use]
    pub fn with_identity(mut self, identity: Identity) -> Self {
        self.identity = identity;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let queues = [
            ("command_queue", self.command_queue),
            ("event_queue", self.event_queue),
            ("max_pending_inbound", self.max_pending_inbound),
            ("max_pending_outbound", self.max_pending_outbound),
        ];
        for (field, v) in queues {
            if v == 0 {
                return Err(ConfigError::Zero { field });
            }
        }
        let durations = [
            ("request_timeout", self.request_timeout),
            ("idle_connection_timeout", self.idle_connection_timeout),
            ("handshake_timeout", self.handshake_timeout),
            ("gossip_heartbeat", self.gossip_heartbeat),
            ("summary_refresh", self.summary_refresh),
            ("peer_ttl", self.peer_ttl),
        ];
        for (field, v) in durations {
            if v.is_zero() {
                return Err(ConfigError::Zero { field });
            }
        }
        for (field, v) in [
            ("max_connections", self.max_connections),
            ("max_outbound_connections", self.max_outbound_connections),
        ] {
            if v == 0 {
                return Err(ConfigError::Zero { field });
            }
        }
        if let Some(field) = self.limits.zero_field() {
            return Err(ConfigError::Zero { field });
        }
        if self.max_outbound_connections > self.max_connections {
            return Err(ConfigError::OutboundAboveTotal);
        }
        if self.peer_ttl <= self.summary_refresh {
            return Err(ConfigError::TtlBelowRefresh);
        }
        Ok(())
    }
}

/// An invalid configuration value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The pre-shared key is not 64 hex digits (optionally in `swarm.key` format).
    #[error("pre-shared key is not 64 hex digits")]
    InvalidPsk,
    /// A queue size or duration is zero.
    #[error("{field} must be greater than zero")]
    Zero {
        /// The offending field.
        field: &'static str,
    },
    /// `max_outbound_connections` must not exceed `max_connections`.
    #[error("max_outbound_connections must not exceed max_connections")]
    OutboundAboveTotal,
    /// `peer_ttl` must exceed `summary_refresh`, or live peers would expire.
    #[error("peer_ttl must be greater than summary_refresh")]
    TtlBelowRefresh,
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn psk_parses_hex_and_swarm_key_format() {
        let a: Psk = HEX.parse().unwrap();
        let b: Psk = format!("/key/swarm/psk/1.0.0/\n/base16/\n{HEX}\n")
            .parse()
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.0[31], 0x1f);
    }

    #[test]
    fn bad_psk_is_an_error_not_a_panic() {
        for s in [
            "",
            "zz",
            &HEX[1..],
            &format!("{}é", &HEX[2..]),
            &HEX.replace('0', "g"),
        ] {
            assert_eq!(s.parse::<Psk>(), Err(ConfigError::InvalidPsk), "{s:?}");
        }
    }

    #[test]
    fn psk_debug_hides_the_key() {
        let a: Psk = HEX.parse().unwrap();
        assert!(!format!("{a:?}").contains("0a0b0c"));
    }

    #[test]
    fn connection_limits_must_be_positive_and_outbound_within_total() {
        let mut c = Config::new(Psk::new([1; 32]));
        c.max_outbound_connections = c.max_connections + 1;
        assert_eq!(c.validate(), Err(ConfigError::OutboundAboveTotal));
        c.max_outbound_connections = 0;
        assert_eq!(
            c.validate(),
            Err(ConfigError::Zero {
                field: "max_outbound_connections"
            })
        );
    }

    #[test]
    fn zero_queue_is_refused() {
        let mut c = Config::new(Psk::new([1; 32]));
        assert_eq!(c.validate(), Ok(()));
        c.event_queue = 0;
        assert_eq!(
            c.validate(),
            Err(ConfigError::Zero {
                field: "event_queue"
            })
        );
    }
}
