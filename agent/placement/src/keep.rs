//! Which VMs of a host stay: the subset that fits the room and keeps the most memory (so the
//! least memory moves), then the most VMs (so the fewest migrations).
//!
//! A bounded knapsack over VM *types* (equal CPU and memory): identical VMs are chosen by
//! count, not one by one, which keeps VMPlaceS-like hosts (ten VMs, a few load levels) to a
//! handful of nodes. Depth first, larger memory first, pruned by the memory that can still be
//! kept (at most the remaining VMs' memory and the remaining room).

use crate::model::Model;
use crate::work::Work;

/// The chosen subset.
#[derive(Clone, Debug)]
pub(crate) struct Keep {
    /// Per candidate (in the caller's order), true when it stays.
    pub(crate) keep: Vec<bool>,
    /// The search finished within its node cap: the subset is optimal.
    pub(crate) exact: bool,
    /// Memory and count of the candidates that leave.
    pub(crate) evicted: (u64, u64),
}

/// One type of VM: its demand and the candidates (positions in the caller's list) of that type.
#[derive(Debug)]
struct Type {
    cpu: u64,
    mem: u64,
    members: Vec<usize>,
}

/// Chooses which of `cands` stay within `room_cpu`/`room_mem`, exploring at most `node_cap`
/// search nodes (each a work unit).
pub(crate) fn best_keep(
    m: &Model,
    cands: &[usize],
    room_cpu: u64,
    room_mem: u64,
    node_cap: u64,
    work: &mut Work,
) -> Keep {
    let mut order: Vec<usize> = (0..cands.len()).collect();
    order.sort_by_key(|&i| {
        let v = &m.vms[cands[i]];
        (std::cmp::Reverse(v.mem), v.cpu, i)
    });
    let mut types: Vec<Type> = Vec::new();
    for i in order {
        let v = &m.vms[cands[i]];
        match types.last_mut() {
            Some(t) if t.cpu == v.cpu && t.mem == v.mem => t.members.push(i),
            _ => types.push(Type {
                cpu: v.cpu,
                mem: v.mem,
                members: vec![i],
            }),
        }
    }
    let mut suffix = vec![(0u64, 0u64); types.len() + 1];
    for i in (0..types.len()).rev() {
        let t = &types[i];
        let n = t.members.len() as u64;
        suffix[i] = (suffix[i + 1].0 + t.mem * n, suffix[i + 1].1 + n);
    }
    // Types by decreasing memory per CPU, for the fractional (LP) bound.
    let mut by_ratio: Vec<usize> = (0..types.len()).collect();
    by_ratio.sort_by(|&a, &b| {
        let (ta, tb) = (&types[a], &types[b]);
        (u128::from(tb.mem) * u128::from(ta.cpu))
            .cmp(&(u128::from(ta.mem) * u128::from(tb.cpu)))
            .then(a.cmp(&b))
    });
    let mut s = Search {
        types: &types,
        by_ratio: &by_ratio,
        suffix: &suffix,
        counts: vec![0; types.len()],
        best: None,
        nodes: 0,
        node_cap,
        work,
    };
    s.run(0, room_cpu, room_mem, (0, 0));
    let exact = s.nodes <= s.node_cap && !s.work.exhausted();
    let best_counts = s
        .best
        .map(|(_, c)| c)
        .unwrap_or_else(|| vec![0; types.len()]);
    let mut keep = vec![false; cands.len()];
    for (t, &c) in types.iter().zip(&best_counts) {
        for &i in t.members.iter().take(c) {
            keep[i] = true;
        }
    }
    let evicted = cands
        .iter()
        .zip(&keep)
        .filter(|(_, k)| !**k)
        .fold((0, 0), |(mem, n), (&v, _)| (mem + m.vms[v].mem, n + 1));
    Keep {
        keep,
        exact,
        evicted,
    }
}

/// The depth-first search of [`best_keep`].
struct Search<'a> {
    types: &'a [Type],
    /// Type indices by decreasing memory per CPU.
    by_ratio: &'a [usize],
    /// Per type index, memory and count of that type and all later ones.
    suffix: &'a [(u64, u64)],
    counts: Vec<usize>,
    /// Best (kept memory, kept count) and its counts per type.
    best: Option<((u64, u64), Vec<usize>)>,
    nodes: u64,
    node_cap: u64,
    work: &'a mut Work,
}

