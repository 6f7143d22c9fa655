//! Quick, sound proofs that a problem has no plan, run before any search (issue 11: the
//! tight constrained partitions on which the full search used to spend its whole budget).
//!
//! - **No first migration.** When no movable VM fits, by memory capacity and CPU limit, on
//!   any other host its domain and spreads allow in the current placement, no plan can
//!   start (a pivot is a migration too). On VMPlaceS partitions this is the 99 %-loaded case
//!   whose every VM is larger than every host's room. The reason names the constraint that
//!   forbade the first such move that had room, or the lack of capacity if none had.
//! - **Group against domains.** A repairable `gather` needs one host that every movable
//!   member's domain allows (the pinned member's host, if any); a repairable `among` needs
//!   one group, among those holding every pinned member, in which every movable member's
//!   domain allows a host.

use dvms_core::model::Unsolvable;

use crate::model::{Group, Model};
use crate::work::Work;

/// Checks the problem for the proofs above; `violating` is not empty.
pub(crate) fn check(m: &Model, violating: &[usize], work: &mut Work) -> Result<(), Unsolvable> {
    groups_against_domains(m, work)?;
    match first_migration(m, work) {
        FirstMove::Some => Ok(()),
        FirstMove::None => Err(Unsolvable::NotEnoughCapacity {
            host: m.hosts[violating[0]].id,
        }),
        FirstMove::Blocked { host, constraint } => {
            Err(Unsolvable::ConstraintBlocks { host, constraint })
        }
    }
}

/// Whether a first migration exists.
enum FirstMove {
    /// Some movable VM may migrate now.
    Some,
    /// None has room anywhere.
    None,
    /// Some would have room but for a constraint (the first one met).
    Blocked {
        /// The VM's host.
        host: dvms_core::model::NodeId,
        /// The constraint.
        constraint: usize,
    },
}

/// Whether some movable VM may migrate now.
fn first_migration(m: &Model, work: &mut Work) -> FirstMove {
    let n = m.hosts.len();
    let (mut cpu, mut mem) = (vec![0u64; n], vec![0u64; n]);
    for v in &m.vms {
        cpu[v.host] += v.cpu;
        mem[v.host] += v.mem;
    }
    // Most CPU room first: a VM that fits nowhere is rejected at the first host without room.
    let mut hosts: Vec<usize> = (0..n).collect();
    hosts.sort_by_key(|&h| std::cmp::Reverse(m.hosts[h].cpu_limit.saturating_sub(cpu[h])));
    work.tick(n as u64);
    let mut blocked = FirstMove::None;
    for (v, vm) in m.vms.iter().enumerate().filter(|(_, vm)| !vm.pinned) {
        for &h in &hosts {
            work.tick(1);
            let host = &m.hosts[h];
            if cpu[h].saturating_add(vm.cpu) > host.cpu_limit {
                break;
            }
            if h == vm.host || mem[h].saturating_add(vm.mem) > host.mem_cap {
                continue;
            }
            let by = m.domains[v]
                .as_ref()
                .filter(|d| !d.allowed[h])
                .map(|d| d.by)
                .or_else(|| {
                    m.vm_groups[v].iter().find_map(|&gi| match &m.groups[gi].1 {
                        Group::Spread { members }
                            if members.iter().any(|&u| u != v && m.vms[u].host == h) =>
                        {
                            Some(m.groups[gi].0)
                        }
                        _ => None,
                    })
                });
            match by {
                None => return FirstMove::Some,
                Some(constraint) => {
                    if matches!(blocked, FirstMove::None) {
                        blocked = FirstMove::Blocked {
                            host: m.hosts[vm.host].id,
                            constraint,
                        };
                    }
                }
            }
        }
    }
    blocked
}

