//! A constructive first plan for tight partitions (issue 11): ejection chains.
//!
//! On a nearly full partition the greedy repair often finds no room for what it evicts, and
//! the searches may spend their whole slice before a first plan. The cheapest plans there are
//! usually short chains: a VM leaves an overloaded host for a host that first sends one of its
//! own VMs to a third host. This construction builds such a placement greedily. From the
//! current placement, while a host is over its limits (or holds a VM its constraints do not
//! allow there), it takes the host with the largest excess and applies the move that removes
//! the most of that excess per MiB moved: one of its VMs to a host with room (a direct move),
//! or to a host that makes room by sending one of its own VMs to a third host (a chain of
//! two, the third host with the most free room). Every VM moves at most once, each move is
//! safe when made (its destination has room then) and strictly lowers the excess, so a run
//! ends within `V` moves. The result is kept only when every host is within its limits and
//! every constraint holds; its plan comes from the usual plan builder (or, without group
//! constraints, from the construction's own safe order grouped into steps) and is validated
//! like any other. When nothing else is found for a host that holds a VM its domain bans
//! there, a chain through that host itself is tried (it sends a VM away, takes the
//! destination's VM, whose departure makes room for the banned one). [`construct_all`]
//! repeats the run with detours (a limited discrepancy search). Deterministic: ties go to the lowest indices. A run costs about `k^2 H` units per
//! move (`k` VMs per host, `H` hosts).

use dvms_core::model::Plan;

use crate::greedy::free_score;
use crate::model::{Model, NONE, State};
use crate::plan;
use crate::work::Work;

/// Weight of a VM that must leave its host because of its domain, in the excess of a host
/// (above any capacity excess, which is at most 2,000,000 per resource fraction unit below).
const FORCED: u64 = 1 << 40;

/// A candidate move: `a` to `to`, after the `chain` moves (VM, destination; in order, if any)
/// made room there.
#[derive(Clone, Copy, Debug)]
struct Move {
    a: usize,
    to: usize,
    chain: [Option<(usize, usize)>; 2],
    gain: u64,
    cost: u64,
}

impl Move {
    /// True when `self` removes more excess per MiB than `o` (cross-multiplied), then is
    /// cheaper.
    fn better(&self, o: &Move) -> bool {
        let l = u128::from(self.gain) * u128::from(o.cost.max(1));
        let r = u128::from(o.gain) * u128::from(self.cost.max(1));
        l > r || (l == r && self.cost < o.cost)
    }
}

/// How far host `h` is over its limits: capacity excess as millionths of each limit, plus
/// [`FORCED`] per movable VM still on `h` that its domain does not allow there.
fn excess(m: &Model, st: &State, h: usize) -> u64 {
    let host = &m.hosts[h];
    let frac = |used: u64, limit: u64| {
        used.saturating_sub(limit)
            .saturating_mul(1_000_000)
            .checked_div(limit)
            .unwrap_or(if used > limit { 1_000_000 } else { 0 })
    };
    let forced = m.host_vms[h]
        .iter()
        .filter(|&&v| st.at[v] == h && !m.vms[v].pinned && !m.allowed(v, h))
        .count() as u64;
    frac(st.cpu[h], host.cpu_limit)
        .saturating_add(frac(st.mem[h], host.mem_limit))
        .saturating_add(forced.saturating_mul(FORCED))
}

/// Alternatives tried at each move by [`construct_all`] (the best move's runners-up) when
/// there is no plan yet, and when there is one (then the chains only improve it, and more
/// detours cost the 8-host drains 17 % more work for no gain).
const DETOUR_RANKS: usize = 6;
const DETOUR_RANKS_WITH_PLAN: usize = 3;

/// Runs [`construct`], then again with one detour (at one move, the second, third... best
/// move instead of the best: a limited discrepancy search), then, while no plan is found, with
/// two detours, while the budget lasts; passes every plan found to `offer`.
pub(crate) fn construct_all(
    m: &Model,
    max_per_host: usize,
    have_plan: bool,
    work: &mut Work,
    offer: &mut dyn FnMut(Plan, &Work),
) {
    let ranks = if have_plan {
        DETOUR_RANKS_WITH_PLAN
    } else {
        DETOUR_RANKS
    };
    let found = std::cell::Cell::new(false);
    let mut try_run = |detours: &[(usize, usize)], work: &mut Work| -> usize {
        let (plan, moves) = run(m, max_per_host, work, detours);
        if let Some(p) = plan {
            found.set(true);
            offer(p, work);
        }
        moves
    };
    let moves = try_run(&[], work);
    // One detour at each move of the greedy run (and one past its end, where it got stuck).
    let mut firsts = Vec::new();
    for depth in 0..=moves {
        for rank in 1..=ranks {
            if work.exhausted() {
                return;
            }
            let m1 = try_run(&[(depth, rank)], work);
            firsts.push((depth, rank, m1));
        }
    }
    // Two detours, the second after the first, only while nothing is found.
    for &(d1, r1, m1) in &firsts {
        for d2 in d1 + 1..=m1 {
            for r2 in 1..=ranks {
                if found.get() || work.exhausted() {
                    return;
                }
                try_run(&[(d1, r1), (d2, r2)], work);
            }
        }
    }
}

