//! Invariants, checked from the simulator's global view as the run goes. The checker is an
//! observer (`crate::observe`): it sees what the engine and the drivers report, never the
//! other way round.
//!
//! What is checked, exactly:
//! 1. **No host in two partitions, nor twice in one.** Every node whose own view names itself
//!    leader *claims* the view's members under its epoch. When a leader asks the solver (the
//!    moment a partition acts on its hosts), none of its members may be claimed by a leader of a
//!    different partition, nor by another leader of the same partition with the same epoch (two
//!    leaderships of one partition id are told apart by their epochs, `docs/protocol.md` §7.6: a
//!    deposed leader's claim has an older epoch and its commands are fenced).
//! 2. **Every VM on exactly one host.** After every completed migration the VM is on the
//!    destination's list once and on no other list of the two hosts; at the end of the run the
//!    whole placement is checked.
//! 3. **Migrations only within the partition.** When a node emits `Migrate`, its own partition
//!    view must have the command's partition id and epoch, and list the destination as a member.
//! 4. **No capacity violation caused by an applied plan.** Every plan the solver returns is
//!    replayed against the problem it was computed from: at every step each destination holds
//!    the VMs still leaving and those arriving within its memory limit (memory strictly), and
//!    after the plan no host is above its CPU limit unless it was already before and the plan
//!    did not make it worse. At each completed migration, the destination's true memory must fit
//!    its capacity, and its CPU must fit its limit *as the destination saw it when it granted
//!    the reservation* (its VMs' loads when the source's `Incoming` left, the loads reserved for
//!    VMs that arrived since): CPU over the limit caused by a plan is a violation, CPU over the
//!    limit only because loads drifted since is overload time.
//! 5. **Every partition dissolves within its lease bound.** A partition id held by some node for
//!    longer than `lease × (max_partition_size + 4) + blocked_budget + 2 × solve_timeout`, plus
//!    the modelled duration of every migration started for it, is a violation (once per id).

use std::collections::BTreeMap;
use std::time::Duration;

use dvms_core::Time;
use dvms_core::model::{Epoch, MigrationId, NodeId, PartitionId, Plan, Problem};

use crate::engine::Sim;
use crate::observe::{NodeView, Observer, Seen};

#[derive(Clone, Debug)]
struct Alive {
    first_seen: Time,
    holders: u32,
    extra: Duration,
    flagged: bool,
}

/// Incremental bookkeeping for the invariants.
#[derive(Debug)]
pub(crate) struct Checker {
    base_bound: Duration,
    alive: BTreeMap<PartitionId, Alive>,
    /// The partition each host's node is in.
    node_part: BTreeMap<u32, PartitionId>,
    /// Self-declared leaders and the members they claim.
    leaders: BTreeMap<u32, (PartitionId, Epoch, Vec<NodeId>)>,
    /// For each claimed host, the leaders claiming it and for which partition and epoch.
    claims: BTreeMap<u64, Vec<(u32, PartitionId, Epoch)>>,
    /// For each VM whose source asked for a reservation: the migration, the destination, the
    /// VM's CPU and the destination's VMs' CPU when the request left.
    reservations: BTreeMap<u32, Reserved>,
    /// CPU reserved for each VM that arrived by a checked migration.
    arrived_cpu: BTreeMap<u32, u64>,
}

/// What a destination saw when it judged its room for a VM.
#[derive(Clone, Debug)]
struct Reserved {
    migration: MigrationId,
    dest: usize,
    vm_cpu: u64,
    dest_cpu: BTreeMap<u32, u64>,
}

impl Checker {
    pub(crate) fn new(cfg: &dvms_core::Config) -> Checker {
        let base_bound = cfg.lease * u32::try_from(cfg.max_partition_size + 4).unwrap_or(64)
            + cfg.blocked_budget
            + cfg.solve_timeout * 2;
        Checker {
            base_bound,
            alive: BTreeMap::new(),
            node_part: BTreeMap::new(),
            leaders: BTreeMap::new(),
            claims: BTreeMap::new(),
            reservations: BTreeMap::new(),
            arrived_cpu: BTreeMap::new(),
        }
    }

