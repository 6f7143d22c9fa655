//! Protocol scenarios on 2–6 hosts. Each test cites the `docs/protocol.md` section it checks.

use std::time::Duration;

use super::cluster::Cluster;
use crate::model::NodeId;
use crate::msg::{DissolveReason, EventKind, PartitionState};
use crate::output::Event;
use crate::{Config, Time};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn started_at(c: &Cluster, node: u64) -> Option<Time> {
    c.events
        .iter()
        .find(|(_, n, e)| n.0 == node && matches!(e, Event::EventStarted { .. }))
        .map(|(t, _, _)| *t)
}

// Reference: protocol.md §1.2, §3.1, §4.1, §4.2, §5, §9.2, §8.
#[test]
fn overload_is_solved_by_growing_to_a_free_host() {
    let mut c = Cluster::new(&[&[600, 600], &[100], &[100]], Config::default());
    c.run_for(secs(20));
    assert_eq!(
        started_at(&c, 0),
        Some(Time::ZERO + c.cfg().detect_hold),
        "event after the hold"
    );
    assert_eq!(c.ended(0), vec![DissolveReason::Solved]);
    assert!(c.overloaded().is_empty(), "overload fixed");
    assert!(c.busy_hosts().is_empty(), "partition dissolved");
    assert_eq!(
        c.count(|e| matches!(e, Event::PlanChosen { migrations: 1, .. })),
        1
    );
    assert_eq!(c.count(|e| matches!(e, Event::EventDecided { .. })), 1);
    assert_eq!(
        c.placement().values().filter(|&&h| h == 0).count(),
        1,
        "one vm left host 0"
    );
}

// Reference: protocol.md §1.2 (a dip below the threshold restarts the hold).
#[test]
fn short_overload_raises_no_event() {
    let mut c = Cluster::new(&[&[600, 600], &[100]], Config::default());
    c.run_for(c.cfg().detect_hold / 2);
    c.set_load(0, 0, 300);
    c.run_for(secs(10));
    assert_eq!(c.count(|e| matches!(e, Event::EventStarted { .. })), 0);
}

// Reference: protocol.md §4.1 (busy hosts skipped without a hop: gossip says busy).
#[test]
fn busy_host_is_skipped_without_a_hop() {
    let mut c = Cluster::new(&[&[600, 600], &[600, 600], &[0], &[0]], Config::default());
    c.migration_time = secs(8);
    // Host 1 is overloaded first; host 0 a little later, while 1's partition is migrating.
    c.set_load(0, 0, 300);
    c.run_for(secs(4));
    assert!(c.node(NodeId(1)).is_some_and(|n| n.is_busy()));
    c.set_load(0, 0, 600);
    c.run_for(secs(30));
    let t0 = started_at(&c, 0).expect("host 0 raised an event");
    assert!(t0 > Time::from_secs(5));
    let hops_to_busy = c
        .sent
        .iter()
        .filter(|&&(f, t, k)| f.0 == 0 && t.0 == 1 && k == "isp")
        .count();
    assert_eq!(hops_to_busy, 0, "no ISP sent to the busy neighbour");
    assert_eq!(c.ended(0), vec![DissolveReason::Solved]);
    assert_eq!(c.ended(1), vec![DissolveReason::Solved]);
    assert!(c.overloaded().is_empty());
    assert!(c.busy_hosts().is_empty());
}

