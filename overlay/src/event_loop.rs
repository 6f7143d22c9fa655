//! The task that owns the libp2p `Swarm`: [`EventLoop`].

use std::{
    collections::{HashMap, HashSet},
    future::pending,
    io,
    sync::Arc,
    time::Duration,
};

use futures::StreamExt;
use libp2p::{
    Multiaddr, PeerId, Swarm, gossipsub, identify, kad,
    request_response::{self, InboundRequestId, OutboundRequestId, ResponseChannel},
    swarm::{ConnectionId, SwarmEvent},
};
use tokio::{
    sync::{mpsc, oneshot},
    time::{Instant, MissedTickBehavior, sleep_until},
};
use tracing::{debug, info, warn};

mod gossip;
mod limits;
mod sync;

use crate::{
    codec::Frame,
    config::Config,
    guard::{Guard, Kind},
    handle::{Command, CommandError, Event, RequestError, RequestId},
    peers::PeerTable,
    stats::{Counters, bump, set_connections, set_pending_inbound},
    swarm::{Behaviour, BehaviourEvent},
    wire,
};

/// Shortest interval between two peer-table syncs (while they keep teaching new peers).
const SYNC_MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Longest interval between two peer-table syncs (the backoff doubles up to it). Short,
/// because under the connection limits a host hears of most others only through sync (and
/// gossip, when hosts publish): a host whose neighbours knew nothing new last time must ask
/// again soon, as they keep learning. A sync is one request of 32 bytes and a response of
/// at most 256 entries.
const SYNC_MAX_INTERVAL: Duration = Duration::from_secs(4);
/// Period of [`EventLoop::housekeeping`] (expiry, sync, trimming, bootstrap retry).
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(500);
/// Minimum time between two warnings of the same kind.
const WARN_INTERVAL: Duration = Duration::from_secs(1);

/// Rate limit for one kind of warning: at most one per [`WARN_INTERVAL`], with a count of
/// the ones suppressed in between.
#[derive(Debug, Default)]
struct WarnLimit {
    next: Option<Instant>,
    suppressed: u64,
}

