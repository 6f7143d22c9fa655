//! Overlay integration tests: swarms over the in-memory transport (and one over loopback TCP).
//!
//! One test binary (STYLE 3.11). Every wait is bounded by a deadline; nothing sleeps to wait
//! for a condition.

#[allow(
    clippy::unwrap_used,
    reason = "test harness: a failed setup is a failed test"
)]
mod harness {
    use std::{collections::VecDeque, future::Future, time::Duration};

    use dvms_overlay::{
        Candidate, Config, Event, Handle, Location, Multiaddr, Overlay, PeerId, Psk, TransportKind,
    };
    use tokio::{sync::mpsc, task::JoinHandle, time::timeout};

    pub(crate) const PSK: Psk = Psk::new([0x42; 32]);
    pub(crate) const WAIT: Duration = Duration::from_secs(20);

    pub(crate) struct Node {
        pub(crate) handle: Handle,
        pub(crate) events: mpsc::Receiver<Event>,
        pub(crate) addr: Multiaddr,
        pub(crate) task: JoinHandle<()>,
        /// Events received before anyone waited for them.
        pub(crate) backlog: VecDeque<Event>,
    }

    impl Node {
        pub(crate) fn peer(&self) -> PeerId {
            self.handle.local_peer_id()
        }

        /// The listen address with `/p2p/<peer>` appended.
        pub(crate) fn p2p_addr(&self) -> Multiaddr {
            format!("{}/p2p/{}", self.addr, self.peer())
                .parse()
                .unwrap()
        }

        /// Waits for the first event matching `pred`, discarding others.
        pub(crate) async fn wait_event(&mut self, mut pred: impl FnMut(&Event) -> bool) -> Event {
            if let Some(i) = self.backlog.iter().position(&mut pred) {
                return self.backlog.remove(i).expect("index from position");
            }
            timeout(WAIT, async {
                loop {
                    let ev = self.events.recv().await.expect("event loop alive");
                    if pred(&ev) {
                        return ev;
                    }
                }
            })
            .await
            .expect("expected event within deadline")
        }

        pub(crate) async fn candidates(&self, count: usize) -> Vec<Candidate> {
            self.handle
                .candidates(self.handle.local_key(), [], count)
                .await
                .unwrap()
        }
    }

    pub(crate) fn memory_config(psk: Psk) -> Config {
        let mut cfg = Config::new(psk)
            .with_transport(TransportKind::Memory)
            .with_listen("/memory/0".parse().unwrap());
        cfg.summary_min_interval = Duration::from_millis(50);
        cfg.gossip_heartbeat = Duration::from_millis(100);
        cfg.handshake_timeout = Duration::from_secs(1);
        cfg
    }

    /// Starts a node and waits until it listens.
    pub(crate) async fn start(cfg: Config) -> Node {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_env("DVMS_LOG"))
            .with_test_writer()
            .try_init();
        let (handle, mut events, event_loop) = Overlay::new(cfg).unwrap();
        let task = tokio::spawn(event_loop.run());
        let mut backlog = VecDeque::new();
        let addr = timeout(WAIT, async {
            loop {
                match events.recv().await {
                    Some(Event::Listening { address }) => return address,
                    Some(other) => backlog.push_back(other),
                    None => panic!("event loop stopped"),
                }
            }
        })
        .await
        .expect("listening within deadline");
        Node {
            handle,
            events,
            addr,
            task,
            backlog,
        }
    }

    /// Starts `n` memory nodes one after the other, each bootstrapping from node 0.
    pub(crate) async fn cluster(
        n: usize,
        location: impl Fn(usize) -> Option<Location>,
    ) -> Vec<Node> {
        let mut nodes: Vec<Node> = Vec::new();
        for i in 0..n {
            let mut cfg = memory_config(PSK);
            cfg.location = location(i);
            if let Some(first) = nodes.first() {
                cfg.bootstrap.push(first.p2p_addr());
            }
            let mut node = start(cfg).await;
            if let Some(first) = nodes.first_mut() {
                let p = first.peer();
                node.wait_event(|e| matches!(e, Event::PeerUp { peer } if *peer == p))
                    .await;
                let q = node.peer();
                first
                    .wait_event(|e| matches!(e, Event::PeerUp { peer } if *peer == q))
                    .await;
            }
            nodes.push(node);
        }
        nodes
    }

    /// Polls `cond` every 20 ms until it holds; panics after [`WAIT`].
    pub(crate) async fn eventually<F, Fut>(what: &str, mut cond: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !cond().await {
            assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Answers every inbound request with `prefix ++ request` until the node stops.
    pub(crate) fn echo(node: Node, prefix: &'static [u8]) -> (Handle, JoinHandle<()>) {
        let Node {
            handle,
            mut events,
            backlog,
            ..
        } = node;
        let h = handle.clone();
        let task = tokio::spawn(async move {
            let mut backlog = backlog;
            while let Some(ev) = match backlog.pop_front() {
                Some(ev) => Some(ev),
                None => events.recv().await,
            } {
                if let Event::InboundRequest { request, bytes, .. } = ev {
                    let mut out = prefix.to_vec();
                    out.extend_from_slice(&bytes);
                    let _ = h.respond(request, out).await;
                }
            }
        });
        (handle, task)
    }
}

mod discovery;
mod gossip;
mod hostile;
mod messaging;
mod security;
