//! The leader side of the ISP: growing the partition one host at a time, solving, applying the
//! plan step by step, blocking, merging and dissolving (`docs/protocol.md` §3–§9).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use rand_core::RngCore;
use tracing::{info, warn};

use crate::Time;
use crate::model::{
    Candidate, Migration, MigrationId, NodeId, PartitionId, Plan, QueryId, SolveId, Unsolvable,
};
use crate::msg::{DissolveReason, HostState, Msg, PartitionState, PartitionView, RefuseReason};
use crate::node::{Node, Role};
use crate::output::{Event, Output};
use crate::timer::Timer;

mod apply;

use apply::build_problem;

/// What a leader knows and is doing.
#[derive(Debug)]
pub(crate) struct Leader {
    /// The partition, as pushed to members.
    pub(crate) view: PartitionView,
    /// The members' states, in `view.members` order.
    pub(crate) hosts: Vec<HostState>,
    /// The current step of the procedure.
    phase: Phase,
    /// When the partition became blocked (§6).
    blocked_since: Option<Time>,
    /// Candidates that refused or did not answer during this growth.
    tried: BTreeSet<NodeId>,
    /// The version at which the solver last found no plan.
    unsolved_version: Option<u32>,
    /// Renewals since the current plan step started: unreported migrations are re-sent at the
    /// 1st, 2nd, 4th and 8th renewal, then every 8th (§9.2).
    renewals_in_step: u32,
}

/// The leader's current step; each waits for one kind of input, bounded by the phase timer.
#[derive(Debug)]
enum Phase {
    /// Nothing outstanding.
    Idle,
    /// Waiting for candidates from the overlay (§4.1).
    Querying(QueryId),
    /// Waiting for `to` to take (join request) or refuse the ISP (§4.1–§4.3).
    Offering {
        /// The candidate.
        to: NodeId,
        /// The next candidates to try.
        rest: VecDeque<NodeId>,
    },
    /// Waiting for the members' states after a takeover (§7).
    Collecting(BTreeSet<NodeId>),
    /// Waiting for the solver (§5).
    Solving(SolveId),
    /// Applying a plan (§9).
    Applying {
        /// The plan.
        plan: Plan,
        /// The step being run.
        step: usize,
        /// Migrations of this step not yet reported.
        pending: BTreeMap<MigrationId, Migration>,
        /// The plan stopped (a migration failed, a member or the initiator was lost): the
        /// partition dissolves for this reason once the migrations in flight have reported.
        failure: Option<DissolveReason>,
    },
    /// Blocked, waiting before the next attempt (§6).
    BlockedWait,
    /// Asked a blocked partition's leader to be absorbed (§6).
    MergeAsking {
        /// The target's view as its ISP carried it.
        target: PartitionView,
        /// The target's members' states.
        hosts: Vec<HostState>,
    },
}

/// What to do with the leader after a step.
enum Step {
    /// Keep leading.
    Stay,
    /// End the partition.
    Dissolve(DissolveReason),
    /// Hand leadership over and follow the current view as a member.
    HandOver,
}

impl Leader {
    /// A leader that knows every member's state.
    pub(crate) fn new(view: PartitionView, hosts: Vec<HostState>) -> Leader {
        Leader {
            view,
            hosts,
            phase: Phase::Idle,
            blocked_since: None,
            tried: BTreeSet::new(),
            unsolved_version: None,
            renewals_in_step: 0,
        }
    }

    /// A leader after a takeover, still waiting for the other members' states (§7).
    pub(crate) fn collecting(view: PartitionView, own: HostState) -> Leader {
        let waiting = view
            .members
            .iter()
            .copied()
            .filter(|&m| m != own.id)
            .collect();
        let mut l = Leader::new(view, vec![own]);
        l.phase = Phase::Collecting(waiting);
        l
    }
}

impl Node {
    /// Runs `f` on the leader state if this host leads, then applies the resulting step.
    fn with_leader(&mut self, now: Time, f: impl FnOnce(&mut Node, Time, &mut Leader) -> Step) {
        if !self.is_leader() {
            return self.ignore("leader input while not leading");
        }
        let Role::Leader(mut l) = std::mem::replace(&mut self.role, Role::Free) else {
            return;
        };
        match f(self, now, &mut l) {
            Step::Stay => self.role = Role::Leader(l),
            Step::Dissolve(reason) => self.dissolve(now, *l, reason),
            Step::HandOver => self.become_member(now, l.view),
        }
    }