// Reference: protocol.md §4.3 (a busy host refuses; the leader tries the next candidate).
#[test]
fn simultaneous_events_share_no_host_and_both_solve() {
    let mut c = Cluster::new(
        &[&[600, 600], &[0], &[600, 600], &[0], &[0]],
        Config::default(),
    );
    let mut max_busy = 0;
    for _ in 0..200 {
        c.run_for(Duration::from_millis(50));
        // Exclusivity: partitions' leaders list disjoint members.
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..5 {
            if let Some(view) = c
                .node(NodeId(i))
                .filter(|n| n.is_leader())
                .and_then(|n| n.partition())
            {
                for m in &view.members {
                    assert!(seen.insert(*m), "{m} in two partitions");
                }
            }
        }
        max_busy = max_busy.max(c.busy_hosts().len());
    }
    assert!(max_busy >= 4, "both partitions existed at once");
    assert_eq!(c.ended(0), vec![DissolveReason::Solved]);
    assert_eq!(c.ended(2), vec![DissolveReason::Solved]);
    assert!(c.overloaded().is_empty());
    assert!(c.busy_hosts().is_empty());
}

/// Four hosts where {0,1} and {2,3} are each unsolvable and the union is solvable. Both
/// initiators prefer host 1 (most spare CPU); host 0 gets it, host 2 settles for host 3. Host 1
/// lacks the memory for host 0's VMs, host 3 the CPU for host 2's; each has room for the other's.
fn deadlock_cluster() -> Cluster {
    let mut c = Cluster::new(&[&[300; 4], &[300], &[600, 600], &[500]], Config::default());
    for k in 0..4 {
        c.set_vm(0, k, 300, 2560);
    }
    c.set_vm(1, 0, 300, 8192);
    c.set_vm(3, 0, 500, 5120);
    c
}

// Reference: protocol.md §6.1–§6.3 (blocked partitions merge towards the lower initiator).
#[test]
fn blocked_partitions_merge_towards_the_lower_initiator_and_solve() {
    let mut c = deadlock_cluster();
    c.run_for(secs(30));
    assert!(
        c.count(|e| matches!(e, Event::Blocked { .. })) >= 1,
        "a partition blocked"
    );
    let merges: Vec<_> = c
        .events
        .iter()
        .filter_map(|(_, n, e)| match e {
            Event::Merged {
                partition,
                absorbed,
                size,
            } => Some((*n, *partition, *absorbed, *size)),
            _ => None,
        })
        .collect();
    assert_eq!(merges.len(), 1, "{merges:?}");
    let (_, into, absorbed, size) = merges[0];
    assert!(
        into.initiator < absorbed.initiator,
        "merge goes towards the lower initiator"
    );
    assert_eq!(size, 4);
    assert_eq!(c.ended(0), vec![DissolveReason::Solved]);
    assert_eq!(
        c.ended(2),
        vec![DissolveReason::Solved],
        "absorbed event ends with the merged partition"
    );
    assert!(c.overloaded().is_empty());
    assert!(c.busy_hosts().is_empty());
}

// Reference: protocol.md §6.4 (give-up budget) and §1.5 (backoff).
#[test]
fn partition_blocked_past_its_budget_gives_up_and_backs_off() {
    // Two hosts, both overloaded: nothing can be solved and no free host exists.
    let mut c = Cluster::new(&[&[600, 600], &[600, 600]], Config::default());
    c.run_for(secs(15));
    let first = c.ended(0);
    assert!(!first.is_empty(), "event ended");
    assert!(
        first
            .iter()
            .all(|r| matches!(r, DissolveReason::GaveUp | DissolveReason::Unsolvable)),
        "{first:?}"
    );
    assert!(c.busy_hosts().len() <= 2);
    c.run_for(secs(120));
    // Retries are spaced by a doubling backoff, not a hot loop.
    let starts = c.count(|e| matches!(e, Event::EventStarted { .. }));
    assert!(starts < 30, "{starts} events in 135 s");
}