impl Search<'_> {
    fn run(&mut self, i: usize, room_cpu: u64, room_mem: u64, kept: (u64, u64)) {
        if self.best.as_ref().is_none_or(|(b, _)| kept > *b) {
            self.best = Some((kept, self.counts.clone()));
        }
        if i == self.types.len() {
            return;
        }
        let more = self.suffix[i]
            .0
            .min(room_mem)
            .min(self.lp_memory(i, room_cpu));
        let bound = (kept.0 + more, kept.1 + self.suffix[i].1);
        if self.best.as_ref().is_some_and(|(b, _)| bound <= *b) {
            return;
        }
        self.nodes += 1;
        if self.nodes > self.node_cap || !self.work.tick(1) {
            return;
        }
        let t = &self.types[i];
        let fit = |room: u64, each: u64| {
            room.checked_div(each)
                .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX))
        };
        let most = t
            .members
            .len()
            .min(fit(room_cpu, t.cpu))
            .min(fit(room_mem, t.mem));
        for c in (0..=most).rev() {
            let n = c as u64;
            self.counts[i] = c;
            self.run(
                i + 1,
                room_cpu - t.cpu * n,
                room_mem - t.mem * n,
                (kept.0 + t.mem * n, kept.1 + n),
            );
            if self.nodes > self.node_cap || self.work.exhausted() {
                break;
            }
        }
        self.counts[i] = 0;
    }

    /// The most memory types `i..` can add within `room_cpu`, fractions allowed.
    fn lp_memory(&self, i: usize, room_cpu: u64) -> u64 {
        let (mut left, mut mem) = (room_cpu, 0u64);
        for &t in self.by_ratio.iter().filter(|&&t| t >= i) {
            let ty = &self.types[t];
            let n = ty.members.len() as u64;
            if ty.cpu * n <= left {
                left -= ty.cpu * n;
                mem += ty.mem * n;
            } else {
                let part = u128::from(ty.mem) * u128::from(left) / u128::from(ty.cpu);
                return mem + u64::try_from(part).unwrap_or(u64::MAX);
            }
        }
        mem
    }
}

#[cfg(test)]
mod tests {
    use dvms_core::model::{HostSpec, NodeId, Problem, Resources, Thresholds, VmId, VmSpec};

    use super::*;

    fn model(vms: &[(u64, u64)]) -> Model {
        let p = Problem {
            hosts: vec![HostSpec {
                id: NodeId(0),
                capacity: Resources::new(100_000, 100_000),
                thresholds: Thresholds::default(),
            }],
            vms: vms
                .iter()
                .enumerate()
                .map(|(i, &(cpu, mem))| VmSpec {
                    id: VmId(i as u64),
                    host: NodeId(0),
                    demand: Resources::new(cpu, mem),
                    migratable: true,
                })
                .collect(),
            constraints: vec![],
        };
        Model::compile(&p).expect("valid")
    }

    #[test]
    fn keeps_the_most_memory_then_the_most_vms() {
        // Room 7000: keeping 4000+2000 (mem 8192+1024) beats 4000+3000 (8192+512).
        let m = model(&[(4000, 8192), (3000, 512), (2000, 1024), (500, 512)]);
        let k = best_keep(&m, &[0, 1, 2, 3], 7000, 100_000, 1000, &mut Work::new(1000));
        assert!(k.exact);
        assert_eq!(k.keep, vec![true, false, true, true]);
        assert_eq!(k.evicted, (512, 1));
    }

    #[test]
    fn identical_vms_are_chosen_by_count() {
        let m = model(&vec![(600, 1024); 40]);
        let cands: Vec<usize> = (0..40).collect();
        let mut work = Work::new(1000);
        let k = best_keep(&m, &cands, 7000, 100_000, 1000, &mut work);
        assert!(k.exact);
        assert_eq!(k.keep.iter().filter(|&&x| x).count(), 11);
        assert!(work.used < 20, "{} nodes", work.used);
    }

    #[test]
    fn the_node_cap_makes_it_inexact_not_wrong() {
        let vms: Vec<(u64, u64)> = (0..30)
            .map(|i| (100 + 37 * i, 512 + 64 * (i % 7)))
            .collect();
        let m = model(&vms);
        let cands: Vec<usize> = (0..30).collect();
        let k = best_keep(&m, &cands, 7000, 6000, 5, &mut Work::new(1_000_000));
        assert!(!k.exact);
        let cpu: u64 = cands
            .iter()
            .filter(|&&i| k.keep[i])
            .map(|&i| vms[i].0)
            .sum();
        let mem: u64 = cands
            .iter()
            .filter(|&&i| k.keep[i])
            .map(|&i| vms[i].1)
            .sum();
        assert!(cpu <= 7000 && mem <= 6000);
    }
}