    /// Takes the lead of `leader`'s partition and moves it forward.
    pub(crate) fn leader_start(&mut self, now: Time, leader: Leader) {
        self.timers.stop(Timer::Lease);
        self.timers.stop(Timer::Reserve);
        self.timers.set(Timer::Renew, now + self.cfg.renew_period);
        let collecting = matches!(leader.phase, Phase::Collecting(_));
        self.role = Role::Leader(Box::new(leader));
        if collecting {
            self.timers.set(Timer::Phase, now + self.cfg.hop_timeout);
        } else {
            self.with_leader(now, Node::advance);
        }
    }

    /// Renews the members' leases (§7).
    pub(crate) fn leader_renew(&mut self, now: Time) {
        let Some(view) = self.partition().filter(|_| self.is_leader()).cloned() else {
            return;
        };
        self.broadcast(
            &view.members,
            &Msg::Renew {
                partition: view.id,
                epoch: view.epoch,
                version: view.version,
            },
        );
        // A lost `Migrate` or `MigrateDone` must not stall the plan until `migrate_timeout`:
        // re-send the unreported ones, backing off within a step (a migration takes seconds)
        // up to every `RESEND_EVERY` renewals, so a lost report of a long migration costs at
        // most that much; sources answer duplicates idempotently (§9.2).
        let me = self.id;
        let resend: Vec<(NodeId, Msg)> = match &mut self.role {
            Role::Leader(l) => {
                l.renewals_in_step = l.renewals_in_step.saturating_add(1);
                match &l.phase {
                    Phase::Applying { pending, .. } if resend_due(l.renewals_in_step) => pending
                        .iter()
                        .filter(|(_, m)| m.from != me)
                        .map(|(&migration, m)| {
                            let msg = Msg::Migrate {
                                partition: view.id,
                                epoch: view.epoch,
                                migration,
                                vm: m.vm,
                                to: m.to,
                                mem_mib: m.mem_mib,
                            };
                            (m.from, msg)
                        })
                        .collect(),
                    _ => Vec::new(),
                }
            }
            _ => Vec::new(),
        };
        for (to, msg) in resend {
            self.send(to, msg);
        }
        self.timers.set(Timer::Renew, now + self.cfg.renew_period);
    }

    /// After a join, a merge or a takeover: solve if large enough, else grow (§3, §5).
    fn advance(&mut self, now: Time, l: &mut Leader) -> Step {
        let size = l.view.members.len();
        let min = self.cfg.min_partition_size.max(2);
        if size >= min && l.unsolved_version != Some(l.view.version) {
            let id = SolveId(self.fresh_id());
            let problem = build_problem(l);
            self.push(Output::Solve { id, problem });
            l.phase = Phase::Solving(id);
            self.timers.set(Timer::Phase, now + self.cfg.solve_timeout);
            return Step::Stay;
        }
        if size >= self.max_size(l.view.kind) {
            return Step::Dissolve(DissolveReason::Unsolvable);
        }
        self.grow(now, l)
    }

    /// Asks the overlay for the free hosts closest to the initiator (§4.1).
    fn grow(&mut self, now: Time, l: &mut Leader) -> Step {
        let query = self.fresh_query();
        let exclude = l
            .view
            .members
            .iter()
            .chain(&l.tried)
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        self.push(Output::FindCandidates {
            query,
            near: l.view.initiator(),
            exclude,
            count: self.cfg.candidates_per_query,
        });
        l.phase = Phase::Querying(query);
        self.timers.set(Timer::Phase, now + self.cfg.hop_timeout);
        Step::Stay
    }

