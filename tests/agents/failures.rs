//! Agents killed with SIGKILL in the middle of a partition: nobody stays stuck after the
//! lease, no VM is lost or duplicated, and a restarted agent rejoins and rebuilds its state.

use std::time::Duration;

use dvms_agent::control::proto::Status;
use dvms_testkit::{Lab, LabSpec, serial};

/// 8 hosts; h00 overloaded by 6 VMs of 2 GiB; slow migrations (pre-copy at 150 MiB/s) so the
/// partition is still applying its plan when an agent is killed.
fn slow_lab() -> Lab {
    let mut lab = Lab::new(LabSpec {
        bandwidth_mib_s: 150.0,
        ..LabSpec::default()
    });
    for v in 0..6 {
        lab.add_vm(0, &format!("vm-00{v:02}"), 1, 2048, 900);
    }
    for h in 1..8 {
        for v in 0..2 {
            lab.add_vm(h, &format!("vm-{h:02}{v:02}"), 1, 2048, 300);
        }
    }
    lab.start_all();
    lab
}

/// Waits until some agent has `role` in a partition of at least two hosts; returns its index.
fn find_role(lab: &Lab, role: &str) -> (usize, Status) {
    lab.wait(
        &format!("an agent with role {role} in a partition"),
        Duration::from_secs(120),
        |lab| {
            (0..lab.agents.len()).find_map(|i| {
                let s = lab.agents[i].status()?;
                let in_two = s.partition.as_ref().is_some_and(|p| p.members.len() >= 2);
                (s.role == role && in_two).then_some((i, s))
            })
        },
    )
}

/// After a kill: every live agent free, no migration left in the lab, ground truth intact.
fn settles(lab: &Lab, killed: usize) {
    let live: Vec<usize> = (0..lab.agents.len()).filter(|&i| i != killed).collect();
    // Leases are 3 s by default; a minute is a hang guard, not a goal.
    lab.wait(
        "every live agent out of its partition",
        Duration::from_secs(90),
        |lab| {
            live.iter()
                .all(|&i| {
                    lab.agents[i]
                        .status()
                        .is_some_and(|s| s.partition.is_none())
                })
                .then_some(())
        },
    );
    lab.wait(
        "no migration running in the lab",
        Duration::from_secs(120),
        |lab| (lab.hv.stats().2 == 0).then_some(()),
    );
    let audit = lab.hv.audit().expect("audit");
    assert!(
        audit.lost.is_empty() && audit.duplicated.is_empty(),
        "{audit:?}"
    );
    let total: usize = lab.hv.hosts().iter().map(|h| h.vms).sum();
    assert_eq!(total, 6 + 7 * 2);
}

#[test]
fn leader_killed_mid_partition_then_restarted_rejoins() {
    let _one = serial();
    let mut lab = slow_lab();
    let (leader, s) = find_role(&lab, "leader");
    eprintln!("killing leader {} of {:?}", s.name, s.partition);
    lab.kill9(leader);
    settles(&lab, leader);
    // Restarted, it rebuilds from the roots and the overlay: its VMs as the lab has them.
    lab.spawn(leader);
    let want = lab.hv.hosts()[leader].vms;
    let s = lab.wait(
        "the restarted agent ready with peers and its VMs",
        Duration::from_secs(90),
        |lab| {
            let want = lab.hv.hosts()[leader].vms;
            lab.agents[leader]
                .status()
                .filter(|s| s.ready && s.peers > 0 && s.vms == want)
        },
    );
    assert_eq!(s.vms, want);
    assert!(s.partition.is_none() || s.role != "member");
    // And the others know it again.
    let peer_id = s.peer_id.clone();
    lab.wait(
        "another agent sees the restarted one",
        Duration::from_secs(90),
        |lab| {
            (0..lab.agents.len())
                .filter(|&i| i != leader)
                .find_map(|i| {
                    match lab.agents[i].ask(&dvms_agent::control::proto::Request::Peers)? {
                        dvms_agent::control::proto::Response::Peers(p) => {
                            p.iter().any(|r| r.peer_id == peer_id).then_some(())
                        }
                        _ => None,
                    }
                })
        },
    );
}

#[test]
fn member_killed_mid_partition_leaves_no_host_stuck() {
    let _one = serial();
    let mut lab = slow_lab();
    let (member, s) = find_role(&lab, "member");
    eprintln!("killing member {} of {:?}", s.name, s.partition);
    lab.kill9(member);
    settles(&lab, member);
}

/// Migrations far slower than `migrate_timeout` (2 GiB at 20 MiB/s: 100 s, timeout 4 s): the
/// source's core aborts each (`Output::AbortMigration`), the agent asks the lab to abort, the
/// lab stops the copy and the VM stays where it was; nothing is lost, duplicated or left
/// reserved, and the agents end up free.
#[test]
fn migrations_outlasting_their_timeout_are_aborted_and_the_vms_stay() {
    let _one = serial();
    let mut lab = Lab::new(LabSpec {
        hosts: 4,
        bandwidth_mib_s: 20.0,
        protocol: "migrate_timeout = \"4s\"".into(),
        ..LabSpec::default()
    });
    for v in 0..6 {
        lab.add_vm(0, &format!("vm-00{v:02}"), 1, 2048, 900);
    }
    for h in 1..4 {
        lab.add_vm(h, &format!("vm-{h:02}00"), 1, 2048, 300);
    }
    lab.start_all();
    lab.wait("a migration aborted", Duration::from_secs(120), |lab| {
        (lab.hv.stats().0.migrations_aborted >= 1).then_some(())
    });
    let (stats, _, _) = lab.hv.stats();
    assert_eq!(
        stats.migrations, 0,
        "a 100 s migration completed: {stats:?}"
    );
    let s = lab.agents[0].status().expect("h00 answers");
    assert!(s.stats.migrations_failed >= 1, "{s:?}");
    let Some(dvms_agent::control::proto::Response::Events(events)) =
        lab.agents[0].ask(&dvms_agent::control::proto::Request::Events)
    else {
        panic!("h00 gives no events");
    };
    assert!(
        events.iter().any(|e| e.event == "migration_aborted"),
        "{events:?}"
    );
    let audit = lab.hv.audit().expect("audit");
    assert!(
        audit.lost.is_empty() && audit.duplicated.is_empty() && audit.misplaced.is_empty(),
        "{audit:?}"
    );
    // The VMs all stayed home.
    assert_eq!(lab.hv.hosts()[0].vms, 6);
}
