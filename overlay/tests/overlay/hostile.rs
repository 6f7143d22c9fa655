//! Hostile peers (issue 13): a peer that holds the cluster key floods a host with junk and
//! oversized summaries, oversized and excess requests, sync requests and subscriptions,
//! while honest hosts keep exchanging requests and summaries with it.
//!
//! The hostile peer is built from raw libp2p with the overlay's transport (memory, pnet with
//! the cluster key, Noise, Yamux) and its own codec, so it can write frames the overlay would
//! never send. The checks are on delivery and on the overlay's own counters and bounded
//! structures, never on wall time.
#![allow(
    clippy::unwrap_used,
    reason = "test harness: a failed setup is a failed test"
)]

use std::{
    io,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use dvms_overlay::{
    Handle, LOAD_TOPIC, Limits, MAX_FRAME_LEN, Multiaddr, PeerId, RR_PROTOCOL, Rate, Stats,
    wire::{self, SYNC_PROTOCOL},
};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::{
    StreamProtocol, Swarm, Transport as _,
    core::{transport::MemoryTransport, upgrade::Version},
    gossipsub, identity, noise,
    pnet::{PnetConfig, PreSharedKey},
    request_response::{self, ProtocolSupport},
    swarm::{NetworkBehaviour, SwarmEvent},
    yamux,
};
use tokio::time::{interval, sleep, timeout};

use crate::harness::{Node, WAIT, echo, eventually, memory_config, start};

/// How long the hostile peer floods at least; it goes on (up to [`WAIT`]) until the victim
/// has counted every kind of drop, which takes longer on a loaded machine.
const FLOOD: Duration = Duration::from_secs(3);
/// Topics the hostile peer subscribes to at most: its own gossipsub slows down with
/// thousands of topics, which would weaken the attack on a long run.
const MAX_HOSTILE_TOPICS: u64 = 300;
/// Requests (and syncs) of the hostile peer in flight at most, so its own queues stay small.
const MAX_IN_FLIGHT: u64 = 2048;
/// Flood batches per second (one per tick) and messages per batch: 100 x 100 = 10,000/s.
const TICK: Duration = Duration::from_millis(10);
/// Per batch: signed gossip messages (valid envelopes, junk, oversized), requests (valid,
/// oversized), sync requests, subscriptions.
const BATCH_GOSSIP: usize = 50;
const BATCH_REQUESTS: usize = 30;
const BATCH_SYNCS: usize = 15;
const BATCH_SUBSCRIPTIONS: usize = 5;

/// Raw request-response codec of the hostile peer: writes its bytes as they are (it builds
/// the frames itself), reads whatever answer comes (bounded).
#[derive(Clone, Debug, Default)]
struct RawCodec;

#[async_trait::async_trait]
impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_bounded(io).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_bounded(io).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&req).await?;
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&res).await?;
        io.close().await
    }
}

async fn read_bounded<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let limit = u64::try_from(MAX_FRAME_LEN + 16).unwrap_or(u64::MAX);
    io.take(limit).read_to_end(&mut out).await?;
    Ok(out)
}

#[derive(NetworkBehaviour)]
struct Hostile {
    gossipsub: gossipsub::Behaviour,
    rr: request_response::Behaviour<RawCodec>,
    sync: request_response::Behaviour<RawCodec>,
}

/// What the hostile peer managed to send.
#[derive(Debug, Default)]
struct Sent {
    published: u64,
    /// Of which oversized.
    oversized_gossip: u64,
    publish_failed: u64,
    requests: u64,
    syncs: u64,
    subscriptions: u64,
    /// Requests answered or closed by the victim (a refusal closes the stream).
    responses: u64,
    request_failures: u64,
    /// Times the victim closed our last connection, and our dials after that.
    disconnected: u64,
    redials: u64,
    elapsed: Duration,
}

impl Sent {
    fn attempts(&self) -> u64 {
        self.published + self.publish_failed + self.requests + self.syncs + self.subscriptions
    }
}

