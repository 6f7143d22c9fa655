//! The libp2p side: the composed [`Behaviour`] and the transport stack.

use std::{sync::Arc, time::Duration};

use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Transport as _, allow_block_list,
    connection_limits::{self, ConnectionLimits},
    core::{
        muxing::StreamMuxerBox,
        transport::{Boxed, MemoryTransport},
        upgrade::Version,
    },
    gossipsub, identify,
    identity::Keypair,
    kad, noise,
    pnet::PnetConfig,
    request_response,
    swarm::NetworkBehaviour,
    tcp, yamux,
};

use crate::{
    codec::FrameCodec,
    config::{Config, Psk, TransportKind},
    dial_gate::DialGate,
    guard,
    stats::Counters,
    wire,
};

/// Upper bound on a gossipsub RPC (many envelopes plus control messages).
const GOSSIP_MAX_TRANSMIT: usize = 16 * 1024;
/// Messages a gossipsub connection handler may buffer (half of them non-priority).
const GOSSIP_QUEUE_LEN: usize = 64;
/// Messages (and, separately, control messages) taken from one gossipsub RPC; the rest are
/// ignored. gossipsub 0.49 sends one message per RPC, so honest peers never come near it.
const GOSSIP_MAX_MESSAGES_PER_RPC: usize = 16;
/// Message ids taken from IHAVEs of one peer per heartbeat (libp2p default 5000).
const GOSSIP_MAX_IHAVE_LENGTH: usize = 500;
/// Concurrent request-response streams per connection.
const RR_MAX_STREAMS: usize = 128;
/// Concurrent peer-table sync streams per connection.
const SYNC_MAX_STREAMS: usize = 4;

/// The composed libp2p behaviour.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// First, so a dial over the outbound limit is refused before its handshake.
    pub(crate) gate: DialGate,
    /// Penalised peers (see `guard`): their connections are closed and refused.
    pub(crate) blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    /// Then the hard limits, so a connection over them is refused before other behaviours
    /// see it.
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) kad: kad::Behaviour<kad::store::MemoryStore>,
    pub(crate) gossipsub:
        gossipsub::Behaviour<gossipsub::IdentityTransform, guard::SubscriptionFilter>,
    pub(crate) rr: request_response::Behaviour<FrameCodec>,
    pub(crate) sync: request_response::Behaviour<FrameCodec>,
    pub(crate) identify: identify::Behaviour,
}

/// Builds the transport: TCP or memory, then pnet, Noise, Yamux.
pub(crate) fn build_transport(
    kind: TransportKind,
    key: &Keypair,
    psk: Psk,
    handshake_timeout: Duration,
) -> Result<Boxed<(PeerId, StreamMuxerBox)>, noise::Error> {
    let pnet = PnetConfig::new(psk.to_libp2p());
    let noise = noise::Config::new(key)?;
    let yamux = yamux::Config::default();
    Ok(match kind {
        TransportKind::Tcp => tcp::tokio::Transport::new(tcp::Config::new().nodelay(true))
            .and_then(move |socket, _| pnet.handshake(socket))
            .upgrade(Version::V1Lazy)
            .authenticate(noise)
            .multiplex(yamux)
            .timeout(handshake_timeout)
            .boxed(),
        TransportKind::Memory => MemoryTransport::default()
            .and_then(move |socket, _| pnet.handshake(socket))
            .upgrade(Version::V1Lazy)
            .authenticate(noise)
            .multiplex(yamux)
            .timeout(handshake_timeout)
            .boxed(),
    })
}