// Reference: protocol.md §7.2 (leader lost: the initiator takes over).
#[test]
fn initiator_takes_over_when_the_leader_crashes() {
    // Host 0 overloaded; the partition grows to 1 first (most spare CPU, but no memory for the
    // VM) and then to 2, which would solve it; host 1 crashes while leading.
    let mut c = Cluster::new(&[&[600, 600], &[100], &[300]], Config::default());
    c.set_vm(1, 0, 100, 9500);
    // Let the partition form with host 1 as leader, then crash it before the plan is chosen.
    c.run_until(c.start() + Duration::from_micros(4500));
    let leader = c
        .node(NodeId(0))
        .and_then(|n| n.partition())
        .map(|v| v.leader);
    assert_eq!(leader, Some(NodeId(1)), "host 1 leads after joining");
    c.crash(1);
    c.run_for(secs(20));
    assert!(
        c.count(|e| matches!(
            e,
            Event::TookOver {
                lost: NodeId(1),
                ..
            }
        )) >= 1
    );
    assert_eq!(c.ended(0), vec![DissolveReason::Solved]);
    assert!(c.overloaded().is_empty());
    assert!(c.busy_hosts().is_empty());
}

// Reference: protocol.md §7.4 (initiator lost: the partition dissolves).
#[test]
fn partition_dissolves_when_the_initiator_crashes() {
    let mut c = Cluster::new(&[&[600, 600], &[900], &[950], &[950]], Config::default());
    c.run_until(c.start() + Duration::from_micros(3500));
    assert!(c.node(NodeId(1)).is_some_and(|n| n.is_busy()));
    c.crash(0);
    c.report_unreachable(1, 0);
    c.run_for(secs(10));
    assert!(c.busy_hosts().is_empty(), "{:?}", c.busy_hosts());
    assert!(
        c.count(|e| matches!(
            e,
            Event::Dissolved {
                reason: DissolveReason::InitiatorLost,
                ..
            }
        )) >= 1
    );
}

// Reference: protocol.md §7.1 (a member's lease expires without renewal).
#[test]
fn members_leave_when_every_leader_is_silent() {
    let mut c = Cluster::new(&[&[600, 600], &[900], &[950], &[950]], Config::default());
    c.run_until(c.start() + Duration::from_micros(3500));
    // Cut host 1 (a member) off from everyone: its lease expires.
    assert!(c.node(NodeId(1)).is_some_and(|n| n.is_busy()));
    for other in [0, 2, 3] {
        c.cut(1, other);
    }
    c.run_for(secs(10));
    assert!(
        !c.node(NodeId(1)).expect("up").is_busy(),
        "cut-off member left"
    );
}

// Reference: protocol.md §9.3 (a failed migration leaves the VM; the partition dissolves).
#[test]
fn failed_migration_leaves_the_vm_and_dissolves() {
    let mut c = Cluster::new(&[&[600, 600], &[100]], Config::default());
    c.fail_migrations = true;
    let before = c.placement();
    c.run_for(secs(4));
    assert_eq!(c.placement(), before, "no vm moved");
    assert_eq!(c.ended(0), vec![DissolveReason::MigrationFailed]);
    assert!(c.busy_hosts().is_empty());
}

// Reference: protocol.md §9.3 with a crashing destination that also led the partition (§7.2).
#[test]
fn migration_target_crash_keeps_the_vm_and_the_initiator_recovers() {
    let mut c = Cluster::new(&[&[600, 600], &[100], &[100]], Config::default());
    c.migration_time = secs(2);
    c.run_until(c.start() + Duration::from_millis(500));
    assert_eq!(c.count(|e| matches!(e, Event::PlanChosen { .. })), 1);
    c.crash(1);
    c.run_for(secs(2));
    let failed = c.count(|e| matches!(e, Event::MigrationFinished { ok: false, .. }));
    assert_eq!(failed, 1, "the migration to the crashed host failed");
    assert_eq!(
        c.placement().values().filter(|&&h| h == 0).count(),
        2,
        "the vm stayed on its source"
    );
    c.run_for(secs(20));
    assert!(
        c.count(|e| matches!(
            e,
            Event::TookOver {
                lost: NodeId(1),
                ..
            }
        )) >= 1
    );
    assert_eq!(c.ended(0), vec![DissolveReason::Solved], "{:?}", c.events);
    let at = c.placement();
    assert_eq!(at.len(), 4, "no vm lost or duplicated");
    assert_eq!(at.values().filter(|&&h| h == 0).count(), 1);
    assert_eq!(
        at.values().filter(|&&h| h == 2).count(),
        2,
        "the vm went to the surviving host"
    );
}