/// Builds a placement by ejection chains and its plan; None when it gets stuck, the
/// placement breaks a constraint, no plan reaches it or the budget runs out.
#[cfg(test)]
fn construct(m: &Model, max_per_host: usize, work: &mut Work) -> Option<Plan> {
    run(m, max_per_host, work, &[]).0
}

/// Inserts `mv` into `top` (best first), keeping at most `k`.
fn keep_top(top: &mut Vec<Move>, k: usize, mv: Move) {
    let at = top.iter().position(|o| mv.better(o)).unwrap_or(top.len());
    if at < k {
        top.insert(at, mv);
        top.truncate(k);
    }
}

/// [`construct`], taking at move `d` the move of rank `r` (0: the best) for each `(d, r)` of
/// `detours`; also returns how many moves were made.
fn run(
    m: &Model,
    max_per_host: usize,
    work: &mut Work,
    detours: &[(usize, usize)],
) -> (Option<Plan>, usize) {
    let mut moves = 0;
    let plan = run_inner(m, max_per_host, work, detours, &mut moves);
    (plan, moves)
}

fn run_inner(
    m: &Model,
    max_per_host: usize,
    work: &mut Work,
    detours: &[(usize, usize)],
    moves: &mut usize,
) -> Option<Plan> {
    let n = m.hosts.len();
    // Nothing to gain without room for at least a first round.
    if work.left() < 2 * (n + m.vms.len()) as u64 {
        return None;
    }
    let mut st = State::new(m);
    for (v, vm) in m.vms.iter().enumerate() {
        st.place(m, v, vm.host);
    }
    if !work.tick((n + m.vms.len()) as u64) {
        return None;
    }
    // Per VM, the best third host for it this round (None: none), computed on demand.
    let mut via: Vec<Option<Option<usize>>> = vec![None; m.vms.len()];
    let mut touched: Vec<usize> = Vec::new();
    // The moves in the order made: each was safe when made (its destination had room).
    let mut order: Vec<usize> = Vec::new();
    for depth in 0..m.vms.len() {
        *moves = depth;
        let rank = detours
            .iter()
            .find(|&&(d, _)| d == depth)
            .map_or(0, |&(_, r)| r);
        let k = rank + 1;
        if !work.tick(n as u64) {
            return None;
        }
        let ex: Vec<u64> = (0..n).map(|h| excess(m, &st, h)).collect();
        let Some(x) = (0..n)
            .filter(|&h| ex[h] > 0)
            .max_by_key(|&h| (ex[h], n - h))
        else {
            break;
        };
        for &b in &touched {
            via[b] = None;
        }
        touched.clear();
        // The best moves, best first (the best only, except at the detour).
        let mut top: Vec<Move> = Vec::with_capacity(k + 1);
        let residents: Vec<usize> = m.host_vms[x]
            .iter()
            .copied()
            .filter(|&a| st.at[a] == x && !m.vms[a].pinned)
            .collect();
        for &a in &residents {
            st.unplace(m, a);
            let gain = ex[x].saturating_sub(excess(m, &st, x));
            if gain == 0 {
                st.place(m, a, x);
                continue;
            }
            for y in (0..n).filter(|&y| y != x) {
                if !work.tick(1) {
                    st.place(m, a, x);
                    return None;
                }
                if !m.allowed(a, y) {
                    continue;
                }
                let direct = Move {
                    a,
                    to: y,
                    chain: [None; 2],
                    gain,
                    cost: m.vms[a].mem,
                };
                if top.len() == k && !direct.better(&top[k - 1]) {
                    continue;
                }
                if st.can_place(m, a, y) {
                    keep_top(&mut top, k, direct);
                    continue;
                }
                // A chain: some VM of `y` leaves for a third host first.
                for &b in &m.host_vms[y] {
                    if st.at[b] != y || m.vms[b].pinned || b == a {
                        continue;
                    }
                    let mv = Move {
                        a,
                        to: y,
                        chain: [None; 2],
                        gain,
                        cost: m.vms[a].mem.saturating_add(m.vms[b].mem),
                    };
                    if top.len() == k && !mv.better(&top[k - 1]) {
                        continue;
                    }
                    if !work.tick(1) || work.left() < n as u64 {
                        break;
                    }
                    st.unplace(m, b);
                    let fits = st.can_place(m, a, y);
                    st.place(m, b, y);
                    if !fits {
                        continue;
                    }
                    let z = *via[b].get_or_insert_with(|| {
                        touched.push(b);
                        work.tick(n as u64);
                        (0..n)
                            .filter(|&z| z != x && z != y && st.can_place(m, b, z))
                            .max_by_key(|&z| (free_score(m, &st, z), n - z))
                    });
                    if let Some(z) = z {
                        let chain = [Some((b, z)), None];
                        keep_top(&mut top, k, Move { chain, ..mv });
                    }
                }
            }
            st.place(m, a, x);
            if work.exhausted() {
                return None;
            }
        }
        // Only for a VM its domain bans from `x`: on capacity excess, the scan (`k^3 H^2` for
        // `k` VMs per host) cost the detours more than it found (nearly full 16 hosts: 25
        // solved instead of 27).
        if top.len() <= rank && ex[x] >= FORCED {
            through_home(m, &mut st, x, ex[x], &residents, k, &mut top, work);
        }
        let mv = *top.get(rank)?;
        for (b, z) in mv.chain.into_iter().flatten() {
            st.unplace(m, b);
            st.place(m, b, z);
            order.push(b);
        }
        st.unplace(m, mv.a);
        st.place(m, mv.a, mv.to);
        order.push(mv.a);
        *moves = depth + 1;
    }
    if !viable(m, &mut st, work) {
        return None;
    }
    match plan::build(m, &st.at, max_per_host, work) {
        Ok(p) => Some(p),
        // The construction's own order is safe for capacity and domains; the builder's rules
        // for groups during a plan are not re-checked here, so only without groups.
        Err(plan::PlanFail::NoPivot) if m.groups.is_empty() => {
            Some(plan::group(m, &st.at, max_per_host.max(1), &order))
        }
        Err(_) => None,
    }
}

