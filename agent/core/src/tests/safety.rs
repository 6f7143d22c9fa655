//! Regression tests for the seven findings of issue 10 ("protocol safety before real VMs"), one
//! group per finding, named after it. Each cites the `docs/protocol.md` section it checks.

use std::time::Duration;

use super::cluster::{Chaos, Cluster};
use crate::model::{Epoch, HostSample, MigrationId, NodeId, PartitionId, Resources, VmId, VmLoad};
use crate::msg::{DissolveReason, EventKind, Msg, PartitionState, PartitionView};
use crate::output::{Event, Output};
use crate::{Config, Node, Time};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn drain(n: &mut Node) -> Vec<Output> {
    std::iter::from_fn(|| n.poll_output()).collect()
}

fn sent(outs: &[Output]) -> Vec<(NodeId, Msg)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Send { to, msg } => Some((*to, msg.clone())),
            _ => None,
        })
        .collect()
}

const P: PartitionId = PartitionId {
    initiator: NodeId(1),
    seq: 1,
};

fn view(epoch: Epoch, version: u32, members: &[u64]) -> PartitionView {
    PartitionView {
        id: P,
        version,
        epoch,
        leader: epoch.leader,
        members: members.iter().copied().map(NodeId).collect(),
        state: PartitionState::Growing,
        kind: EventKind::Overload,
    }
}

/// Node `id` with one VM (`vm10`, 100 milli, 1 GiB) on a 1-core, 10 GiB host, made a member of
/// `P` following leader 1 at epoch `e2@n1` (version 3, members 1, 5, 6, `id`): it joined as
/// leader through an ISP of host 1, then host 1 took over.
fn member(id: u64) -> Node {
    let me = NodeId(id);
    let mut n = Node::new(me, Config::default().validate().unwrap(), 1, Time::ZERO);
    let sample = HostSample {
        capacity: Resources::new(1000, 10240),
        vms: vec![VmLoad {
            id: VmId(10),
            demand: Resources::new(100, 1024),
            migratable: true,
        }],
    };
    n.handle_sample(Time::ZERO, sample);
    let offer = view(Epoch::first(NodeId(1)), 0, &[1]);
    let hosts = vec![crate::msg::HostState {
        id: NodeId(1),
        capacity: Resources::new(1000, 10240),
        thresholds: Default::default(),
        draining: false,
        vms: vec![],
    }];
    n.handle_message(Time::ZERO, NodeId(1), Msg::Isp { view: offer, hosts });
    n.handle_message(
        Time::ZERO,
        NodeId(1),
        Msg::JoinReply {
            partition: P,
            version: 0,
            granted: true,
        },
    );
    assert!(n.is_leader());
    let takeover = Epoch {
        term: 2,
        leader: NodeId(1),
    };
    let v = view(takeover, 3, &[1, 5, 6, id]);
    n.handle_message(
        Time::ZERO,
        NodeId(1),
        Msg::View {
            view: v,
            absorbed: None,
        },
    );
    assert!(!n.is_leader() && n.partition().is_some_and(|v| v.epoch == takeover));
    drain(&mut n);
    n
}

fn migrate(epoch: Epoch, to: u64, migration: u64) -> Msg {
    Msg::Migrate {
        partition: P,
        epoch,
        migration: MigrationId(migration),
        vm: VmId(10),
        to: NodeId(to),
        mem_mib: 1024,
    }
}

fn refused(outs: &[Output], to: u64) -> bool {
    sent(outs)
        .iter()
        .any(|(t, m)| t.0 == to && matches!(m, Msg::MigrateDone { ok: false, .. }))
}

// --- Finding 1: a migration that outlasts `migrate_timeout` ---