// Reference: protocol.md §10 (a VM that just moved stays put during its cooldown).
#[test]
fn moved_vm_is_not_moved_again_during_its_cooldown() {
    // vm1 leaves host 0 for host 1 (most room). Then host 1 overloads; moving vm1 on to host 2
    // would be the only fix, but vm1 is cooling down, so it stays and the event stays unsolved.
    let mut c = Cluster::new(&[&[600, 600], &[100], &[350]], Config::default());
    c.run_for(secs(10));
    let vm1 = crate::model::VmId(1);
    assert_eq!(c.placement()[&vm1], 1, "vm1 moved to host 1");
    c.set_load(1, 0, 700);
    c.run_for(secs(30));
    assert_eq!(c.placement()[&vm1], 1, "vm1 did not move again");
    assert!(c.overloaded().contains(&1));
    // Control: with no cooldown the same situation moves vm1 again.
    let cfg = Config {
        cooldown_base: Duration::ZERO,
        ..Config::default()
    };
    let mut c = Cluster::new(&[&[600, 600], &[100], &[350]], cfg);
    c.run_for(secs(10));
    c.set_load(1, 0, 700);
    c.run_for(secs(30));
    assert_eq!(c.placement()[&vm1], 2, "without cooldown vm1 moves on");
}

// Reference: protocol.md §1.4 (evacuation drains a host).
#[test]
fn evacuation_empties_the_host_and_keeps_it_empty() {
    let mut c = Cluster::new(
        &[&[200, 200, 200], &[100], &[100], &[100]],
        Config::default(),
    );
    c.run_for(secs(1));
    c.evacuate(0);
    c.run_for(secs(20));
    assert!(c.hosts[0].vms.is_empty(), "host 0 drained");
    assert_eq!(c.ended(0), vec![DissolveReason::Solved]);
    assert!(
        c.count(|e| matches!(
            e,
            Event::EventStarted {
                kind: EventKind::Evacuate,
                ..
            }
        )) == 1
    );
    // No VM comes back to a draining host, and no new event starts once it is empty.
    c.set_load(1, 0, 950);
    c.run_for(secs(20));
    assert!(c.hosts[0].vms.is_empty());
}

// Reference: protocol.md §1.3 (consolidation only when enabled).
#[test]
fn underloaded_host_is_emptied_only_when_consolidation_is_enabled() {
    let loads: &[&[u64]] = &[&[50], &[300], &[300]];
    let mut off = Cluster::new(loads, Config::default());
    off.run_for(secs(200));
    assert_eq!(off.count(|e| matches!(e, Event::EventStarted { .. })), 0);
    let cfg = Config {
        underload_enabled: true,
        ..Config::default()
    };
    let mut on = Cluster::new(loads, cfg);
    on.run_for(secs(200));
    assert!(
        on.count(|e| matches!(
            e,
            Event::EventStarted {
                kind: EventKind::Underload,
                ..
            }
        )) >= 1
    );
    assert!(on.hosts[0].vms.is_empty(), "underloaded host emptied");
    assert!(on.overloaded().is_empty());
}

// Reference: protocol.md §5.5 (the margin applies to consolidation, never to an overload).
#[test]
fn tiny_overload_below_the_margin_is_still_fixed() {
    let cfg = Config {
        improvement_margin_milli: 200,
        ..Config::default()
    };
    let mut c = Cluster::new(&[&[550, 500], &[0]], cfg);
    c.run_for(secs(10));
    assert_eq!(c.ended(0), vec![DissolveReason::Solved]);
    assert!(c.overloaded().is_empty());
}

