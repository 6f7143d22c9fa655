//! Driving the real protocol: one `dvms_core::Node` per up host.
//!
//! After every input the node's outputs are drained and its timer re-armed from
//! `poll_timeout` (a per-host generation number makes superseded timer events no-ops). Outputs:
//! - `Send` goes through the [`crate::net`] model;
//! - `Publish` and `FindCandidates` go to the overlay model (`crate::overlay`): per-host
//!   gossip views, Kademlia lookups;
//! - `Solve` runs `dvms_placement::solve` inline (`crate::solver`); the answer arrives after
//!   the charged solve time;
//! - `Migrate` starts the migration model; `Event` feeds the metrics and the trace hash.

use dvms_core::model::{Candidate, NodeId, Plan, QueryId, SolveId, Unsolvable, VmId};
use dvms_core::msg::{DissolveReason, EventKind, Msg};
use dvms_core::{Event, Node, Output, Time};

use crate::engine::{Episode, Ev, Owner, Sim};
use crate::net::Fate;
use crate::observe::Seen;
use crate::sched::SchedEv;

/// The reason a modelled abort reports (answered as `MigrationOutcome::Aborted`).
const ABORTED: &str = "aborted";

fn node_id(h: usize) -> NodeId {
    NodeId(h as u64)
}

impl Sim {
    /// Starts a fresh node on host `h` and gives it its first sample.
    pub(crate) fn boot_node(&mut self, h: usize) {
        let seed = crate::rng::node_seed(self.cfg.seed, h, self.hosts[h].epoch);
        let node = Node::new(node_id(h), self.cfg.protocol.clone(), seed, self.now);
        self.hosts[h].node = Some(node);
        self.drain(h);
        self.send_sample(h);
    }

    /// Feeds one input to host `h`'s node (if it is up), then drains it.
    pub(crate) fn node_input(&mut self, h: usize, f: impl FnOnce(&mut Node, Time)) {
        let now = self.now;
        let Some(node) = self.hosts[h].node.as_mut() else {
            return;
        };
        f(node, now);
        self.drain(h);
    }

    pub(crate) fn send_sample(&mut self, h: usize) {
        if self.hosts[h].node.is_none() {
            return;
        }
        let sample = self.sample(h);
        self.node_input(h, |n, now| n.handle_sample(now, sample));
    }

    fn drain(&mut self, h: usize) {
        while let Some(out) = self.hosts[h].node.as_mut().and_then(Node::poll_output) {
            self.output(h, out);
        }
        let Some(node) = self.hosts[h].node.as_ref() else {
            return;
        };
        let next = node.poll_timeout();
        self.observe_node(h);
        let host = &mut self.hosts[h];
        if next != host.timer_at {
            host.timer_gen += 1;
            host.timer_at = next;
            if let Some(at) = next {
                let generation = host.timer_gen;
                self.schedule(
                    at,
                    Ev::Sched(SchedEv::Timer {
                        host: h as u32,
                        generation,
                    }),
                );
            }
        }
    }

    pub(crate) fn on_timer(&mut self, h: usize, generation: u64) {
        let host = &mut self.hosts[h];
        if generation != host.timer_gen || host.node.is_none() {
            return;
        }
        host.timer_at = None;
        self.node_input(h, |n, now| n.handle_timeout(now));
        // A node must not ask again for a deadline it was just called for: that would spin the
        // simulation at one instant forever. Count it and move the timer a millisecond on.
        let now = self.now;
        let host = &mut self.hosts[h];
        if host.node.is_some() && host.timer_at.is_some_and(|t| t <= now) {
            host.timer_gen += 1;
            let generation = host.timer_gen;
            let at = now + std::time::Duration::from_millis(1);
            host.timer_at = Some(at);
            self.metrics.violation(
                now,
                format!("n{h} asked for a timer at or before now right after handle_timeout"),
            );
            self.schedule(
                at,
                Ev::Sched(SchedEv::Timer {
                    host: h as u32,
                    generation,
                }),
            );
        }
    }

