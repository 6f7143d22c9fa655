//! Neighbourhood searches of the full mode (issue 11, nearly full partitions).
//!
//! On a nearly full partition of many hosts, the search over every movable VM rarely finishes
//! a round and the packing search often finds no first plan, while the cheapest plan usually
//! touches only a few hosts. So before those searches, the iterative deepening
//! ([`search::deepening`]) runs exactly on small subproblems (neighbourhoods, each with a small
//! slice of the budget). Without an incumbent: the VMs of the violating hosts and of one
//! healthy host move (anywhere), every other VM stays; healthy hosts are tried alone, most
//! free room first, until a plan is found. With an incumbent (a large-neighbourhood search):
//! every pair of hosts among those its plan touches and those with the most room; the VMs
//! of the pair (and those the incumbent puts there) move, every other VM stays where the
//! incumbent puts it; again while the incumbent improves. The shared incumbent prunes every
//! subproblem. Plans come from the usual plan builder and are validated like any other; the
//! neighbourhoods depend only on the problem and the incumbent, so results are deterministic.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use crate::model::Model;
use crate::search::{self, Hood, Incumbent};
use crate::work::Work;

/// Share of the budget, in percent, for all the neighbourhood searches.
const SHARE_PCT: u64 = 60;

/// Share of the budget, in percent, for one neighbourhood of the violating hosts and one other.
const EACH_PCT: u64 = 5;

/// Share of the budget, in percent, for one neighbourhood of two hosts around the incumbent.
const PAIR_PCT: u64 = 2;

/// Healthy hosts (most free room first) tried alone with the violating hosts.
const CANDIDATES: usize = 12;

/// Hosts (touched by the incumbent first, then by free room) whose pairs are tried.
const PAIR_HOSTS: usize = 12;

/// Runs the neighbourhood searches, improving `inc`.
pub(crate) fn run(
    m: &Model,
    violating: &[usize],
    max_per_host: usize,
    inc: &mut Incumbent,
    work: &mut Work,
) {
    let n = m.hosts.len();
    let mut is_violating = vec![false; n];
    for &h in violating {
        is_violating[h] = true;
    }
    let (mut cpu, mut mem) = (vec![0u64; n], vec![0u64; n]);
    for v in &m.vms {
        cpu[v.host] = cpu[v.host].saturating_add(v.cpu);
        mem[v.host] = mem[v.host].saturating_add(v.mem);
    }
    work.tick(n as u64);
    let mut healthy: Vec<usize> = (0..n).filter(|&h| !is_violating[h]).collect();
    healthy.sort_by_key(|&h| {
        let host = &m.hosts[h];
        (
            Reverse(host.cpu_limit.saturating_sub(cpu[h])),
            Reverse(host.mem_limit.saturating_sub(mem[h])),
            h,
        )
    });
    healthy.truncate(CANDIDATES);
    let mut all = work.slice(work.limit / 100 * SHARE_PCT);
    let each = work.limit / 100 * EACH_PCT;
    let each_pair = work.limit / 100 * PAIR_PCT;
    let try_hosts = |hosts: &[usize], base: &[usize], inc: &mut Incumbent, all: &mut Work| {
        let each = if base.is_empty() { each } else { each_pair };
        let mut free = vec![false; n];
        for &h in hosts {
            free[h] = true;
        }
        let hood = Hood { hosts: &free, base };
        let mut one = all.slice(each);
        search::deepening(m, violating, max_per_host, inc, Some(&hood), &mut one);
        all.used = one.used;
        !all.exhausted()
    };
    // Without an incumbent, the violating hosts with each healthy host alone, until a plan.
    for &h in &healthy {
        if inc.best.is_some() {
            break;
        }
        if !try_hosts(&[h], &[], inc, &mut all) {
            work.used = all.used;
            return;
        }
    }
    // Around the incumbent: every pair of hosts among those its plan touches and the
    // healthy ones with the most room, the others where the incumbent puts them; again
    // while it improves.
    let host_index: BTreeMap<_, _> = m.hosts.iter().enumerate().map(|(i, h)| (h.id, i)).collect();
    let vm_index: BTreeMap<_, _> = m.vms.iter().enumerate().map(|(i, v)| (v.id, i)).collect();
    work.tick((n + m.vms.len()) as u64);
    let mut last = None;
    while inc.cost().is_some() && inc.cost() != last {
        last = inc.cost();
        let Some((_, plan)) = &inc.best else {
            break;
        };
        let mut base: Vec<usize> = m.vms.iter().map(|v| v.host).collect();
        let mut hosts: Vec<usize> = Vec::new();
        for g in plan.migrations() {
            if let (Some(&v), Some(&to)) = (vm_index.get(&g.vm), host_index.get(&g.to)) {
                base[v] = to;
            }
            for id in [g.from, g.to] {
                if let Some(&h) = host_index.get(&id)
                    && !hosts.contains(&h)
                {
                    hosts.push(h);
                }
            }
        }
        work.tick(base.len() as u64);
        for &h in &healthy {
            if !hosts.contains(&h) {
                hosts.push(h);
            }
        }
        hosts.truncate(PAIR_HOSTS);
        for i in 0..hosts.len() {
            for j in i + 1..hosts.len() {
                if !try_hosts(&[hosts[i], hosts[j]], &base, inc, &mut all) {
                    work.used = all.used;
                    return;
                }
            }
        }
    }
    work.used = all.used;
}
