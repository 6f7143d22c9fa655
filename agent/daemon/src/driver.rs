//! The driver: one task owns the `dvms_core::Node` and drives it as the simulator does.
//!
//! After every input the node's outputs are drained and dispatched, then the timer is re-armed
//! from `poll_timeout`. Dispatch never waits: messages, summaries and candidate queries go to
//! the [`Net`] task on a bounded queue, the solver to a blocking thread, migrations to a
//! `JoinSet` capped by a semaphore. Completions come back as inputs, local ones first
//! (`biased` select): migrations, plans, the net task's reports, timers, samples, control
//! calls, then the overlay's events. `Time` is the monotonic time since the driver started.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use dvms_core::model::{MigrationId, NodeId, PartitionId, Plan, SolveId, Unsolvable, VmId};
use dvms_core::{MigrationOutcome, Node, Output, Time};
use dvms_overlay::{Event as OverlayEvent, Handle};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::actuator::{Actuator, AnyActuator};
use crate::config::Config;
use crate::control::Call;
use crate::control::proto::{self, Request, Response};
use crate::directory::Directory;
use crate::metrics::Metrics;
use crate::monitor::HostMonitor;
use crate::net::{Net, NetCmd, NetResult};
use crate::record::{Record, partition_label};

mod migrations;

/// The monotonic clock the core's `Time` is read from.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    /// A clock whose epoch is now.
    pub fn new() -> Clock {
        Clock {
            start: Instant::now(),
        }
    }

    /// Now, as the core's `Time`.
    pub fn now(&self) -> Time {
        Time::from_micros(u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX))
    }

    /// The tokio instant of a core `Time`.
    pub fn instant(&self, t: Time) -> Instant {
        self.start + Duration::from_micros(t.as_micros())
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// A migration this host runs.
#[derive(Debug, Clone)]
struct Running {
    vm: VmId,
    vm_name: String,
    to: String,
    partition: PartitionId,
    mem_mib: u64,
}

/// A local input produced while dispatching, fed to the node right after the drain.
#[derive(Debug)]
enum Local {
    Unreachable(NodeId),
    MigrationFailed(MigrationId, String),
}

/// Everything the driver task owns.
#[derive(Debug)]
pub struct Driver {
    cfg: Arc<Config>,
    node: Node,
    clock: Clock,
    overlay: Handle,
    overlay_events: mpsc::Receiver<OverlayEvent>,
    net: Net,
    monitor: HostMonitor,
    actuator: Arc<AnyActuator>,
    permits: Arc<Semaphore>,
    migrations: JoinSet<(MigrationId, MigrationOutcome)>,
    /// Abort requests on their way to the actuator (at most one per running migration).
    aborts: JoinSet<(MigrationId, Result<(), String>)>,
    running: BTreeMap<MigrationId, Running>,
    solves: JoinSet<(SolveId, Option<PartitionId>, usize, dvms_placement::Outcome)>,
    calls: mpsc::Receiver<Call>,
    dir: Directory,
    record: Record,
    metrics: Arc<Metrics>,
    local: VecDeque<Local>,
    listen: Vec<String>,
    samples: u64,
    sample_errors: u64,
    ready_sent: bool,
    /// Set when the overlay listens and the first sample is taken.
    ready: watch::Sender<bool>,
}

/// What the driver needs from `run`.
#[derive(Debug)]
pub struct Parts {
    /// The validated config.
    pub cfg: Arc<Config>,
    /// The overlay handle.
    pub overlay: Handle,
    /// The overlay's event queue.
    pub overlay_events: mpsc::Receiver<OverlayEvent>,
    /// The monitor.
    pub monitor: HostMonitor,
    /// Control calls.
    pub calls: mpsc::Receiver<Call>,
    /// Metrics to update.
    pub metrics: Arc<Metrics>,
    /// Told once the agent is ready (for sd_notify).
    pub ready: watch::Sender<bool>,
}

impl Driver {
    /// Builds the node and the driver's state. Spawns the net task.
    pub fn new(p: Parts) -> (Driver, tokio::task::JoinHandle<()>) {
        let clock = Clock::new();
        let peer = p.overlay.local_peer_id();
        let id = crate::directory::node_id_of(&peer);
        // A fresh seed each start: nothing of a previous run is trusted or replayed.
        let seed = id.0
            ^ u64::from(std::process::id()).rotate_left(32)
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| u64::try_from(d.as_nanos() & u128::from(u64::MAX)).unwrap_or(0))
                .unwrap_or(0);
        let node = Node::new(id, p.cfg.protocol.clone(), seed, clock.now());
        let (net, net_task) = Net::spawn(p.overlay.clone());
        let actuator = Arc::new(AnyActuator::new(&p.cfg.actuator));
        let permits = Arc::new(Semaphore::new(
            usize::try_from(p.cfg.max_parallel_migrations.get()).unwrap_or(1),
        ));
        let dir = Directory::new(id, &p.cfg.node_name);
        let driver = Driver {
            node,
            clock,
            overlay: p.overlay,
            overlay_events: p.overlay_events,
            net,
            monitor: p.monitor,
            actuator,
            permits,
            migrations: JoinSet::new(),
            aborts: JoinSet::new(),
            running: BTreeMap::new(),
            solves: JoinSet::new(),
            calls: p.calls,
            dir,
            record: Record::default(),
            metrics: p.metrics,
            local: VecDeque::new(),
            listen: Vec::new(),
            samples: 0,
            sample_errors: 0,
            ready_sent: false,
            ready: p.ready,
            cfg: p.cfg,
        };
        (driver, net_task)
    }

    /// This host's core id.
    pub fn id(&self) -> NodeId {
        self.node.id()
    }

    /// Runs until `stop` resolves, then leaves cleanly: waits (at most `node.shutdown_grace`)
    /// until this host is in no partition and runs no migration.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(self.cfg.period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut leave_by: Option<Instant> = None;
        // A node must not be woken again for the deadline it was just called for: the timer
        // waits at least until this instant (as the simulator guards the same case).
        let mut not_before = Instant::now();
        loop {
            self.drain();
            if let Some(by) = leave_by {
                if (!self.node.is_busy() && self.migrations.is_empty()) || Instant::now() >= by {
                    if self.node.is_busy() || !self.migrations.is_empty() {
                        tracing::warn!(
                            migrations = self.migrations.len(),
                            "grace period over: leaving while still busy"
                        );
                    } else {
                        tracing::info!("left cleanly: in no partition, no migration running");
                    }
                    break;
                }
            }
            let deadline = self
                .node
                .poll_timeout()
                .map(|t| self.clock.instant(t).max(not_before));
            let leave_tick = leave_by.map(|by| by.min(Instant::now() + Duration::from_millis(100)));
            tokio::select! {
                biased;
                changed = stop.changed(), if leave_by.is_none() => {
                    if changed.is_err() || *stop.borrow() {
                        let grace = self.cfg.shutdown_grace;
                        tracing::info!(grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX), busy = self.node.is_busy(), "stopping: leaving the partition");
                        leave_by = Some(Instant::now() + grace);
                    }
                }
                Some(done) = self.migrations.join_next(), if !self.migrations.is_empty() => {
                    match done {
                        Ok((id, outcome)) => self.migration_done(id, outcome),
                        Err(e) => tracing::error!(error = %e, "migration task failed"),
                    }
                }
                Some(done) = self.aborts.join_next(), if !self.aborts.is_empty() => {
                    match done {
                        Ok((id, answer)) => self.abort_answered(id, answer),
                        Err(e) => tracing::error!(error = %e, "abort task failed"),
                    }
                }
                Some(done) = self.solves.join_next(), if !self.solves.is_empty() => {
                    match done {
                        Ok((id, partition, hosts, outcome)) => self.plan_done(id, partition, hosts, outcome),
                        Err(e) => tracing::error!(error = %e, "solver task failed"),
                    }
                }
                Some(res) = self.net.rx.recv() => self.net_result(res),
                () = sleep_until_opt(deadline) => {
                    let now = self.clock.now();
                    self.node.handle_timeout(now);
                    not_before = Instant::now() + Duration::from_millis(1);
                }
                () = sleep_until_opt(leave_tick) => {}
                _ = tick.tick(), if leave_by.is_none() => self.sample(),
                Some(call) = self.calls.recv() => {
                    let response = self.answer(call.request);
                    let _ = call.reply.send(response);
                }
                ev = self.overlay_events.recv() => match ev {
                    Some(ev) => self.overlay_event(ev),
                    None => {
                        tracing::error!("overlay stopped");
                        break;
                    }
                },
            }
        }
        self.aborts.shutdown().await;
        self.migrations.shutdown().await;
        if let Err(e) = self.overlay.shutdown().await {
            tracing::debug!(error = %e, "overlay already stopped");
        }
    }

    /// Drains the node's outputs and the local inputs they produced.
    fn drain(&mut self) {
        loop {
            while let Some(out) = self.node.poll_output() {
                self.dispatch(out);
            }
            let Some(local) = self.local.pop_front() else {
                break;
            };
            let now = self.clock.now();
            match local {
                Local::Unreachable(peer) => self.node.handle_unreachable(now, peer),
                Local::MigrationFailed(id, reason) => {
                    self.node
                        .handle_migration(now, id, MigrationOutcome::Failed { reason });
                }
            }
        }
        let in_partition = self.node.partition().is_some();
        self.metrics.in_partition.set(i64::from(in_partition));
        self.metrics.leader.set(i64::from(self.node.is_leader()));
    }

    fn dispatch(&mut self, out: Output) {
        match out {
            Output::Send { to, msg } => {
                let Some(peer) = self.dir.get(to).map(|i| i.peer) else {
                    tracing::debug!(peer = to.0, "message to an unknown host: unreachable");
                    self.local.push_back(Local::Unreachable(to));
                    return;
                };
                match dvms_core::wire::encode(&msg) {
                    Ok(bytes) => self.net.push(NetCmd::Send {
                        peer,
                        node: to,
                        bytes,
                    }),
                    Err(e) => {
                        tracing::error!(error = %e, kind = msg.kind(), "cannot encode message");
                    }
                }
            }
            Output::Publish(summary) => {
                let bytes = crate::directory::encode(&summary, &self.cfg.node_name);
                self.net.push(NetCmd::Publish(bytes));
            }
            Output::FindCandidates {
                query,
                near,
                exclude,
                count,
            } => {
                let key = if near == self.node.id() {
                    self.overlay.local_key()
                } else {
                    match self.dir.get(near) {
                        Some(info) => dvms_overlay::peer_key(&info.peer, info.location),
                        None => self.overlay.local_key(),
                    }
                };
                let exclude = exclude
                    .iter()
                    .filter_map(|n| self.dir.get(*n).map(|i| i.peer))
                    .collect();
                self.net.push(NetCmd::Candidates {
                    query,
                    key,
                    exclude,
                    count,
                });
            }
            Output::Solve { id, problem } => {
                let partition = self.node.partition().map(|v| v.id);
                let hosts = problem.hosts.len();
                tracing::debug!(hosts, vms = problem.vms.len(), "solving");
                self.solves.spawn_blocking(move || {
                    let outcome =
                        dvms_placement::solve(&problem, &dvms_placement::Options::default());
                    (id, partition, hosts, outcome)
                });
            }
            Output::Migrate(cmd) => self.start_migration(cmd),
            Output::AbortMigration { id, vm, to } => self.abort_migration(id, vm, to),
            Output::Event(ev) => {
                let name = self.record.core_event(&ev, &self.dir);
                self.metrics.event(name);
            }
            // `Output` is non-exhaustive: a newer core's output this driver does not know.
            other => tracing::warn!(output = ?other, "output not handled by this driver"),
        }
    }

    fn plan_done(
        &mut self,
        id: SolveId,
        partition: Option<PartitionId>,
        hosts: usize,
        outcome: dvms_placement::Outcome,
    ) {
        let monitor = &self.monitor;
        self.record.solved(
            &self.dir,
            partition,
            hosts,
            &outcome.result,
            |vm| {
                monitor
                    .name(vm)
                    .map_or_else(|| format!("{:016x}", vm.0), str::to_owned)
            },
            outcome.work_units,
        );
        let result: Result<Plan, Unsolvable> = outcome.result;
        let now = self.clock.now();
        self.node.handle_plan(now, id, result);
    }

    fn net_result(&mut self, res: NetResult) {
        let now = self.clock.now();
        match res {
            NetResult::Unreachable { node, error } => {
                tracing::debug!(peer = %self.dir.label(node), error = %error, "peer unreachable");
                self.node.handle_unreachable(now, node);
            }
            NetResult::Candidates { query, list } => {
                let secs = now.as_micros() / 1_000_000;
                let mut out = Vec::with_capacity(list.len());
                for c in list {
                    let Some(id) = self.dir.learn(c.peer, secs) else {
                        continue;
                    };
                    let summary = c.summary.as_deref().and_then(|b| {
                        self.dir
                            .learn_summary(c.peer, c.location, b, secs)
                            .map(|(_, s)| s)
                    });
                    out.push(dvms_core::model::Candidate { id, summary });
                }
                self.metrics
                    .peers
                    .set(i64::try_from(self.dir.len()).unwrap_or(i64::MAX));
                self.node.handle_candidates(now, query, out);
            }
        }
    }

    fn sample(&mut self) {
        match self.monitor.sample() {
            Ok(sample) => {
                self.samples = self.samples.saturating_add(1);
                self.metrics.samples.inc();
                let load = self.monitor.load();
                let g = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
                self.metrics.vms.set(g(sample.vms.len() as u64));
                self.metrics
                    .cpu_capacity_milli
                    .set(g(load.cpu_capacity_milli));
                self.metrics.cpu_demand_milli.set(g(load.cpu_demand_milli));
                self.metrics.mem_capacity_mib.set(g(load.mem_capacity_mib));
                self.metrics.mem_demand_mib.set(g(load.mem_demand_mib));
                self.metrics.net_dropped.set(g(self.net.dropped));
                let now = self.clock.now();
                self.node.handle_sample(now, sample);
                self.check_ready();
            }
            Err(e) => {
                self.sample_errors = self.sample_errors.saturating_add(1);
                self.metrics.sample_errors.inc();
                tracing::warn!(error = %e, "sample failed: skipped");
            }
        }
    }

    fn check_ready(&mut self) {
        if !self.ready_sent && self.samples > 0 && !self.listen.is_empty() {
            self.ready_sent = true;
            let _ = self.ready.send(true);
            tracing::info!(node = %self.cfg.node_name, node_id = %format_args!("{:016x}", self.node.id().0), listen = ?self.listen, vms = self.monitor.vm_count(), "ready");
        }
    }

    fn overlay_event(&mut self, ev: OverlayEvent) {
        let now = self.clock.now();
        let secs = now.as_micros() / 1_000_000;
        match ev {
            OverlayEvent::InboundRequest {
                peer,
                request,
                bytes,
            } => {
                self.net.push(NetCmd::Ack(request));
                let Some(from) = self.dir.learn(peer, secs) else {
                    return;
                };
                match dvms_core::wire::decode(&bytes) {
                    Ok(msg) => {
                        tracing::debug!(peer = %self.dir.label(from), kind = msg.kind(), "message");
                        self.node.handle_message(now, from, msg);
                    }
                    Err(e) => {
                        tracing::warn!(peer = %peer, error = %e, "undecodable message dropped");
                    }
                }
            }
            OverlayEvent::SummaryReceived {
                peer,
                location,
                summary,
            } => {
                if self
                    .dir
                    .learn_summary(peer, location, &summary, secs)
                    .is_none()
                {
                    tracing::debug!(peer = %peer, "bad summary dropped");
                }
                self.metrics
                    .peers
                    .set(i64::try_from(self.dir.len()).unwrap_or(i64::MAX));
            }
            OverlayEvent::PeerUp { peer } => {
                self.dir.learn(peer, secs);
                tracing::debug!(peer = %peer, "peer connected");
            }
            OverlayEvent::PeerDown { peer } => tracing::debug!(peer = %peer, "peer disconnected"),
            OverlayEvent::Listening { address } => {
                tracing::info!(address = %address, "overlay listening");
                if self.listen.len() < 16 {
                    self.listen.push(address.to_string());
                }
                self.check_ready();
            }
            other => tracing::debug!(event = ?other, "overlay event"),
        }
    }

    fn answer(&mut self, req: Request) -> Response {
        let now = self.clock.now();
        match req {
            Request::Status => Response::Status(Box::new(self.status(now))),
            Request::Vms => {
                let running = &self.running;
                Response::Vms(
                    self.monitor
                        .rows(|vm| running.values().find(|r| r.vm == vm).map(|r| r.to.clone())),
                )
            }
            Request::Peers => {
                let secs = now.as_micros() / 1_000_000;
                Response::Peers(
                    self.dir
                        .iter()
                        .map(|(id, i)| proto::PeerRow {
                            name: i.name.clone(),
                            node_id: format!("{:016x}", id.0),
                            peer_id: i.peer.to_string(),
                            load: i.summary.map(|s| proto::Load {
                                cpu_capacity_milli: s.capacity.cpu_milli,
                                cpu_demand_milli: s.demand.cpu_milli,
                                mem_capacity_mib: s.capacity.mem_mib,
                                mem_demand_mib: s.demand.mem_mib,
                            }),
                            busy: i.summary.is_some_and(|s| s.busy),
                            draining: i.summary.is_some_and(|s| s.draining),
                            seen_s_ago: secs.saturating_sub(i.last_seen_s),
                        })
                        .collect(),
                )
            }
            Request::Events => Response::Events(self.record.events()),
            Request::Plan => Response::Plan(proto::PlanView {
                actuator: self.actuator.kind().into(),
                latest: self.record.latest(),
                running: self
                    .running
                    .values()
                    .map(|r| proto::PlanMove {
                        step: 0,
                        vm: r.vm_name.clone(),
                        from: self.cfg.node_name.clone(),
                        to: r.to.clone(),
                        mem_mib: r.mem_mib,
                    })
                    .collect(),
            }),
            Request::Drain | Request::Undrain => {
                let drain = req == Request::Drain;
                tracing::info!(
                    event = if drain { "drain" } else { "undrain" },
                    decision = "operator",
                    "operator asked to {} this host",
                    if drain { "drain" } else { "stop draining" }
                );
                self.record.push(
                    if drain { "drain" } else { "undrain" },
                    None,
                    None,
                    if drain {
                        "operator asked to evacuate this host".into()
                    } else {
                        "operator cancelled the evacuation".into()
                    },
                );
                self.node.handle_evacuate(now, drain);
                Response::Done {
                    message: if drain {
                        "draining: this host's VMs will be moved to other hosts; no VM will be placed here".into()
                    } else {
                        "no longer draining".into()
                    },
                }
            }
        }
    }

    fn status(&self, now: Time) -> proto::Status {
        let load = self.monitor.load();
        let cap_cpu = load
            .cpu_capacity_milli
            .saturating_mul(u64::from(self.cfg.protocol.thresholds.cpu_pct))
            / 100;
        let cap_mem = load
            .mem_capacity_mib
            .saturating_mul(u64::from(self.cfg.protocol.thresholds.mem_pct))
            / 100;
        let partition = self.node.partition().map(|v| proto::PartitionRow {
            id: partition_label(&self.dir, v.id),
            version: v.version,
            state: format!("{:?}", v.state),
            kind: v.kind.to_string(),
            leader: self.dir.label(v.leader),
            members: v.members.iter().map(|m| self.dir.label(*m)).collect(),
        });
        let role = if self.node.is_leader() {
            "leader"
        } else if self.node.is_busy() {
            "member"
        } else {
            "free"
        };
        let s = self.node.stats();
        proto::Status {
            name: self.cfg.node_name.clone(),
            node_id: format!("{:016x}", self.node.id().0),
            peer_id: self.overlay.local_peer_id().to_string(),
            version: env!("CARGO_PKG_VERSION").into(),
            uptime_s: now.as_micros() / 1_000_000,
            listen: self.listen.clone(),
            actuator: self.actuator.kind().into(),
            ready: self.ready_sent,
            role: role.into(),
            draining: self.node.summary().draining,
            overloaded: self.samples > 0
                && (load.cpu_demand_milli > cap_cpu || load.mem_demand_mib > cap_mem),
            load,
            partition,
            vms: self.monitor.vm_count(),
            peers: self.dir.len(),
            migrations_running: self.running.len(),
            samples: self.samples,
            sample_errors: self.sample_errors,
            stats: proto::Counters {
                messages_sent: s.messages_sent,
                messages_received: s.messages_received,
                events_started: s.events_started,
                plans_chosen: s.plans_chosen,
                migrations_ok: s.migrations_ok,
                migrations_failed: s.migrations_failed,
            },
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