fn hostile_swarm(psk: [u8; 32]) -> Swarm<Hostile> {
    let key = identity::Keypair::generate_ed25519();
    let peer = key.public().to_peer_id();
    let pnet = PnetConfig::new(PreSharedKey::new(psk));
    let transport = MemoryTransport::default()
        .and_then(move |socket, _| pnet.handshake(socket))
        .upgrade(Version::V1Lazy)
        .authenticate(noise::Config::new(&key).unwrap())
        .multiplex(yamux::Config::default())
        .boxed();
    let gossip_cfg = gossipsub::ConfigBuilder::default()
        // Big enough to send oversized messages; a queue deep enough that the flood is not
        // limited by the hostile peer's own queue.
        .max_transmit_size(256 * 1024)
        .connection_handler_queue_len(1_000)
        .heartbeat_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    let gossipsub =
        gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(key), gossip_cfg).unwrap();
    let rr_cfg = request_response::Config::default()
        .with_request_timeout(Duration::from_secs(2))
        .with_max_concurrent_streams(4096);
    let raw = |proto: &'static str| {
        request_response::Behaviour::with_codec(
            RawCodec,
            [(StreamProtocol::new(proto), ProtocolSupport::Full)],
            rr_cfg.clone(),
        )
    };
    let behaviour = Hostile {
        gossipsub,
        rr: raw(RR_PROTOCOL),
        sync: raw(SYNC_PROTOCOL),
    };
    Swarm::new(
        transport,
        behaviour,
        peer,
        libp2p::swarm::Config::with_tokio_executor()
            .with_idle_connection_timeout(Duration::from_secs(30)),
    )
}

/// A frame as the overlay writes it.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = wire::frame_header(payload.len()).unwrap().to_vec();
    out.extend_from_slice(payload);
    out
}

/// A frame header announcing more than the overlay accepts, then some bytes.
fn oversized_frame() -> Vec<u8> {
    let mut out = vec![wire::FRAME_VERSION];
    let len = u32::try_from(MAX_FRAME_LEN + 1).unwrap();
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&[0xAB; 1024]);
    out
}