impl WarnLimit {
    /// `Some(suppressed since last)` when a warning may be logged now.
    fn allow(&mut self, now: Instant) -> Option<u64> {
        if self.next.is_some_and(|n| now < n) {
            self.suppressed += 1;
            return None;
        }
        self.next = Some(now + WARN_INTERVAL);
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[derive(Debug, Default)]
struct WarnLimits {
    bad_frame: WarnLimit,
    bad_gossip: WarnLimit,
    events_full: WarnLimit,
    inbound_full: WarnLimit,
    publish: WarnLimit,
    hostile: WarnLimit,
}

/// This host's summary and its publication state.
#[derive(Debug, Default)]
struct SummaryState {
    /// The latest summary the application set.
    current: Option<Vec<u8>>,
    /// The last summary actually published.
    published: Option<Vec<u8>>,
    /// When we last published or tried to.
    last_attempt: Option<Instant>,
    /// When we last published successfully.
    last_success: Option<Instant>,
    /// Publish even if unchanged (liveness refresh, failed attempt).
    force: bool,
}

/// Owns the libp2p `Swarm` and serves the [`Handle`](crate::Handle)s. Spawn
/// [`EventLoop::run`] on a tokio runtime.
pub struct EventLoop {
    /// The swarm, with all protocol state.
    swarm: Swarm<Behaviour>,
    /// Commands from handles.
    commands: mpsc::Receiver<Command>,
    /// Events to the application.
    events: mpsc::Sender<Event>,
    /// Validated configuration.
    cfg: Config,
    /// The load topic.
    topic: gossipsub::IdentTopic,
    /// Counters shared with handles and the codec.
    counters: Arc<Counters>,
    /// Known peers for candidate selection.
    peers: PeerTable,
    /// Outbound requests awaiting a response.
    pending_out: HashMap<OutboundRequestId, oneshot::Sender<Result<Vec<u8>, RequestError>>>,
    /// Inbound requests awaiting the application's response, with their requester.
    pending_in: HashMap<RequestId, (InboundRequestId, ResponseChannel<Frame>, PeerId)>,
    /// Per-peer limits against hostile peers.
    guard: Guard,
    /// Next inbound request id.
    next_request: u64,
    /// Local summary publication state.
    summary: SummaryState,
    /// A Kademlia bootstrap should run as soon as a peer is known.
    bootstrap_wanted: bool,
    /// Rate limits of repeated warnings.
    warn: WarnLimits,
    /// Peer-table sync schedule.
    sync: SyncState,
    /// Connections on which identify completed (a connection refused by the remote's limits
    /// never gets there, and its close says nothing about the peer).
    identified_conns: HashSet<ConnectionId>,
    /// Last protocol activity per connected peer, to tell an idle close from a failure.
    last_active: HashMap<PeerId, Instant>,
    /// Our gossip mesh as of the previous swarm event (gossipsub has already dropped a
    /// closed peer by the time we see the close).
    mesh: HashSet<PeerId>,
}

/// Peer-table sync schedule: one request in flight at most, exponential backoff while
/// syncs teach nothing new, back to the minimum when they do.
#[derive(Debug)]
struct SyncState {
    /// The request in flight.
    pending: Option<OutboundRequestId>,
    /// Earliest time of the next sync.
    next: Instant,
    /// Current interval.
    interval: Duration,
    /// Round-robin position among connected peers.
    cursor: usize,
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("peer", self.swarm.local_peer_id())
            .finish_non_exhaustive()
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => pending().await,
    }
}

impl EventLoop {
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<Event>,
        cfg: Config,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            swarm,
            commands,
            events,
            bootstrap_wanted: !cfg.bootstrap.is_empty(),
            guard: Guard::new(cfg.limits.clone(), counters.clone()),
            cfg,
            topic: gossipsub::IdentTopic::new(wire::LOAD_TOPIC),
            counters,
            peers: PeerTable::default(),
            pending_out: HashMap::new(),
            pending_in: HashMap::new(),
            next_request: 0,
            summary: SummaryState::default(),
            warn: WarnLimits::default(),
            sync: SyncState {
                pending: None,
                next: Instant::now(),
                interval: SYNC_MIN_INTERVAL,
                cursor: 0,
            },
            identified_conns: HashSet::new(),
            last_active: HashMap::new(),
            mesh: HashSet::new(),
        }
    }

    /// Runs until [`Handle::shutdown`](crate::Handle::shutdown) or until every handle is
    /// dropped. Local commands are served before network events.
    ///
    /// Cancel-safety: dropping the future drops the swarm, closing every connection; pending
    /// requests then fail with `Closed` at the handles. Prefer `Handle::shutdown`.
    pub async fn run(mut self) {
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING_INTERVAL);
        housekeeping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        info!(peer = %self.swarm.local_peer_id(), location = ?self.cfg.location, "overlay started");
        loop {
            let publish_at = self.next_publish_at();
            tokio::select! {
                biased;
                cmd = self.commands.recv() => match cmd {
                    Some(Command::Shutdown { reply }) => {
                        self.stop();
                        let _ = reply.send(());
                        return;
                    }
                    Some(cmd) => self.handle_command(cmd),
                    None => {
                        self.stop();
                        return;
                    }
                },
                () = sleep_until_opt(publish_at) => self.publish_summary(),
                _ = housekeeping.tick() => self.housekeeping(),
                event = self.swarm.select_next_some() => self.handle_swarm_event(event),
            }
        }
    }

    fn stop(&mut self) {
        for (_, reply) in self.pending_out.drain() {
            let _ = reply.send(Err(RequestError::Closed));
        }
        self.pending_in.clear();
        let connected: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in connected {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        info!(peer = %self.swarm.local_peer_id(), "overlay stopped");
    }

    // === commands ===

    fn handle_command(&mut self, cmd: Command) {
        match cmd {
            Command::Request { peer, bytes, reply } => {
                if self.pending_out.len() >= self.cfg.max_pending_outbound {
                    let _ = reply.send(Err(RequestError::Busy));
                    return;
                }
                if !self.swarm.is_connected(&peer) {
                    // The application's own traffic is never refused by the outbound limit
                    // (only the overlay's lookups are); the connection still counts, and
                    // trimming brings the total back down once it is idle.
                    let behaviour = self.swarm.behaviour_mut();
                    behaviour.limits.bypass_peer_id(&peer);
                    behaviour.gate.bypass(peer);
                }
                // The peer may be known only through a sync: give its address for the dial.
                let addrs = self.peers.addr(&peer).into_iter().collect();
                let id = self.swarm.behaviour_mut().rr.send_request_with_addresses(
                    &peer,
                    Frame(bytes),
                    addrs,
                );
                bump(&self.counters.requests_sent);
                self.pending_out.insert(id, reply);
            }
            Command::Respond {
                request,
                bytes,
                reply,
            } => {
                let res = match self.pending_in.remove(&request) {
                    Some((_, channel, peer)) => {
                        self.inbound_done(&peer);
                        self.swarm
                            .behaviour_mut()
                            .rr
                            .send_response(channel, Frame(bytes))
                            .map_err(|_| CommandError::UnknownRequest { request })
                    }
                    None => Err(CommandError::UnknownRequest { request }),
                };
                let _ = reply.send(res);
            }
            Command::Publish { summary, reply } => {
                self.summary.current = Some(summary);
                let _ = reply.send(Ok(()));
            }
            Command::Candidates {
                key,
                mut exclude,
                count,
                reply,
            } => {
                exclude.insert(*self.swarm.local_peer_id());
                let _ = reply.send(self.peers.candidates(&key, &exclude, count, Instant::now()));
            }
            Command::Dial { addr, reply } => {
                if let Some((peer, base)) = split_p2p(&addr) {
                    self.swarm.behaviour_mut().kad.add_address(&peer, base);
                }
                let res = self
                    .swarm
                    .dial(addr.clone())
                    .map_err(|source| CommandError::Dial { addr, source });
                let _ = reply.send(res);
            }
            Command::Bootstrap { reply } => {
                let res = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .bootstrap()
                    .map(|_| ())
                    .map_err(|_| CommandError::NoKnownPeers);
                if res.is_err() {
                    self.bootstrap_wanted = true;
                }
                let _ = reply.send(res);
            }
            Command::ListenAddrs { reply } => {
                let _ = reply.send(self.swarm.listeners().cloned().collect());
            }
            Command::Shutdown { .. } => {} // handled in `run`
        }
    }

    // === summary publication ===

    fn next_publish_at(&self) -> Option<Instant> {
        let s = &self.summary;
        let current = s.current.as_ref()?;
        if !s.force && s.published.as_ref() == Some(current) {
            return None;
        }
        Some(match s.last_attempt {
            Some(t) => t + self.cfg.summary_min_interval,
            None => Instant::now(),
        })
    }

    fn publish_summary(&mut self) {
        let now = Instant::now();
        self.summary.last_attempt = Some(now);
        let Some(current) = self.summary.current.clone() else {
            return;
        };
        let data = match wire::encode_envelope(self.cfg.location, &current) {
            Ok(d) => d,
            Err(error) => {
                // Unreachable: the handle checked the length. Drop it rather than retry.
                warn!(%error, "local summary refused");
                self.summary.current = None;
                return;
            }
        };
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(self.topic.clone(), data)
        {
            Ok(_) | Err(gossipsub::PublishError::Duplicate) => {
                bump(&self.counters.summaries_published);
                self.summary.published = Some(current);
                self.summary.force = false;
                self.summary.last_success = Some(now);
                debug!("summary published");
            }
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                // Retried after `summary_min_interval`; normal while alone.
                self.summary.force = true;
                debug!("summary not published: no subscribed peers yet");
            }
            Err(error) => {
                self.summary.force = true;
                if let Some(suppressed) = self.warn.publish.allow(now) {
                    warn!(error = %error, suppressed, "summary publication failed");
                }
            }
        }
    }

    fn housekeeping(&mut self) {
        let now = Instant::now();
        let expired = self.peers.expire(now, self.cfg.peer_ttl);
        if expired > 0 {
            debug!(expired, "forgot silent peers");
        }
        if self
            .summary
            .last_success
            .is_some_and(|t| now.saturating_duration_since(t) >= self.cfg.summary_refresh)
        {
            self.summary.force = true;
        }
        self.trim_connections(now);
        self.limits_housekeeping(now);
        let connected: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        if connected.is_empty() {
            self.rejoin(now);
        }
        if !connected.is_empty() {
            self.sync.cursor = self.sync.cursor.wrapping_add(1);
            let peer = connected[self.sync.cursor % connected.len()];
            self.maybe_sync(peer, now);
        }
    }

    /// Closes idle connections outside the gossip mesh while more than half of
    /// `max_connections` are established, oldest activity first, so a host (a bootstrap host
    /// above all) keeps room for joiners. The swarm's own idle timeout cannot do it: gossipsub
    /// keeps a stream open on every connection, and an open stream counts as activity.
    /// "Idle" is no protocol activity for `idle_connection_timeout`; the remote sees the same
    /// traffic, so it takes the close for an idle close (no traffic within half of it) and
    /// does not forget us.
    fn trim_connections(&mut self, now: Instant) {
        let target = usize::try_from(self.cfg.max_connections / 2).unwrap_or(usize::MAX);
        let established = self
            .swarm
            .network_info()
            .connection_counters()
            .num_established();
        let mut excess = usize::try_from(established)
            .unwrap_or(usize::MAX)
            .saturating_sub(target);
        if excess == 0 {
            return;
        }
        let mut idle: Vec<(Instant, PeerId)> = self
            .last_active
            .iter()
            .filter(|(p, t)| {
                !self.mesh.contains(p)
                    && now.saturating_duration_since(**t) >= self.cfg.idle_connection_timeout
            })
            .map(|(p, t)| (*t, *p))
            .collect();
        idle.sort_unstable();
        for (_, peer) in idle {
            if excess == 0 {
                break;
            }
            if self.swarm.disconnect_peer_id(peer).is_ok() {
                excess -= 1;
                debug!(%peer, "idle connection trimmed");
            }
        }
    }

    /// Alone: the bootstrap hosts may have refused us at their connection limit (or be
    /// restarting), or trimmed us. Dial them again, and a few hosts we learned through sync
    /// (closest to our key), so joiners spread over the cluster instead of all waiting for
    /// the bootstrap hosts to trim.
    fn rejoin(&mut self, now: Instant) {
        let key = crate::peers::key_of(self.swarm.local_peer_id(), self.cfg.location);
        let known = usize::try_from(self.cfg.max_outbound_connections / 2)
            .unwrap_or(1)
            .max(1);
        let mut addrs: Vec<Multiaddr> = self.cfg.bootstrap.clone();
        for (peer, addr) in self.peers.dialable(&key, known, now) {
            addrs.push(addr.with_p2p(peer).unwrap_or_else(|a| a));
        }
        if addrs.is_empty() {
            return;
        }
        for addr in addrs {
            if let Some((peer, base)) = split_p2p(&addr) {
                self.swarm.behaviour_mut().kad.add_address(&peer, base);
            }
            if let Err(error) = self.swarm.dial(addr.clone()) {
                debug!(%addr, %error, "rejoin dial failed");
            }
        }
        self.bootstrap_wanted = true;
    }

    // === swarm events ===

    fn emit(&mut self, event: Event) -> bool {
        match self.events.try_send(event) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                bump(&self.counters.events_dropped);
                if let Some(suppressed) = self.warn.events_full.allow(Instant::now()) {
                    warn!(suppressed, "event queue full, event dropped");
                }
                false
            }
            // The application dropped its receiver; keep serving handles.
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Records protocol activity with `peer`.
    fn active(&mut self, peer: PeerId, now: Instant) {
        if let Some(t) = self.last_active.get_mut(&peer) {
            *t = now;
        }
    }

    /// Whether a close by the remote of our last connection to `peer` means the peer failed
    /// or left, rather than an idle close (trimming) on its side. An idle close happens only
    /// on a connection outside the gossip mesh and after `idle_connection_timeout` without
    /// traffic; both ends see the same traffic.
    fn closed_by_failure(&self, peer: &PeerId, identified: bool, now: Instant) -> bool {
        if !identified {
            // Refused by the remote's connection limit, or closed during the handshake.
            return false;
        }
        let recent = self.last_active.get(peer).is_some_and(|t| {
            now.saturating_duration_since(*t) < self.cfg.idle_connection_timeout / 2
        });
        recent || self.mesh.contains(peer)
    }

    fn handle_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        let opened_or_closed = matches!(
            event,
            SwarmEvent::ConnectionEstablished { .. } | SwarmEvent::ConnectionClosed { .. }
        );
        self.dispatch_swarm_event(event);
        if opened_or_closed {
            let info = self.swarm.network_info();
            set_connections(&self.counters, info.connection_counters().num_established());
        }
        // Snapshot the mesh for the next close (at most mesh_n_high peers).
        self.mesh.clear();
        let mesh = self.swarm.behaviour().gossipsub.all_mesh_peers().copied();
        self.mesh.extend(mesh);
    }

    fn dispatch_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        let now = Instant::now();
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Rr(e)) => self.handle_rr(e),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(e)) => self.handle_sync(e),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(e)) => self.handle_gossip(e),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                connection_id,
                peer_id,
                info,
            })) => {
                self.identified_conns.insert(connection_id);
                self.active(peer_id, now);
                self.handle_identified(peer_id, info);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(_)) => {}
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::RoutingUpdated {
                peer, ..
            })) => {
                debug!(%peer, "kademlia routing updated");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                self.last_active.insert(peer_id, now);
                let behaviour = self.swarm.behaviour_mut();
                behaviour.limits.remove_peer_id(&peer_id);
                behaviour.gate.remove_bypass(&peer_id);
                if endpoint.is_dialer() {
                    let addr = endpoint.get_remote_address().clone();
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                    self.try_bootstrap();
                }
                if self.peers.connected(peer_id, now) {
                    debug!(peer = %peer_id, "peer up");
                    self.emit(Event::PeerUp { peer: peer_id });
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                cause,
                ..
            } => {
                // `cause` is `None` for a local close (idle timeout, shutdown). A remote
                // close is a failure unless it looks like the remote's idle timeout.
                let identified = self.identified_conns.remove(&connection_id);
                let failed = cause.is_some() && self.closed_by_failure(&peer_id, identified, now);
                self.peers.disconnected(&peer_id, num_established, failed);
                if num_established == 0 {
                    self.last_active.remove(&peer_id);
                    self.guard.forget(&peer_id);
                    debug!(peer = %peer_id, "peer down");
                    self.emit(Event::PeerDown { peer: peer_id });
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "overlay listening");
                self.emit(Event::Listening { address });
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                if let Some(peer) = peer_id {
                    let behaviour = self.swarm.behaviour_mut();
                    behaviour.limits.remove_peer_id(&peer);
                    behaviour.gate.remove_bypass(&peer);
                }
                debug!(peer = ?peer_id, %error, "outgoing connection failed");
            }
            SwarmEvent::IncomingConnectionError { error, .. } => {
                if let libp2p::swarm::ListenError::Denied { cause } = &error
                    && cause
                        .downcast_ref::<libp2p::allow_block_list::Blocked>()
                        .is_some()
                {
                    bump(&self.counters.connections_blocked);
                }
                debug!(%error, "incoming connection failed");
            }
            _ => {}
        }
    }

    fn try_bootstrap(&mut self) {
        if self.bootstrap_wanted && self.swarm.behaviour_mut().kad.bootstrap().is_ok() {
            self.bootstrap_wanted = false;
            debug!("kademlia bootstrap started");
        }
    }

    fn handle_identified(&mut self, peer: PeerId, info: identify::Info) {
        let Some(position) = wire::parse_agent_version(&info.agent_version) else {
            debug!(%peer, agent = %info.agent_version, "peer is not a dvms overlay host");
            return;
        };
        let mut first = None;
        for addr in info.listen_addrs.into_iter().filter(usable_addr) {
            first.get_or_insert_with(|| addr.clone());
            self.swarm.behaviour_mut().kad.add_address(&peer, addr);
        }
        let now = Instant::now();
        let new = self.peers.identified(peer, position, first, now);
        self.try_bootstrap();
        // A newly identified overlay host is a good source of hosts we do not know yet: sync
        // with it now, whatever the backoff.
        if new {
            self.sync.interval = SYNC_MIN_INTERVAL;
            self.sync.next = self.sync.next.min(now);
        }
        self.maybe_sync(peer, now);
    }

    fn handle_rr(&mut self, event: request_response::Event<Frame, Frame>) {
        use request_response::{Event as E, Message};
        self.active(rr_peer(&event), Instant::now());
        match event {
            E::Message {
                peer,
                message:
                    Message::Request {
                        request_id,
                        request,
                        channel,
                    },
                ..
            } => {
                let now = Instant::now();
                if let Err(refusal) = self.guard.inbound_request(peer, now) {
                    // Dropping the channel fails the request at the requester.
                    self.refuse(Kind::Request, refusal, peer, now);
                    return;
                }
                if self.pending_in.len() >= self.cfg.max_pending_inbound {
                    self.inbound_done(&peer);
                    // Dropping the channel fails the request at the requester.
                    bump(&self.counters.inbound_refused);
                    if let Some(suppressed) = self.warn.inbound_full.allow(Instant::now()) {
                        warn!(%peer, suppressed, "too many pending inbound requests, request refused");
                    }
                    return;
                }
                let id = RequestId(self.next_request);
                self.next_request += 1;
                bump(&self.counters.requests_received);
                self.pending_in.insert(id, (request_id, channel, peer));
                set_pending_inbound(&self.counters, self.pending_in.len());
                let delivered = self.emit(Event::InboundRequest {
                    peer,
                    request: id,
                    bytes: request.0,
                });
                if !delivered {
                    self.pending_in.remove(&id);
                    self.inbound_done(&peer);
                }
            }
            E::Message {
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(reply) = self.pending_out.remove(&request_id) {
                    let _ = reply.send(Ok(response.0));
                }
            }
            E::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                debug!(%peer, %error, "outbound request failed");
                let err = match error {
                    request_response::OutboundFailure::DialFailure => RequestError::Unreachable,
                    request_response::OutboundFailure::Timeout => RequestError::Timeout,
                    request_response::OutboundFailure::ConnectionClosed => {
                        RequestError::ConnectionClosed
                    }
                    request_response::OutboundFailure::UnsupportedProtocols => {
                        RequestError::UnsupportedProtocol
                    }
                    request_response::OutboundFailure::Io(source) => {
                        self.warn_bad_frame(peer, &source);
                        RequestError::Io { source }
                    }
                };
                if let Some(reply) = self.pending_out.remove(&request_id) {
                    let _ = reply.send(Err(err));
                }
            }
            E::InboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                let before = self.pending_in.len();
                self.pending_in.retain(|_, (id, _, _)| *id != request_id);
                if self.pending_in.len() < before {
                    self.inbound_done(&peer);
                }
                match error {
                    request_response::InboundFailure::Io(e) => self.warn_bad_frame(peer, &e),
                    other => debug!(%peer, error = %other, "inbound request failed"),
                }
            }
            E::ResponseSent { .. } => {}
        }
    }

    fn warn_bad_frame(&mut self, peer: PeerId, error: &io::Error) {
        if error.kind() == io::ErrorKind::InvalidData
            || error.kind() == io::ErrorKind::UnexpectedEof
        {
            if let Some(suppressed) = self.warn.bad_frame.allow(Instant::now()) {
                warn!(%peer, %error, suppressed, "malformed frame dropped");
            }
        } else {
            debug!(%peer, %error, "request stream failed");
        }
    }
}

/// The remote peer of a request-response event.
fn rr_peer(event: &request_response::Event<Frame, Frame>) -> PeerId {
    use request_response::Event as E;
    match event {
        E::Message { peer, .. }
        | E::OutboundFailure { peer, .. }
        | E::InboundFailure { peer, .. }
        | E::ResponseSent { peer, .. } => *peer,
    }
}

/// Splits `/…/p2p/<peer>` into the peer and the address before it.
pub(crate) fn split_p2p(addr: &Multiaddr) -> Option<(PeerId, Multiaddr)> {
    let mut base = addr.clone();
    match base.pop()? {
        libp2p::multiaddr::Protocol::P2p(peer) => Some((peer, base)),
        _ => None,
    }
}

/// Listen addresses worth giving Kademlia (not unspecified `0.0.0.0`/`::`).
fn usable_addr(addr: &Multiaddr) -> bool {
    use libp2p::multiaddr::Protocol;
    !addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_unspecified(),
        Protocol::Ip6(ip) => ip.is_unspecified(),
        _ => false,
    })
}