    pub(crate) fn on_deliver(&mut self, to: usize, from: usize, msg: Msg) {
        if !self.hosts[to].up {
            // Crashed while the message was in flight: the sender's request fails.
            let wait = self
                .net
                .params
                .request_timeout
                .saturating_sub(self.net.latency(from, to));
            let epoch = self.hosts[from].epoch;
            self.schedule(
                self.now + wait,
                Ev::Sched(SchedEv::Unreachable {
                    host: from as u32,
                    epoch,
                    peer: to as u32,
                }),
            );
            return;
        }
        self.metrics
            .hash
            .record(self.now, to, msg.kind(), &[from as u64]);
        self.node_input(to, |n, now| n.handle_message(now, node_id(from), msg));
    }

    pub(crate) fn on_unreachable(&mut self, h: usize, epoch: u32, peer: usize) {
        if self.hosts[h].epoch != epoch {
            return;
        }
        self.node_input(h, |n, now| n.handle_unreachable(now, node_id(peer)));
    }

    pub(crate) fn on_candidates(
        &mut self,
        h: usize,
        epoch: u32,
        query: QueryId,
        list: Vec<Candidate>,
    ) {
        if self.hosts[h].epoch != epoch {
            return;
        }
        self.node_input(h, |n, now| n.handle_candidates(now, query, list));
    }

    pub(crate) fn on_plan(
        &mut self,
        h: usize,
        epoch: u32,
        id: SolveId,
        result: Result<Plan, Unsolvable>,
    ) {
        if self.hosts[h].epoch != epoch {
            return;
        }
        self.node_input(h, |n, now| n.handle_plan(now, id, result));
    }

    fn host_index(&self, n: NodeId) -> Option<usize> {
        usize::try_from(n.0).ok().filter(|&i| i < self.hosts.len())
    }

    fn output(&mut self, h: usize, out: Output) {
        match out {
            Output::Send { to, msg } => self.send(h, to, msg),
            Output::Publish(summary) => self.publish(h, summary),
            Output::FindCandidates {
                query,
                near,
                exclude,
                count,
            } => self.find_candidates(h, query, near, &exclude, count),
            Output::Solve { id, problem } => {
                // The node's state is already the one after this input: index it before checking.
                self.observe_node(h);
                self.observe(Seen::Solve { host: h });
                let (result, delay) = self.solve(&problem, dvms_placement::Mode::Full);
                if let Ok(plan) = &result {
                    self.observe(Seen::Plan {
                        problem: &problem,
                        plan,
                    });
                }
                let epoch = self.hosts[h].epoch;
                self.schedule(
                    self.now + delay,
                    Ev::Sched(SchedEv::Plan {
                        host: h as u32,
                        epoch,
                        id,
                        result,
                    }),
                );
            }
            Output::Migrate(cmd) => self.migrate(h, cmd),
            Output::AbortMigration { id, .. } => self.abort_migration(h, id),
            Output::Event(ev) => self.core_event(h, ev),
            other => {
                self.metrics
                    .hash
                    .record(self.now, h, &format!("{other:?}"), &[]);
            }
        }
    }

    fn send(&mut self, h: usize, to: NodeId, msg: Msg) {
        self.metrics.messages_sent += 1;
        let Some(t) = self.host_index(to) else {
            return;
        };
        if let Msg::Incoming { migration, vm, .. } = &msg {
            // The destination judges its room when this arrives: remember the loads it sees.
            self.observe(Seen::Reserve {
                migration: *migration,
                vm: vm.0,
                dest: t,
            });
        }
        if self.net.inter_site(h, t) {
            self.metrics.inter_site_messages += 1;
        }
        let up = self.hosts[t].up;
        match self.net.fate_at(self.now, h, t, up) {
            Fate::Deliver(d) => {
                self.in_flight_msgs += 1;
                self.schedule(
                    self.now + d,
                    Ev::Sched(SchedEv::Deliver {
                        to: t as u32,
                        from: h as u32,
                        msg,
                    }),
                );
            }
            Fate::Lost => {
                if self.cfg.trace {
                    eprintln!("{} n{h} (sim) lost {} to n{t}", self.now, msg.kind());
                }
            }
            Fate::Unreachable(d) => {
                let epoch = self.hosts[h].epoch;
                self.schedule(
                    self.now + d,
                    Ev::Sched(SchedEv::Unreachable {
                        host: h as u32,
                        epoch,
                        peer: t as u32,
                    }),
                );
            }
        }
    }

