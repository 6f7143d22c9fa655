//! The overlay side of the driver: outbound work runs here, never in the driver's loop.
//!
//! The driver hands commands to [`Net`] with `try_send` on a bounded queue (a full queue drops
//! the command and counts it: to the protocol that is a lost message, which it tolerates).
//! The net task runs each request concurrently, at most [`MAX_IN_FLIGHT`] at once, and
//! reports failures and candidate answers on a second bounded queue the driver reads.

use dvms_core::model::{NodeId, QueryId};
use dvms_overlay::{Candidate, Handle, OverlayKey, PeerId, RequestError, RequestId};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Commands queued from the driver at most.
pub const QUEUE: usize = 1024;
/// Overlay requests running at once at most.
pub const MAX_IN_FLIGHT: usize = 256;

/// Work for the net task.
#[derive(Debug)]
pub enum NetCmd {
    /// Send an encoded core message.
    Send {
        /// The destination's peer id.
        peer: PeerId,
        /// Its core id (for the failure report).
        node: NodeId,
        /// `dvms_core::wire` bytes.
        bytes: Vec<u8>,
    },
    /// Acknowledge an inbound request (empty answer).
    Ack(RequestId),
    /// Set this host's gossiped summary.
    Publish(Vec<u8>),
    /// Ask for candidates near `key`.
    Candidates {
        /// Echoed by the answer.
        query: QueryId,
        /// The key to be close to.
        key: OverlayKey,
        /// Peers to leave out.
        exclude: Vec<PeerId>,
        /// How many at most.
        count: usize,
    },
}

/// What the net task reports to the driver.
#[derive(Debug)]
pub enum NetResult {
    /// A request to `node` failed: the peer looks unreachable.
    Unreachable {
        /// The peer.
        node: NodeId,
        /// Why.
        error: String,
    },
    /// The overlay's answer to a candidates query.
    Candidates {
        /// The query.
        query: QueryId,
        /// Closest first.
        list: Vec<Candidate>,
    },
}

/// The driver's end.
#[derive(Debug)]
pub struct Net {
    /// Commands to the task.
    pub tx: mpsc::Sender<NetCmd>,
    /// Reports from the task.
    pub rx: mpsc::Receiver<NetResult>,
    /// Commands dropped because the queue was full.
    pub dropped: u64,
}

impl Net {
    /// Starts the net task on `handle`.
    pub fn spawn(handle: Handle) -> (Net, tokio::task::JoinHandle<()>) {
        let (tx, cmd_rx) = mpsc::channel(QUEUE);
        let (res_tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(run(handle, cmd_rx, res_tx));
        (Net { tx, rx, dropped: 0 }, task)
    }

    /// Queues a command; drops and counts it when the queue is full.
    pub fn push(&mut self, cmd: NetCmd) {
        if let Err(e) = self.tx.try_send(cmd) {
            self.dropped = self.dropped.saturating_add(1);
            tracing::warn!(error = %e, dropped = self.dropped, "overlay queue full: command dropped");
        }
    }
}

async fn run(handle: Handle, mut rx: mpsc::Receiver<NetCmd>, tx: mpsc::Sender<NetResult>) {
    let mut tasks: JoinSet<()> = JoinSet::new();
    loop {
        while tasks.len() >= MAX_IN_FLIGHT {
            let _ = tasks.join_next().await;
        }
        let cmd = tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(cmd) => cmd,
                None => break,
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        let handle = handle.clone();
        let tx = tx.clone();
        tasks.spawn(async move {
            match cmd {
                NetCmd::Send { peer, node, bytes } => {
                    match handle.send_request(peer, bytes).await {
                        Ok(_) => {}
                        Err(RequestError::Closed) => {}
                        Err(RequestError::Busy) => {
                            tracing::warn!(peer = %peer, "too many requests in flight: message dropped");
                        }
                        Err(e) => {
                            tracing::debug!(peer = %peer, error = %e, "request failed");
                            let _ = tx
                                .send(NetResult::Unreachable {
                                    node,
                                    error: e.to_string(),
                                })
                                .await;
                        }
                    }
                }
                NetCmd::Ack(request) => {
                    if let Err(e) = handle.respond(request, Vec::new()).await {
                        tracing::debug!(error = %e, "cannot acknowledge request");
                    }
                }
                NetCmd::Publish(bytes) => {
                    if let Err(e) = handle.publish_summary(bytes).await {
                        tracing::warn!(error = %e, "cannot publish summary");
                    }
                }
                NetCmd::Candidates {
                    query,
                    key,
                    exclude,
                    count,
                } => {
                    let list = handle.candidates(key, exclude, count).await.unwrap_or_default();
                    let _ = tx.send(NetResult::Candidates { query, list }).await;
                }
            }
        });
    }
    tasks.shutdown().await;
}