/// Chains through the relieved host itself, tried only when nothing else is found: `x`
/// sends a VM `c` to a host `w` with room, which makes room on `x` for a VM `b` of `y`, whose
/// departure makes room on `y` for `a` of `x` (for example a VM banned from `x` whose
/// destinations are all full). Candidates go into `top` (see [`keep_top`]).
#[allow(clippy::too_many_arguments)]
fn through_home(
    m: &Model,
    st: &mut State,
    x: usize,
    ex_x: u64,
    residents: &[usize],
    k: usize,
    top: &mut Vec<Move>,
    work: &mut Work,
) {
    let n = m.hosts.len();
    for &a in residents {
        for y in (0..n).filter(|&y| y != x && m.allowed(a, y)) {
            let on_y: Vec<usize> = m.host_vms[y]
                .iter()
                .copied()
                .filter(|&b| st.at[b] == y && !m.vms[b].pinned && m.allowed(b, x))
                .collect();
            for b in on_y {
                if !work.tick(1) {
                    return;
                }
                st.unplace(m, b);
                st.unplace(m, a);
                let a_fits = st.can_place(m, a, y);
                st.place(m, a, x);
                if a_fits {
                    for &c in residents.iter().filter(|&&c| c != a) {
                        if !work.tick(n as u64) {
                            break;
                        }
                        st.unplace(m, c);
                        // `b` arrives while `a` is still on `x`.
                        let w = st.can_place(m, b, x).then(|| {
                            (0..n)
                                .filter(|&w| w != x && w != y && st.can_place(m, c, w))
                                .max_by_key(|&w| (free_score(m, st, w), n - w))
                        });
                        // The excess of `x` once `c` and `a` left and `b` arrived.
                        st.unplace(m, a);
                        st.place(m, b, x);
                        let gain = ex_x.saturating_sub(excess(m, st, x));
                        st.unplace(m, b);
                        st.place(m, a, x);
                        st.place(m, c, x);
                        if let Some(Some(w)) = w
                            && gain > 0
                        {
                            let mv = Move {
                                a,
                                to: y,
                                chain: [Some((c, w)), Some((b, x))],
                                gain,
                                cost: m.vms[a].mem + m.vms[b].mem + m.vms[c].mem,
                            };
                            keep_top(top, k, mv);
                        }
                    }
                }
                st.place(m, b, y);
            }
        }
    }
}

