//! Driving the real protocol: one `dvms_core::Node` per up host, held by [`DvmsDriver`]
//! (the engine's hosts know nothing of nodes, timers or messages in flight).
//!
//! After every input the node's outputs are drained and its timer re-armed from
//! `poll_timeout` (a per-host generation number makes superseded timer events no-ops). Outputs:
//! - `Send` goes through the [`crate::net`] model;
//! - `Publish` and `FindCandidates` go to the overlay model (`crate::overlay`): per-host
//!   gossip views, Kademlia lookups;
//! - `Solve` runs `dvms_placement::solve` inline (`crate::solver`); the answer arrives after
//!   the charged solve time;
//! - `Migrate` starts the migration model; `Event` feeds the metrics and the trace hash.

use std::collections::BTreeMap;

use dvms_core::model::{Candidate, NodeId, PartitionId, Plan, QueryId, SolveId, Unsolvable};
use dvms_core::msg::{DissolveReason, EventKind, Msg};
use dvms_core::{Event, Node, Output, Time};

use crate::engine::{Episode, Ev, Owner, Sim};
use crate::net::Fate;
use crate::observe::{NodeView, Seen};
use crate::sched::SchedEv;

/// The reason a modelled abort reports (answered as `MigrationOutcome::Aborted`).
const ABORTED: &str = "aborted";

fn node_id(h: usize) -> NodeId {
    NodeId(h as u64)
}

/// A node's timer: the instant it asked for, and the generation of its scheduled event.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Timer {
    pub(crate) generation: u64,
    pub(crate) at: Option<Time>,
}

/// The DVMS protocol on every host: each up host's node, its timer, the events it started.
#[derive(Debug, Default)]
pub(crate) struct DvmsDriver {
    /// Each host's node (`None` while the host is down).
    pub(crate) nodes: Vec<Option<Node>>,
    pub(crate) timers: Vec<Timer>,
    /// Start time of every open event, and whether it was decided.
    pub(crate) starts: BTreeMap<PartitionId, (Time, bool)>,
    /// Messages on their way.
    pub(crate) in_flight: u64,
}

fn host_index(sim: &Sim, n: NodeId) -> Option<usize> {
    usize::try_from(n.0).ok().filter(|&i| i < sim.hosts.len())
}

impl DvmsDriver {
    /// A driver for `hosts` hosts, no node booted yet.
    pub(crate) fn new(hosts: usize) -> DvmsDriver {
        DvmsDriver {
            nodes: (0..hosts).map(|_| None).collect(),
            timers: vec![Timer::default(); hosts],
            starts: BTreeMap::new(),
            in_flight: 0,
        }
    }

    /// Host `h`'s node's partition as it sees it.
    fn view(&self, h: usize) -> Option<NodeView> {
        self.nodes[h]
            .as_ref()
            .and_then(|n| n.partition())
            .map(|v| (v.id, v.epoch, v.leader, v.members.clone()))
    }

    /// Shows host `h`'s node's partition to the observers.
    fn observe_node(&mut self, sim: &mut Sim, h: usize) {
        let view = self.view(h);
        sim.observe(Seen::Node { host: h, view });
    }

    /// Host `h` crashed: its node and timer are gone.
    pub(crate) fn drop_node(&mut self, h: usize) {
        self.nodes[h] = None;
        self.timers[h].generation += 1;
        self.timers[h].at = None;
    }

    /// Starts a fresh node on host `h` and gives it its first sample.
    pub(crate) fn boot_node(&mut self, sim: &mut Sim, h: usize) {
        let seed = crate::rng::node_seed(sim.cfg.seed, h, sim.hosts[h].epoch);
        let node = Node::new(node_id(h), sim.cfg.protocol.clone(), seed, sim.now);
        self.nodes[h] = Some(node);
        self.drain(sim, h);
        self.send_sample(sim, h);
    }

    /// Feeds one input to host `h`'s node (if it is up), then drains it.
    pub(crate) fn node_input(&mut self, sim: &mut Sim, h: usize, f: impl FnOnce(&mut Node, Time)) {
        let now = sim.now;
        let Some(node) = self.nodes[h].as_mut() else {
            return;
        };
        f(node, now);
        self.drain(sim, h);
    }