/// A repairable gather or among that the members' domains cannot satisfy.
fn groups_against_domains(m: &Model, work: &mut Work) -> Result<(), Unsolvable> {
    let n = m.hosts.len();
    for (ci, g) in &m.groups {
        let blocked = match g {
            Group::Spread { .. } => false,
            Group::Gather { members } => {
                work.tick((members.len() * n) as u64);
                let anchor = members
                    .iter()
                    .find(|&&v| m.vms[v].pinned)
                    .map(|&v| m.vms[v].host);
                let ok_on = |h: usize| members.iter().all(|&v| m.vms[v].pinned || m.allowed(v, h));
                match anchor {
                    Some(a) => !ok_on(a),
                    None => !(0..n).any(ok_on),
                }
            }
            Group::Among { members, groups } => {
                work.tick((members.len() * n * groups.len()) as u64);
                !groups.iter().any(|g| {
                    members.iter().all(|&v| {
                        if m.vms[v].pinned {
                            g[m.vms[v].host]
                        } else {
                            (0..n).any(|h| g[h] && m.allowed(v, h))
                        }
                    })
                })
            }
        };
        if blocked {
            let host = match g {
                Group::Spread { members }
                | Group::Gather { members }
                | Group::Among { members, .. } => members
                    .iter()
                    .find(|&&v| !m.vms[v].pinned)
                    .or(members.first())
                    .map_or(m.hosts[0].id, |&v| m.hosts[m.vms[v].host].id),
            };
            return Err(Unsolvable::ConstraintBlocks {
                host,
                constraint: *ci,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use dvms_core::model::{
        Constraint, HostSpec, NodeId, Problem, Resources, Thresholds, VmId, VmSpec,
    };

    use super::*;

    /// Hosts of 7000 milli; VMs as (host, cpu), 1 GiB each, pinned if listed.
    fn problem(hosts: usize, vms: &[(u64, u64)], pinned: &[u64], cs: Vec<Constraint>) -> Model {
        let p = Problem {
            hosts: (0..hosts as u64)
                .map(|i| HostSpec {
                    id: NodeId(i),
                    capacity: Resources::new(7000, 32768),
                    thresholds: Thresholds::default(),
                })
                .collect(),
            vms: vms
                .iter()
                .enumerate()
                .map(|(i, &(h, cpu))| VmSpec {
                    id: VmId(i as u64),
                    host: NodeId(h),
                    demand: Resources::new(cpu, 1024),
                    migratable: !pinned.contains(&(i as u64)),
                })
                .collect(),
            constraints: cs,
        };
        Model::compile(&p).expect("valid")
    }

    #[test]
    fn no_room_for_any_first_migration_is_a_proof() {
        // Host 0 is 100 over; hosts 1 and 2 have 200 and 300 free; every VM needs 400 or more.
        let mut vms = vec![(0, 400); 4];
        vms.extend([(0, 1100); 5]);
        vms.extend([(1, 400); 2]);
        vms.extend([(1, 1000); 6]);
        vms.extend([(2, 700); 1]);
        vms.extend([(2, 1000); 6]);
        let m = problem(3, &vms, &[], vec![]);
        let mut work = Work::new(1_000_000);
        assert_eq!(
            check(&m, &m.violating_hosts(), &mut work),
            Err(Unsolvable::NotEnoughCapacity { host: NodeId(0) })
        );
        assert!(work.used < 100, "{} units", work.used);
        // With 400 free on host 2, a 400 may move: no proof.
        let last = vms.len() - 1;
        vms[last].1 = 900;
        let m = problem(3, &vms, &[], vec![]);
        assert_eq!(check(&m, &m.violating_hosts(), &mut work), Ok(()));
    }

    #[test]
    fn a_ban_out_of_the_only_among_group_is_a_proof() {
        // v0 pinned on host 0 fixes the among to {h0, h1}; v1 is banned from both.
        let cs = vec![
            Constraint::Among {
                vms: vec![VmId(0), VmId(1)],
                groups: vec![vec![NodeId(0), NodeId(1)], vec![NodeId(2)]],
            },
            Constraint::Ban {
                vms: vec![VmId(1)],
                hosts: vec![NodeId(0), NodeId(1)],
            },
        ];
        let m = problem(3, &[(0, 500), (1, 500)], &[0], cs);
        assert_eq!(
            check(&m, &m.violating_hosts(), &mut Work::new(1000)),
            Err(Unsolvable::ConstraintBlocks {
                host: NodeId(1),
                constraint: 0
            })
        );
    }

    #[test]
    fn a_gather_member_banned_from_the_anchor_is_a_proof() {
        let cs = vec![
            Constraint::Gather {
                vms: vec![VmId(0), VmId(1)],
            },
            Constraint::Fence {
                vms: vec![VmId(1)],
                hosts: vec![NodeId(1), NodeId(2)],
            },
        ];
        let m = problem(3, &[(0, 500), (1, 500)], &[0], cs);
        assert!(matches!(
            check(&m, &m.violating_hosts(), &mut Work::new(1000)),
            Err(Unsolvable::ConstraintBlocks { constraint: 0, .. })
        ));
    }
}