// Reference: protocol.md §9.4, §9.5.
#[test]
fn finding1_slow_migration_is_aborted_and_its_room_stays_reserved_until_confirmed() {
    let cfg = Config {
        migrate_timeout: secs(10),
        ..Config::default()
    };
    let mut c = Cluster::new(&[&[600, 600], &[100]], cfg);
    c.migration_time = secs(60);
    c.abort_latency = secs(5);
    let demand = |c: &Cluster| c.node(NodeId(1)).expect("up").summary().demand.cpu_milli;
    c.run_until(c.start() + secs(1));
    assert_eq!(demand(&c), 700, "the destination reserved the room");
    // The abort is asked at `migrate_timeout` and confirmed 5 s later: until then the room
    // stays reserved, whatever the partition does.
    c.run_until(c.start() + secs(14));
    assert_eq!(c.aborts, 1, "the source asked the actuator to abort");
    assert_eq!(demand(&c), 700, "room kept until the abort is confirmed");
    c.run_until(c.start() + secs(20));
    assert_eq!(demand(&c), 100, "room released once the abort is confirmed");
    assert_eq!(c.hosts[1].vms.len(), 1, "the vm stayed on its source");
    assert_eq!(c.ended(0).first(), Some(&DissolveReason::MigrationFailed));
    assert!(
        c.capacity_violations.is_empty(),
        "{:?}",
        c.capacity_violations
    );
}

// Reference: protocol.md §9.2 (the report of a long migration is lost: the leader's re-sends
// back off to every 8th renewal, so the partition ends within 8 s of the migration, not after
// doubling its age; the simulator bounds a partition's life).
#[test]
fn finding1_lost_report_of_a_long_migration_is_recovered_within_eight_renewals() {
    let mut c = Cluster::new(&[&[600, 600], &[100]], Config::default());
    c.drop_once = vec!["migrate_done"];
    c.migration_time = secs(40);
    c.run_until(c.start() + secs(52));
    assert!(c.drop_once.is_empty(), "the first report was lost");
    assert_eq!(c.ended(0), vec![DissolveReason::Solved]);
    assert_eq!(c.hosts[1].vms.len(), 2);
}

// --- Finding 2: reservations ride on one unacknowledged message ---

// Reference: protocol.md §9.4 (a lost `Incoming` is re-sent; the migration waits for the ack).
#[test]
fn finding2_lost_incoming_is_retried_and_the_migration_waits_for_the_ack() {
    let mut c = Cluster::new(&[&[600, 600], &[100]], Config::default());
    c.drop_once = vec!["incoming"];
    c.migration_time = secs(5);
    c.run_for(secs(20));
    assert!(c.drop_once.is_empty(), "the first Incoming was lost");
    let incoming = c.sent.iter().filter(|s| s.2 == "incoming").count();
    assert_eq!(incoming, 2, "re-sent once");
    assert_eq!(c.ended(0), vec![DissolveReason::Solved]);
    assert_eq!(c.hosts[1].vms.len(), 2);
    assert!(
        c.capacity_violations.is_empty(),
        "{:?}",
        c.capacity_violations
    );
}

// Reference: protocol.md §7.4, §9.3, §9.4 (a partition that ends while its VM travels leaves the
// destination's room reserved until the migration ends).
#[test]
fn finding2_partition_ending_while_the_vm_travels_keeps_the_room_reserved() {
    let mut c = Cluster::new(&[&[600, 600], &[100], &[350]], Config::default());
    c.migration_time = secs(10);
    c.run_until(c.start() + secs(1));
    let demand = |c: &Cluster| c.node(NodeId(1)).expect("up").summary().demand.cpu_milli;
    assert_eq!(demand(&c), 700);
    // The leader (host 1) loses the initiator: the partition ends while the VM travels.
    c.report_unreachable(1, 0);
    c.run_for(secs(1));
    assert!(!c.node(NodeId(1)).expect("up").is_busy(), "partition ended");
    assert_eq!(demand(&c), 700, "room still reserved while the vm travels");
    // Past a lease since the reservation: it does not expire on a clock.
    c.run_until(c.start() + secs(9));
    assert_eq!(c.hosts[1].vms.len(), 1, "still travelling");
    assert_eq!(demand(&c), 700, "room still reserved after a lease");
    c.run_for(secs(20));
    assert_eq!(c.hosts[1].vms.len(), 2, "the vm arrived");
    assert_eq!(demand(&c), 700, "counted once");
    assert!(
        c.capacity_violations.is_empty(),
        "{:?}",
        c.capacity_violations
    );
}

// --- Finding 3: one lost renewal deposed the leader ---