    pub(crate) fn send_sample(&mut self, sim: &mut Sim, h: usize) {
        if self.nodes[h].is_none() {
            return;
        }
        let sample = sim.sample(h);
        self.node_input(sim, h, |n, now| n.handle_sample(now, sample));
    }

    fn drain(&mut self, sim: &mut Sim, h: usize) {
        while let Some(out) = self.nodes[h].as_mut().and_then(Node::poll_output) {
            self.output(sim, h, out);
        }
        let Some(node) = self.nodes[h].as_ref() else {
            return;
        };
        let next = node.poll_timeout();
        self.observe_node(sim, h);
        let timer = &mut self.timers[h];
        if next != timer.at {
            timer.generation += 1;
            timer.at = next;
            if let Some(at) = next {
                let generation = timer.generation;
                sim.schedule(
                    at,
                    Ev::Sched(SchedEv::Timer {
                        host: h as u32,
                        generation,
                    }),
                );
            }
        }
    }

    pub(crate) fn on_timer(&mut self, sim: &mut Sim, h: usize, generation: u64) {
        if generation != self.timers[h].generation || self.nodes[h].is_none() {
            return;
        }
        self.timers[h].at = None;
        self.node_input(sim, h, |n, now| n.handle_timeout(now));
        // A node must not ask again for a deadline it was just called for: that would spin the
        // simulation at one instant forever. Count it and move the timer a millisecond on.
        let now = sim.now;
        let up = self.nodes[h].is_some();
        let timer = &mut self.timers[h];
        if up && timer.at.is_some_and(|t| t <= now) {
            timer.generation += 1;
            let generation = timer.generation;
            let at = now + std::time::Duration::from_millis(1);
            timer.at = Some(at);
            sim.metrics.violation(
                now,
                format!("n{h} asked for a timer at or before now right after handle_timeout"),
            );
            sim.schedule(
                at,
                Ev::Sched(SchedEv::Timer {
                    host: h as u32,
                    generation,
                }),
            );
        }
    }

    pub(crate) fn on_deliver(&mut self, sim: &mut Sim, to: usize, from: usize, msg: Msg) {
        if !sim.hosts[to].up {
            // Crashed while the message was in flight: the sender's request fails.
            let wait = sim
                .net
                .params
                .request_timeout
                .saturating_sub(sim.net.latency(from, to));
            let epoch = sim.hosts[from].epoch;
            sim.schedule(
                sim.now + wait,
                Ev::Sched(SchedEv::Unreachable {
                    host: from as u32,
                    epoch,
                    peer: to as u32,
                }),
            );
            return;
        }
        sim.metrics
            .hash
            .record(sim.now, to, msg.kind(), &[from as u64]);
        self.node_input(sim, to, |n, now| n.handle_message(now, node_id(from), msg));
    }

    pub(crate) fn on_unreachable(&mut self, sim: &mut Sim, h: usize, epoch: u32, peer: usize) {
        if sim.hosts[h].epoch != epoch {
            return;
        }
        self.node_input(sim, h, |n, now| n.handle_unreachable(now, node_id(peer)));
    }

    pub(crate) fn on_candidates(
        &mut self,
        sim: &mut Sim,
        h: usize,
        epoch: u32,
        query: QueryId,
        list: Vec<Candidate>,
    ) {
        if sim.hosts[h].epoch != epoch {
            return;
        }
        self.node_input(sim, h, |n, now| n.handle_candidates(now, query, list));
    }

    pub(crate) fn on_plan(
        &mut self,
        sim: &mut Sim,
        h: usize,
        epoch: u32,
        id: SolveId,
        result: Result<Plan, Unsolvable>,
    ) {
        if sim.hosts[h].epoch != epoch {
            return;
        }
        self.node_input(sim, h, |n, now| n.handle_plan(now, id, result));
    }