    /// The overlay answered (§4.1): offer the ISP to the closest free host, or block (§6).
    pub(crate) fn on_candidates(&mut self, now: Time, query: QueryId, candidates: Vec<Candidate>) {
        let current = matches!(&self.role, Role::Leader(l) if matches!(l.phase, Phase::Querying(q) if q == query));
        if !current {
            return self.ignore("stale candidates");
        }
        self.with_leader(now, |node, now, l| {
            let usable: Vec<&Candidate> = candidates
                .iter()
                .filter(|c| !l.view.contains(c.id) && !l.tried.contains(&c.id) && c.id != node.id)
                .collect();
            // Among the closest free hosts, the one with the most spare CPU first (gossip's
            // view; unknown hosts last): the partition grows where the problem can be solved.
            let free = |c: &&Candidate| {
                c.summary
                    .is_none_or(|s| !s.busy && !s.migrating && !s.draining)
            };
            let mut ranked: Vec<&Candidate> = usable.iter().copied().filter(free).collect();
            ranked.sort_by_key(|c| std::cmp::Reverse(spare_cpu(c)));
            let mut order: VecDeque<NodeId> = ranked.iter().map(|c| c.id).collect();
            if let Some(to) = order.pop_front() {
                return node.offer(now, l, to, order);
            }
            // No free host: block, and look for a blocked partition to merge with (§6).
            if l.view.state != PartitionState::Blocked {
                node.block(now, l);
            }
            let mut merge: VecDeque<NodeId> = usable
                .iter()
                .filter(|c| c.summary.is_some_and(|s| s.busy && s.blocked))
                .map(|c| c.id)
                .collect();
            match merge.pop_front() {
                Some(to) => node.offer(now, l, to, merge),
                None => node.blocked_wait(now, l),
            }
        });
    }

    /// Sends the ISP to `to` and waits for its answer (§4.1).
    fn offer(&mut self, now: Time, l: &mut Leader, to: NodeId, rest: VecDeque<NodeId>) -> Step {
        self.send(
            to,
            Msg::Isp {
                view: l.view.clone(),
                hosts: l.hosts.clone(),
            },
        );
        l.phase = Phase::Offering { to, rest };
        // A blocked ISP may travel one more hop and come back as a merge request (§6).
        let factor = if l.view.state == PartitionState::Blocked {
            3
        } else {
            1
        };
        self.timers
            .set(Timer::Phase, now + self.cfg.hop_timeout * factor);
        Step::Stay
    }

    /// The current candidate refused or did not answer: try the next one.
    fn offer_failed(&mut self, now: Time, l: &mut Leader) -> Step {
        let Phase::Offering { to, rest } = std::mem::replace(&mut l.phase, Phase::Idle) else {
            return Step::Stay;
        };
        l.tried.insert(to);
        let mut rest = rest;
        if let Some(next) = rest.pop_front() {
            return self.offer(now, l, next, rest);
        }
        if l.view.state == PartitionState::Blocked
            || l.tried.len() >= 2 * self.cfg.candidates_per_query
        {
            if l.view.state != PartitionState::Blocked {
                self.block(now, l);
            }
            return self.blocked_wait(now, l);
        }
        self.grow(now, l)
    }

    /// Marks the partition blocked and tells the members (§6).
    fn block(&mut self, now: Time, l: &mut Leader) {
        l.view.state = PartitionState::Blocked;
        l.view.version += 1;
        l.blocked_since = Some(now);
        info!(node = %self.id, partition = %l.view.id, size = l.view.members.len(), "partition blocked");
        self.emit(Event::Blocked {
            partition: l.view.id,
        });
        self.push_view(&l.view, None);
    }

    /// Waits before the next attempt of a blocked partition, or gives up past the budget (§6).
    fn blocked_wait(&mut self, now: Time, l: &mut Leader) -> Step {
        // A leader that inherited a blocked view (takeover, §7.2) never ran `block`: its budget
        // starts now, or the partition would never give up.
        let since = *l.blocked_since.get_or_insert(now);
        if now >= since + self.cfg.blocked_budget {
            return Step::Dissolve(DissolveReason::GaveUp);
        }
        l.phase = Phase::BlockedWait;
        // Jitter keeps blocked partitions from retrying in lock-step.
        let jitter = self.rng.next_u64()
            % (u64::try_from(self.cfg.blocked_retry.as_micros())
                .unwrap_or(1)
                .max(1));
        self.timers.set(
            Timer::Phase,
            now + self.cfg.blocked_retry + Duration::from_micros(jitter),
        );
        Step::Stay
    }