/// Connects to `victim`, waits until it is subscribed to the load topic, floods for
/// [`FLOOD`] and until `victim` counted every kind of drop (at most [`WAIT`]), and returns
/// what was sent.
async fn flood(
    victim: Multiaddr,
    victim_peer: PeerId,
    victim_handle: Handle,
    disconnect: bool,
) -> Sent {
    let mut swarm = hostile_swarm([0x42; 32]);
    let load = gossipsub::IdentTopic::new(LOAD_TOPIC);
    swarm.behaviour_mut().gossipsub.subscribe(&load).unwrap();
    swarm.dial(victim.clone()).unwrap();
    timeout(WAIT, async {
        loop {
            if let SwarmEvent::Behaviour(HostileEvent::Gossipsub(gossipsub::Event::Subscribed {
                peer_id,
                topic,
            })) = swarm.select_next_some().await
                && peer_id == victim_peer
                && topic == load.hash()
            {
                return;
            }
        }
    })
    .await
    .expect("victim's subscription seen by the hostile peer");

    let mut sent = Sent::default();
    let start = Instant::now();
    let mut tick = interval(TICK);
    let mut last_dial = Instant::now();
    let mut n: u64 = 0;
    while start.elapsed() < WAIT
        && (start.elapsed() < FLOOD || !all_counted(&victim_handle.stats(), disconnect))
    {
        tokio::select! {
            _ = tick.tick() => {
                // Once penalised and disconnected, keep trying to come back (every 100 ms).
                if !swarm.is_connected(&victim_peer) && last_dial.elapsed() > Duration::from_millis(100) {
                    last_dial = Instant::now();
                    sent.redials += 1;
                    let _ = swarm.dial(victim.clone());
                }
                // Oversized gossip only in the last tenth: the victim drops the gossipsub
                // stream that carries one, which also ends this peer's gossip flood.
                let oversized_phase =
                    start.elapsed() > FLOOD.mul_f64(0.8) && gossip_counted(&victim_handle.stats());
                for i in 0..BATCH_GOSSIP {
                    n += 1;
                    let data = if oversized_phase && i == 0 {
                        // Beyond the overlay's gossipsub transmit limit (16 KiB).
                        sent.oversized_gossip += 1;
                        vec![0xEE; 17 * 1024]
                    } else if i < BATCH_GOSSIP / 2 {
                        // A valid envelope: passes validation, limited by the author rate.
                        wire::encode_envelope(None, format!("free={n}").as_bytes()).unwrap()
                    } else {
                        // Junk: fails envelope validation.
                        n.to_be_bytes().repeat(3)
                    };
                    match swarm.behaviour_mut().gossipsub.publish(load.clone(), data) {
                        Ok(_) => sent.published += 1,
                        Err(_) => sent.publish_failed += 1,
                    }
                }
                let in_flight = (sent.requests + sent.syncs)
                    .saturating_sub(sent.responses + sent.request_failures);
                for i in 0..BATCH_REQUESTS {
                    if in_flight > MAX_IN_FLIGHT {
                        break;
                    }
                    let bytes = if i % 5 == 0 { oversized_frame() } else { frame(b"spam") };
                    swarm.behaviour_mut().rr.send_request(&victim_peer, bytes);
                    sent.requests += 1;
                }
                for _ in 0..BATCH_SYNCS {
                    if in_flight > MAX_IN_FLIGHT {
                        break;
                    }
                    swarm.behaviour_mut().sync.send_request(&victim_peer, frame(&[7; 32]));
                    sent.syncs += 1;
                }
                for i in 0..BATCH_SUBSCRIPTIONS {
                    if sent.subscriptions >= MAX_HOSTILE_TOPICS {
                        break;
                    }
                    n += 1;
                    let name = if i % 2 == 0 { format!("dvms/junk/{n}") } else { format!("other/{n}") };
                    if swarm.behaviour_mut().gossipsub.subscribe(&gossipsub::IdentTopic::new(name)).is_ok() {
                        sent.subscriptions += 1;
                    }
                }
            }
            event = swarm.select_next_some() => match event {
                SwarmEvent::Behaviour(HostileEvent::Rr(request_response::Event::Message { .. }))
                | SwarmEvent::Behaviour(HostileEvent::Sync(request_response::Event::Message { .. })) => {
                    sent.responses += 1;
                }
                SwarmEvent::Behaviour(HostileEvent::Rr(request_response::Event::OutboundFailure { .. }))
                | SwarmEvent::Behaviour(HostileEvent::Sync(request_response::Event::OutboundFailure { .. })) => {
                    sent.request_failures += 1;
                }
                SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } if peer_id == victim_peer => {
                    sent.disconnected += 1;
                }
                _ => {}
            },
        }
    }
    sent.elapsed = start.elapsed();
    sent
}

/// Whether the victim counted the gossip attacks (before oversized gossip ends them).
fn gossip_counted(s: &Stats) -> bool {
    s.gossip_rejected > 0 && s.gossip_rate_limited > 0 && s.subscriptions_refused > 0
}

/// Whether the victim counted every kind of drop or, with `disconnect`, penalised the peer
/// and refused its reconnections.
fn all_counted(s: &Stats, disconnect: bool) -> bool {
    if disconnect {
        return s.peers_penalised > 0 && s.connections_blocked > 0;
    }
    gossip_counted(s)
        && s.frames_oversized > 0
        && s.requests_rate_limited + s.requests_peer_pending_full > 0
        && s.syncs_rate_limited > 0
        && s.peers_penalised > 0
}

/// Resident set size of this process, in KiB (Linux), for the report.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn test_limits(disconnect: bool) -> Limits {
    let mut limits = Limits::default();
    limits.disconnect_penalised = disconnect;
    // Smaller than the defaults, so the test sees each cap with a short flood, even when a
    // loaded machine slows the hostile peer down (the honest requester stays below 50/s).
    limits.requests = Rate::new(100, 50);
    limits.offences_to_penalise = 16;
    limits.max_pending_inbound_per_peer = 32;
    limits.max_topics_per_peer = 8;
    limits
}

