//! The solver's compiled, index-based view of a [`Problem`].
//!
//! Hosts and VMs become dense indices; `ban`, `fence`, unrepairable `gather`/`among` and the
//! VMs' opt-outs become per-VM domains and pins; `spread`, repairable `gather` and repairable
//! `among` stay as groups checked incrementally by [`State`].
//!
//! Identifiers in a constraint that are not in the problem are ignored: the core may pass
//! cluster-wide constraints to a partition that holds only some of their VMs and hosts.

use std::collections::BTreeSet;
use std::sync::Arc;

use dvms_core::model::{Constraint, NodeId, Problem, Unsolvable, VmId};

use crate::ids::IdIndex;

/// "No host": an undecided VM.
pub(crate) const NONE: usize = usize::MAX;

/// One host's limits.
#[derive(Clone, Debug)]
pub(crate) struct Host {
    /// Its id.
    pub(crate) id: NodeId,
    /// CPU the VMs may use (capacity × threshold).
    pub(crate) cpu_limit: u64,
    /// Memory the final placement may use: min(capacity, capacity × threshold).
    pub(crate) mem_limit: u64,
    /// Physical memory: the bound during a plan.
    pub(crate) mem_cap: u64,
}

/// One VM.
#[derive(Clone, Debug)]
pub(crate) struct Vm {
    /// Its id.
    pub(crate) id: VmId,
    /// Index of the host it runs on now.
    pub(crate) host: usize,
    /// CPU demand.
    pub(crate) cpu: u64,
    /// Memory.
    pub(crate) mem: u64,
    /// Never moves (`root` or `migratable == false`).
    pub(crate) pinned: bool,
    /// The `root` constraint that pins it, if any.
    pub(crate) root: Option<usize>,
}

/// A VM's allowed hosts, with the constraint that last restricted them.
#[derive(Clone, Debug)]
pub(crate) struct Domain {
    /// Allowed hosts, by index; shared by the VMs of one constraint until another constraint
    /// restricts some of them further (so a cluster-wide constraint costs one host vector, not
    /// one per VM).
    pub(crate) allowed: Arc<Vec<bool>>,
    /// Index of a restricting constraint (for unsolvable reasons).
    pub(crate) by: usize,
}

/// A group constraint checked during search.
#[derive(Clone, Debug)]
pub(crate) enum Group {
    /// A movable member shares its host with no other member.
    Spread {
        /// Member VM indices.
        members: Vec<usize>,
    },
    /// All members on one host (the anchor's if a pinned member fixes it).
    Gather {
        /// Member VM indices.
        members: Vec<usize>,
    },
    /// All members within one of the groups.
    Among {
        /// Member VM indices.
        members: Vec<usize>,
        /// Per group, membership of each host.
        groups: Vec<Vec<bool>>,
    },
}

/// The compiled problem.
#[derive(Clone, Debug)]
pub(crate) struct Model {
    /// Hosts by index.
    pub(crate) hosts: Vec<Host>,
    /// VMs by index.
    pub(crate) vms: Vec<Vm>,
    /// Per VM, its domain if restricted.
    pub(crate) domains: Vec<Option<Domain>>,
    /// Group constraints with their index in `Problem::constraints`.
    pub(crate) groups: Vec<(usize, Group)>,
    /// Per VM, the indices into `groups` it belongs to.
    pub(crate) vm_groups: Vec<Vec<usize>>,
    /// Per host, the VMs that run on it now.
    pub(crate) host_vms: Vec<Vec<usize>>,
}

fn invalid(reason: String) -> Unsolvable {
    Unsolvable::Invalid { reason }
}

