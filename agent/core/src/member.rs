//! The member side of the ISP: taking an offered ISP, following the leader's views, leases and
//! dissolution (`docs/protocol.md` §4, §5, §7, §8).

use tracing::{debug, info};

use crate::Time;
use crate::leader::Leader;
use crate::model::{Epoch, NodeId, PartitionId};
use crate::msg::{DissolveReason, HostState, Msg, PartitionState, PartitionView, RefuseReason};
use crate::node::{Node, Role};
use crate::output::Event;
use crate::timer::Timer;

impl Node {
    /// Arms the lease of a member: the initiator suspects the leader earlier than plain members
    /// give up, so it takes over before the others leave (§7).
    pub(crate) fn arm_lease(&mut self, now: Time, view: &PartitionView) {
        let span = if view.initiator() == self.id {
            self.cfg.leader_suspect_after()
        } else {
            self.cfg.lease
        };
        self.timers.set(Timer::Lease, now + span);
    }

    /// Becomes a plain member following `view`.
    pub(crate) fn become_member(&mut self, now: Time, view: PartitionView) {
        self.arm_lease(now, &view);
        self.note_decided(&view);
        self.timers.stop(Timer::Renew);
        self.timers.stop(Timer::Phase);
        self.timers.stop(Timer::Reserve);
        self.role = Role::Member(view);
    }

    /// An ISP arrives (§4.1–§4.3, §6).
    pub(crate) fn on_isp(
        &mut self,
        now: Time,
        from: NodeId,
        view: PartitionView,
        hosts: Vec<HostState>,
    ) {
        let refuse = |node: &mut Node, reason| {
            let msg = Msg::IspRefused {
                partition: view.id,
                version: view.version,
                reason,
            };
            node.send(from, msg);
        };
        let well_formed = !view.members.is_empty()
            && view.members.len() == hosts.len()
            && view.members.iter().zip(&hosts).all(|(m, h)| *m == h.id)
            && view.contains(view.leader)
            && view.epoch.leader == view.leader
            && view.members.len() < self.max_size(view.kind);
        if !well_formed || view.contains(self.id) || view.state == PartitionState::Finishing {
            self.ignore("malformed or stale isp");
            return refuse(self, RefuseReason::Invalid);
        }
        match &self.role {
            Role::Free => {
                if self.is_migrating() {
                    return refuse(self, RefuseReason::Migrating);
                }
                if self.draining {
                    return refuse(self, RefuseReason::Draining);
                }
                if self.sample.is_none() {
                    return refuse(self, RefuseReason::NotReady);
                }
                // §4.2: ask the leader before taking over, so one hop never makes two leaders.
                debug!(node = %self.id, partition = %view.id, version = view.version, "isp taken, asking leader");
                self.send(
                    view.leader,
                    Msg::JoinRequest {
                        partition: view.id,
                        version: view.version,
                    },
                );
                self.timers.set(Timer::Reserve, now + self.cfg.hop_timeout);
                self.role = Role::Reserved { view, hosts };
            }
            Role::Member(mine) if wants_merge(mine, &view) && mine.leader != self.id => {
                // §6: forward a blocked ISP to my blocked leader, who decides on the merge.
                let leader = mine.leader;
                self.send(leader, Msg::Isp { view, hosts });
            }
            Role::Leader(l) if wants_merge(&l.view, &view) => {
                self.leader_on_blocked_isp(now, view, hosts);
            }
            Role::Reserved { .. } | Role::Member(_) | Role::Leader(_) => {
                // §4.3: a busy host refuses, so the leader tries its next candidate at once.
                refuse(self, RefuseReason::Busy);
            }
        }
    }