    fn entry(&mut self, p: PartitionId, now: Time) -> &mut Alive {
        self.alive.entry(p).or_insert(Alive {
            first_seen: now,
            holders: 0,
            extra: Duration::ZERO,
            flagged: false,
        })
    }

    pub(crate) fn extend_bound(&mut self, p: PartitionId, d: Duration) {
        if let Some(a) = self.alive.get_mut(&p) {
            a.extra += d;
        }
    }

    fn set_part(&mut self, h: u32, p: Option<PartitionId>, now: Time) {
        let old = match p {
            Some(p) => self.node_part.insert(h, p),
            None => self.node_part.remove(&h),
        };
        if old == p {
            return;
        }
        if let Some(o) = old {
            if let Some(a) = self.alive.get_mut(&o) {
                a.holders = a.holders.saturating_sub(1);
                if a.holders == 0 {
                    self.alive.remove(&o);
                }
            }
        }
        if let Some(n) = p {
            self.entry(n, now).holders += 1;
        }
    }

    pub(crate) fn node_gone(&mut self, h: usize) {
        let h = h as u32;
        self.set_leader(h, None);
        // The time is irrelevant when clearing.
        self.set_part(h, None, Time::ZERO);
    }

    /// Records what leader `h` claims now (`None`: it leads nothing).
    fn set_leader(&mut self, h: u32, claim: Option<(PartitionId, Epoch, Vec<NodeId>)>) {
        if self.leaders.get(&h) == claim.as_ref() {
            return;
        }
        if let Some((_, _, old)) = self.leaders.remove(&h) {
            for m in old {
                if let Some(v) = self.claims.get_mut(&m.0) {
                    v.retain(|&(l, _, _)| l != h);
                    if v.is_empty() {
                        self.claims.remove(&m.0);
                    }
                }
            }
        }
        if let Some((id, epoch, members)) = claim {
            for m in &members {
                self.claims.entry(m.0).or_default().push((h, id, epoch));
            }
            self.leaders.insert(h, (id, epoch, members));
        }
    }

    /// Members of leader `h`'s partition that another partition's leader also claims.
    fn double_claims(&self, h: u32) -> Vec<String> {
        let Some((id, epoch, members)) = self.leaders.get(&h) else {
            return Vec::new();
        };
        let mut found = Vec::new();
        for m in members {
            for &(other, oid, oepoch) in self.claims.get(&m.0).into_iter().flatten() {
                if other != h && oid != *id {
                    found.push(format!(
                        "host {m} in two partitions: {id} (leader n{h}) and {oid} (leader n{other})"
                    ));
                } else if other != h && oepoch == *epoch {
                    found.push(format!(
                        "host {m} held by two leaders of {id} at epoch {epoch}: n{h} and n{other}"
                    ));
                }
            }
        }
        found
    }

    /// True while some node holds partition `p`.
    pub(crate) fn is_alive(&self, p: PartitionId) -> bool {
        self.alive.get(&p).is_some_and(|a| a.holders > 0)
    }

    pub(crate) fn alive_partitions(&self) -> usize {
        self.alive.values().filter(|a| a.holders > 0).count()
    }

    /// Hosts whose node is in a partition.
    pub(crate) fn hosts_in_partition(&self) -> Vec<u32> {
        self.node_part.keys().copied().collect()
    }

    fn sweep(&mut self, now: Time, out: &mut Vec<String>) {
        let base = self.base_bound;
        for (p, a) in &mut self.alive {
            if a.holders > 0 && !a.flagged && now.saturating_since(a.first_seen) > base + a.extra {
                a.flagged = true;
                out.push(format!(
                    "partition {p} alive since {} beyond its bound of {:?}",
                    a.first_seen,
                    base + a.extra
                ));
            }
        }
    }
}