    fn output(&mut self, sim: &mut Sim, h: usize, out: Output) {
        match out {
            Output::Send { to, msg } => self.send(sim, h, to, msg),
            Output::Publish(summary) => sim.publish(h, summary),
            Output::FindCandidates {
                query,
                near,
                exclude,
                count,
            } => sim.find_candidates(h, query, near, &exclude, count),
            Output::Solve { id, problem } => {
                // The node's state is already the one after this input: index it before checking.
                self.observe_node(sim, h);
                sim.observe(Seen::Solve { host: h });
                let (result, delay) = sim.solve(&problem, dvms_placement::Mode::Full);
                if let Ok(plan) = &result {
                    sim.observe(Seen::Plan {
                        problem: &problem,
                        plan,
                    });
                }
                let epoch = sim.hosts[h].epoch;
                sim.schedule(
                    sim.now + delay,
                    Ev::Sched(SchedEv::Plan {
                        host: h as u32,
                        epoch,
                        id,
                        result,
                    }),
                );
            }
            Output::Migrate(cmd) => self.migrate(sim, h, cmd),
            Output::AbortMigration { id, .. } => self.abort_migration(sim, h, id),
            Output::Event(ev) => self.core_event(sim, h, ev),
            other => {
                sim.metrics
                    .hash
                    .record(sim.now, h, &format!("{other:?}"), &[]);
            }
        }
    }

    fn send(&mut self, sim: &mut Sim, h: usize, to: NodeId, msg: Msg) {
        sim.metrics.messages_sent += 1;
        let Some(t) = host_index(sim, to) else {
            return;
        };
        if let Msg::Incoming { migration, vm, .. } = &msg {
            // The destination judges its room when this arrives: remember the loads it sees.
            sim.observe(Seen::Reserve {
                migration: *migration,
                vm: vm.0,
                dest: t,
            });
        }
        if sim.net.inter_site(h, t) {
            sim.metrics.inter_site_messages += 1;
        }
        let up = sim.hosts[t].up;
        match sim.net.fate_at(sim.now, h, t, up) {
            Fate::Deliver(d) => {
                self.in_flight += 1;
                sim.schedule(
                    sim.now + d,
                    Ev::Sched(SchedEv::Deliver {
                        to: t as u32,
                        from: h as u32,
                        msg,
                    }),
                );
            }
            Fate::Lost => {
                if sim.cfg.trace {
                    eprintln!("{} n{h} (sim) lost {} to n{t}", sim.now, msg.kind());
                }
            }
            Fate::Unreachable(d) => {
                let epoch = sim.hosts[h].epoch;
                sim.schedule(
                    sim.now + d,
                    Ev::Sched(SchedEv::Unreachable {
                        host: h as u32,
                        epoch,
                        peer: t as u32,
                    }),
                );
            }
        }
    }

    fn migrate(&mut self, sim: &mut Sim, h: usize, cmd: dvms_core::MigrationCmd) {
        let view = self.view(h);
        sim.observe(Seen::Migrate {
            host: h,
            cmd: &cmd,
            view,
        });
        let v = usize::try_from(cmd.vm.0)
            .ok()
            .filter(|&v| v < sim.vms.len());
        let to = host_index(sim, cmd.to);
        let fail = |sim: &mut Sim, reason: &str| {
            sim.metrics.migrations_failed += 1;
            let epoch = sim.hosts[h].epoch;
            // Answered as a separate input, after this drain.
            sim.schedule(
                sim.now,
                Ev::Sched(SchedEv::MigrationRefused {
                    host: h as u32,
                    epoch,
                    id: cmd.id,
                    reason: reason.to_owned(),
                }),
            );
        };
        match (v, to) {
            (Some(v), Some(to))
                if sim.vms[v].host as usize == h && !sim.vms[v].migrating && to != h =>
            {
                sim.start_migration(
                    v,
                    to,
                    Owner::Node {
                        id: cmd.id,
                        partition: cmd.partition,
                    },
                );
            }
            (Some(_), Some(_)) => fail(
                sim,
                "vm not on this host, already migrating, or target is self",
            ),
            _ => fail(sim, "unknown vm or host"),
        }
    }

