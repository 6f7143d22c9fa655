//! The application's side of the overlay: [`Handle`], [`Event`] and their errors.

use std::{collections::BTreeSet, fmt, io, sync::Arc};

use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};

use crate::{
    config::Location,
    key::OverlayKey,
    peers::Candidate,
    stats::{Counters, Stats},
    wire::{self, MAX_FRAME_LEN},
};

/// Identifies an inbound request until it is answered with [`Handle::respond`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub(crate) u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "req-{}", self.0)
    }
}

/// What the overlay reports to the application, in order, on the bounded event queue.
///
/// When the queue is full, events are dropped and counted in [`Stats::events_dropped`]; a
/// dropped [`Event::InboundRequest`] fails at the requester like a timeout.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A peer sent a request; answer it with [`Handle::respond`] before the request timeout.
    InboundRequest {
        /// The requester.
        peer: PeerId,
        /// Pass to [`Handle::respond`].
        request: RequestId,
        /// The request payload, at most [`MAX_FRAME_LEN`] bytes.
        bytes: Vec<u8>,
    },
    /// The first connection to a peer opened.
    PeerUp {
        /// The peer.
        peer: PeerId,
    },
    /// The last connection to a peer closed.
    PeerDown {
        /// The peer.
        peer: PeerId,
    },
    /// A valid summary arrived on the load topic.
    SummaryReceived {
        /// Its author (signature checked by gossipsub).
        peer: PeerId,
        /// The author's announced location, `None` for a flat key.
        location: Option<Location>,
        /// The summary, 1 to [`MAX_SUMMARY_LEN`](crate::MAX_SUMMARY_LEN) bytes.
        summary: Vec<u8>,
    },
    /// The overlay listens on a new address.
    Listening {
        /// The address.
        address: Multiaddr,
    },
}

/// [`Handle::send_request`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The event loop has stopped.
    #[error("overlay is shut down")]
    Closed,
    /// The payload exceeds [`MAX_FRAME_LEN`].
    #[error("request of {len} bytes exceeds limit of {max}")]
    TooLarge {
        /// Payload length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Too many requests are awaiting a response.
    #[error("too many requests in flight")]
    Busy,
    /// The peer could not be reached.
    #[error("peer unreachable")]
    Unreachable,
    /// No response within the request timeout.
    #[error("request timed out")]
    Timeout,
    /// The connection closed before the response arrived.
    #[error("connection closed before response")]
    ConnectionClosed,
    /// The peer does not speak the overlay's request protocol.
    #[error("peer does not support {}", wire::RR_PROTOCOL)]
    UnsupportedProtocol,
    /// Reading or writing the stream failed, including a malformed response.
    #[error("request stream failed")]
    Io {
        /// The stream error.
        #[source]
        source: io::Error,
    },
}

/// A [`Handle`] command other than [`Handle::send_request`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The event loop has stopped.
    #[error("overlay is shut down")]
    Closed,
    /// The response payload exceeds [`MAX_FRAME_LEN`].
    #[error("response of {len} bytes exceeds limit of {max}")]
    TooLarge {
        /// Payload length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The request is unknown: already answered, timed out or its connection closed.
    #[error("request {request} is no longer awaiting a response")]
    UnknownRequest {
        /// The request.
        request: RequestId,
    },
    /// The summary is empty or above [`MAX_SUMMARY_LEN`](crate::MAX_SUMMARY_LEN).
    #[error("invalid summary")]
    InvalidSummary {
        /// Why.
        #[source]
        source: wire::DecodeError,
    },
    /// The address could not be dialled.
    #[error("cannot dial {addr}")]
    Dial {
        /// The address.
        addr: Multiaddr,
        /// libp2p's reason.
        #[source]
        source: libp2p::swarm::DialError,
    },
    /// Kademlia knows no peer to bootstrap from.
    #[error("no known peers to bootstrap from")]
    NoKnownPeers,
}

