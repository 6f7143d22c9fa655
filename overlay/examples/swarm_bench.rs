//! Starts N overlay nodes on loopback TCP in one process and measures discovery time,
//! request round-trip latency, gossip propagation and memory per node.
//!
//! `cargo run --release -p dvms-overlay --example swarm_bench -- --nodes 64 --json`
//!
//! * `discovery_s`: from starting the nodes (all at once, each bootstrapping from node 0)
//!   until every node's candidate table lists every other node (with its position, learned
//!   through identify or a gossiped summary), so every node can select every other.
//! * `rtt_p50_ms`, `rtt_p99_ms`: sequential request-response round trips of 64 bytes over
//!   warm connections, between node i and node i+1, several rounds.
//! * `gossip_p99_s`: from node 0 publishing a new summary (after its rate limit has
//!   expired) until 99 % of the other nodes received it.
//! * `connections_per_node`: open connections per node at the end (from the candidate table).
//!
//! Set `BENCH_TRACE=1` to print discovery progress on stderr.
//! * `rss_per_node_mib`: process VmRSS growth from before the first node starts to after the
//!   measurements, divided by the node count.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context, bail};
use dvms_overlay::{Config, Event, Handle, Multiaddr, Overlay, Psk, TransportKind};
use tokio::time::Instant;

struct Args {
    nodes: usize,
    json: bool,
    rounds: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        nodes: 64,
        json: false,
        rounds: 20,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--nodes" => args.nodes = it.next().context("--nodes needs a value")?.parse()?,
            "--rounds" => args.rounds = it.next().context("--rounds needs a value")?.parse()?,
            "--json" => args.json = true,
            other => bail!("unknown argument {other} (use --nodes N, --rounds R, --json)"),
        }
    }
    if args.nodes < 2 {
        bail!("--nodes must be at least 2");
    }
    Ok(args)
}

fn rss_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS in /proc/self/status")?;
    let kib = line
        .split_whitespace()
        .nth(1)
        .context("malformed VmRSS line")?
        .parse()?;
    Ok(kib)
}

/// Per-node record of when the probe summary arrived.
type Arrivals = Arc<Mutex<Vec<Option<Instant>>>>;

const PROBE: &[u8] = b"probe-summary";

/// Consumes a node's events: answers requests (echo) and records the probe's arrival.
fn serve(
    index: usize,
    handle: Handle,
    mut events: tokio::sync::mpsc::Receiver<Event>,
    arrivals: Arrivals,
    listening: tokio::sync::oneshot::Sender<Multiaddr>,
) {
    tokio::spawn(async move {
        let mut listening = Some(listening);
        while let Some(ev) = events.recv().await {
            match ev {
                Event::InboundRequest { request, bytes, .. } => {
                    let _ = handle.respond(request, bytes).await;
                }
                Event::SummaryReceived { summary, .. } if summary == PROBE => {
                    if let Ok(mut a) = arrivals.lock() {
                        a[index].get_or_insert(Instant::now());
                    }
                }
                Event::Listening { address } => {
                    if let Some(tx) = listening.take() {
                        let _ = tx.send(address);
                    }
                }
                _ => {}
            }
        }
    });
}