    /// Models the hypervisor aborting a migration (`virDomainAbortJob`): if it still runs, it
    /// stops, the VM stays on its source, and the node hears `Aborted` one latency later; if it
    /// already ended, its outcome is on its way and the abort does nothing.
    fn abort_migration(&mut self, sim: &mut Sim, h: usize, id: dvms_core::model::MigrationId) {
        sim.metrics.migrations_aborted += 1;
        // Its hosts' other migrations get its share of the NICs at once.
        let Some((v, to)) = sim.abort_node_migration(h, id) else {
            return;
        };
        sim.metrics.migrations_failed += 1;
        let from = h;
        if sim.cfg.trace {
            eprintln!(
                "{} n{from} (sim) migration of vm{v} to n{to} aborted",
                sim.now
            );
        }
        sim.metrics
            .hash
            .record(sim.now, from, "aborted", &[v as u64, to as u64]);
        let epoch = sim.hosts[h].epoch;
        sim.schedule(
            sim.now + sim.net.latency(from, from),
            Ev::Sched(SchedEv::MigrationRefused {
                host: h as u32,
                epoch,
                id,
                reason: ABORTED.to_owned(),
            }),
        );
    }

    fn core_event(&mut self, sim: &mut Sim, h: usize, ev: Event) {
        let now = sim.now;
        let text = format!("{ev:?}");
        if sim.cfg.trace {
            eprintln!("{now} n{h} {text}");
        }
        sim.metrics.hash.record(now, h, &text, &[]);
        match ev {
            Event::EventStarted { partition, kind } => {
                sim.metrics.events_started += 1;
                self.starts.insert(partition, (now, false));
                if kind == EventKind::Overload
                    && sim.hosts[h].overloaded
                    && sim.hosts[h].episode.is_none()
                {
                    sim.hosts[h].episode = Some(Episode {
                        start: now,
                        decided: false,
                        unsolvable: false,
                    });
                }
            }
            Event::EventDecided { partition } => {
                if let Some((t0, decided)) = self.starts.get_mut(&partition) {
                    if !*decided {
                        *decided = true;
                        let d = now.saturating_since(*t0).as_secs_f64();
                        sim.metrics.time_to_decide.push(d);
                    }
                }
            }
            Event::Merged { .. } => sim.metrics.merges += 1,
            Event::EventEnded {
                partition, reason, ..
            } => self.event_ended(sim, partition, reason),
            Event::Dissolved { size, .. } => sim.metrics.partition_size.push(size as f64),
            Event::Ignored { .. } => sim.metrics.ignored += 1,
            Event::TookOver { .. } => sim.metrics.takeovers += 1,
            _ => {}
        }
    }

    /// Classifies an ended event by its real reason: `Solved` and `NotNeeded` are solved;
    /// `Unsolvable`, `GaveUp` and `NotWorthIt` unsolvable (nothing was fixed); `Expired`,
    /// `InitiatorLost`, `MigrationFailed` expired. (An event whose initiator crashes before it
    /// ends is also counted expired, at the crash.) `events_ended_by_reason` has every reason.
    fn event_ended(
        &mut self,
        sim: &mut Sim,
        partition: dvms_core::model::PartitionId,
        reason: DissolveReason,
    ) {
        *sim.metrics
            .ended_by_reason
            .entry(reason.to_string())
            .or_default() += 1;
        if self.starts.remove(&partition).is_none() {
            sim.metrics.events_unmatched += 1;
            return;
        }
        let m = &mut sim.metrics;
        match reason {
            DissolveReason::Solved | DissolveReason::NotNeeded => m.events_solved += 1,
            DissolveReason::Unsolvable | DissolveReason::GaveUp | DissolveReason::NotWorthIt => {
                m.events_unsolvable += 1;
            }
            DissolveReason::Expired
            | DissolveReason::InitiatorLost
            | DissolveReason::MigrationFailed => m.events_expired += 1,
        }
    }

    /// A migration command was refused at once (unknown VM, not on this host).
    pub(crate) fn on_migration_refused(
        &mut self,
        sim: &mut Sim,
        h: usize,
        epoch: u32,
        id: dvms_core::model::MigrationId,
        reason: String,
    ) {
        if sim.hosts[h].epoch == epoch {
            let outcome = if reason == ABORTED {
                dvms_core::MigrationOutcome::Aborted
            } else {
                dvms_core::MigrationOutcome::Failed { reason }
            };
            self.node_input(sim, h, |n, now| n.handle_migration(now, id, outcome));
        }
    }
}
