//! Starts N overlay nodes on loopback TCP in one process and measures discovery time,
//! request round-trip latency, gossip propagation and memory per node.
//!
//! `cargo run --release -p dvms-overlay --example swarm_bench -- --nodes 64 --json`
//!
//! * `discovery_s`: from starting the nodes (all at once, each bootstrapping from node 0)
//!   until every node's candidate table lists every other node (with its position, learned
//!   through identify or a gossiped summary), so every node can select every other.
//! * `rtt_p50_ms`, `rtt_p99_ms`: sequential request-response round trips of 64 bytes over
//!   warm connections, between node i and node i+1, several rounds. Timed after a warm-up
//!   request per pair (which opens most connections), a pause of `--settle-ms` and, if the
//!   pause is not 0, one untimed round.
//! * `first_rtt_p50_ms`, `first_rtt_p99_ms`: the warm-up requests, the first request from
//!   node i to node i+1 (usually opening the connection: TCP, pnet, Noise, Yamux, then the
//!   request).
//! * `gossip_p99_s`: from node 0 publishing a new summary (after its rate limit has
//!   expired) until 99 % of the other nodes received it.
//! * `cand_p50_us`, `cand_p99_us`: `Handle::candidates` queries (8 closest to the node's own
//!   key), each node in turn, `--rounds` rounds: the local candidate query through the
//!   node's command queue, no network.
//! * `connections_per_node`: open connections per node at the end (from the candidate table).
//! * `rtt_peer_ups`, `rtt_peer_downs`: `PeerUp` / `PeerDown` events (all nodes) while the
//!   round trips were timed: connections opened and closed in that window.
//!
//! With `--rounds 0` no round trip or candidate query is timed; their percentiles are `null`
//! in the JSON output (and `-` in the text output). `--help` prints the usage.
//!
//! Set `BENCH_TRACE=1` to print discovery progress on stderr.
//! * `rss_per_node_mib`: process VmRSS growth from before the first node starts to after the
//!   measurements, divided by the node count.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, bail};
use dvms_overlay::{Config, Event, Handle, Multiaddr, Overlay, Psk, TransportKind};
use tokio::time::Instant;

struct Args {
    nodes: usize,
    json: bool,
    rounds: usize,
    settle_ms: u64,
}

const USAGE: &str = "\
usage: swarm_bench [--nodes N] [--rounds R] [--settle-ms MS] [--json]

Starts N overlay nodes (default 64) on loopback TCP in one process and measures discovery
time, request round trips (R rounds of N requests, default 20), candidate queries, gossip
propagation and memory per node.

  --nodes N    number of nodes (2 to 4096)
  --rounds R   timed rounds of round trips and candidate queries (0 to 10000)
  --settle-ms MS  pause after the warm-up requests (default 2000), then one untimed round,
               so the timed rounds measure kept connections, not the set-up work
               (identify, Kademlia bootstrap, sync) of the connections just opened;
               0 times the rounds right after the warm-up, as before issue 13
  --json       one JSON line on stdout instead of the text table
  --help       this text

Set BENCH_TRACE=1 to print discovery progress and slow round trips on stderr.";