    /// The phase deadline passed.
    pub(crate) fn leader_phase_timeout(&mut self, now: Time) {
        self.with_leader(now, |node, now, l| match &mut l.phase {
            Phase::Idle => Step::Stay,
            Phase::Querying(_) => {
                if l.view.state != PartitionState::Blocked {
                    node.block(now, l);
                }
                node.blocked_wait(now, l)
            }
            Phase::Offering { .. } => node.offer_failed(now, l),
            Phase::Collecting(waiting) => {
                // Members that did not answer are dropped (§7).
                let silent: Vec<NodeId> = waiting.iter().copied().collect();
                for peer in silent {
                    if peer == l.view.initiator() {
                        return Step::Dissolve(DissolveReason::InitiatorLost);
                    }
                    l.view.members.retain(|&m| m != peer);
                }
                node.finish_collecting(now, l)
            }
            Phase::Solving(_) => node.after_unsolvable(now, l),
            Phase::Applying { .. } => {
                // Sources abort their migrations at `migrate_timeout` (§9.5) and destinations
                // keep the room until the migration has ended (§9.4): a source still silent by
                // now is lost, and its VM's room does not depend on this partition.
                warn!(node = %node.id, partition = %l.view.id, "migrations unreported past their deadline");
                Step::Dissolve(DissolveReason::MigrationFailed)
            }
            Phase::BlockedWait => {
                if l.blocked_since
                    .is_some_and(|t| now >= t + node.cfg.blocked_budget)
                {
                    return Step::Dissolve(DissolveReason::GaveUp);
                }
                l.tried.clear();
                node.grow(now, l)
            }
            Phase::MergeAsking { .. } => node.blocked_wait(now, l),
        });
    }

    /// A candidate refused the ISP (§4.3).
    pub(crate) fn leader_on_refused(
        &mut self,
        now: Time,
        from: NodeId,
        id: PartitionId,
        version: u32,
        reason: RefuseReason,
    ) {
        let current = matches!(&self.role, Role::Leader(l)
            if l.view.id == id && l.view.version == version && matches!(l.phase, Phase::Offering { to, .. } if to == from));
        if !current {
            return self.ignore("stale refusal");
        }
        tracing::debug!(node = %self.id, peer = %from, ?reason, "isp refused");
        self.with_leader(now, Node::offer_failed);
    }

    /// A free host that took the ISP asks to become leader (§4.2): only the awaited candidate of
    /// the current version is granted, so a partition never has two leaders.
    pub(crate) fn leader_on_join_request(
        &mut self,
        now: Time,
        from: NodeId,
        id: PartitionId,
        version: u32,
    ) {
        let granted = matches!(&self.role, Role::Leader(l)
            if l.view.id == id && l.view.version == version && matches!(l.phase, Phase::Offering { to, .. } if to == from));
        self.send(
            from,
            Msg::JoinReply {
                partition: id,
                version,
                granted,
            },
        );
        if granted {
            // Until the new leader's view arrives, the old one names it, so forwarded ISPs,
            // renewals and dissolution are taken from the right host.
            self.with_leader(now, |_, _, l| {
                l.view.leader = from;
                Step::HandOver
            });
        }
    }

    /// A member of this blocked partition forwarded a blocked ISP of a partition this one should
    /// absorb (§6): lock and ask its leader.
    pub(crate) fn leader_on_blocked_isp(
        &mut self,
        now: Time,
        view: PartitionView,
        hosts: Vec<HostState>,
    ) {
        self.with_leader(now, |node, now, l| {
            let free_to_merge = matches!(l.phase, Phase::BlockedWait | Phase::Querying(_));
            let fits = l.view.members.len() + view.members.len() <= node.max_size(l.view.kind);
            if !(free_to_merge && fits) {
                let refuse = Msg::IspRefused {
                    partition: view.id,
                    version: view.version,
                    reason: RefuseReason::Busy,
                };
                node.send(view.leader, refuse);
                return Step::Stay;
            }
            let ask = Msg::MergeRequest {
                absorber: l.view.id,
                target: view.id,
                target_version: view.version,
            };
            node.send(view.leader, ask);
            l.phase = Phase::MergeAsking {
                target: view,
                hosts,
            };
            node.timers
                .set(Timer::Phase, now + node.cfg.hop_timeout * 2);
            Step::Stay
        });
    }

