//! dvms-overlay: the libp2p overlay that connects DVMS hosts.
//!
//! Hosts find each other with Kademlia (bootstrapping from configured addresses), share
//! small load summaries on the gossipsub topic `dvms/load/1`, and exchange scheduling (ISP)
//! messages with request-response on `/dvms/rr/1`. Connections run over TCP (or an in-memory
//! transport for tests), inside a private network keyed by a pre-shared key (libp2p pnet),
//! then Noise and Yamux. The overlay carries opaque bytes: the agent owns the message types.
//!
//! A fourth protocol, peer-table sync (`/dvms/sync/1`), lets a host that connects ask a
//! peer for the hosts it knows closest to its key, with their positions and summaries, so a
//! joiner knows the cluster in one round trip and summaries need no republishing for joiners.
//!
//! The application talks to the overlay through a [`Handle`] (commands with replies), reads
//! [`Event`]s from a bounded queue, and spawns the [`EventLoop`] that owns the libp2p swarm.
//! [`Handle::candidates`] returns the known hosts closest to a key, with their latest
//! summaries: the next hop of the scheduling procedure, without walking through busy hosts.
//!
//! # Layout
//!
//! - [`key`]: topology-aware overlay keys and XOR distance (pure, no libp2p types).
//! - [`wire`]: the request-response frame, gossip envelope and sync formats and their limits.
//! - `config`: [`Config`], [`Psk`], [`Location`].
//! - `handle`: [`Handle`], [`Event`], [`RequestError`], [`CommandError`].
//! - `event_loop`: [`EventLoop`], the task that owns the swarm; `swarm`: the composed libp2p
//!   behaviour and the transport stack; `dial_gate`: refuses dials over the outbound connection
//!   limit before their handshake (see [`Config::max_connections`] for the limits).
//! - `peers`: the known-peer table behind [`Handle::candidates`] ([`Candidate`]).
//! - `guard`: per-peer limits against hostile peers ([`Limits`]): rate limits, per-peer
//!   caps, penalties through gossipsub peer scoring, the subscription filter.
//! - `codec`, `identity`, `stats`: frame codec, persisted host key, counters ([`Stats`]).
//!
//! # Example
//!
//! Two hosts on the in-memory transport: one answers requests, the other asks.
//!
//! ```
//! use dvms_overlay::{Config, Event, Overlay, Psk, TransportKind};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let psk = Psk::new([7; 32]);
//! let cfg = Config::new(psk)
//!     .with_transport(TransportKind::Memory)
//!     .with_listen("/memory/0".parse()?);
//! let (server, mut server_events, server_loop) = Overlay::new(cfg)?;
//! tokio::spawn(server_loop.run());
//! let addr = loop {
//!     if let Some(Event::Listening { address }) = server_events.recv().await {
//!         break address;
//!     }
//! };
//!
//! // With `/p2p/<id>`, the client can address the server before identify completes.
//! let bootstrap = format!("{addr}/p2p/{}", server.local_peer_id()).parse()?;
//! let cfg = Config::new(psk).with_transport(TransportKind::Memory).with_bootstrap(bootstrap);
//! let (client, _client_events, client_loop) = Overlay::new(cfg)?;
//! tokio::spawn(client_loop.run());
//!
//! let responder = server.clone();
//! tokio::spawn(async move {
//!     while let Some(event) = server_events.recv().await {
//!         if let Event::InboundRequest { request, bytes, .. } = event {
//!             let _ = responder.respond(request, bytes.to_ascii_uppercase()).await;
//!         }
//!     }
//! });
//! let answer = client.send_request(server.local_peer_id(), b"ping".to_vec()).await?;
//! assert_eq!(answer, b"PING");
//! client.shutdown().await?;
//! server.shutdown().await?;
//! # Ok(())
//! # }
//! ```

mod codec;
mod config;
mod dial_gate;
mod event_loop;
mod guard;
mod handle;
mod identity;
pub mod key;
mod peers;
mod stats;
mod swarm;
pub mod wire;

use std::sync::Arc;

pub use libp2p::{Multiaddr, PeerId};
use tokio::sync::mpsc;

pub use crate::{
    config::{Config, ConfigError, Identity, Location, Psk, TransportKind},
    event_loop::EventLoop,
    guard::{Limits, Rate},
    handle::{CommandError, Event, Handle, RequestError, RequestId},
    identity::{IDENTITY_FILE, IdentityError},
    key::{OverlayKey, flat_key, overlay_key, xor_distance},
    peers::Candidate,
    stats::Stats,
    wire::{LOAD_TOPIC, MAX_FRAME_LEN, MAX_SUMMARY_LEN, RR_PROTOCOL},
};