// Reference: protocol.md §5.5 (consolidation must gain at least the margin).
#[test]
fn consolidation_below_the_margin_is_not_acted_on() {
    let cfg = Config {
        improvement_margin_milli: 2_000_000,
        underload_enabled: true,
        underload_hold: secs(5),
        ..Config::default()
    };
    let mut c = Cluster::new(&[&[50], &[300], &[300]], cfg);
    c.run_for(secs(30));
    assert_eq!(c.ended(0).first(), Some(&DissolveReason::NotWorthIt));
    assert_eq!(c.count(|e| matches!(e, Event::PlanChosen { .. })), 0);
}

// Reference: protocol.md §3.2 (Finishing views reach every member before migrations start).
#[test]
fn members_see_finishing_before_migrations() {
    let mut c = Cluster::new(&[&[600, 600], &[100]], Config::default());
    c.migration_time = secs(2);
    c.run_until(c.start() + Duration::from_millis(500));
    for i in 0..2 {
        let state = c
            .node(NodeId(i))
            .and_then(|n| n.partition())
            .map(|v| v.state);
        assert_eq!(state, Some(PartitionState::Finishing), "host {i}");
    }
}

// Reference: protocol.md §9.3 (a failed migration ends the plan, but the partition dissolves only
// once the other migrations of the step have reported: no host is freed while a VM moves).
#[test]
fn failed_migration_waits_for_the_others_in_flight_before_dissolving() {
    // Host 0 sheds two 300-milli VMs in one step; the first fails at once, the second takes 2 s.
    let mut c = Cluster::new(&[&[500, 300, 300, 300], &[50], &[50]], Config::default());
    c.fail_vm = Some(crate::model::VmId(2));
    c.migration_time = secs(2);
    c.run_for(secs(6));
    let at = |f: &dyn Fn(&Event) -> bool| {
        c.events
            .iter()
            .find(|(_, _, e)| f(e))
            .map(|(t, _, _)| *t)
            .expect("event seen")
    };
    let failed = at(&|e| matches!(e, Event::MigrationFinished { ok: false, .. }));
    let moved = at(&|e| matches!(e, Event::MigrationFinished { ok: true, .. }));
    let dissolved = at(&|e| matches!(e, Event::Dissolved { .. }));
    assert!(failed < moved, "the refusal comes first");
    assert!(
        dissolved >= moved,
        "dissolved at {dissolved:?}, vm still moving until {moved:?}"
    );
    assert_eq!(c.ended(0), vec![DissolveReason::MigrationFailed]);
    assert_eq!(c.placement().len(), 6, "no vm lost or duplicated");
    assert!(c.busy_hosts().is_empty());
}

// Reference: protocol.md §9.2 (the leader re-sends unreported migrations with its renewals; the
// source answers a duplicate idempotently), so a lost message does not stall the plan until
// `migrate_timeout`.
#[test]
fn lost_migrate_or_report_is_resent_and_the_vm_moves_once() {
    for lost in ["migrate", "migrate_done"] {
        let mut c = Cluster::new(&[&[600, 600], &[100]], Config::default());
        c.drop_once = vec![lost];
        c.run_for(secs(10));
        assert!(c.drop_once.is_empty(), "{lost}: a message was dropped");
        assert_eq!(c.ended(0), vec![DissolveReason::Solved], "{lost}");
        let moved = c.count(|e| matches!(e, Event::MigrationFinished { ok: true, .. }));
        assert_eq!(moved, 1, "{lost}: the vm moved once");
        assert_eq!(c.placement().len(), 3);
        assert!(c.overloaded().is_empty());
        assert!(c.busy_hosts().is_empty());
    }
}