    fn migrate(&mut self, h: usize, cmd: dvms_core::MigrationCmd) {
        let view = self.node_view(h);
        self.observe(Seen::Migrate {
            host: h,
            cmd: &cmd,
            view,
        });
        let v = usize::try_from(cmd.vm.0)
            .ok()
            .filter(|&v| v < self.vms.len());
        let to = self.host_index(cmd.to);
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
                if self.vms[v].host as usize == h && !self.vms[v].migrating && to != h =>
            {
                self.start_migration(
                    v,
                    to,
                    Owner::Node {
                        id: cmd.id,
                        partition: cmd.partition,
                    },
                );
            }
            (Some(_), Some(_)) => fail(
                self,
                "vm not on this host, already migrating, or target is self",
            ),
            _ => fail(self, "unknown vm or host"),
        }
    }

    /// Models the hypervisor aborting a migration (`virDomainAbortJob`): if it still runs, it
    /// stops, the VM stays on its source, and the node hears `Aborted` one latency later; if it
    /// already ended, its outcome is on its way and the abort does nothing.
    fn abort_migration(&mut self, h: usize, id: dvms_core::model::MigrationId) {
        self.metrics.migrations_aborted += 1;
        // Its hosts' other migrations get its share of the NICs at once.
        let Some((v, to)) = self.abort_node_migration(h, id) else {
            return;
        };
        self.metrics.migrations_failed += 1;
        let from = h;
        if self.cfg.trace {
            eprintln!(
                "{} n{from} (sim) migration of vm{v} to n{to} aborted",
                self.now
            );
        }
        self.metrics
            .hash
            .record(self.now, from, "aborted", &[v as u64, to as u64]);
        let epoch = self.hosts[h].epoch;
        self.schedule(
            self.now + self.net.latency(from, from),
            Ev::Sched(SchedEv::MigrationRefused {
                host: h as u32,
                epoch,
                id,
                reason: ABORTED.to_owned(),
            }),
        );
    }

    fn core_event(&mut self, h: usize, ev: Event) {
        let now = self.now;
        let text = format!("{ev:?}");
        if self.cfg.trace {
            eprintln!("{now} n{h} {text}");
        }
        self.metrics.hash.record(now, h, &text, &[]);
        match ev {
            Event::EventStarted { partition, kind } => {
                self.metrics.events_started += 1;
                self.starts.insert(partition, (now, false));
                if kind == EventKind::Overload
                    && self.hosts[h].overloaded
                    && self.hosts[h].episode.is_none()
                {
                    self.hosts[h].episode = Some(Episode {
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
                        self.metrics.time_to_decide.push(d);
                    }
                }
            }
            Event::Merged { .. } => self.metrics.merges += 1,
            Event::EventEnded {
                partition, reason, ..
            } => self.event_ended(partition, reason),
            Event::Dissolved { size, .. } => self.metrics.partition_size.push(size as f64),
            Event::Ignored { .. } => self.metrics.ignored += 1,
            Event::TookOver { .. } => self.metrics.takeovers += 1,
            _ => {}
        }
    }

    /// Classifies an ended event by its real reason: `Solved` and `NotNeeded` are solved;
    /// `Unsolvable`, `GaveUp` and `NotWorthIt` unsolvable (nothing was fixed); `Expired`,
    /// `InitiatorLost`, `MigrationFailed` expired. (An event whose initiator crashes before it
    /// ends is also counted expired, at the crash.) `events_ended_by_reason` has every reason.
    fn event_ended(&mut self, partition: dvms_core::model::PartitionId, reason: DissolveReason) {
        *self
            .metrics
            .ended_by_reason
            .entry(reason.to_string())
            .or_default() += 1;
        if self.starts.remove(&partition).is_none() {
            self.metrics.events_unmatched += 1;
            return;
        }
        let m = &mut self.metrics;
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
        h: usize,
        epoch: u32,
        id: dvms_core::model::MigrationId,
        reason: String,
    ) {
        if self.hosts[h].epoch == epoch {
            let outcome = if reason == ABORTED {
                dvms_core::MigrationOutcome::Aborted
            } else {
                dvms_core::MigrationOutcome::Failed { reason }
            };
            self.node_input(h, |n, now| n.handle_migration(now, id, outcome));
        }
    }

    /// VM `v` (for scenario reports).
    pub(crate) fn vm_id(v: usize) -> VmId {
        VmId(v as u64)
    }
}