impl Checker {
    /// Host `h`'s node is in partition `view` now (or in none).
    fn refresh(&mut self, h: usize, view: Option<&NodeView>, now: Time) {
        let hu = h as u32;
        match view {
            Some((id, epoch, leader, members)) => {
                self.set_part(hu, Some(*id), now);
                let claim = (*leader == NodeId(h as u64)).then(|| (*id, *epoch, members.clone()));
                self.set_leader(hu, claim);
            }
            None => {
                self.set_part(hu, None, now);
                self.set_leader(hu, None);
            }
        }
    }
}

/// Invariant 3: `cmd` from host `h` must stay within its own partition `view`, at its epoch.
fn migrate_errors(
    h: usize,
    cmd: &dvms_core::MigrationCmd,
    view: Option<&NodeView>,
) -> Option<String> {
    let ok = view.is_some_and(|(id, epoch, _, members)| {
        *id == cmd.partition && *epoch == cmd.epoch && members.contains(&cmd.to)
    });
    (!ok).then(|| {
        format!(
            "n{h} migrates {} to {} outside its partition {} at epoch {}",
            cmd.vm, cmd.to, cmd.partition, cmd.epoch
        )
    })
}

impl Observer for Checker {
    fn observe(&mut self, sim: &Sim, seen: &Seen<'_>, out: &mut Vec<String>) {
        let now = sim.now;
        match seen {
            Seen::Tick => self.sweep(now, out),
            Seen::Moved { vm, from, to } => self.move_errors(sim, *vm, *from, *to, out),
            Seen::Plan { problem, plan } => out.extend(plan_errors(problem, plan)),
            Seen::Node { host, view } => self.refresh(*host, view.as_ref(), now),
            Seen::Solve { host } => out.extend(self.double_claims(*host as u32)),
            Seen::Migrate { host, cmd, view } => {
                out.extend(migrate_errors(*host, cmd, view.as_ref()));
            }
            Seen::Reserve {
                migration,
                vm,
                dest,
            } => {
                self.note_reservation(sim, *migration, *vm, *dest);
            }
            Seen::Lengthened { partition, by } => self.extend_bound(*partition, *by),
            Seen::Gone { host } => self.node_gone(*host),
            Seen::End => out.extend(placement_errors(sim)),
        }
    }

    fn quiet(&self) -> bool {
        self.alive_partitions() == 0
    }

    fn partition_alive(&self, p: PartitionId) -> bool {
        self.is_alive(p)
    }

    fn hosts_in_partition(&self) -> Vec<u32> {
        Checker::hosts_in_partition(self)
    }
}

impl Checker {
    /// A source asks `dest` to reserve room for VM `vm`: remember the loads the destination will
    /// judge its room on (the first request of a migration counts).
    fn note_reservation(&mut self, sim: &Sim, migration: MigrationId, vm: u64, dest: usize) {
        let Some(v) = usize::try_from(vm).ok().filter(|&v| v < sim.vms.len()) else {
            return;
        };
        let vu = v as u32;
        if self
            .reservations
            .get(&vu)
            .is_some_and(|r| r.migration == migration)
        {
            return;
        }
        let dest_cpu = sim.hosts[dest]
            .vms
            .iter()
            .map(|&u| (u, sim.vms[u as usize].cpu))
            .collect();
        let r = Reserved {
            migration,
            dest,
            vm_cpu: sim.vms[v].cpu,
            dest_cpu,
        };
        self.reservations.insert(vu, r);
    }

    /// The CPU host `to` holds after VM `v` arrived, with every load as the destination judged it
    /// when `v`'s reservation was asked; `None` when `v` came without a checked reservation.
    fn planned_cpu(&mut self, sim: &Sim, v: usize, to: usize) -> Option<u64> {
        let vu = v as u32;
        let r = self.reservations.remove(&vu).filter(|r| r.dest == to)?;
        self.arrived_cpu.insert(vu, r.vm_cpu);
        let total = sim.hosts[to]
            .vms
            .iter()
            .map(|&u| {
                if u == vu {
                    r.vm_cpu
                } else if let Some(&c) = r.dest_cpu.get(&u) {
                    c
                } else {
                    self.arrived_cpu
                        .get(&u)
                        .copied()
                        .unwrap_or(sim.vms[u as usize].cpu)
                }
            })
            .fold(0u64, u64::saturating_add);
        Some(total)
    }
}