    /// The leader answered this reserved host's join request (§4.2).
    pub(crate) fn on_join_reply(
        &mut self,
        now: Time,
        from: NodeId,
        id: PartitionId,
        version: u32,
        granted: bool,
    ) {
        let Role::Reserved { view, .. } = &self.role else {
            return self.ignore("join reply while not reserved");
        };
        if view.id != id || view.version != version || view.leader != from {
            return self.ignore("stale join reply");
        }
        let Role::Reserved {
            mut view,
            mut hosts,
        } = std::mem::replace(&mut self.role, Role::Free)
        else {
            return;
        };
        self.timers.stop(Timer::Reserve);
        if !granted {
            return self.become_free(now, None);
        }
        let Some(state) = self.own_state(now) else {
            return self.become_free(now, None);
        };
        view.version += 1;
        view.epoch = view.epoch.next(self.id);
        view.leader = self.id;
        view.members.push(self.id);
        view.state = PartitionState::Growing;
        hosts.push(state);
        info!(node = %self.id, partition = %view.id, version = view.version, size = view.members.len(), "joined partition as leader");
        self.emit(Event::BecameLeader {
            partition: view.id,
            version: view.version,
            size: view.members.len(),
        });
        self.push_view(&view, None);
        let leader = Leader::new(view, hosts);
        self.leader_start(now, leader);
    }

    /// A new view from a leader (§5, §6).
    pub(crate) fn on_view(
        &mut self,
        now: Time,
        from: NodeId,
        view: PartitionView,
        absorbed: Option<PartitionId>,
    ) {
        let Some(mine) = self.partition() else {
            // A leader still counts this host (its initiator took over after a lost
            // dissolution, or the lease ran out): tell it, as for a renewal (§7.5).
            self.leave_if_counted(from, &view);
            return self.ignore("view while free");
        };
        // Views are ordered by (epoch, version): a later leadership wins even if its version is
        // lower than a deposed leader's (versions of concurrent leaderships fork, §7.6).
        let same = mine.id == view.id && (view.epoch, view.version) > (mine.epoch, mine.version);
        let merged = absorbed.is_some_and(|a| a == mine.id);
        if !(same || merged) || view.leader != from || view.epoch.leader != from {
            // A host in another partition says nothing: the view may have overtaken the merged
            // view that absorbs its partition (§6, §7.7).
            return self.ignore("stale view");
        }
        if !view.contains(self.id) {
            // Removed (suspected lost): leave quietly.
            return self.become_free(now, None);
        }
        if self.is_leader() {
            // Someone took over from me (§7), or absorbed my partition (§6): step down.
            info!(node = %self.id, partition = %view.id, leader = %view.leader, "stepping down");
        }
        self.become_member(now, view);
    }

    /// A lease renewal (§7).
    pub(crate) fn on_renew(
        &mut self,
        now: Time,
        from: NodeId,
        id: PartitionId,
        epoch: Epoch,
        _version: u32,
    ) {
        // A renewal from a later leadership than the one known: the view was lost or overtaken.
        self.adopt_epoch(now, from, id, epoch);
        match &self.role {
            Role::Member(view) if view.id == id && view.epoch == epoch && view.leader == from => {
                let view = view.clone();
                self.arm_lease(now, &view);
            }
            Role::Member(view) if view.id == id => self.ignore("stale renewal"),
            Role::Leader(l) if l.view.id == id => self.ignore("stale renewal"),
            Role::Free | Role::Reserved { .. } | Role::Member(_) | Role::Leader(_) => {
                // The leader still counts me but I left (lease, restart), perhaps for another
                // partition: tell it, so it neither waits for me nor plans with me (§7.5).
                self.send(from, Msg::Leave { partition: id });
            }
        }
    }

    /// The partition ends (§8). A dissolution from a later leadership than the one known is
    /// taken too (it may overtake the view that announced that leadership, §7.6); one from an
    /// older leadership is ignored.
    pub(crate) fn on_dissolve(
        &mut self,
        now: Time,
        from: NodeId,
        id: PartitionId,
        epoch: Epoch,
        reason: DissolveReason,
    ) {
        self.adopt_epoch(now, from, id, epoch);
        match &self.role {
            Role::Member(view) if view.id == id && view.epoch == epoch && view.leader == from => {
                debug!(node = %self.id, partition = %id, %reason, "partition dissolved");
                self.become_free(now, Some(reason));
            }
            Role::Reserved { view, .. } if view.id == id => self.become_free(now, None),
            _ => self.ignore("dissolve for another partition"),
        }
    }