// Reference: protocol.md §7.2 (two lost renewals in a row raise no suspicion).
#[test]
fn finding3_two_lost_renewals_do_not_depose_the_leader() {
    let mut c = Cluster::new(&[&[600, 600], &[100]], Config::default());
    c.migration_time = secs(10);
    c.run_until(c.start() + secs(1));
    c.drop_once = vec!["renew", "renew"];
    c.run_for(secs(30));
    assert!(c.drop_once.is_empty(), "two renewals were lost");
    assert_eq!(c.count(|e| matches!(e, Event::TookOver { .. })), 0);
    assert_eq!(c.ended(0), vec![DissolveReason::Solved]);
    assert_eq!(
        c.count(|e| matches!(e, Event::MigrationFinished { ok: true, .. })),
        1
    );
}

// Reference: protocol.md §7.2, §7.6 (a takeover counts in-flight VMs where they are going, so an
// overload that needs one migration gets one, at 10 % loss too).
#[test]
fn finding3_lossy_links_fix_one_overload_with_one_migration() {
    for seed in 0..40 {
        let mut c = Cluster::new(&[&[600, 600], &[100], &[100]], Config::default());
        let mut chaos = Chaos::new(seed);
        chaos.loss_permille = 100;
        chaos.jitter = Duration::from_millis(20);
        c.chaos = Some(chaos);
        c.migration_time = secs(8);
        c.run_for(secs(120));
        let moved = c.count(|e| matches!(e, Event::MigrationFinished { ok: true, .. }));
        assert!(
            moved <= 1,
            "seed {seed}: {moved} migrations for one overload"
        );
        assert!(
            c.capacity_violations.is_empty(),
            "seed {seed}: {:?}",
            c.capacity_violations
        );
    }
}

// Reference: protocol.md §7.6 (a source refuses a command from an older leadership).
#[test]
fn finding3_deposed_leader_commands_are_refused() {
    let mut m = member(5);
    let stale = Epoch {
        term: 1,
        leader: NodeId(9),
    };
    m.handle_message(Time::ZERO, NodeId(9), migrate(stale, 6, 1));
    let outs = drain(&mut m);
    assert!(refused(&outs, 9), "{outs:?}");
    assert!(!m.is_migrating());
    // The current leader is obeyed: the source asks the destination for room first.
    let current = Epoch {
        term: 2,
        leader: NodeId(1),
    };
    m.handle_message(Time::ZERO, NodeId(1), migrate(current, 6, 2));
    let outs = drain(&mut m);
    assert!(
        sent(&outs)
            .iter()
            .any(|(t, msg)| t.0 == 6 && matches!(msg, Msg::Incoming { .. }))
    );
    assert!(
        !outs.iter().any(|o| matches!(o, Output::Migrate(_))),
        "not before the ack"
    );
}

// Reference: protocol.md §7.6, §9.4 (a reservation acknowledged after a takeover starts nothing:
// the new leader counted the VM on its source, and the old leader's command is fenced).
#[test]
fn finding3_reservation_acknowledged_after_a_takeover_starts_nothing() {
    let mut m = member(5);
    let current = Epoch {
        term: 2,
        leader: NodeId(1),
    };
    m.handle_message(Time::ZERO, NodeId(1), migrate(current, 6, 3));
    drain(&mut m);
    assert!(m.is_migrating(), "reserving");
    // Host 6 takes over before the destination's ack arrives.
    let later = Epoch {
        term: 3,
        leader: NodeId(6),
    };
    m.handle_message(
        Time::ZERO,
        NodeId(6),
        Msg::View {
            view: view(later, 4, &[1, 5, 6]),
            absorbed: None,
        },
    );
    drain(&mut m);
    let ack = Msg::IncomingAck {
        migration: MigrationId(3),
        vm: VmId(10),
        granted: true,
    };
    m.handle_message(Time::ZERO, NodeId(6), ack);
    let outs = drain(&mut m);
    assert!(
        !outs.iter().any(|o| matches!(o, Output::Migrate(_))),
        "started for a deposed leader: {outs:?}"
    );
    assert!(
        refused(&outs, 1),
        "reported failed to the old leader: {outs:?}"
    );
    assert!(
        sent(&outs)
            .iter()
            .any(|(t, msg)| t.0 == 6 && matches!(msg, Msg::IncomingCancelled { .. })),
        "the destination's room is released: {outs:?}"
    );
    assert!(!m.is_migrating());
}