/// The ways a plan breaks capacity against its problem (empty when safe).
pub(crate) fn plan_errors(problem: &Problem, plan: &Plan) -> Vec<String> {
    let mut errs = Vec::new();
    let idx: BTreeMap<NodeId, usize> = problem
        .hosts
        .iter()
        .enumerate()
        .map(|(i, h)| (h.id, i))
        .collect();
    let mut cpu = vec![0u64; problem.hosts.len()];
    let mut mem = vec![0u64; problem.hosts.len()];
    let mut at: BTreeMap<_, (usize, dvms_core::model::Resources)> = BTreeMap::new();
    for v in &problem.vms {
        if let Some(&i) = idx.get(&v.host) {
            cpu[i] += v.demand.cpu_milli;
            mem[i] += v.demand.mem_mib;
            at.insert(v.id, (i, v.demand));
        }
    }
    let cpu0 = cpu.clone();
    for (s, step) in plan.steps.iter().enumerate() {
        // During the step, arriving VMs are on both hosts.
        let mut mem_during = mem.clone();
        let mut moves = Vec::new();
        for m in step {
            let (Some(&src), Some(&dst)) = (idx.get(&m.from), idx.get(&m.to)) else {
                errs.push(format!(
                    "plan step {s} moves {} between hosts outside the problem",
                    m.vm
                ));
                continue;
            };
            match at.get(&m.vm) {
                Some(&(cur, d)) if cur == src => {
                    mem_during[dst] += d.mem_mib;
                    moves.push((m.vm, src, dst, d));
                }
                _ => errs.push(format!(
                    "plan step {s} moves {} from {}, where it is not",
                    m.vm, m.from
                )),
            }
        }
        for (i, h) in problem.hosts.iter().enumerate() {
            if mem_during[i] > mem[i] && mem_during[i] > h.limit().mem_mib {
                errs.push(format!(
                    "plan step {s} puts {} MiB on {} (limit {} MiB)",
                    mem_during[i],
                    h.id,
                    h.limit().mem_mib
                ));
            }
        }
        for (vm, src, dst, d) in moves {
            cpu[src] -= d.cpu_milli;
            mem[src] -= d.mem_mib;
            cpu[dst] += d.cpu_milli;
            mem[dst] += d.mem_mib;
            at.insert(vm, (dst, d));
        }
    }
    for (i, h) in problem.hosts.iter().enumerate() {
        let lim = h.limit().cpu_milli;
        if cpu[i] > lim && cpu[i] > cpu0[i] {
            errs.push(format!(
                "plan leaves {} at {} milli-CPU (limit {lim}, {} before)",
                h.id, cpu[i], cpu0[i]
            ));
        }
    }
    errs
}

impl Checker {
    /// Invariants 2 and 4 after VM `v` moved from `from` to `to`.
    fn move_errors(&mut self, sim: &Sim, v: usize, from: usize, to: usize, out: &mut Vec<String>) {
        let vu = v as u32;
        let on_to = sim.hosts[to].vms.iter().filter(|&&x| x == vu).count();
        let on_from = sim.hosts[from].vms.iter().filter(|&&x| x == vu).count();
        if on_to != 1 || on_from != 0 {
            out.push(format!(
                "vm{v} on n{to} {on_to} times and on n{from} {on_from} times after its move"
            ));
        }
        let dst = &sim.hosts[to];
        if dst.mem > dst.capacity.mem_mib {
            let (m, c) = (dst.mem, dst.capacity.mem_mib);
            out.push(format!(
                "n{to} holds {m} MiB after receiving vm{v} (capacity {c} MiB)"
            ));
        }
        let limit = dvms_core::model::scale_pct(
            sim.hosts[to].capacity.cpu_milli,
            sim.cfg.protocol.thresholds.cpu_pct,
        );
        if let Some(cpu) = self.planned_cpu(sim, v, to).filter(|&c| c > limit) {
            out.push(format!(
                "a plan put n{to} at {cpu} milli-CPU with vm{v} (limit {limit}, loads as reserved)"
            ));
        }
    }
}

