//! Over-the-wire refusal tests: a rogue host that holds the cluster key sends garbage,
//! oversized and truncated frames, and an invalid gossip envelope, to a real overlay. These
//! need crate internals (the transport builder), so they live in the crate.

use std::{io, time::Duration};

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::{
    StreamProtocol, Swarm, gossipsub,
    identity::Keypair,
    request_response::{self, ProtocolSupport},
    swarm::{NetworkBehaviour, SwarmEvent},
};
use tokio::time::timeout;

use crate::{Config, Event, Overlay, Psk, TransportKind, swarm::build_transport, wire};

const PSK: Psk = Psk::new([9; 32]);
const WAIT: Duration = Duration::from_secs(10);

/// Writes requests verbatim; reads responses to the end (test only, bounded by the peer).
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
        let mut v = Vec::new();
        io.take(1 << 20).read_to_end(&mut v).await?;
        Ok(v)
    }

    async fn read_response<T>(&mut self, p: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        // The overlay closes the stream without a byte when it refuses a request.
        let v = self.read_request(p, io).await?;
        if v.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(v)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        r: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&r).await?;
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        p: &StreamProtocol,
        io: &mut T,
        r: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        self.write_request(p, io, r).await
    }
}

#[derive(NetworkBehaviour)]
struct Rogue {
    rr: request_response::Behaviour<RawCodec>,
    gossipsub: gossipsub::Behaviour,
}

fn rogue() -> Swarm<Rogue> {
    let key = Keypair::generate_ed25519();
    let transport = build_transport(TransportKind::Memory, &key, PSK, WAIT).unwrap();
    let rr = request_response::Behaviour::with_codec(
        RawCodec,
        [(
            StreamProtocol::new(wire::RR_PROTOCOL),
            ProtocolSupport::Full,
        )],
        request_response::Config::default(),
    );
    let mut gossipsub = gossipsub::Behaviour::new(
        gossipsub::MessageAuthenticity::Signed(key.clone()),
        gossipsub::Config::default(),
    )
    .unwrap();
    gossipsub
        .subscribe(&gossipsub::IdentTopic::new(wire::LOAD_TOPIC))
        .unwrap();
    Swarm::new(
        transport,
        Rogue { rr, gossipsub },
        key.public().to_peer_id(),
        libp2p::swarm::Config::with_tokio_executor(),
    )
}

/// Sends one raw request and drives the rogue swarm until it completes either way.
async fn raw_request(
    swarm: &mut Swarm<Rogue>,
    peer: libp2p::PeerId,
    bytes: Vec<u8>,
) -> Option<Vec<u8>> {
    let id = swarm.behaviour_mut().rr.send_request(&peer, bytes);
    timeout(WAIT, async {
        loop {
            if let SwarmEvent::Behaviour(RogueEvent::Rr(e)) = swarm.select_next_some().await {
                match e {
                    request_response::Event::Message {
                        message:
                            request_response::Message::Response {
                                request_id,
                                response,
                            },
                        ..
                    } if request_id == id => return Some(response),
                    request_response::Event::OutboundFailure { request_id, .. }
                        if request_id == id =>
                    {
                        return None;
                    }
                    _ => {}
                }
            }
        }
    })
    .await
    .expect("raw request completes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_oversized_and_truncated_frames_are_dropped_and_counted() {
    let cfg = Config::new(PSK)
        .with_transport(TransportKind::Memory)
        .with_listen("/memory/0".parse().unwrap());
    let (handle, mut events, event_loop) = Overlay::new(cfg).unwrap();
    tokio::spawn(event_loop.run());
    let addr = timeout(WAIT, async {
        loop {
            if let Some(Event::Listening { address }) = events.recv().await {
                return address;
            }
        }
    })
    .await
    .unwrap();
    // Echo valid requests.
    let h = handle.clone();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            if let Event::InboundRequest { request, bytes, .. } = ev {
                let _ = h.respond(request, bytes).await;
            }
        }
    });

    let mut swarm = rogue();
    let peer = handle.local_peer_id();
    swarm.dial(addr).unwrap();
    timeout(WAIT, async {
        loop {
            if let SwarmEvent::ConnectionEstablished { .. } = swarm.select_next_some().await {
                return;
            }
        }
    })
    .await
    .unwrap();

    let garbage = b"GET / HTTP/1.1\r\n\r\n".to_vec();
    assert_eq!(raw_request(&mut swarm, peer, garbage).await, None);
    let mut oversized = vec![wire::FRAME_VERSION];
    oversized.extend_from_slice(&u32::MAX.to_be_bytes());
    oversized.extend_from_slice(&[0; 100]);
    assert_eq!(raw_request(&mut swarm, peer, oversized).await, None);
    let mut truncated = wire::frame_header(100).unwrap().to_vec();
    truncated.extend_from_slice(&[1; 10]);
    assert_eq!(raw_request(&mut swarm, peer, truncated).await, None);

    // The overlay still serves a well-formed request on the same connection.
    let mut valid = wire::frame_header(2).unwrap().to_vec();
    valid.extend_from_slice(b"ok");
    assert_eq!(
        raw_request(&mut swarm, peer, valid.clone()).await,
        Some(valid)
    );

    let s = handle.stats();
    assert_eq!(s.frames_unknown_version, 1);
    assert_eq!(s.frames_oversized, 1);
    assert_eq!(s.frames_malformed, 1);
    assert_eq!(
        s.requests_received, 1,
        "only the valid frame reaches the application"
    );

    // An invalid envelope on the load topic, correctly signed, is rejected and counted.
    let topic = gossipsub::IdentTopic::new(wire::LOAD_TOPIC);
    timeout(WAIT, async {
        // Publish once the overlay's subscription is known (possibly already).
        loop {
            match swarm
                .behaviour_mut()
                .gossipsub
                .publish(topic.clone(), vec![7u8; 200])
            {
                Ok(_) => return,
                Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                    tokio::select! {
                        _ = swarm.select_next_some() => {}
                        () = tokio::time::sleep(Duration::from_millis(10)) => {}
                    }
                }
                Err(e) => panic!("publish failed: {e}"),
            }
        }
    })
    .await
    .unwrap();
    timeout(WAIT, async {
        while handle.stats().gossip_rejected == 0 {
            tokio::select! {
                _ = swarm.select_next_some() => {}
                () = tokio::time::sleep(Duration::from_millis(10)) => {}
            }
        }
    })
    .await
    .expect("invalid gossip rejected");
    assert_eq!(handle.stats().summaries_received, 0);
}