// Reference: protocol.md §7.2 (a takeover's states count a VM in flight where it is going: its
// source leaves it out, so the new leader does not fix the source's overload a second time).
#[test]
fn finding3_takeover_counts_a_vm_in_flight_at_its_destination() {
    let mut m = member(5);
    let current = Epoch {
        term: 2,
        leader: NodeId(1),
    };
    let state_vms = |m: &mut Node, epoch: Epoch| {
        let ask = Msg::StateRequest {
            partition: P,
            epoch,
            version: 9,
        };
        m.handle_message(Time::ZERO, epoch.leader, ask);
        sent(&drain(m))
            .into_iter()
            .find_map(|(_, msg)| match msg {
                Msg::State { host, .. } => Some(host.vms.iter().map(|v| v.id).collect::<Vec<_>>()),
                _ => None,
            })
            .expect("state sent")
    };
    m.handle_message(Time::ZERO, NodeId(1), migrate(current, 6, 3));
    drain(&mut m);
    // Waiting for the reservation: the VM has not left, it counts here (not migratable).
    assert_eq!(state_vms(&mut m, current), vec![VmId(10)]);
    let ack = Msg::IncomingAck {
        migration: MigrationId(3),
        vm: VmId(10),
        granted: true,
    };
    m.handle_message(Time::ZERO, NodeId(6), ack);
    assert!(
        drain(&mut m)
            .iter()
            .any(|o| matches!(o, Output::Migrate(_)))
    );
    // Host 1 takes over again while the VM travels: the VM is not counted on its source.
    let later = Epoch {
        term: 3,
        leader: NodeId(1),
    };
    assert_eq!(state_vms(&mut m, later), Vec::<VmId>::new());
}

// Reference: protocol.md §9.4, §7.6 (a destination refuses room to an older leadership).
#[test]
fn finding3_destination_refuses_room_to_an_older_leadership() {
    let mut d = member(6);
    let stale = Epoch {
        term: 1,
        leader: NodeId(9),
    };
    let ask = |epoch| Msg::Incoming {
        partition: P,
        epoch,
        migration: MigrationId(4),
        vm: VmId(20),
        demand: Resources::new(100, 1024),
    };
    d.handle_message(Time::ZERO, NodeId(5), ask(stale));
    let outs = sent(&drain(&mut d));
    assert!(
        outs.iter()
            .any(|(_, m)| matches!(m, Msg::IncomingAck { granted: false, .. }))
    );
    let current = Epoch {
        term: 2,
        leader: NodeId(1),
    };
    d.handle_message(Time::ZERO, NodeId(5), ask(current));
    let outs = sent(&drain(&mut d));
    assert!(
        outs.iter()
            .any(|(_, m)| matches!(m, Msg::IncomingAck { granted: true, .. }))
    );
    assert_eq!(
        d.summary().demand,
        Resources::new(200, 2048),
        "room reserved"
    );
    // No room: refused, whatever the epoch.
    let big = Msg::Incoming {
        partition: P,
        epoch: current,
        migration: MigrationId(5),
        vm: VmId(21),
        demand: Resources::new(900, 1024),
    };
    d.handle_message(Time::ZERO, NodeId(5), big);
    let outs = sent(&drain(&mut d));
    assert!(
        outs.iter()
            .any(|(_, m)| matches!(m, Msg::IncomingAck { granted: false, .. }))
    );
}

// --- Finding 4: versions fork; epochs do not ---

// Reference: protocol.md §7.6 (views ordered by epoch, then version).
#[test]
fn finding4_stale_leader_view_with_a_higher_version_is_ignored() {
    let mut m = member(5);
    // The deposed leader's `Finishing` view carries a higher version than the takeover's.
    let mut stale = view(
        Epoch {
            term: 1,
            leader: NodeId(9),
        },
        9,
        &[1, 5, 9],
    );
    stale.state = PartitionState::Finishing;
    m.handle_message(
        Time::ZERO,
        NodeId(9),
        Msg::View {
            view: stale,
            absorbed: None,
        },
    );
    let v = m.partition().expect("member");
    assert_eq!(v.leader, NodeId(1), "still follows the takeover's leader");
    // A later leadership wins even with a lower version.
    let later = view(
        Epoch {
            term: 3,
            leader: NodeId(6),
        },
        1,
        &[1, 5, 6],
    );
    m.handle_message(
        Time::ZERO,
        NodeId(6),
        Msg::View {
            view: later,
            absorbed: None,
        },
    );
    assert_eq!(m.partition().expect("member").leader, NodeId(6));
}