/// Builds the behaviour from the config.
pub(crate) fn build_behaviour(
    cfg: &Config,
    key: &Keypair,
    counters: Arc<Counters>,
) -> Result<Behaviour, String> {
    let peer_id = key.public().to_peer_id();
    let mut kad_cfg = kad::Config::new(StreamProtocol::new(wire::KAD_PROTOCOL));
    kad_cfg.set_query_timeout(Duration::from_secs(30));
    let mut kad =
        kad::Behaviour::with_config(peer_id, kad::store::MemoryStore::new(peer_id), kad_cfg);
    // Hosts are servers of the DHT from the start; without this, kad waits for a confirmed
    // external address, which a private cluster may never get.
    kad.set_mode(Some(kad::Mode::Server));

    // Mesh connections are kept alive, so the mesh must leave room under the connection
    // limit for joiners and lookups: at most half of it (default mesh 6, 5 to 12).
    let mesh_high = usize::try_from(cfg.max_connections / 2)
        .unwrap_or(usize::MAX)
        .clamp(1, 12);
    let mesh_n = mesh_high.min(6);
    let mesh_low = mesh_n.min(5);
    let gossip_cfg = gossipsub::ConfigBuilder::default()
        .mesh_n_high(mesh_high)
        .mesh_n(mesh_n)
        .mesh_n_low(mesh_low)
        .mesh_outbound_min((mesh_n / 2).min(2))
        .heartbeat_interval(cfg.gossip_heartbeat)
        .validation_mode(gossipsub::ValidationMode::Strict)
        .validate_messages()
        .max_transmit_size(GOSSIP_MAX_TRANSMIT)
        // The default (5000) preallocates a large bounded queue per connection; summaries
        // are a few per second at most.
        .connection_handler_queue_len(GOSSIP_QUEUE_LEN)
        .max_messages_per_rpc(Some(GOSSIP_MAX_MESSAGES_PER_RPC))
        .max_ihave_length(GOSSIP_MAX_IHAVE_LENGTH)
        .build()
        .map_err(|e| e.to_string())?;
    let mut gossipsub = gossipsub::Behaviour::new_with_subscription_filter(
        gossipsub::MessageAuthenticity::Signed(key.clone()),
        gossip_cfg,
        guard::subscription_filter(counters.clone(), cfg.limits.max_topics_per_peer),
    )?;
    // Peer scoring carries the hostile-peer penalties (see `guard`).
    let load_topic = gossipsub::IdentTopic::new(wire::LOAD_TOPIC).hash();
    gossipsub.with_peer_score(guard::score_params(load_topic), guard::score_thresholds())?;
    gossipsub
        .subscribe(&gossipsub::IdentTopic::new(wire::LOAD_TOPIC))
        .map_err(|e| format!("cannot subscribe to {}: {e}", wire::LOAD_TOPIC))?;

    let sync = frame_behaviour(
        counters.clone(),
        wire::SYNC_PROTOCOL,
        cfg.request_timeout,
        SYNC_MAX_STREAMS,
    );
    let rr = frame_behaviour(
        counters,
        wire::RR_PROTOCOL,
        cfg.request_timeout,
        RR_MAX_STREAMS,
    );

    let identify = identify::Behaviour::new(
        identify::Config::new(wire::IDENTIFY_PROTOCOL.to_owned(), key.public())
            .with_agent_version(wire::agent_version(cfg.location))
            .with_push_listen_addr_updates(true),
    );
    let limits = connection_limits::Behaviour::new(
        ConnectionLimits::default()
            .with_max_established(Some(cfg.max_connections))
            .with_max_established_outgoing(Some(cfg.max_outbound_connections))
            .with_max_established_per_peer(Some(1)),
    );
    Ok(Behaviour {
        gate: DialGate::new(cfg.max_outbound_connections),
        blocked: allow_block_list::Behaviour::default(),
        limits,
        kad,
        gossipsub,
        rr,
        sync,
        identify,
    })
}

impl Behaviour {
    /// Tells Kademlia (and so request-response dials) where `peer` listens.
    pub(crate) fn add_address(&mut self, peer: &PeerId, addr: Multiaddr) {
        self.kad.add_address(peer, addr);
    }
}

/// A request-response behaviour speaking size-bounded frames on one protocol.
fn frame_behaviour(
    counters: Arc<Counters>,
    protocol: &'static str,
    timeout: Duration,
    max_streams: usize,
) -> request_response::Behaviour<FrameCodec> {
    request_response::Behaviour::with_codec(
        FrameCodec::new(counters),
        [(
            StreamProtocol::new(protocol),
            request_response::ProtocolSupport::Full,
        )],
        request_response::Config::default()
            .with_request_timeout(timeout)
            .with_max_concurrent_streams(max_streams),
    )
}