fn parse_args() -> anyhow::Result<Option<Args>> {
    let mut args = Args {
        nodes: 64,
        json: false,
        rounds: 20,
        settle_ms: 2000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--nodes" => args.nodes = it.next().context("--nodes needs a value")?.parse()?,
            "--rounds" => args.rounds = it.next().context("--rounds needs a value")?.parse()?,
            "--settle-ms" => {
                args.settle_ms = it.next().context("--settle-ms needs a value")?.parse()?;
            }
            "--json" => args.json = true,
            "--help" | "-h" => return Ok(None),
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    if !(2..=4096).contains(&args.nodes) {
        bail!("--nodes must be between 2 and 4096");
    }
    if args.settle_ms > 60_000 {
        bail!("--settle-ms must be at most 60000");
    }
    if args.rounds > 10_000 {
        bail!("--rounds must be at most 10000");
    }
    Ok(Some(args))
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

/// `PeerUp` and `PeerDown` events seen by all nodes (connection churn).
#[derive(Default)]
struct Churn {
    ups: AtomicU64,
    downs: AtomicU64,
}

const PROBE: &[u8] = b"probe-summary";

/// Consumes a node's events: answers requests (echo) and records the probe's arrival.
fn serve(
    index: usize,
    handle: Handle,
    mut events: tokio::sync::mpsc::Receiver<Event>,
    arrivals: Arrivals,
    churn: Arc<Churn>,
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
                Event::PeerUp { .. } => {
                    churn.ups.fetch_add(1, Ordering::Relaxed);
                }
                Event::PeerDown { .. } => {
                    churn.downs.fetch_add(1, Ordering::Relaxed);
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
    churn: &Arc<Churn>,
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
    serve(
        index,
        handle.clone(),
        events,
        arrivals.clone(),
        churn.clone(),
        tx,
    );
    Ok((handle, rx))
}

/// The `p`-th percentile (nearest rank) of `sorted`; `None` without samples.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// A figure for the JSON line: `null` when absent or not finite (JSON has no NaN).
fn json_num(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.decimals$}"),
        _ => "null".to_owned(),
    }
}

/// A figure for the text output: `-` when absent.
fn text_num(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.decimals$}"),
        _ => "-".to_owned(),
    }
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
    let Some(args) = parse_args()? else {
        println!("{USAGE}");
        return Ok(());
    };
    let n = args.nodes;
    let psk = Psk::new([0x5a; 32]);
    let arrivals: Arrivals = Arc::new(Mutex::new(vec![None; n]));
    let churn = Arc::new(Churn::default());
    let rss_before = rss_kib()?;

    // --- discovery ---
    let t0 = Instant::now();
    let (first, first_addr) = start(0, psk, None, &arrivals, &churn)?;
    let first_addr = first_addr.await?;
    let bootstrap: Multiaddr = format!("{first_addr}/p2p/{}", first.local_peer_id()).parse()?;
    let mut nodes = vec![first];
    for i in 1..n {
        let (h, _listening) = start(i, psk, Some(bootstrap.clone()), &arrivals, &churn)?;
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
    let mut first_rtts = Vec::with_capacity(n);
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
        first_rtts.push(t.elapsed().as_secs_f64() * 1e3);
        r.with_context(|| {
            format!(
                "warm-up request from node {i} to node {}; target stats {:?}",
                (i + 1) % n,
                nodes[(i + 1) % n].stats()
            )
        })?;
    }
    first_rtts.sort_by(f64::total_cmp);
    if args.settle_ms > 0 && args.rounds > 0 {
        tokio::time::sleep(Duration::from_millis(args.settle_ms)).await;
        for i in 0..n {
            let to = nodes[(i + 1) % n].local_peer_id();
            nodes[i]
                .send_request(to, payload.clone())
                .await
                .with_context(|| format!("untimed round, node {i} to node {}", (i + 1) % n))?;
        }
    }
    let ups_before = churn.ups.load(Ordering::Relaxed);
    let downs_before = churn.downs.load(Ordering::Relaxed);
    let mut rtts = Vec::with_capacity(n * args.rounds);
    for round in 0..args.rounds {
        for i in 0..n {
            let to = nodes[(i + 1) % n].local_peer_id();
            let t = Instant::now();
            let resp = nodes[i].send_request(to, payload.clone()).await?;
            let ms = t.elapsed().as_secs_f64() * 1e3;
            if verbose && ms > 10.0 {
                eprintln!(
                    "t={:.2}s round {round}: slow round trip {i}->{}: {ms:.1} ms",
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
    let rtt_peer_ups = churn.ups.load(Ordering::Relaxed).saturating_sub(ups_before);
    let rtt_peer_downs = churn
        .downs
        .load(Ordering::Relaxed)
        .saturating_sub(downs_before);
    rtts.sort_by(f64::total_cmp);

    // --- candidate queries (local knowledge, through each node's command queue) ---
    let mut cands = Vec::with_capacity(n * args.rounds);
    for _ in 0..args.rounds {
        for h in &nodes {
            let t = Instant::now();
            let c = h.candidates(h.local_key(), [], 8).await?;
            cands.push(t.elapsed().as_secs_f64() * 1e6);
            if c.is_empty() {
                bail!("candidate query returned nothing");
            }
        }
    }
    cands.sort_by(f64::total_cmp);

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
    let gossip_p99_s = delays.get(need.saturating_sub(1)).copied();

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
    let cand_p50_us = percentile(&cands, 50.0);
    let cand_p99_us = percentile(&cands, 99.0);
    if args.json {
        println!(
            "{{\"nodes\":{n},\"discovery_s\":{discovery_s:.3},\"rtt_p50_ms\":{},\"rtt_p99_ms\":{},\"cand_p50_us\":{},\"cand_p99_us\":{},\"gossip_p99_s\":{},\"rss_per_node_mib\":{rss_per_node_mib:.2},\"connections_per_node\":{connections_per_node:.1},\"first_rtt_p50_ms\":{},\"first_rtt_p99_ms\":{},\"settle_ms\":{},\"rtt_samples\":{},\"rtt_peer_ups\":{rtt_peer_ups},\"rtt_peer_downs\":{rtt_peer_downs},\"rss_before_mib\":{:.1},\"rss_after_mib\":{:.1}}}",
            json_num(rtt_p50_ms, 3),
            json_num(rtt_p99_ms, 3),
            json_num(cand_p50_us, 1),
            json_num(cand_p99_us, 1),
            json_num(gossip_p99_s, 3),
            json_num(percentile(&first_rtts, 50.0), 3),
            json_num(percentile(&first_rtts, 99.0), 3),
            args.settle_ms,
            rtts.len(),
            rss_before as f64 / 1024.0,
            rss_after as f64 / 1024.0,
        );
    } else {
        println!("nodes            {n}");
        println!("discovery        {discovery_s:.3} s");
        println!(
            "rtt p50 / p99    {} / {} ms ({} samples)",
            text_num(rtt_p50_ms, 3),
            text_num(rtt_p99_ms, 3),
            rtts.len()
        );
        println!(
            "first rtt        {} / {} ms p50 / p99 (warm-up, {} samples)",
            text_num(percentile(&first_rtts, 50.0), 3),
            text_num(percentile(&first_rtts, 99.0), 3),
            first_rtts.len()
        );
        println!(
            "candidates       {} / {} us p50 / p99 ({} queries)",
            text_num(cand_p50_us, 1),
            text_num(cand_p99_us, 1),
            cands.len()
        );
        println!("churn in rtt     {rtt_peer_ups} peer up / {rtt_peer_downs} peer down events");
        println!("gossip p99       {} s", text_num(gossip_p99_s, 3));
        println!("rss per node     {rss_per_node_mib:.2} MiB");
        println!("connections      {connections_per_node:.1} per node");
        println!("node 0 stats     {stats:?}");
    }
    Ok(())
}