/// Commands from [`Handle`] to the event loop, each with its reply channel.
#[derive(Debug)]
pub(crate) enum Command {
    Request {
        peer: PeerId,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<Vec<u8>, RequestError>>,
    },
    Respond {
        request: RequestId,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    Publish {
        summary: Vec<u8>,
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    Candidates {
        key: OverlayKey,
        exclude: BTreeSet<PeerId>,
        count: usize,
        reply: oneshot::Sender<Vec<Candidate>>,
    },
    Dial {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    Bootstrap {
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    ListenAddrs {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// A cheap, cloneable handle to a running overlay.
///
/// Every method sends one command on a bounded queue to the [`EventLoop`](crate::EventLoop)
/// and waits for its reply, so a method waits while the queue is full (backpressure). All
/// methods are cancel-safe in the sense that dropping the future never corrupts the overlay;
/// a command already queued still runs (a request is still sent, a summary still
/// published). Once the loop has stopped, every method returns `Closed`.
#[derive(Clone, Debug)]
pub struct Handle {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) peer_id: PeerId,
    pub(crate) key: OverlayKey,
    pub(crate) location: Option<Location>,
    pub(crate) counters: Arc<Counters>,
}

impl Handle {
    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.ok()?;
        rx.await.ok()
    }

    /// This host's peer id.
    #[must_use]
    pub fn local_peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// This host's overlay key (topology-aware when a location is configured).
    #[must_use]
    pub fn local_key(&self) -> OverlayKey {
        self.key
    }

    /// This host's configured location.
    #[must_use]
    pub fn location(&self) -> Option<Location> {
        self.location
    }

    /// A snapshot of the overlay's counters; does not go through the event loop.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.counters.snapshot()
    }

    /// Sends `bytes` to `peer` on `/dvms/rr/1` and waits for its response. Dials the peer
    /// if needed, using addresses Kademlia and identify learned.
    ///
    /// Cancel-safety: dropping the future after the command is queued does not cancel the
    /// request; its response is then discarded.
    ///
    /// # Errors
    /// See [`RequestError`].
    pub async fn send_request(
        &self,
        peer: PeerId,
        bytes: Vec<u8>,
    ) -> Result<Vec<u8>, RequestError> {
        if bytes.len() > MAX_FRAME_LEN {
            return Err(RequestError::TooLarge {
                len: bytes.len(),
                max: MAX_FRAME_LEN,
            });
        }
        self.call(|reply| Command::Request { peer, bytes, reply })
            .await
            .unwrap_or(Err(RequestError::Closed))
    }

    /// Answers the inbound request `request` with `bytes`.
    ///
    /// Cancel-safety: the response is sent once the command is queued.
    ///
    /// # Errors
    /// `TooLarge`, `UnknownRequest` (answered twice, timed out, or the requester left) or
    /// `Closed`.
    pub async fn respond(&self, request: RequestId, bytes: Vec<u8>) -> Result<(), CommandError> {
        if bytes.len() > MAX_FRAME_LEN {
            return Err(CommandError::TooLarge {
                len: bytes.len(),
                max: MAX_FRAME_LEN,
            });
        }
        self.call(|reply| Command::Respond {
            request,
            bytes,
            reply,
        })
        .await
        .unwrap_or(Err(CommandError::Closed))
    }

    /// Sets this host's load summary. It is published on `dvms/load/1` only if it differs
    /// from the last one published (or the `summary_refresh` liveness refresh is due), and at
    /// most once per `summary_min_interval`; the latest value wins. Hosts joining later get
    /// it through peer-table sync rather than a republish.
    ///
    /// Cancel-safety: once queued, the summary is adopted.
    ///
    /// # Errors
    /// `InvalidSummary` if empty or longer than [`MAX_SUMMARY_LEN`](crate::MAX_SUMMARY_LEN),
    /// or `Closed`.
    pub async fn publish_summary(&self, summary: Vec<u8>) -> Result<(), CommandError> {
        wire::check_summary_len(summary.len())
            .map_err(|source| CommandError::InvalidSummary { source })?;
        self.call(|reply| Command::Publish { summary, reply })
            .await
            .unwrap_or(Err(CommandError::Closed))
    }

    /// The `count` known hosts closest to `key` by XOR distance of overlay keys, excluding
    /// this host and `exclude`, each with its latest gossiped summary. This is the next-hop
    /// query of the scheduling procedure. Read-only.
    ///
    /// # Errors
    /// `Closed`.
    pub async fn candidates(
        &self,
        key: OverlayKey,
        exclude: impl IntoIterator<Item = PeerId>,
        count: usize,
    ) -> Result<Vec<Candidate>, CommandError> {
        let exclude = exclude.into_iter().collect();
        self.call(|reply| Command::Candidates {
            key,
            exclude,
            count,
            reply,
        })
        .await
        .ok_or(CommandError::Closed)
    }

    /// Dials `addr` (a peer joining at run time). Returns once the dial has started.
    ///
    /// # Errors
    /// `Dial` if libp2p refuses the address at once, or `Closed`.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), CommandError> {
        self.call(|reply| Command::Dial { addr, reply })
            .await
            .unwrap_or(Err(CommandError::Closed))
    }

    /// Starts a Kademlia bootstrap (a lookup of this host's own id that refreshes the
    /// routing table). The overlay also bootstraps by itself after its first peer answers.
    ///
    /// # Errors
    /// `NoKnownPeers` or `Closed`.
    pub async fn bootstrap(&self) -> Result<(), CommandError> {
        self.call(|reply| Command::Bootstrap { reply })
            .await
            .unwrap_or(Err(CommandError::Closed))
    }

    /// The addresses the overlay currently listens on.
    ///
    /// # Errors
    /// `Closed`.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, CommandError> {
        self.call(|reply| Command::ListenAddrs { reply })
            .await
            .ok_or(CommandError::Closed)
    }

    /// Stops the event loop: pending outbound requests fail with `Closed`, pending inbound
    /// requests are dropped, connections are closed. Returns when the loop has stopped.
    /// Dropping every `Handle` also stops the loop.
    ///
    /// # Errors
    /// `Closed` if the loop had already stopped.
    pub async fn shutdown(&self) -> Result<(), CommandError> {
        self.call(|reply| Command::Shutdown { reply })
            .await
            .ok_or(CommandError::Closed)
    }
}