fn start(
    index: usize,
    psk: Psk,
    bootstrap: Option<Multiaddr>,
    arrivals: &Arrivals,
) -> anyhow::Result<(Handle, tokio::sync::oneshot::Receiver<Multiaddr>)> {
    let mut cfg = Config::new(psk)
        .with_transport(TransportKind::Tcp)
        .with_listen("/ip4/127.0.0.1/tcp/0".parse()?);
    if let Some(b) = bootstrap {
        cfg.bootstrap.push(b);
    }
    let (handle, events, event_loop) = Overlay::new(cfg)?;
    tokio::spawn(event_loop.run());
    let (tx, rx) = tokio::sync::oneshot::channel();
    serve(index, handle.clone(), events, arrivals.clone(), tx);
    Ok((handle, rx))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn wait_until<F, Fut>(what: &str, limit: Duration, mut cond: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + limit;
    while !cond().await? {
        if Instant::now() > deadline {
            bail!("timed out after {limit:?}: {what}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let n = args.nodes;
    let psk = Psk::new([0x5a; 32]);
    let arrivals: Arrivals = Arc::new(Mutex::new(vec![None; n]));
    let rss_before = rss_kib()?;

    // --- discovery ---
    let t0 = Instant::now();
    let (first, first_addr) = start(0, psk, None, &arrivals)?;
    let first_addr = first_addr.await?;
    let bootstrap: Multiaddr = format!("{first_addr}/p2p/{}", first.local_peer_id()).parse()?;
    let mut nodes = vec![first];
    for i in 1..n {
        let (h, _listening) = start(i, psk, Some(bootstrap.clone()), &arrivals)?;
        nodes.push(h);
    }
    if std::env::var_os("BENCH_TRACE").is_some() {
        eprintln!("t={:.2}s all nodes started", t0.elapsed().as_secs_f64());
    }
    for (i, h) in nodes.iter().enumerate() {
        h.publish_summary(format!("node-{i}-free").into_bytes())
            .await?;
    }
    let verbose = std::env::var_os("BENCH_TRACE").is_some();
    let mut last_report = Instant::now();
    wait_until(
        "every node knows every other",
        Duration::from_secs(60),
        || {
            let report = verbose && last_report.elapsed() > Duration::from_millis(500);
            if report {
                last_report = Instant::now();
            }
            let nodes = &nodes;
            async move {
                let (mut min_known, mut conns, mut lagging) = (usize::MAX, 0, Vec::new());
                for (i, h) in nodes.iter().enumerate() {
                    let c = h.candidates(h.local_key(), [], n).await?;
                    min_known = min_known.min(c.len());
                    if c.len() < n - 1 && lagging.len() < 8 {
                        lagging.push((i, c.len()));
                    }
                    conns += c.iter().filter(|c| c.connected).count();
                }
                if report {
                    eprintln!(
                        "t={:.2}s min_known={min_known} conns_per_node={:.1} lagging (node, known)={lagging:?}",
                        t0.elapsed().as_secs_f64(),
                        conns as f64 / n as f64
                    );
                }
                Ok(min_known >= n - 1)
            }
        },
    )
    .await?;
    let discovery_s = t0.elapsed().as_secs_f64();
    if !args.json {
        eprintln!("discovery done after {discovery_s:.3} s");
    }

    // --- request round trips over warm connections ---
    let payload = vec![0xab; 64];
    for i in 0..n {
        let to = nodes[(i + 1) % n].local_peer_id();
        let t = Instant::now();
        let r = nodes[i].send_request(to, payload.clone()).await;
        if verbose && (r.is_err() || t.elapsed() > Duration::from_millis(50)) {
            eprintln!(
                "t={:.2}s warm-up {i}->{}: {:?} after {:.1} ms",
                t0.elapsed().as_secs_f64(),
                (i + 1) % n,
                r.as_ref().map(|_| ()),
                t.elapsed().as_secs_f64() * 1e3
            );
        }
        r.with_context(|| {
            format!(
                "warm-up request from node {i} to node {}; target stats {:?}",
                (i + 1) % n,
                nodes[(i + 1) % n].stats()
            )
        })?;
    }
    let mut rtts = Vec::with_capacity(n * args.rounds);
    for _ in 0..args.rounds {
        for i in 0..n {
            let to = nodes[(i + 1) % n].local_peer_id();
            let t = Instant::now();
            let resp = nodes[i].send_request(to, payload.clone()).await?;
            let ms = t.elapsed().as_secs_f64() * 1e3;
            if verbose && ms > 10.0 {
                eprintln!(
                    "t={:.2}s slow round trip {i}->{}: {ms:.1} ms",
                    t0.elapsed().as_secs_f64(),
                    (i + 1) % n
                );
            }
            rtts.push(ms);
            if resp != payload {
                bail!("echo mismatch");
            }
        }
    }
    rtts.sort_by(f64::total_cmp);

    // --- gossip propagation ---
    // Publication is rate-limited (`summary_min_interval`); wait it out so the figure is
    // propagation, not the rate limit.
    tokio::time::sleep(Config::new(psk).summary_min_interval).await;
    let t_pub = Instant::now();
    nodes[0].publish_summary(PROBE.to_vec()).await?;
    let need = ((n - 1) as f64 * 0.99).ceil() as usize;
    wait_until(
        "probe reaches 99 % of nodes",
        Duration::from_secs(60),
        || async {
            let a = arrivals.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            Ok(a.iter().filter(|x| x.is_some()).count() >= need)
        },
    )
    .await?;
    let mut delays: Vec<f64> = arrivals
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .iter()
        .flatten()
        .map(|t| t.saturating_duration_since(t_pub).as_secs_f64())
        .collect();
    delays.sort_by(f64::total_cmp);
    let gossip_p99_s = delays
        .get(need.saturating_sub(1))
        .copied()
        .unwrap_or(f64::NAN);

    let rss_after = rss_kib()?;
    let rss_per_node_mib = rss_after.saturating_sub(rss_before) as f64 / 1024.0 / n as f64;
    let stats = nodes[0].stats();
    let mut connected = 0usize;
    for h in &nodes {
        connected += h
            .candidates(h.local_key(), [], n)
            .await?
            .iter()
            .filter(|c| c.connected)
            .count();
    }
    let connections_per_node = connected as f64 / n as f64;

    for h in &nodes {
        let _ = h.shutdown().await;
    }

    let rtt_p50_ms = percentile(&rtts, 50.0);
    let rtt_p99_ms = percentile(&rtts, 99.0);
    if args.json {
        println!(
            "{{\"nodes\":{n},\"discovery_s\":{discovery_s:.3},\"rtt_p50_ms\":{rtt_p50_ms:.3},\"rtt_p99_ms\":{rtt_p99_ms:.3},\"gossip_p99_s\":{gossip_p99_s:.3},\"rss_per_node_mib\":{rss_per_node_mib:.2},\"connections_per_node\":{connections_per_node:.1},\"rtt_samples\":{},\"rss_before_mib\":{:.1},\"rss_after_mib\":{:.1}}}",
            rtts.len(),
            rss_before as f64 / 1024.0,
            rss_after as f64 / 1024.0,
        );
    } else {
        println!("nodes            {n}");
        println!("discovery        {discovery_s:.3} s");
        println!(
            "rtt p50 / p99    {rtt_p50_ms:.3} / {rtt_p99_ms:.3} ms ({} samples)",
            rtts.len()
        );
        println!("gossip p99       {gossip_p99_s:.3} s");
        println!("rss per node     {rss_per_node_mib:.2} MiB");
        println!("connections      {connections_per_node:.1} per node");
        println!("node 0 stats     {stats:?}");
    }
    Ok(())
}