    /// A blocked partition asks to absorb this one (§6).
    pub(crate) fn leader_on_merge_request(
        &mut self,
        now: Time,
        from: NodeId,
        absorber: PartitionId,
        target: PartitionId,
        target_version: u32,
    ) {
        let accepted = matches!(&self.role, Role::Leader(l)
            if l.view.id == target
                && l.view.version == target_version
                && l.view.state == PartitionState::Blocked
                && absorber.initiator < target.initiator
                && matches!(l.phase, Phase::Offering { .. } | Phase::BlockedWait | Phase::Querying(_)));
        self.send(
            from,
            Msg::MergeReply {
                absorber,
                target,
                accepted,
            },
        );
        if accepted {
            info!(node = %self.id, partition = %target, absorber = %absorber, "partition absorbed");
            // Until the new leader's view arrives, the old one names it, so forwarded ISPs,
            // renewals and dissolution are taken from the right host.
            self.with_leader(now, |_, _, l| {
                l.view.leader = from;
                Step::HandOver
            });
        }
    }

    /// The target of a merge answered (§6).
    pub(crate) fn leader_on_merge_reply(
        &mut self,
        now: Time,
        from: NodeId,
        absorber: PartitionId,
        target: PartitionId,
        accepted: bool,
    ) {
        let current = matches!(&self.role, Role::Leader(l)
            if l.view.id == absorber && matches!(&l.phase, Phase::MergeAsking { target: t, .. } if t.id == target && t.leader == from));
        if !current {
            return self.ignore("stale merge reply");
        }
        self.with_leader(now, |node, now, l| {
            let Phase::MergeAsking { target, hosts } = std::mem::replace(&mut l.phase, Phase::Idle) else {
                return Step::Stay;
            };
            if !accepted {
                return node.blocked_wait(now, l);
            }
            l.view.members.extend(&target.members);
            l.hosts.extend(hosts);
            l.view.version += 1;
            l.view.state = PartitionState::Growing;
            l.blocked_since = None;
            l.tried.clear();
            node.stats.merges += 1;
            let size = l.view.members.len();
            info!(node = %node.id, partition = %l.view.id, absorbed = %target.id, size, "partitions merged");
            node.emit(Event::Merged { partition: l.view.id, absorbed: target.id, size });
            node.push_view(&l.view, Some(target.id));
            node.advance(now, l)
        });
    }

    /// A member's state after a takeover (§7).
    pub(crate) fn leader_on_state(
        &mut self,
        now: Time,
        from: NodeId,
        id: PartitionId,
        version: u32,
        host: HostState,
    ) {
        let current = matches!(&self.role, Role::Leader(l)
            if l.view.id == id && l.view.version == version && matches!(&l.phase, Phase::Collecting(w) if w.contains(&from)));
        if !current || host.id != from {
            return self.ignore("stale state");
        }
        self.with_leader(now, |node, now, l| {
            l.hosts.push(host);
            let Phase::Collecting(waiting) = &mut l.phase else {
                return Step::Stay;
            };
            waiting.remove(&from);
            if waiting.is_empty() {
                node.finish_collecting(now, l)
            } else {
                Step::Stay
            }
        });
    }

    /// Every member's state is in (or its deadline passed): push the final view and go on (§7).
    fn finish_collecting(&mut self, now: Time, l: &mut Leader) -> Step {
        let members = &l.view.members;
        l.hosts.retain(|h| members.contains(&h.id));
        l.hosts
            .sort_by_key(|h| members.iter().position(|&m| m == h.id));
        if l.hosts.len() != l.view.members.len() {
            l.view.members = l.hosts.iter().map(|h| h.id).collect();
        }
        l.view.version += 1;
        l.phase = Phase::Idle;
        self.push_view(&l.view, None);
        self.advance(now, l)
    }

