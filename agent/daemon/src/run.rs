//! `dvmsd run`: wires monitor, overlay, driver, control socket and metrics, then waits for a
//! signal and leaves within the grace period.

use std::sync::Arc;
use std::time::Duration;

use dvms_overlay::{Identity, Overlay};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};

use crate::config::{Config, ConfigError};
use crate::driver::{Driver, Parts};
use crate::metrics::Metrics;
use crate::monitor::HostMonitor;

/// Why the agent stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The configuration (or the cluster key file) is bad: exit 78.
    #[error("bad configuration")]
    Config(#[source] ConfigError),
    /// The kernel's files or a socket are unavailable: exit 69.
    #[error("{what}")]
    Unavailable {
        /// What could not be used.
        what: String,
        /// The cause.
        #[source]
        source: anyhow::Error,
    },
}

impl RunError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Config(_) => crate::EX_CONFIG,
            RunError::Unavailable { .. } => crate::EX_UNAVAILABLE,
        }
    }
}

fn unavailable(what: impl Into<String>) -> impl FnOnce(anyhow::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Unavailable { what, source }
}

fn notify(state: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(false, state) {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

/// Runs the agent until SIGTERM or SIGINT.
///
/// # Errors
/// [`RunError`]; the agent has then stopped.
pub async fn run(cfg: Config) -> Result<(), RunError> {
    let cfg = Arc::new(cfg);
    let psk = cfg.cluster_key().map_err(RunError::Config)?;
    let mut monitor = HostMonitor::new(&cfg)
        .map_err(anyhow::Error::from)
        .map_err(unavailable(format!(
            "cannot read the host's load (monitor.cgroup_root = {:?}, monitor.proc_root = {:?})",
            cfg.cgroup_root, cfg.proc_root
        )))?;
    // With the libvirt actuator, VMs are migratable only as libvirt's inventory allows.
    let inventory_task = match &cfg.actuator {
        crate::config::ActuatorKind::Libvirt(s) => {
            let inventory = crate::actuator::Inventory::new((**s).clone());
            monitor.set_inventory(inventory.clone());
            Some(tokio::spawn(inventory.run()))
        }
        _ => None,
    };
    let mut ocfg = dvms_overlay::Config::new(psk)
        .with_listen(cfg.listen.clone())
        .with_location(cfg.location)
        .with_identity(Identity::StateDir(cfg.state_dir.clone()));
    for b in &cfg.bootstrap {
        ocfg = ocfg.with_bootstrap(b.clone());
    }
    ocfg.request_timeout = cfg.request_timeout;
    let (overlay, overlay_events, event_loop) = Overlay::new(ocfg)
        .map_err(anyhow::Error::from)
        .map_err(unavailable("cannot start the overlay"))?;
    let overlay_task = tokio::spawn(event_loop.run());

    let listener = crate::control::bind(&cfg.control_socket)
        .map_err(anyhow::Error::from)
        .map_err(unavailable(format!(
            "cannot bind control.socket = {:?}",
            cfg.control_socket
        )))?;
    let (calls_tx, calls) = mpsc::channel(crate::control::QUEUE);
    let control_task = tokio::spawn(crate::control::serve(
        listener,
        calls_tx,
        cfg.control_socket.clone(),
    ));

    let metrics = Arc::new(Metrics::default());
    let metrics_task = match cfg.metrics_listen {
        Some(addr) => Some(
            crate::metrics::serve(addr, metrics.registry())
                .await
                .map_err(anyhow::Error::from)
                .map_err(unavailable(format!("cannot bind metrics.listen = {addr}")))?,
        ),
        None => None,
    };

    let (ready_tx, mut ready_rx) = watch::channel(false);
    let (driver, net_task) = Driver::new(Parts {
        cfg: cfg.clone(),
        overlay: overlay.clone(),
        overlay_events,
        monitor,
        calls,
        metrics,
        ready: ready_tx,
    });
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        node = %cfg.node_name,
        node_id = %format_args!("{:016x}", driver.id().0),
        peer = %overlay.local_peer_id(),
        listen = %cfg.listen,
        actuator = ?cfg.actuator,
        "dvmsd starting"
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut term = signal(SignalKind::terminate())
        .map_err(anyhow::Error::from)
        .map_err(unavailable("cannot install the SIGTERM handler"))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(anyhow::Error::from)
        .map_err(unavailable("cannot install the SIGINT handler"))?;
    let grace = cfg.shutdown_grace;
    let mut drive = tokio::spawn(driver.run(stop_rx));
    let mut stopping = false;
    let mut ready_seen = false;
    loop {
        tokio::select! {
            changed = ready_rx.changed(), if !ready_seen => {
                ready_seen = true;
                if changed.is_ok() && *ready_rx.borrow() {
                    notify(&[sd_notify::NotifyState::Ready]);
                }
            }
            _ = term.recv(), if !stopping => {
                tracing::info!(signal = "SIGTERM", "stop requested");
                stopping = true;
                notify(&[sd_notify::NotifyState::Stopping]);
                let _ = stop_tx.send(true);
            }
            _ = int.recv(), if !stopping => {
                tracing::info!(signal = "SIGINT", "stop requested");
                stopping = true;
                notify(&[sd_notify::NotifyState::Stopping]);
                let _ = stop_tx.send(true);
            }
            done = &mut drive => {
                if let Err(e) = done {
                    tracing::error!(error = %e, "driver task failed");
                }
                break;
            }
            () = tokio::time::sleep(grace + Duration::from_secs(5)), if stopping => {
                tracing::warn!("driver did not stop within the grace period: exiting");
                drive.abort();
                break;
            }
        }
    }
    if !stopping {
        notify(&[sd_notify::NotifyState::Stopping]);
    }
    control_task.abort();
    net_task.abort();
    if let Some(t) = inventory_task {
        t.abort();
    }
    if let Some(t) = metrics_task {
        t.abort();
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), overlay_task).await;
    let _ = std::fs::remove_file(&cfg.control_socket);
    tracing::info!("dvmsd stopped");
    Ok(())
}
