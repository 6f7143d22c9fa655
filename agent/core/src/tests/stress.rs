//! Randomized stress test: many fixed seeds of small clusters under message loss, latency
//! jitter, crashes and restarts of hosts, random load changes and evacuations (with
//! consolidation on a third of the seeds and varying partition bounds), with safety invariants checked
//! after every event and liveness checked after a quiet period.
//!
//! Safety (after every event):
//! - every VM is on exactly one host, none lost or duplicated (VMs of crashed hosts stay there);
//! - every host's own belief is consistent: a leader's view names it as leader and holds it, a
//!   member's view holds it and names another host;
//! - exclusivity: a host `h` that believes it is a member of partition `P` is held by at most one
//!   live leader of `P` (a leader whose view has id `P` and holds `h`). Without message loss a
//!   stronger property holds: `h` is in the view of at most one live leader of any partition,
//!   once a lease has passed since `h` last restarted (its old leader counts it until its next
//!   renewal is answered with `Leave`, §7.5).
//!   With loss it cannot: a leader whose renewals are all lost is deposed by its initiator
//!   (§7.2) without knowing it, and a member whose lease ran out may join another partition
//!   before its old leader hears of it (§7.5). Neither can make `h` act, since every command is
//!   checked against `h`'s own view (§9.1);
//!   Reordering alone does not break it: a `Dissolve` or command that overtakes the `View`
//!   announcing a later epoch is taken at once (§7.6, §7.7), so half of the lossless seeds
//!   reorder their links too, the other half keep them in order;
//! - a source starts a migration only for the partition it believes it is in, towards a host
//!   in that partition's view (§9.1); without loss, a live destination believes so too (or, just
//!   after a merge, believes it is in the absorbed partition, whose view already names the same
//!   leader), unless it restarted within a lease (nothing tells the leader before its next
//!   renewal, §7.5).
//!
//! Liveness (after the chaos stops and a quiet period): no host is busy or migrating, no timer is
//! armed, the step cap did not trip, and every event a host started in its current life ended.

use std::collections::BTreeSet;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use super::cluster::{Chaos, Cluster};
use crate::model::NodeId;
use crate::output::Event;
use crate::{Config, Time};

const SEEDS: u64 = 300;
/// Seeds of the long, ignored run (`cargo test -p dvms-core --release -- --ignored`).
const MANY_SEEDS: u64 = 20_000;
/// Events allowed in the quiet period: far more than a calm cluster needs.
const QUIET_STEP_CAP: u64 = 50_000;

/// Prints the seed if the test panics while it is alive.
struct SeedGuard(u64);

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("stress test failed with seed {}", self.0);
        }
    }
}

fn below(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    rng.next_u64() % n.max(1)
}

/// Checks the safety invariants; `strict` adds those that hold only without message loss.
fn check_safety(c: &Cluster, vms: usize, strict: bool) {
    assert_eq!(c.placement().len(), vms, "a vm was lost");
    // Capacity, on every seed: no host ever holds more memory than it has, and no plan puts a
    // host over its CPU (loads that changed since the migration started excepted).
    let overfull = c.memory_overfull();
    if !overfull.is_empty() {
        dump(c);
    }
    assert!(overfull.is_empty(), "memory over capacity on {overfull:?}");
    if !c.capacity_violations.is_empty() {
        dump(c);
    }
    assert!(
        c.capacity_violations.is_empty(),
        "{:?}",
        c.capacity_violations
    );
    let live: Vec<_> = (0..c.size() as u64)
        .filter_map(|i| c.node(NodeId(i)))
        .collect();
    for n in &live {
        if let Some(v) = n.partition() {
            assert!(v.contains(n.id()), "{} not in its own view {v:?}", n.id());
            assert_eq!(v.leader == n.id(), n.is_leader(), "{}: {v:?}", n.id());
        }
    }
    let leaders: Vec<_> = live
        .iter()
        .filter(|n| n.is_leader())
        .filter_map(|n| n.partition())
        .collect();
    // Epochs, on every seed: two live leaders of one partition never share an epoch, and a
    // host is held by at most one leader of the leadership it follows (§7.6).
    for (i, a) in leaders.iter().enumerate() {
        for b in &leaders[i + 1..] {
            assert!(
                !(a.id == b.id && a.epoch == b.epoch),
                "two leaders of {} share epoch {}",
                a.id,
                a.epoch
            );
        }
    }
    for h in &live {
        let Some(mine) = h.partition() else {
            continue;
        };
        let same_epoch = leaders
            .iter()
            .filter(|l| l.id == mine.id && l.epoch == mine.epoch && l.contains(h.id()))
            .count();
        assert!(
            same_epoch <= 1,
            "{} held by {same_epoch} leaders of {}",
            h.id(),
            mine.epoch
        );
        let same_id = leaders
            .iter()
            .filter(|l| l.id == mine.id && l.contains(h.id()))
            .count();
        assert!(
            same_id <= 1 || !strict,
            "{} held by {same_id} leaders of {}",
            h.id(),
            mine.id
        );
        if strict && !c.restarted_recently(h.id().0) {
            let holders: Vec<_> = leaders.iter().filter(|l| l.contains(h.id())).collect();
            if holders.len() > 1 {
                dump(c);
            }
            assert!(holders.len() <= 1, "{} held by {holders:?}", h.id());
        }
    }
    if std::env::var("STRESS_TRACE").is_ok()
        && !(c.bad_migrations.is_empty() && (c.foreign_destinations.is_empty() || !strict))
    {
        for (t, who, e) in &c.events {
            if !matches!(e, Event::Ignored { .. }) {
                eprintln!("{t:?} {who} {e:?}");
            }
        }
    }
    assert!(c.bad_migrations.is_empty(), "{:?}", c.bad_migrations);
    if strict {
        assert!(
            c.foreign_destinations.is_empty(),
            "{:?}",
            c.foreign_destinations
        );
    }
}