// --- Finding 5: an overload smaller than the margin was never fixed ---

// Reference: protocol.md §5.5.
#[test]
fn finding5_overload_smaller_than_the_margin_is_fixed() {
    // 5 milli-cores over, default margin of 10.
    let mut c = Cluster::new(&[&[505, 500], &[0]], Config::default());
    c.run_for(secs(10));
    assert_eq!(c.ended(0), vec![DissolveReason::Solved]);
    assert!(c.overloaded().is_empty());
}

// --- Finding 6: untrusted values ---

// Reference: protocol.md §9.1 (a migration to the source itself is refused).
#[test]
fn finding6_migrate_to_itself_is_refused() {
    let mut m = member(5);
    let current = Epoch {
        term: 2,
        leader: NodeId(1),
    };
    m.handle_message(Time::ZERO, NodeId(1), migrate(current, 5, 1));
    let outs = drain(&mut m);
    assert!(refused(&outs, 1), "{outs:?}");
    assert!(!m.is_migrating());
}

// Reference: protocol.md §9.2 (a migration is matched by id, partition and epoch: ids of two
// leaderships may collide, whatever the node ids).
#[test]
fn finding6_migration_ids_of_two_leaderships_never_collide() {
    let mut m = member(u64::MAX);
    let e2 = Epoch {
        term: 2,
        leader: NodeId(1),
    };
    m.handle_message(Time::ZERO, NodeId(1), migrate(e2, 6, 7));
    drain(&mut m);
    let ack = Msg::IncomingAck {
        migration: MigrationId(7),
        vm: VmId(10),
        granted: false,
    };
    m.handle_message(Time::ZERO, NodeId(6), ack);
    drain(&mut m);
    assert!(
        !m.is_migrating(),
        "refused by the destination: reported failed"
    );
    // A later leader uses the same migration id: a new request, not the old outcome.
    let e3 = Epoch {
        term: 3,
        leader: NodeId(6),
    };
    m.handle_message(Time::ZERO, NodeId(6), migrate(e3, 1, 7));
    let outs = drain(&mut m);
    assert!(!refused(&outs, 6), "{outs:?}");
    assert!(m.is_migrating(), "started afresh");
}

// --- Finding 7: reordering ---

// Reference: protocol.md §7.6, §8 (a `Dissolve` that overtakes the `View` of a new leadership is
// taken; the late view is ignored).
#[test]
fn finding7_dissolve_overtaking_its_view_frees_the_member() {
    let mut m = member(5);
    let later = Epoch {
        term: 3,
        leader: NodeId(6),
    };
    let dissolve = Msg::Dissolve {
        partition: P,
        epoch: later,
        reason: DissolveReason::Solved,
    };
    m.handle_message(Time::ZERO, NodeId(6), dissolve);
    assert!(!m.is_busy(), "dissolved");
    let late = view(later, 4, &[1, 5, 6]);
    m.handle_message(
        Time::ZERO,
        NodeId(6),
        Msg::View {
            view: late,
            absorbed: None,
        },
    );
    assert!(!m.is_busy(), "the late view is ignored");
    // A dissolution from an older leadership is ignored.
    let mut m = member(5);
    let stale = Msg::Dissolve {
        partition: P,
        epoch: Epoch {
            term: 1,
            leader: NodeId(9),
        },
        reason: DissolveReason::Solved,
    };
    m.handle_message(Time::ZERO, NodeId(9), stale);
    assert!(m.is_busy());
}

// Reference: protocol.md §7.6 (reordered links: every event still ends, once).
#[test]
fn finding7_reordering_links_solve_without_double_moves() {
    for seed in 0..40 {
        let mut c = Cluster::new(
            &[&[600, 600], &[100], &[600, 600], &[100], &[0]],
            Config::default(),
        );
        let mut chaos = Chaos::new(seed);
        chaos.jitter = Duration::from_millis(50);
        chaos.fifo = false;
        c.chaos = Some(chaos);
        c.migration_time = secs(3);
        c.run_for(secs(60));
        assert!(c.overloaded().is_empty(), "seed {seed}");
        assert!(
            c.busy_hosts().is_empty(),
            "seed {seed}: {:?}",
            c.busy_hosts()
        );
        let moved = c.count(|e| matches!(e, Event::MigrationFinished { ok: true, .. }));
        assert_eq!(moved, 2, "seed {seed}");
        assert!(
            c.capacity_violations.is_empty(),
            "seed {seed}: {:?}",
            c.capacity_violations
        );
    }
}