impl Model {
    /// Compiles a problem, or says why it is inconsistent.
    pub(crate) fn compile(problem: &Problem) -> Result<Model, Unsolvable> {
        let host_index = IdIndex::new(problem.hosts.iter().map(|h| h.id.0));
        if let Some(i) = host_index.first_duplicate {
            return Err(invalid(format!("duplicate host {}", problem.hosts[i].id)));
        }
        let mut hosts = Vec::with_capacity(problem.hosts.len());
        for h in &problem.hosts {
            let limit = h.limit();
            hosts.push(Host {
                id: h.id,
                cpu_limit: limit.cpu_milli,
                mem_limit: limit.mem_mib.min(h.capacity.mem_mib),
                mem_cap: h.capacity.mem_mib,
            });
        }
        let vm_index = IdIndex::new(problem.vms.iter().map(|v| v.id.0));
        let mut vms = Vec::with_capacity(problem.vms.len());
        let mut host_vms = vec![Vec::new(); hosts.len()];
        for (i, v) in problem.vms.iter().enumerate() {
            let Some(host) = host_index.get(v.host.0) else {
                return Err(invalid(format!("{} runs on unknown host {}", v.id, v.host)));
            };
            if vm_index.first_duplicate == Some(i) {
                return Err(invalid(format!("duplicate vm {}", v.id)));
            }
            host_vms[host].push(vms.len());
            vms.push(Vm {
                id: v.id,
                host,
                cpu: v.demand.cpu_milli,
                mem: v.demand.mem_mib,
                pinned: !v.migratable,
                root: None,
            });
        }
        let vm_ids = |ids: &[VmId]| -> Vec<usize> {
            let set: BTreeSet<usize> = ids.iter().filter_map(|i| vm_index.get(i.0)).collect();
            set.into_iter().collect()
        };
        let n_hosts = hosts.len();
        let host_set = |ids: &[NodeId]| -> Vec<bool> {
            let mut set = vec![false; n_hosts];
            for i in ids {
                if let Some(h) = host_index.get(i.0) {
                    set[h] = true;
                }
            }
            set
        };
        // Roots first: relaxation of the other constraints depends on which VMs are pinned.
        for (ci, c) in problem.constraints.iter().enumerate() {
            if let Constraint::Root { vms: ids } = c {
                for v in vm_ids(ids) {
                    vms[v].pinned = true;
                    vms[v].root = Some(ci);
                }
            }
        }
        let mut model = Model {
            domains: vec![None; vms.len()],
            groups: Vec::new(),
            vm_groups: vec![Vec::new(); vms.len()],
            hosts,
            vms,
            host_vms,
        };
        for (ci, c) in problem.constraints.iter().enumerate() {
            match c {
                Constraint::Ban {
                    vms: ids,
                    hosts: hs,
                } => {
                    let banned = host_set(hs);
                    let allowed: Arc<Vec<bool>> = Arc::new(banned.iter().map(|b| !b).collect());
                    for v in vm_ids(ids) {
                        model.restrict(v, &allowed, ci);
                    }
                }
                Constraint::Fence {
                    vms: ids,
                    hosts: hs,
                } => {
                    let allowed = Arc::new(host_set(hs));
                    for v in vm_ids(ids) {
                        model.restrict(v, &allowed, ci);
                    }
                }
                Constraint::Spread { vms: ids } => {
                    let members = vm_ids(ids);
                    if members.len() > 1 {
                        model.add_group(ci, Group::Spread { members });
                    }
                }
                Constraint::Gather { vms: ids } => {
                    let members = vm_ids(ids);
                    let anchors: BTreeSet<usize> = members
                        .iter()
                        .filter(|&&v| model.vms[v].pinned)
                        .map(|&v| model.vms[v].host)
                        .collect();
                    if anchors.len() > 1 {
                        // Unrepairable: the movable members may only join a pinned member.
                        let mut allowed = vec![false; model.hosts.len()];
                        for &h in &anchors {
                            allowed[h] = true;
                        }
                        let allowed = Arc::new(allowed);
                        for &v in &members {
                            model.restrict(v, &allowed, ci);
                        }
                    } else if members.len() > 1 {
                        model.add_group(ci, Group::Gather { members });
                    }
                }
                Constraint::Among { vms: ids, groups } => {
                    let members = vm_ids(ids);
                    let groups: Vec<Vec<bool>> = groups.iter().map(|g| host_set(g)).collect();
                    let pinned_hosts: Vec<usize> = members
                        .iter()
                        .filter(|&&v| model.vms[v].pinned)
                        .map(|&v| model.vms[v].host)
                        .collect();
                    let repairable = groups.iter().any(|g| pinned_hosts.iter().all(|&h| g[h]));
                    if repairable {
                        if !members.is_empty() {
                            model.add_group(ci, Group::Among { members, groups });
                        }
                    } else {
                        // Unrepairable: the movable members stay within the groups' union.
                        let mut union = vec![false; model.hosts.len()];
                        for g in &groups {
                            for (h, &inside) in g.iter().enumerate() {
                                union[h] |= inside;
                            }
                        }
                        let union = Arc::new(union);
                        for &v in &members {
                            model.restrict(v, &union, ci);
                        }
                    }
                }
                Constraint::Root { .. } => {}
                other => return Err(invalid(format!("unsupported constraint {other:?}"))),
            }
        }
        Ok(model)
    }