// Reference: protocol.md §7.5 (a host that is no longer in a partition answers its renewals with
// `Leave`, also when it has joined another partition meanwhile).
#[test]
fn member_that_moved_to_another_partition_is_dropped_by_its_old_leader() {
    // P: host 0 overloaded; host 2 (spare CPU, no memory) joins first, then host 1, which leads
    // and applies a long migration 0 -> 1. Host 2 is cut from host 1, its lease runs out, and it
    // joins Q (host 3's overload) before the link heals.
    let mut c = Cluster::new(
        &[&[600, 600], &[200], &[100], &[300, 300], &[300]],
        Config::default(),
    );
    c.set_vm(2, 0, 100, 9500);
    c.migration_time = secs(20);
    c.run_until(Time::from_secs(3));
    let p = c.node(NodeId(1)).and_then(|n| n.partition()).cloned();
    let p = p.expect("host 1 leads P");
    assert!(p.leader == NodeId(1) && p.contains(NodeId(2)), "{p:?}");
    assert_eq!(p.state, PartitionState::Finishing);
    c.cut(1, 2);
    c.run_for(secs(6));
    assert!(!c.node(NodeId(2)).expect("up").is_busy(), "lease ran out");
    c.set_load(3, 0, 600);
    c.set_load(3, 1, 600);
    c.run_for(secs(3));
    let q = c.node(NodeId(2)).and_then(|n| n.partition()).map(|v| v.id);
    assert!(
        q.is_some_and(|q| q.initiator == NodeId(3)),
        "host 2 is in Q: {q:?}"
    );
    c.uncut(1, 2);
    c.run_for(secs(2));
    let held = c
        .node(NodeId(1))
        .and_then(|n| n.partition())
        .is_some_and(|v| v.contains(NodeId(2)));
    assert!(!held, "P's leader dropped the host that moved to Q");
}

// Reference: protocol.md §6.4 with §7.2 (a blocked partition taken over by its initiator still
// gives up after its budget; it does not stay blocked forever).
#[test]
fn blocked_partition_taken_over_still_gives_up() {
    // Host 1 joins host 0's partition and leads it, but has no room: nothing else to grow to.
    let mut c = Cluster::new(&[&[600, 600], &[950]], Config::default());
    c.run_until(c.start() + Duration::from_millis(100));
    let view = c.node(NodeId(0)).and_then(|n| n.partition()).cloned();
    let view = view.expect("host 0 in its partition");
    assert_eq!(
        (view.leader, view.state),
        (NodeId(1), PartitionState::Blocked)
    );
    c.crash(1);
    c.run_for(secs(15));
    assert!(
        c.count(|e| matches!(
            e,
            Event::TookOver {
                lost: NodeId(1),
                ..
            }
        )) >= 1,
        "the initiator took over"
    );
    assert_eq!(c.ended(0).first(), Some(&DissolveReason::GaveUp));
}

// Reference: protocol.md §9.4 (the destination reserves room for a VM on its way).
#[test]
fn destination_counts_an_arriving_vm_once_and_forgets_a_failed_one() {
    let demand = |c: &Cluster, h: u64| c.node(NodeId(h)).expect("up").summary().demand.cpu_milli;
    let mut c = Cluster::new(&[&[600, 600], &[100]], Config::default());
    c.migration_time = secs(2);
    c.run_until(c.start() + Duration::from_millis(500));
    assert_eq!(c.count(|e| matches!(e, Event::PlanChosen { .. })), 1);
    assert_eq!(
        demand(&c, 1),
        700,
        "the arriving vm is reserved on its destination"
    );
    c.run_for(secs(5));
    assert_eq!(c.hosts[1].vms.len(), 2, "the vm arrived");
    assert_eq!(demand(&c, 1), 700, "and is counted once");

    let mut c = Cluster::new(&[&[600, 600], &[100]], Config::default());
    c.migration_time = secs(2);
    c.fail_migrations = true;
    c.run_until(c.start() + Duration::from_millis(500));
    assert_eq!(demand(&c, 1), 700);
    c.run_for(secs(3));
    assert_eq!(c.hosts[1].vms.len(), 1, "the vm stayed on its source");
    assert_eq!(demand(&c, 1), 100, "the reservation is cancelled");
}