// Reference: protocol.md §7.7, §9.4 (a late cancellation of an earlier migration of the same VM
// releases nothing: the newer reservation stays until its own migration ends).
#[test]
fn finding7_late_cancellation_keeps_a_newer_reservation() {
    let mut d = member(6);
    let current = Epoch {
        term: 2,
        leader: NodeId(1),
    };
    let ask = |migration| Msg::Incoming {
        partition: P,
        epoch: current,
        migration: MigrationId(migration),
        vm: VmId(20),
        demand: Resources::new(100, 1024),
    };
    d.handle_message(Time::ZERO, NodeId(5), ask(8));
    drain(&mut d);
    assert_eq!(d.summary().demand, Resources::new(200, 2048), "reserved");
    // The cancellation of migration 7 (an earlier attempt) arrives after migration 8's request.
    let cancel = |migration| Msg::IncomingCancelled {
        migration: MigrationId(migration),
        vm: VmId(20),
    };
    d.handle_message(Time::ZERO, NodeId(5), cancel(7));
    let handoff = Msg::Handoff {
        migration: MigrationId(7),
        vm: VmId(20),
        moves: 1,
    };
    d.handle_message(Time::ZERO, NodeId(5), handoff);
    assert_eq!(
        d.summary().demand,
        Resources::new(200, 2048),
        "still reserved for migration 8"
    );
    d.handle_message(Time::ZERO, NodeId(5), cancel(8));
    assert_eq!(d.summary().demand, Resources::new(100, 1024), "released");
}

// Reference: protocol.md §7.5, §7.7 (the initiator missed the dissolution and took over a dead
// partition: a freed host answers its view and its state request with `Leave`, so it is not
// held by that leader while it joins another partition).
#[test]
fn finding7_takeover_after_a_lost_dissolve_lets_freed_members_go() {
    let mut m = member(5);
    let current = Epoch {
        term: 2,
        leader: NodeId(1),
    };
    let dissolve = Msg::Dissolve {
        partition: P,
        epoch: current,
        reason: DissolveReason::Solved,
    };
    m.handle_message(Time::ZERO, NodeId(1), dissolve);
    assert!(!m.is_busy());
    drain(&mut m);
    let takeover = Epoch {
        term: 3,
        leader: NodeId(1),
    };
    let leaves = |outs: &[Output]| {
        sent(outs)
            .iter()
            .filter(|(t, msg)| {
                t.0 == 1 && matches!(msg, Msg::Leave { partition } if *partition == P)
            })
            .count()
    };
    m.handle_message(
        Time::ZERO,
        NodeId(1),
        Msg::View {
            view: view(takeover, 5, &[1, 5, 6]),
            absorbed: None,
        },
    );
    assert_eq!(leaves(&drain(&mut m)), 1, "the view is answered with Leave");
    let ask = Msg::StateRequest {
        partition: P,
        epoch: takeover,
        version: 5,
    };
    m.handle_message(Time::ZERO, NodeId(1), ask);
    assert_eq!(leaves(&drain(&mut m)), 1, "the state request too");
    assert!(!m.is_busy(), "still free");
}

// Reference: protocol.md §7.6, §7.7 (a `Migrate` from the host that just joined and leads
// overtakes the join's `View`: the source follows the new epoch, whose leader is a member, and
// obeys rather than refuse a migration towards it).
#[test]
fn finding7_migrate_overtaking_the_join_view_is_obeyed() {
    let mut m = member(5);
    let joined = Epoch {
        term: 3,
        leader: NodeId(7),
    };
    m.handle_message(Time::ZERO, NodeId(7), migrate(joined, 7, 1));
    let outs = drain(&mut m);
    assert!(!refused(&outs, 7), "{outs:?}");
    assert!(
        sent(&outs)
            .iter()
            .any(|(t, msg)| t.0 == 7 && matches!(msg, Msg::Incoming { .. })),
        "asks the new leader for room: {outs:?}"
    );
    let v = m.partition().expect("member");
    assert_eq!((v.epoch, v.leader), (joined, NodeId(7)));
}
