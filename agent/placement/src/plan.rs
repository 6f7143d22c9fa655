//! The plan builder: orders the migrations from the current to a target placement in steps.
//!
//! Every step is a set of migrations that may run in parallel: at each destination the VMs
//! still there plus the VMs arriving in the step fit (memory against the physical capacity, CPU
//! against the threshold limit), a source's resources are released only after the step, and
//! no host takes part in more than `max_per_host` migrations of a step. Steps are built
//! greedily; when nothing can run (every pending destination waits for a departure that itself
//! waits), one VM goes through a pivot host with room, at the cost of an extra migration.

use dvms_core::model::{Migration, Plan};

use crate::model::{Group, Model};
use crate::work::Work;

/// Why no plan was built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PlanFail {
    /// A dependency cycle with no pivot host.
    NoPivot,
    /// The work budget ran out.
    Budget,
}

/// Builds a plan from the model's current placement to `target` (a host index per VM).
pub(crate) fn build(
    m: &Model,
    target: &[usize],
    max_per_host: usize,
    work: &mut Work,
) -> Result<Plan, PlanFail> {
    let cap = max_per_host.max(1);
    let mut at: Vec<usize> = m.vms.iter().map(|v| v.host).collect();
    let mut cpu = vec![0u64; m.hosts.len()];
    let mut mem = vec![0u64; m.hosts.len()];
    for v in &m.vms {
        cpu[v.host] += v.cpu;
        mem[v.host] += v.mem;
    }
    let mut pending: Vec<usize> = (0..m.vms.len()).filter(|&v| target[v] != at[v]).collect();
    let mut pivoted = vec![false; m.vms.len()];
    let mut touches = vec![0usize; m.hosts.len()];
    let mut in_cpu = vec![0u64; m.hosts.len()];
    let mut in_mem = vec![0u64; m.hosts.len()];
    let mut plan = Plan::default();
    while !pending.is_empty() {
        let mut step: Vec<usize> = Vec::new();
        for &v in &pending {
            if !work.tick(1) {
                return Err(PlanFail::Budget);
            }
            let (a, b, vm) = (at[v], target[v], &m.vms[v]);
            if touches[a] < cap
                && touches[b] < cap
                && cpu[b] + in_cpu[b] + vm.cpu <= m.hosts[b].cpu_limit
                && mem[b] + in_mem[b] + vm.mem <= m.hosts[b].mem_cap
            {
                touches[a] += 1;
                touches[b] += 1;
                in_cpu[b] += vm.cpu;
                in_mem[b] += vm.mem;
                step.push(v);
            }
        }
        let moves: Vec<(usize, usize)> = if step.is_empty() {
            let Some((v, p)) = find_pivot(m, &pending, &pivoted, &at, target, &cpu, &mem, work)
            else {
                return Err(if work.exhausted() {
                    PlanFail::Budget
                } else {
                    PlanFail::NoPivot
                });
            };
            pivoted[v] = true;
            vec![(v, p)]
        } else {
            step.iter().map(|&v| (v, target[v])).collect()
        };
        let mut migrations = Vec::with_capacity(moves.len());
        for &(v, to) in &moves {
            let (from, vm) = (at[v], &m.vms[v]);
            touches[from] = 0;
            touches[to] = 0;
            in_cpu[to] = 0;
            in_mem[to] = 0;
            cpu[from] -= vm.cpu;
            mem[from] -= vm.mem;
            cpu[to] += vm.cpu;
            mem[to] += vm.mem;
            at[v] = to;
            migrations.push(Migration {
                vm: vm.id,
                from: m.hosts[from].id,
                to: m.hosts[to].id,
                mem_mib: vm.mem,
            });
        }
        plan.steps.push(migrations);
        pending.retain(|&v| at[v] != target[v]);
    }
    Ok(plan)
}

/// Picks a pending VM and a pivot host for it: the first pending VM (not pivoted before) with a
/// host that has room now, is in its domain and holds none of its spread peers; the host with
/// the most free room wins.
#[expect(
    clippy::too_many_arguments,
    reason = "internal helper over the builder's state"
)]
fn find_pivot(
    m: &Model,
    pending: &[usize],
    pivoted: &[bool],
    at: &[usize],
    target: &[usize],
    cpu: &[u64],
    mem: &[u64],
    work: &mut Work,
) -> Option<(usize, usize)> {
    for &v in pending {
        if pivoted[v] {
            continue;
        }
        let vm = &m.vms[v];
        let mut best: Option<(u64, usize)> = None;
        for (p, host) in m.hosts.iter().enumerate() {
            if !work.tick(1) {
                return None;
            }
            if p == at[v] || p == target[v] || !m.allowed(v, p) {
                continue;
            }
            if cpu[p] + vm.cpu > host.cpu_limit || mem[p] + vm.mem > host.mem_cap {
                continue;
            }
            let spread_peer_there = m.vm_groups[v].iter().any(|&gi| match &m.groups[gi].1 {
                Group::Spread { members } => members.iter().any(|&u| u != v && at[u] == p),
                _ => false,
            });
            if spread_peer_there {
                continue;
            }
            let free = (host.cpu_limit - cpu[p] - vm.cpu).min(host.mem_cap - mem[p] - vm.mem);
            if best.is_none_or(|(f, _)| free > f) {
                best = Some((free, p));
            }
        }
        if let Some((_, p)) = best {
            return Some((v, p));
        }
    }
    None
}