/// The victim keeps a penalised peer connected (graylisted, its requests refused), so it
/// takes the whole flood.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_flood_leaves_honest_traffic_working_and_drops_are_counted() {
    flood_test(false).await;
}

/// The default: the victim closes the penalised peer's connection and refuses it until the
/// penalty ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn penalised_flooder_is_disconnected_and_refused() {
    flood_test(true).await;
}

async fn flood_test(disconnect: bool) {
    // Victim (node 0) and two honest peers, all answering requests.
    let mut cfg = memory_config(crate::harness::PSK);
    cfg.limits = test_limits(disconnect);
    let victim = start(cfg).await;
    let victim_addr = victim.p2p_addr();
    let victim_peer = victim.peer();
    let mut honest: Vec<Node> = Vec::new();
    for _ in 0..2 {
        let mut cfg = memory_config(crate::harness::PSK);
        cfg.limits = test_limits(disconnect);
        cfg.bootstrap.push(victim_addr.clone());
        honest.push(start(cfg).await);
    }
    let (victim_handle, _victim_echo) = echo(victim, b"v:");
    let author = honest.pop().unwrap();
    let requester = honest.pop().unwrap();
    let author_peer = author.peer();
    let (author_handle, _author_echo) = echo(author, b"a:");
    let requester_handle = requester.handle.clone();
    let _requester_events = requester;
    // The honest overlay has formed: the victim knows both peers.
    eventually("victim knows both honest peers", || async {
        victim_handle
            .candidates(victim_handle.local_key(), [], 10)
            .await
            .unwrap()
            .len()
            == 2
    })
    .await;
    let rss_before = rss_kib();

    // The flood, and honest traffic at the same time.
    let flooding = Arc::new(AtomicBool::new(true));
    let hostile = tokio::spawn({
        let (victim_handle, flooding) = (victim_handle.clone(), flooding.clone());
        async move {
            let sent = flood(victim_addr, victim_peer, victim_handle, disconnect).await;
            flooding.store(false, Ordering::Relaxed);
            sent
        }
    });
    let honest_requests = tokio::spawn({
        let (h, flooding) = (requester_handle.clone(), flooding.clone());
        async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            let mut i = 0u32;
            while flooding.load(Ordering::Relaxed) {
                i += 1;
                let body = format!("req-{i}").into_bytes();
                match h.send_request(victim_peer, body.clone()).await {
                    Ok(answer) if answer == [&b"v:"[..], &body].concat() => ok += 1,
                    other => failed.push(format!("{other:?}")),
                }
                sleep(Duration::from_millis(20)).await;
            }
            (ok, failed)
        }
    });
    let honest_summaries = tokio::spawn({
        let (h, flooding) = (author_handle.clone(), flooding.clone());
        async move {
            let mut i = 0u32;
            while flooding.load(Ordering::Relaxed) {
                i += 1;
                h.publish_summary(format!("load={i}").into_bytes())
                    .await
                    .unwrap();
                sleep(Duration::from_millis(100)).await;
            }
            i
        }
    });
    let before = victim_handle.stats();
    let sent = hostile.await.unwrap();
    let (ok, failed) = honest_requests.await.unwrap();
    let last = honest_summaries.await.unwrap();
    let rss_after = rss_kib();

    // Honest traffic went through.
    assert!(ok >= 10, "honest requests answered: {ok}");
    assert!(failed.is_empty(), "honest requests failed: {failed:?}");
    let latest = format!("load={last}").into_bytes();
    eventually("victim has the honest author's latest summary", || async {
        victim_handle
            .candidates(victim_handle.local_key(), [], 10)
            .await
            .unwrap()
            .iter()
            .any(|c| c.peer == author_peer && c.summary.as_deref() == Some(&latest[..]))
    })
    .await;
    let s: Stats = victim_handle.stats();
    let honest_summaries_received = s.summaries_received - before.summaries_received;
    eprintln!(
        "hostile: {} messages in {:.2} s = {:.0}/s ({} published ({} oversized), {} publish failed, {} requests, \
         {} syncs, {} subscriptions; {} answered or closed, {} failed; disconnected {} times, {} redials); RSS {} -> {} KiB",
        sent.attempts(),
        sent.elapsed.as_secs_f64(),
        sent.attempts() as f64 / sent.elapsed.as_secs_f64(),
        sent.published,
        sent.oversized_gossip,
        sent.publish_failed,
        sent.requests,
        sent.syncs,
        sent.subscriptions,
        sent.responses,
        sent.request_failures,
        sent.disconnected,
        sent.redials,
        rss_before,
        rss_after,
    );
    eprintln!(
        "victim stats: {s:?}; honest requests ok {ok}, honest summaries received {honest_summaries_received}"
    );
    assert!(
        honest_summaries_received >= 1,
        "summaries from the honest author during the flood"
    );

    // Each kind of attack was counted by its cause (with `disconnect`, the penalty may cut
    // the peer off before each kind has gone over its limit).
    assert!(all_counted(&s, disconnect), "every cause counted: {s:?}");
    assert_eq!(
        s.peers_penalised, 1,
        "the hostile peer, and only it, was penalised"
    );
    if disconnect {
        assert!(
            sent.disconnected >= 1,
            "the penalised peer was disconnected"
        );
        assert!(s.connections_blocked > 0, "its reconnections were refused");
    } else {
        assert_eq!(sent.disconnected, 0, "the penalised peer stays connected");
        assert_eq!(s.connections_blocked, 0);
    }
    for (name, h) in [("requester", &requester_handle), ("author", &author_handle)] {
        let hs = h.stats();
        assert_eq!(hs.peers_penalised, 0, "{name} penalised nobody: {hs:?}");
        assert_eq!(
            hs.requests_rate_limited + hs.requests_peer_pending_full,
            0,
            "{name}"
        );
    }

    // The bounded structures stayed within their bounds.
    let limits = test_limits(disconnect);
    let peers = usize::try_from(s.connections_peak).unwrap();
    assert!(
        usize::try_from(s.pending_inbound_peak).unwrap()
            <= limits.max_pending_inbound_per_peer * peers,
        "pending inbound {} over {} x {peers}",
        s.pending_inbound_peak,
        limits.max_pending_inbound_per_peer
    );
    assert!(
        usize::try_from(s.peer_topics_peak).unwrap() <= limits.max_topics_per_peer,
        "a peer holds {} topics",
        s.peer_topics_peak
    );
    assert!(s.guard_entries <= 64, "guard tables: {}", s.guard_entries);
    // Loose, and for the whole process (the hostile peer's own gossipsub state included,
    // up to 20 s of flood): keeping what the flood sent would take far more.
    assert!(
        rss_after.saturating_sub(rss_before) < 256 * 1024,
        "RSS grew from {rss_before} to {rss_after} KiB"
    );
}