    fn restrict(&mut self, v: usize, allowed: &Arc<Vec<bool>>, ci: usize) {
        if self.vms[v].pinned {
            return;
        }
        match &mut self.domains[v] {
            Some(d) => {
                for (a, &b) in Arc::make_mut(&mut d.allowed).iter_mut().zip(allowed.iter()) {
                    *a &= b;
                }
                d.by = ci;
            }
            slot @ None => {
                *slot = Some(Domain {
                    allowed: Arc::clone(allowed),
                    by: ci,
                });
            }
        }
    }

    fn add_group(&mut self, ci: usize, g: Group) {
        let gi = self.groups.len();
        let members = match &g {
            Group::Spread { members }
            | Group::Gather { members }
            | Group::Among { members, .. } => members.clone(),
        };
        for v in members {
            self.vm_groups[v].push(gi);
        }
        self.groups.push((ci, g));
    }

    /// True when `v` may run on `h` as far as its domain says.
    pub(crate) fn allowed(&self, v: usize, h: usize) -> bool {
        self.domains[v].as_ref().is_none_or(|d| d.allowed[h])
    }

    /// The hosts that violate a threshold or hold a VM that breaks a constraint, in index order.
    pub(crate) fn violating_hosts(&self) -> Vec<usize> {
        let mut bad = vec![false; self.hosts.len()];
        for (h, vs) in self.host_vms.iter().enumerate() {
            let cpu: u64 = vs.iter().map(|&v| self.vms[v].cpu).sum();
            let mem: u64 = vs.iter().map(|&v| self.vms[v].mem).sum();
            let host = &self.hosts[h];
            if cpu > host.cpu_limit || mem > host.mem_limit {
                bad[h] = true;
            }
        }
        for (v, vm) in self.vms.iter().enumerate() {
            if !vm.pinned && !self.allowed(v, vm.host) {
                bad[vm.host] = true;
            }
        }
        for (_, g) in &self.groups {
            if !self.group_holds_now(g) {
                let members = match g {
                    Group::Spread { members }
                    | Group::Gather { members }
                    | Group::Among { members, .. } => members,
                };
                for &v in members {
                    bad[self.vms[v].host] = true;
                }
            }
        }
        bad.iter()
            .enumerate()
            .filter(|(_, b)| **b)
            .map(|(h, _)| h)
            .collect()
    }

    fn group_holds_now(&self, g: &Group) -> bool {
        let at = |v: usize| self.vms[v].host;
        match g {
            Group::Spread { members } => members
                .iter()
                .all(|&v| self.vms[v].pinned || members.iter().all(|&u| u == v || at(u) != at(v))),
            Group::Gather { members } => members.iter().all(|&v| at(v) == at(members[0])),
            Group::Among { members, groups } => {
                groups.iter().any(|g| members.iter().all(|&v| g[at(v)]))
            }
        }
    }
}

/// A partial placement: each VM decided (on a host) or not, with loads and cost.
///
/// Loads count decided VMs only, so they only grow as the search decides more VMs: a host over
/// its limit can never be repaired deeper in the tree.
#[derive(Clone, Debug)]
pub(crate) struct State {
    /// Per VM, its host or [`NONE`].
    pub(crate) at: Vec<usize>,
    /// Per host, CPU of the VMs decided onto it.
    pub(crate) cpu: Vec<u64>,
    /// Per host, memory of the VMs decided onto it.
    pub(crate) mem: Vec<u64>,
    /// Memory of the decided VMs that move.
    pub(crate) moved_mem: u64,
    /// Number of decided VMs that move.
    pub(crate) moves: u64,
}

impl State {
    /// All VMs undecided.
    pub(crate) fn new(m: &Model) -> State {
        State {
            at: vec![NONE; m.vms.len()],
            cpu: vec![0; m.hosts.len()],
            mem: vec![0; m.hosts.len()],
            moved_mem: 0,
            moves: 0,
        }
    }

    /// True when `v` fits on `h` by capacity.
    pub(crate) fn fits(&self, m: &Model, v: usize, h: usize) -> bool {
        let (vm, host) = (&m.vms[v], &m.hosts[h]);
        self.cpu[h] + vm.cpu <= host.cpu_limit && self.mem[h] + vm.mem <= host.mem_limit
    }