/// Prints the events so far when `STRESS_TRACE` is set.
fn dump(c: &Cluster) {
    if std::env::var("STRESS_TRACE").is_ok() {
        for (t, who, e) in &c.events {
            if !matches!(e, Event::Ignored { .. }) || std::env::var("STRESS_TRACE_ALL").is_ok() {
                eprintln!("{t:?} {who} {e:?}");
            }
        }
    }
}

/// Runs events until `until`, checking safety after each one.
fn run_checked(c: &mut Cluster, until: Time, vms: usize, strict: bool) {
    while c.step_until(until) {
        check_safety(c, vms, strict);
    }
    c.now = until;
}

/// Calm loads: no evacuation, no host over 80 %, and (where a host has at most four VMs) no VM
/// under 20 %, so that no host is worth emptying when consolidation is on.
fn calm(c: &mut Cluster, rng: &mut ChaCha8Rng) {
    for h in 0..c.size() as u64 {
        c.set_draining(h, false);
        let k = c.hosts[h as usize].vms.len() as u64;
        for j in 0..k {
            let top = 800 / k;
            let cpu = if top >= 200 {
                200 + below(rng, top - 199)
            } else {
                top
            };
            c.set_load(h, j as usize, cpu);
        }
    }
}

fn run_seed(seed: u64) {
    let _guard = SeedGuard(seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0xD1B5);
    let n = 6 + below(&mut rng, 7);
    let loads: Vec<Vec<u64>> = (0..n)
        .map(|_| {
            let k = 2 + below(&mut rng, 3);
            (0..k).map(|_| 50 + below(&mut rng, 350)).collect()
        })
        .collect();
    let refs: Vec<&[u64]> = loads.iter().map(Vec::as_slice).collect();
    let vms: usize = loads.iter().map(Vec::len).sum();
    // Consolidation on a third of the seeds; partition bounds vary.
    let min = 2 + below(&mut rng, 2) as usize;
    let max = min + 1 + below(&mut rng, 6) as usize;
    // Cooldowns, backoff and the underload hold are scaled down to fit the 60 s quiet period:
    // a plan applied with loads from before the calm may pile cooling VMs on one host, which
    // must be fixable before the end.
    let cfg = Config {
        cooldown_base: Duration::from_secs(5),
        cooldown_max: Duration::from_secs(20),
        retry_backoff_max: Duration::from_secs(20),
        underload_hold: Duration::from_secs(10),
        underload_enabled: seed % 3 == 0,
        min_partition_size: min,
        max_partition_size: max,
        max_consolidation_size: max.min(8),
        ..Config::default()
    };
    // Memory is tight on a third of the seeds: 4.5 GiB hosts with 2–4 VMs of 1 GiB.
    let host_mib = if seed % 3 == 1 { 4608 } else { 10240 };
    let mut c = Cluster::with_memory(&refs, cfg, host_mib, 1024);
    // Even seeds run without message loss, where the strict invariants must hold.
    let lossy = seed % 2 == 1;
    let mut chaos = Chaos::new(seed);
    chaos.loss_permille = if lossy { 10 + below(&mut rng, 200) } else { 0 };
    chaos.jitter = Duration::from_millis(below(&mut rng, 40));
    chaos.unreachable_permille = 500;
    // Every other lossless seed, and every lossy one, reorders messages on a link (§7.6).
    chaos.fifo = !lossy && seed % 4 == 0;
    c.chaos = Some(chaos);
    c.migration_time = Duration::from_millis(100 + below(&mut rng, 3000));
    let strict = !lossy;
    let chaos_end = Time::from_secs(60 + below(&mut rng, 61));
    let mut down: BTreeSet<u64> = BTreeSet::new();
    while c.now < chaos_end {
        let next = c.now + Duration::from_millis(200 + below(&mut rng, 2800));
        run_checked(&mut c, next, vms, strict);
        match below(&mut rng, 10) {
            0 if (down.len() as u64) < n / 2 => {
                let h = below(&mut rng, n);
                if down.insert(h) {
                    c.crash(h);
                }
            }
            1 | 2 => {
                if let Some(&h) = down.iter().nth(below(&mut rng, down.len() as u64) as usize) {
                    down.remove(&h);
                    c.restart(h, rng.next_u64());
                }
            }
            3 => {
                // Operators start and cancel evacuations.
                let h = below(&mut rng, n);
                c.set_draining(h, rng.next_u64() % 2 == 0);
            }
            _ => {
                let h = below(&mut rng, n);
                let k = below(&mut rng, loads[h as usize].len() as u64) as usize;
                if c.hosts[h as usize].vms.len() > k {
                    c.set_load(h, k, 50 + below(&mut rng, 500));
                }
            }
        }
        check_safety(&c, vms, strict);
    }
    // The chaos stops: no more loss, every crashed host but one comes back, loads calm down.
    if let Some(ch) = c.chaos.as_mut() {
        ch.loss_permille = 0;
        // The overlay notices hosts that stay down.
        ch.unreachable_permille = 1000;
    }
    let stay_down = down
        .iter()
        .next()
        .copied()
        .filter(|_| rng.next_u64() % 2 == 0);
    for h in down.clone() {
        if Some(h) != stay_down {
            down.remove(&h);
            c.restart(h, rng.next_u64());
        }
    }
    // Calm, twice: plans computed from the chaos loads may still land in the first 20 s and
    // pile VMs on a host, so the loads are calmed again for the placement they left.
    calm(&mut c, &mut rng);
    let settle = c.now + Duration::from_secs(20);
    run_checked(&mut c, settle, vms, strict);
    calm(&mut c, &mut rng);
    let steps = c.steps;
    let quiet_end = c.now + Duration::from_secs(60);
    run_checked(&mut c, quiet_end, vms, strict);
    let quiet_steps = c.steps - steps;
    if std::env::var("STRESS_STATS").is_ok() {
        let n = |f: fn(&Event) -> bool| c.count(f);
        eprintln!(
            "seed {seed}: hosts {n_hosts} lossy {lossy} steps {} started {} plans {} moved {} failed {} takeovers {} merges {} blocked {}",
            c.steps,
            n(|e| matches!(e, Event::EventStarted { .. })),
            n(|e| matches!(e, Event::PlanChosen { .. })),
            n(|e| matches!(e, Event::MigrationFinished { ok: true, .. })),
            n(|e| matches!(e, Event::MigrationFinished { ok: false, .. })),
            n(|e| matches!(e, Event::TookOver { .. })),
            n(|e| matches!(e, Event::Merged { .. })),
            n(|e| matches!(e, Event::Blocked { .. })),
            n_hosts = c.size(),
        );
    }
    assert!(
        quiet_steps < QUIET_STEP_CAP,
        "{quiet_steps} events while quiet"
    );
    if std::env::var("STRESS_SEED").is_ok() {
        dump(&c);
    }
    for h in 0..n {
        let Some(node) = c.node(NodeId(h)) else {
            continue;
        };
        if node.is_busy() && std::env::var("STRESS_TRACE").is_ok() {
            for (t, who, e) in &c.events {
                if !matches!(e, Event::Ignored { .. }) {
                    eprintln!("{t:?} {who} {e:?}");
                }
            }
        }
        assert!(
            !node.is_busy(),
            "n{h} still busy: {:?}, timer {:?}",
            node.partition(),
            node.poll_timeout()
        );
        assert!(!node.is_migrating(), "n{h} still migrating");
        assert_eq!(
            node.poll_timeout(),
            None,
            "n{h} has a timer armed: {:?}, sample {:?}, now {:?}",
            node.timers,
            node.sample,
            c.now
        );
        let life = &c.events[c.life_began[h as usize]..];
        let mine =
            |f: fn(&Event) -> bool| life.iter().filter(|(_, who, e)| who.0 == h && f(e)).count();
        let started = mine(|e| matches!(e, Event::EventStarted { .. }));
        let ended = mine(|e| matches!(e, Event::EventEnded { .. }));
        assert_eq!(started, ended, "n{h}: events started and ended");
    }
}

// Reference: protocol.md §3.3 (exclusivity), §7 (leases and failures), §9 (applying a plan).
#[test]
fn random_chaos_keeps_vms_and_exclusivity_and_quiesces() {
    // `STRESS_SEED=n` replays one seed.
    if let Some(seed) = std::env::var("STRESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return run_seed(seed);
    }
    // `STRESS_SEEDS=n` runs more seeds (a local bug hunt).
    let seeds = std::env::var("STRESS_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEEDS);
    for seed in 0..seeds {
        run_seed(seed);
    }
}

// Reference: as above, on 20,000 seeds (issue 10: seeds 3361, 12156 and 18507 used to fail).
#[test]
#[ignore = "long: run with --release -- --ignored"]
fn random_chaos_on_many_seeds() {
    // `STRESS_FROM=n` resumes at seed n.
    let from = std::env::var("STRESS_FROM")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    for seed in from..MANY_SEEDS {
        run_seed(seed);
    }
}