/// Per-peer share of the pending inbound requests in [`one_peer_cannot_take_every_pending_slot`].
const SHARE: usize = 16;
/// The victim's pending inbound requests at most (all peers).
const PENDING: usize = 48;
/// Valid requests the hostile peer keeps in flight (more than [`PENDING`]).
const HOSTILE_IN_FLIGHT: u64 = 200;

/// Keeps [`HOSTILE_IN_FLIGHT`] valid requests in flight to `victim` while `flooding` holds
/// (at most [`WAIT`]); returns (requests sent, answered, failed or refused).
async fn request_flood(
    victim: Multiaddr,
    victim_peer: PeerId,
    flooding: Arc<AtomicBool>,
) -> (u64, u64, u64) {
    let mut swarm = hostile_swarm([0x42; 32]);
    swarm.dial(victim).unwrap();
    let (mut sent, mut answered, mut failed) = (0u64, 0u64, 0u64);
    let start = Instant::now();
    let mut tick = interval(Duration::from_millis(5));
    while flooding.load(Ordering::Relaxed) && start.elapsed() < WAIT {
        tokio::select! {
            _ = tick.tick() => {
                while sent - answered - failed < HOSTILE_IN_FLIGHT {
                    swarm.behaviour_mut().rr.send_request(&victim_peer, frame(b"hog"));
                    sent += 1;
                }
            }
            event = swarm.select_next_some() => match event {
                SwarmEvent::Behaviour(HostileEvent::Rr(request_response::Event::Message { message, .. })) => {
                    // A refusal closes the stream with no frame; an answer is a frame.
                    if matches!(message, request_response::Message::Response { ref response, .. } if !response.is_empty()) {
                        answered += 1;
                    } else {
                        failed += 1;
                    }
                }
                SwarmEvent::Behaviour(HostileEvent::Rr(request_response::Event::OutboundFailure { .. })) => {
                    failed += 1;
                }
                _ => {}
            },
        }
    }
    (sent, answered, failed)
}