    /// The first group constraint (by group index) that forbids `v` on `h`, if any.
    pub(crate) fn group_blocks(&self, m: &Model, v: usize, h: usize) -> Option<usize> {
        for &gi in &m.vm_groups[v] {
            let ok = match &m.groups[gi].1 {
                Group::Spread { members } => members.iter().all(|&u| u == v || self.at[u] != h),
                Group::Gather { members } => members
                    .iter()
                    .all(|&u| self.at[u] == NONE || self.at[u] == h),
                Group::Among { members, groups } => groups
                    .iter()
                    .any(|g| g[h] && members.iter().all(|&u| self.at[u] == NONE || g[self.at[u]])),
            };
            if !ok {
                return Some(gi);
            }
        }
        None
    }

    /// True when `v` may be decided onto `h`: capacity, domain (unless it stays pinned), groups.
    pub(crate) fn can_place(&self, m: &Model, v: usize, h: usize) -> bool {
        self.fits(m, v, h) && m.allowed(v, h) && self.group_blocks(m, v, h).is_none()
    }

    /// Decides `v` onto `h`.
    pub(crate) fn place(&mut self, m: &Model, v: usize, h: usize) {
        let vm = &m.vms[v];
        self.at[v] = h;
        self.cpu[h] += vm.cpu;
        self.mem[h] += vm.mem;
        if h != vm.host {
            self.moved_mem += vm.mem;
            self.moves += 1;
        }
    }

    /// Undoes [`State::place`].
    pub(crate) fn unplace(&mut self, m: &Model, v: usize) {
        let vm = &m.vms[v];
        let h = self.at[v];
        self.at[v] = NONE;
        self.cpu[h] -= vm.cpu;
        self.mem[h] -= vm.mem;
        if h != vm.host {
            self.moved_mem -= vm.mem;
            self.moves -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use dvms_core::model::{HostSpec, Resources, Thresholds, VmSpec};

    use super::*;

    fn problem(constraints: Vec<Constraint>, pinned: &[u64]) -> Problem {
        let host = |i| HostSpec {
            id: NodeId(i),
            capacity: Resources::new(7000, 8192),
            thresholds: Thresholds::default(),
        };
        let vm = |i, h| VmSpec {
            id: VmId(i),
            host: NodeId(h),
            demand: Resources::new(100, 512),
            migratable: !pinned.contains(&i),
        };
        Problem {
            hosts: vec![host(0), host(1), host(2)],
            vms: vec![vm(0, 0), vm(1, 0), vm(2, 1)],
            constraints,
        }
    }

    #[test]
    fn a_pinned_vm_on_a_banned_host_is_not_a_violation() {
        let ban = || {
            vec![Constraint::Ban {
                vms: vec![VmId(0)],
                hosts: vec![NodeId(0)],
            }]
        };
        assert_eq!(
            Model::compile(&problem(ban(), &[0]))
                .expect("valid")
                .violating_hosts(),
            Vec::<usize>::new()
        );
        assert_eq!(
            Model::compile(&problem(ban(), &[]))
                .expect("valid")
                .violating_hosts(),
            vec![0]
        );
    }

    #[test]
    fn a_broken_spread_flags_its_hosts_unless_only_pinned_members_share() {
        let spread = || {
            vec![Constraint::Spread {
                vms: vec![VmId(0), VmId(1), VmId(2)],
            }]
        };
        assert_eq!(
            Model::compile(&problem(spread(), &[]))
                .expect("valid")
                .violating_hosts(),
            vec![0, 1]
        );
        assert_eq!(
            Model::compile(&problem(spread(), &[0, 1]))
                .expect("valid")
                .violating_hosts(),
            Vec::<usize>::new()
        );
    }

    #[test]
    fn an_unrepairable_gather_becomes_a_domain() {
        let gather = vec![Constraint::Gather {
            vms: vec![VmId(0), VmId(1), VmId(2)],
        }];
        // v0 (host 0) and v2 (host 1) are pinned: v1 may stay on host 0 or join host 1.
        let m = Model::compile(&problem(gather, &[0, 2])).expect("valid");
        assert!(m.groups.is_empty());
        assert!(m.allowed(1, 0) && m.allowed(1, 1) && !m.allowed(1, 2));
        assert_eq!(m.violating_hosts(), Vec::<usize>::new());
    }

    #[test]
    fn unknown_ids_in_constraints_are_ignored_and_duplicates_rejected() {
        let c = vec![Constraint::Fence {
            vms: vec![VmId(0), VmId(42)],
            hosts: vec![NodeId(0), NodeId(42)],
        }];
        assert!(Model::compile(&problem(c, &[])).is_ok());
        let mut p = problem(vec![], &[]);
        p.vms[1].id = VmId(0);
        assert!(matches!(
            Model::compile(&p),
            Err(Unsolvable::Invalid { .. })
        ));
    }
}