/// Invariant 2 over the whole cluster (end of run).
fn placement_errors(sim: &Sim) -> Vec<String> {
    let mut seen = vec![0u32; sim.vms.len()];
    let mut bad = Vec::new();
    for (h, host) in sim.hosts.iter().enumerate() {
        for &v in &host.vms {
            seen[v as usize] += 1;
            if sim.vms[v as usize].host as usize != h {
                bad.push(format!(
                    "vm{v} listed on n{h} but placed on n{}",
                    sim.vms[v as usize].host
                ));
            }
        }
    }
    for (v, &n) in seen.iter().enumerate() {
        if n != 1 {
            bad.push(format!("vm{v} on {n} hosts"));
        }
    }
    bad
}

#[cfg(test)]
mod tests {
    use super::*;
    use dvms_core::model::{HostSpec, Migration, Resources, Thresholds, VmId, VmSpec};

    fn problem() -> Problem {
        let host = |i| HostSpec {
            id: NodeId(i),
            capacity: Resources::new(2000, 2048),
            thresholds: Thresholds::default(),
        };
        let vm = |i, h, cpu| VmSpec {
            id: VmId(i),
            host: NodeId(h),
            demand: Resources::new(cpu, 1024),
            migratable: true,
        };
        Problem {
            hosts: vec![host(1), host(2)],
            vms: vec![vm(1, 1, 1500), vm(2, 1, 1000), vm(3, 2, 500)],
            constraints: vec![],
        }
    }

    fn mv(vm: u64, from: u64, to: u64) -> Migration {
        Migration {
            vm: VmId(vm),
            from: NodeId(from),
            to: NodeId(to),
            mem_mib: 1024,
        }
    }

    #[test]
    fn a_host_claimed_by_two_leaders_is_caught() {
        let mut c = Checker::new(&dvms_core::Config::default());
        let p = |i| PartitionId {
            initiator: NodeId(i),
            seq: 1,
        };
        let e = |term, leader| Epoch {
            term,
            leader: NodeId(leader),
        };
        c.set_leader(
            1,
            Some((p(1), e(1, 1), vec![NodeId(1), NodeId(2), NodeId(3)])),
        );
        c.set_leader(5, Some((p(5), e(0, 5), vec![NodeId(5), NodeId(6)])));
        assert!(c.double_claims(1).is_empty());
        // The same id led by two hosts at different epochs (a deposed leader that has not heard
        // yet) is not two partitions: the older one is fenced.
        c.set_leader(
            2,
            Some((p(1), e(2, 2), vec![NodeId(1), NodeId(2), NodeId(3)])),
        );
        assert!(c.double_claims(1).is_empty());
        // At the same epoch it is a fork.
        c.set_leader(
            2,
            Some((p(1), e(1, 1), vec![NodeId(1), NodeId(2), NodeId(3)])),
        );
        assert_eq!(c.double_claims(1).len(), 3, "{:?}", c.double_claims(1));
        c.node_gone(2);
        c.set_leader(
            5,
            Some((p(5), e(0, 5), vec![NodeId(5), NodeId(6), NodeId(3)])),
        );
        let found = c.double_claims(1);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("host n3"), "{found:?}");
        c.node_gone(5);
        assert!(c.double_claims(1).is_empty());
    }

    #[test]
    fn safe_plan_passes() {
        let plan = Plan {
            steps: vec![vec![mv(2, 1, 2)]],
        };
        assert!(plan_errors(&problem(), &plan).is_empty());
    }

    #[test]
    fn plan_overflowing_memory_or_cpu_is_caught() {
        let plan = Plan {
            steps: vec![vec![mv(1, 1, 2), mv(2, 1, 2)]],
        };
        let errs = plan_errors(&problem(), &plan);
        assert!(errs.iter().any(|e| e.contains("MiB")), "{errs:?}");
        assert!(errs.iter().any(|e| e.contains("milli-CPU")), "{errs:?}");
        let ghost = Plan {
            steps: vec![vec![mv(3, 1, 2)]],
        };
        assert!(!plan_errors(&problem(), &ghost).is_empty());
    }
}