/// A slow application (every answer takes 200 ms) and a peer that keeps more requests in
/// flight than the host may hold pending: the per-peer share keeps room for honest peers.
/// Without it (share = `PENDING`), the hostile peer holds every slot and honest requests are
/// refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_peer_cannot_take_every_pending_slot() {
    let mut cfg = memory_config(crate::harness::PSK);
    cfg.max_pending_inbound = PENDING;
    cfg.limits.max_pending_inbound_per_peer = SHARE;
    // The rate is not what is tested here.
    cfg.limits.requests = Rate::new(100_000, 100_000);
    let mut victim = start(cfg).await;
    let victim_addr = victim.p2p_addr();
    let victim_peer = victim.peer();
    let handle = victim.handle.clone();
    let victim_handle = victim.handle.clone();
    // The slow application.
    tokio::spawn(async move {
        while let Some(ev) = victim.events.recv().await {
            if let dvms_overlay::Event::InboundRequest { request, bytes, .. } = ev {
                let h = handle.clone();
                tokio::spawn(async move {
                    sleep(Duration::from_millis(200)).await;
                    let _ = h.respond(request, [&b"v:"[..], &bytes].concat()).await;
                });
            }
        }
    });
    let mut cfg = memory_config(crate::harness::PSK);
    cfg.bootstrap.push(victim_addr.clone());
    let honest = start(cfg).await;
    // Warm the honest connection before the flood.
    honest
        .handle
        .send_request(victim_peer, b"hello".to_vec())
        .await
        .unwrap();

    let flooding = Arc::new(AtomicBool::new(true));
    let hostile = tokio::spawn(request_flood(victim_addr, victim_peer, flooding.clone()));
    // Let the hostile peer fill its share first.
    sleep(Duration::from_millis(500)).await;
    let mut results = Vec::new();
    for i in 0..8 {
        let body = format!("honest-{i}").into_bytes();
        let r = honest.handle.send_request(victim_peer, body.clone()).await;
        results.push(matches!(r, Ok(ref a) if *a == [&b"v:"[..], &body].concat()));
    }
    flooding.store(false, Ordering::Relaxed);
    let (sent, answered, failed) = hostile.await.unwrap();
    eprintln!(
        "hostile: {sent} requests, {answered} answered, {failed} refused or failed; honest: {results:?}"
    );
    assert!(
        results.iter().all(|ok| *ok),
        "every honest request answered: {results:?}"
    );
    let s = victim_handle.stats();
    eprintln!("victim stats: {s:?}");
    assert!(failed > 0, "the hostile peer's excess was refused");
    assert!(
        s.requests_peer_pending_full > 0,
        "refusals counted by cause"
    );
    assert_eq!(
        s.inbound_refused, 0,
        "the host-wide limit was never reached"
    );
    assert!(
        usize::try_from(s.pending_inbound_peak).unwrap() <= 2 * SHARE,
        "pending peak {} over two shares",
        s.pending_inbound_peak
    );
}
