//! Prometheus metrics (text exposition format), served on `metrics.listen` when set.
//!
//! The driver updates the counters and gauges (atomics); a small task answers every HTTP
//! request on the port with the whole registry. No HTTP library: one request per connection,
//! one connection at a time, any path, the request read and ignored (at most 8 KiB).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Label of [`Metrics::events`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabel {
    /// The event name, as in the logs' `event` field.
    pub event: String,
}

/// Label of [`Metrics::migrations`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// `ok` or `failed`.
    pub outcome: String,
}

/// Every metric the agent exports.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Samples taken.
    pub samples: Counter,
    /// Samples that failed.
    pub sample_errors: Counter,
    /// VMs in the latest sample.
    pub vms: Gauge,
    /// Host CPU capacity, thousandths of a core.
    pub cpu_capacity_milli: Gauge,
    /// The VMs' CPU demand, thousandths of a core.
    pub cpu_demand_milli: Gauge,
    /// Host memory capacity, MiB.
    pub mem_capacity_mib: Gauge,
    /// The VMs' memory, MiB.
    pub mem_demand_mib: Gauge,
    /// Peers known.
    pub peers: Gauge,
    /// 1 while in a partition.
    pub in_partition: Gauge,
    /// 1 while leading a partition.
    pub leader: Gauge,
    /// Core events by name.
    pub events: Family<EventLabel, Counter>,
    /// Migrations run by this host, by outcome.
    pub migrations: Family<OutcomeLabel, Counter>,
    /// Overlay commands dropped on a full queue.
    pub net_dropped: Gauge,
}

impl Metrics {
    /// Counts one core event.
    pub fn event(&self, name: &str) {
        self.events
            .get_or_create(&EventLabel {
                event: name.to_owned(),
            })
            .inc();
    }

    /// Builds the registry that exports these metrics.
    pub fn registry(self: &Arc<Self>) -> Registry {
        let mut r = Registry::with_prefix("dvms");
        r.register("samples", "Samples taken", self.samples.clone());
        r.register(
            "sample_errors",
            "Samples that failed",
            self.sample_errors.clone(),
        );
        r.register("vms", "VMs in the latest sample", self.vms.clone());
        r.register(
            "cpu_capacity_milli",
            "Host CPU capacity (thousandths of a core)",
            self.cpu_capacity_milli.clone(),
        );
        r.register(
            "cpu_demand_milli",
            "VMs' CPU demand (thousandths of a core)",
            self.cpu_demand_milli.clone(),
        );
        r.register(
            "mem_capacity_mib",
            "Host memory capacity (MiB)",
            self.mem_capacity_mib.clone(),
        );
        r.register(
            "mem_demand_mib",
            "VMs' memory (MiB)",
            self.mem_demand_mib.clone(),
        );
        r.register("peers", "Peers known", self.peers.clone());
        r.register(
            "in_partition",
            "1 while in a partition",
            self.in_partition.clone(),
        );
        r.register("leader", "1 while leading a partition", self.leader.clone());
        r.register("events", "Protocol events by name", self.events.clone());
        r.register(
            "migrations",
            "Migrations run by this host",
            self.migrations.clone(),
        );
        r.register(
            "net_dropped",
            "Overlay commands dropped on a full queue",
            self.net_dropped.clone(),
        );
        r
    }
}

/// Serves `registry` on `addr` until the task is aborted.
///
/// # Errors
/// When the port cannot be bound.
pub async fn serve(
    addr: SocketAddr,
    registry: Registry,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "metrics listening");
    let registry = Arc::new(registry);
    Ok(tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            // One connection at a time: nothing queues without bound.
            {
                let mut buf = [0u8; 8192];
                // Read the request head (or give up after a second); its content is ignored.
                let _ = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await;
                let mut body = String::new();
                if prometheus_client::encoding::text::encode(&mut body, &registry).is_err() {
                    body.clear();
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(body.as_bytes()).await;
                let _ = stream.shutdown().await;
            }
        }
    }))
}