    /// A member was lost or left (§7): go on without it; the initiator's loss ends the event.
    pub(crate) fn leader_on_member_lost(
        &mut self,
        now: Time,
        peer: NodeId,
        id: Option<PartitionId>,
    ) {
        let relevant = matches!(&self.role, Role::Leader(l) if id.is_none_or(|p| p == l.view.id));
        if !relevant {
            if id.is_some() {
                self.ignore("leave for another partition");
            }
            return;
        }
        self.with_leader(now, |node, now, l| {
            if !l.view.contains(peer) {
                return match &l.phase {
                    Phase::Offering { to, .. } if *to == peer => node.offer_failed(now, l),
                    Phase::MergeAsking { target, .. } if target.leader == peer => node.blocked_wait(now, l),
                    _ => Step::Stay,
                };
            }
            if peer == l.view.initiator() {
                // §7.4 with §9.3: no host is freed while a VM of the plan is in flight.
                if let Phase::Applying { pending, failure, .. } = &mut l.phase {
                    pending.retain(|_, m| m.from != peer);
                    if !pending.is_empty() {
                        *failure = Some(DissolveReason::InitiatorLost);
                        return Step::Stay;
                    }
                }
                return Step::Dissolve(DissolveReason::InitiatorLost);
            }
            warn!(node = %node.id, partition = %l.view.id, peer = %peer, "member lost, continuing without it");
            l.view.members.retain(|&m| m != peer);
            l.hosts.retain(|h| h.id != peer);
            l.view.version += 1;
            node.push_view(&l.view, None);
            match &mut l.phase {
                Phase::Applying { plan, step, pending, failure } => {
                    let touched = plan.steps[*step..].iter().flatten().any(|m| m.from == peer || m.to == peer);
                    // A lost source never reports; the other migrations in flight must end
                    // before the hosts are freed (§9.3).
                    pending.retain(|_, m| m.from != peer);
                    if touched && failure.is_none() {
                        *failure = Some(DissolveReason::MigrationFailed);
                    }
                    match failure {
                        Some(reason) if pending.is_empty() => Step::Dissolve(*reason),
                        _ => Step::Stay,
                    }
                }
                Phase::Solving(_) => node.advance(now, l),
                Phase::Collecting(waiting) => {
                    waiting.remove(&peer);
                    if waiting.is_empty() { node.finish_collecting(now, l) } else { Step::Stay }
                }
                _ => Step::Stay,
            }
        });
    }

    /// The solver answered (§5).
    pub(crate) fn on_plan(&mut self, now: Time, id: SolveId, result: Result<Plan, Unsolvable>) {
        let current = matches!(&self.role, Role::Leader(l) if matches!(l.phase, Phase::Solving(s) if s == id));
        if !current {
            return self.ignore("stale plan");
        }
        self.with_leader(now, |node, now, l| match result {
            Ok(plan) if plan.is_empty() => Step::Dissolve(DissolveReason::NotNeeded),
            Ok(plan) => node.plan_found(now, l, plan),
            Err(why) => {
                tracing::debug!(node = %node.id, partition = %l.view.id, reason = %why, "no plan at this size");
                node.after_unsolvable(now, l)
            }
        });
    }

    fn after_unsolvable(&mut self, now: Time, l: &mut Leader) -> Step {
        l.unsolved_version = Some(l.view.version);
        l.phase = Phase::Idle;
        self.advance(now, l)
    }

    /// Ends the partition: every member becomes free (§8).
    fn dissolve(&mut self, now: Time, l: Leader, reason: DissolveReason) {
        let view = l.view;
        let size = view.members.len();
        info!(node = %self.id, partition = %view.id, %reason, size, "partition dissolved");
        self.broadcast(
            &view.members,
            &Msg::Dissolve {
                partition: view.id,
                epoch: view.epoch,
                reason,
            },
        );
        self.emit(Event::Dissolved {
            partition: view.id,
            reason,
            size,
        });
        self.become_free(now, Some(reason));
    }
}

/// Renewals between two re-sends of an unreported migration, once backed off (§9.2).
const RESEND_EVERY: u32 = 8;

/// True at the 1st, 2nd, 4th and 8th renewal of a step, then at every 8th.
fn resend_due(renewals: u32) -> bool {
    (renewals.is_power_of_two() && renewals <= RESEND_EVERY) || renewals % RESEND_EVERY == 0
}

/// Spare CPU of a candidate as gossip last reported it; negative when overloaded, lowest when
/// unknown.
fn spare_cpu(c: &Candidate) -> i64 {
    c.summary.map_or(i64::MIN, |s| {
        i64::try_from(s.capacity.cpu_milli).unwrap_or(i64::MAX)
            - i64::try_from(s.demand.cpu_milli).unwrap_or(i64::MAX)
    })
}