/// True when every host is within its limits, every movable VM is where its domain allows
/// and every group constraint holds in the complete placement `st`.
fn viable(m: &Model, st: &mut State, work: &mut Work) -> bool {
    if !work.tick((m.hosts.len() + m.vms.len()) as u64) {
        return false;
    }
    let hosts_ok = m
        .hosts
        .iter()
        .enumerate()
        .all(|(h, host)| st.cpu[h] <= host.cpu_limit && st.mem[h] <= host.mem_limit);
    if !hosts_ok {
        return false;
    }
    for v in 0..m.vms.len() {
        let h = st.at[v];
        if h == NONE || (!m.vms[v].pinned && !m.allowed(v, h)) {
            return false;
        }
        // A pinned member may break a group; the movable members must not (see the crate
        // documentation), which their own checks cover.
        if m.vm_groups[v].is_empty() || m.vms[v].pinned {
            continue;
        }
        st.unplace(m, v);
        let ok = st.group_blocks(m, v, h).is_none();
        st.place(m, v, h);
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use dvms_core::model::{
        Constraint, HostSpec, NodeId, Problem, Resources, Thresholds, VmId, VmSpec,
    };

    use super::*;

    /// Hosts of 1000 milli and 8 GiB; VMs as (host, cpu, mem).
    fn model(vms: &[(u64, u64, u64)]) -> Model {
        let p = Problem {
            hosts: (0..3)
                .map(|i| HostSpec {
                    id: NodeId(i),
                    capacity: Resources::new(1000, 8192),
                    thresholds: Thresholds::default(),
                })
                .collect(),
            vms: vms
                .iter()
                .enumerate()
                .map(|(i, &(h, cpu, mem))| VmSpec {
                    id: VmId(i as u64),
                    host: NodeId(h),
                    demand: Resources::new(cpu, mem),
                    migratable: true,
                })
                .collect(),
            constraints: vec![],
        };
        Model::compile(&p).expect("valid")
    }

    #[test]
    fn a_chain_makes_room_where_no_direct_move_fits() {
        // h0 is 100 over; no host has room for either of its VMs. h1 makes room by sending
        // its 400 to h2 first: 256 + 1024 MiB, the only plan.
        let m = model(&[
            (0, 500, 1024),
            (0, 600, 2048),
            (1, 400, 256),
            (1, 500, 4096),
            (2, 600, 1024),
        ]);
        let violating = m.violating_hosts();
        assert_eq!(violating, vec![0]);
        let movable = vec![true; m.vms.len()];
        let mut work = Work::new(1_000_000);
        assert!(
            crate::greedy::repair_and_plan(&m, &movable, &violating, 2, &mut work).is_err(),
            "the greedy repair finds no plan here"
        );
        let plan = construct(&m, 2, &mut work).expect("a chain");
        assert_eq!((plan.moved_mib(), plan.migrations().count()), (1280, 2));
        let order: Vec<(VmId, NodeId)> = plan.migrations().map(|g| (g.vm, g.to)).collect();
        assert_eq!(order, vec![(VmId(2), NodeId(2)), (VmId(0), NodeId(1))]);
    }

    #[test]
    fn a_chain_through_the_relieved_host() {
        // v0 is banned from h0 (and h2, h3); only h1 may take it, once v2 leaves; v2 fits
        // nowhere but h0, once h0 sent v1 to h3. The others are pinned. (The last
        // `BudgetExhausted` of the constrained 4-host benchmark row had this shape.)
        let host = |i| HostSpec {
            id: NodeId(i),
            capacity: Resources::new(1000, 8192),
            thresholds: Thresholds::default(),
        };
        let vm = |i, h, cpu, migratable| VmSpec {
            id: VmId(i),
            host: NodeId(h),
            demand: Resources::new(cpu, 1024),
            migratable,
        };
        let p = Problem {
            hosts: (0..4).map(host).collect(),
            vms: vec![
                vm(0, 0, 400, true),
                vm(1, 0, 500, true),
                vm(2, 1, 600, true),
                vm(3, 1, 300, false),
                vm(4, 2, 800, false),
                vm(5, 3, 500, false),
            ],
            constraints: vec![Constraint::Ban {
                vms: vec![VmId(0)],
                hosts: vec![NodeId(0), NodeId(2), NodeId(3)],
            }],
        };
        let m = Model::compile(&p).expect("valid");
        let plan = construct(&m, 2, &mut Work::new(1_000_000)).expect("a chain");
        let order: Vec<(VmId, NodeId)> = plan.migrations().map(|g| (g.vm, g.to)).collect();
        assert_eq!(
            order,
            vec![
                (VmId(1), NodeId(3)),
                (VmId(2), NodeId(0)),
                (VmId(0), NodeId(1))
            ]
        );
        assert_eq!(crate::validate_plan(&p, &plan, 2), Ok(()));
    }

    #[test]
    fn no_chain_when_nothing_can_make_room() {
        // As above, but h2 has no room for h1's 400: no chain of two exists.
        let m = model(&[
            (0, 500, 1024),
            (0, 600, 2048),
            (1, 400, 256),
            (1, 500, 4096),
            (2, 700, 1024),
        ]);
        assert!(construct(&m, 2, &mut Work::new(1_000_000)).is_none());
    }
}