    /// The lease ran out (§7): the initiator takes over, other members leave.
    pub(crate) fn on_lease_expired(&mut self, now: Time) {
        let Role::Member(view) = &self.role else {
            return;
        };
        let view = view.clone();
        if view.initiator() == self.id {
            self.take_over(now, view.leader);
        } else {
            info!(node = %self.id, partition = %view.id, "lease expired, leaving partition");
            self.become_free(now, None);
        }
    }

    /// The leader never answered the join request (§4.2).
    pub(crate) fn on_reserve_expired(&mut self, now: Time) {
        if matches!(self.role, Role::Reserved { .. }) {
            self.become_free(now, None);
        }
    }

    /// A leader that took over asks for this member's state (§7).
    pub(crate) fn on_state_request(
        &mut self,
        now: Time,
        from: NodeId,
        id: PartitionId,
        epoch: Epoch,
        version: u32,
    ) {
        // The request may overtake the takeover's view (§7.6): the epoch is enough to follow.
        self.adopt_epoch(now, from, id, epoch);
        let ok = matches!(&self.role, Role::Member(v) if v.id == id && v.leader == from && v.epoch == epoch);
        match (ok, self.own_state(now)) {
            (true, Some(host)) => self.send(
                from,
                Msg::State {
                    partition: id,
                    version,
                    host,
                },
            ),
            _ => {
                // Free: the leader that took over must not wait for this host, nor plan with it
                // (§7.5). A host in another partition says nothing: the request may have
                // overtaken the merged view that absorbs its partition (§6, §7.7).
                if self.is_unbound_for(id) {
                    self.send(from, Msg::Leave { partition: id });
                }
                self.ignore("state request for another partition");
            }
        }
    }

    /// True when this host is free, or reserved for a join to a partition other than `id`.
    fn is_unbound_for(&self, id: PartitionId) -> bool {
        match &self.role {
            Role::Free => true,
            Role::Reserved { view, .. } => view.id != id,
            Role::Member(_) | Role::Leader(_) => false,
        }
    }

    /// Answers `Leave` to the leader of a view that still lists this host although this host is
    /// not in that partition (§7.5).
    fn leave_if_counted(&mut self, from: NodeId, view: &PartitionView) {
        if view.leader == from && view.contains(self.id) && self.is_unbound_for(view.id) {
            self.send(from, Msg::Leave { partition: view.id });
        }
    }

    /// The initiator lost its leader: it leads the partition without it (§7).
    pub(crate) fn take_over(&mut self, now: Time, lost: NodeId) {
        let Role::Member(view) = &self.role else {
            return;
        };
        let mut view = view.clone();
        view.members.retain(|&m| m != lost);
        view.version += 1;
        view.epoch = view.epoch.next(self.id);
        view.leader = self.id;
        if view.state == PartitionState::Finishing {
            // The plan's progress is unknown: solve again from fresh states.
            view.state = PartitionState::Growing;
        }
        info!(node = %self.id, partition = %view.id, peer = %lost, "leader lost, taking over");
        self.stats.takeovers += 1;
        self.emit(Event::TookOver {
            partition: view.id,
            lost,
        });
        let Some(state) = self.own_state(now) else {
            return self.become_free(now, Some(DissolveReason::Expired));
        };
        let members = view.members.clone();
        self.push_view(&view, None);
        self.broadcast(
            &members,
            &Msg::StateRequest {
                partition: view.id,
                epoch: view.epoch,
                version: view.version,
            },
        );
        let leader = Leader::collecting(view, state);
        self.leader_start(now, leader);
    }
}

/// True when `incoming` is a blocked partition that `mine`, blocked too, should absorb: merges
/// go one way only, towards the lower initiator (§6).
fn wants_merge(mine: &PartitionView, incoming: &PartitionView) -> bool {
    mine.state == PartitionState::Blocked
        && incoming.state == PartitionState::Blocked
        && incoming.id != mine.id
        && incoming.initiator() > mine.initiator()
}