/// The overlay key of `peer` at `location` (`None` for a flat key): [`overlay_key`] or
/// [`flat_key`] of the peer id's bytes.
#[must_use]
pub fn peer_key(peer: &PeerId, location: Option<Location>) -> OverlayKey {
    peers::key_of(peer, location)
}

/// Loads this host's identity from `<dir>/overlay-identity.key`, creating it (mode 0600) when
/// absent, never overwriting it, and returns its peer id. `dvmsd init` calls it so the identity
/// exists before the first start.
///
/// # Errors
/// [`IdentityError`] when the file cannot be read or written, or is corrupt.
pub fn load_or_create_identity(dir: &std::path::Path) -> Result<PeerId, IdentityError> {
    identity::load_or_create(dir).map(|k| k.public().to_peer_id())
}

/// Starting the overlay failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NewError {
    /// The configuration is invalid.
    #[error("invalid overlay configuration")]
    Config(#[source] ConfigError),
    /// The identity key could not be loaded or created.
    #[error("cannot load overlay identity")]
    Identity(#[source] IdentityError),
    /// The Noise handshake configuration could not be built from the identity.
    #[error("cannot set up noise encryption")]
    Noise(#[source] libp2p::noise::Error),
    /// A libp2p behaviour refused its configuration.
    #[error("cannot configure overlay protocols: {reason}")]
    Behaviour {
        /// libp2p's reason.
        reason: String,
    },
    /// Listening on a configured address failed.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// The transport error.
        #[source]
        source: libp2p::TransportError<std::io::Error>,
    },
}

/// Entry point: builds an overlay from a [`Config`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Overlay;

impl Overlay {
    /// Validates `cfg`, loads the identity, builds the swarm, starts listening and dialling
    /// the bootstrap peers, and returns the handle, the event queue and the event loop to
    /// spawn. Must be called inside a tokio runtime. Nothing happens on the network until
    /// [`EventLoop::run`] is polled.
    ///
    /// # Errors
    /// See [`NewError`]. Unreachable bootstrap peers are not an error (they are logged).
    #[expect(
        clippy::new_ret_no_self,
        reason = "libp2p file-sharing pattern: new returns handle, events and loop"
    )]
    pub fn new(cfg: Config) -> Result<(Handle, mpsc::Receiver<Event>, EventLoop), NewError> {
        cfg.validate().map_err(NewError::Config)?;
        let key = match &cfg.identity {
            Identity::StateDir(dir) => identity::load_or_create(dir).map_err(NewError::Identity)?,
            Identity::Ephemeral => libp2p::identity::Keypair::generate_ed25519(),
        };
        let peer_id = key.public().to_peer_id();
        let counters = Arc::new(stats::Counters::default());
        let transport = swarm::build_transport(cfg.transport, &key, cfg.psk, cfg.handshake_timeout)
            .map_err(NewError::Noise)?;
        let behaviour = swarm::build_behaviour(&cfg, &key, counters.clone())
            .map_err(|reason| NewError::Behaviour { reason })?;
        let swarm_cfg = libp2p::swarm::Config::with_tokio_executor()
            .with_idle_connection_timeout(cfg.idle_connection_timeout);
        let mut swarm = libp2p::Swarm::new(transport, behaviour, peer_id, swarm_cfg);
        for addr in &cfg.listen {
            swarm
                .listen_on(addr.clone())
                .map_err(|source| NewError::Listen {
                    addr: addr.clone(),
                    source,
                })?;
        }
        for addr in &cfg.bootstrap {
            if let Some((peer, base)) = event_loop::split_p2p(addr) {
                swarm.behaviour_mut().add_address(&peer, base);
            }
            if let Err(error) = swarm.dial(addr.clone()) {
                tracing::warn!(%addr, %error, "cannot dial bootstrap peer");
            }
        }
        let (cmd_tx, cmd_rx) = mpsc::channel(cfg.command_queue);
        let (ev_tx, ev_rx) = mpsc::channel(cfg.event_queue);
        let handle = Handle {
            commands: cmd_tx,
            peer_id,
            key: peer_key(&peer_id, cfg.location),
            location: cfg.location,
            counters: counters.clone(),
        };
        let event_loop = EventLoop::new(swarm, cmd_rx, ev_tx, cfg, counters);
        Ok((handle, ev_rx, event_loop))
    }
}

#[cfg(test)]
mod tests;
