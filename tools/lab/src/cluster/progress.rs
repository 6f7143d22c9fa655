//! The measured part of a run: the workload played in real time, progress on stderr, and what
//! the agents cost.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::agents::{self, Agents};
use super::{ClusterArgs, Plan};
use crate::hv::Hypervisor;
use crate::workload::Schedule;

/// How often a progress line is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// What the measured part saw.
#[derive(Clone, Copy, Debug)]
pub(super) struct Measured {
    pub(crate) elapsed: Duration,
    pub(crate) load_changes: u64,
    pub(crate) exited: usize,
    pub(crate) interrupted: bool,
    pub(crate) at_start: Counters,
}

/// Sums of the agents' core counters.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counters {
    pub(crate) events_started: u64,
    pub(crate) plans_chosen: u64,
    pub(crate) messages_sent: u64,
}

/// Sums the counters of every agent that answers.
pub(crate) fn counters(agents: &Agents) -> Counters {
    let mut c = Counters::default();
    for a in &agents.list {
        if let Some(s) = agents.status(a) {
            c.events_started = c.events_started.saturating_add(s.events_started);
            c.plans_chosen = c.plans_chosen.saturating_add(s.plans_chosen);
            c.messages_sent = c.messages_sent.saturating_add(s.messages_sent);
        }
    }
    c
}

impl Counters {
    /// `self - earlier`, per counter.
    pub(crate) fn since(self, earlier: Counters) -> Counters {
        Counters {
            events_started: self.events_started.saturating_sub(earlier.events_started),
            plans_chosen: self.plans_chosen.saturating_sub(earlier.plans_chosen),
            messages_sent: self.messages_sent.saturating_sub(earlier.messages_sent),
        }
    }
}

/// Resets the lab's counters, plays the workload for the run's duration (or until
/// interrupted) and prints progress.
pub(super) fn measure(
    args: &ClusterArgs,
    plan: &Plan,
    hv: &Hypervisor,
    agents: &mut Agents,
    schedule: Schedule,
    interrupted: &AtomicBool,
) -> Measured {
    let at_start = counters(agents);
    for a in &mut agents.list {
        a.ticks_at_start = a.pid().and_then(agents::cpu_ticks);
    }
    hv.reset_stats();
    let t0 = Instant::now();
    let stop = AtomicBool::new(false);
    let changes = AtomicU64::new(0);
    let mut was_interrupted = false;
    std::thread::scope(|s| {
        s.spawn(|| play(schedule, hv, plan, t0, &stop, &changes));
        let mut next_line = t0 + PROGRESS_EVERY;
        loop {
            let now = Instant::now();
            if now.saturating_duration_since(t0) >= plan.duration {
                break;
            }
            if interrupted.load(Ordering::SeqCst) {
                was_interrupted = true;
                break;
            }
            if now >= next_line {
                next_line += PROGRESS_EVERY;
                if !args.quiet {
                    say!("{}", line(hv, agents, now.saturating_duration_since(t0)));
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, Ordering::SeqCst);
    });
    let exited = agents
        .list
        .iter_mut()
        .map(|a| !a.alive())
        .filter(|&gone| gone)
        .count();
    Measured {
        elapsed: t0.elapsed(),
        load_changes: changes.load(Ordering::SeqCst),
        exited,
        interrupted: was_interrupted,
        at_start,
    }
}

/// Applies the schedule's changes at their time until `stop`.
fn play(
    mut schedule: Schedule,
    hv: &Hypervisor,
    plan: &Plan,
    t0: Instant,
    stop: &AtomicBool,
    changes: &AtomicU64,
) {
    while !stop.load(Ordering::SeqCst) {
        let at = schedule.next_at();
        if at >= plan.duration {
            return;
        }
        let wait = (t0 + at).saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait.min(Duration::from_millis(100)));
            continue;
        }
        let c = schedule.next_change();
        if let Some((vm, _)) = plan.vms.get(c.vm) {
            match hv.set_demand(&vm.name, c.cpu_milli) {
                Ok(()) => {
                    changes.fetch_add(1, Ordering::SeqCst);
                }
                Err(e) => tracing::warn!(vm = %vm.name, error = %e, "cannot change load"),
            }
        }
    }
}

/// One progress line.
fn line(hv: &Hypervisor, agents: &mut Agents, t: Duration) -> String {
    let up = agents
        .list
        .iter_mut()
        .map(|a| a.alive())
        .filter(|&up| up)
        .count();
    let mut partitions: Vec<String> = agents
        .list
        .iter()
        .filter_map(|a| agents.status(a).and_then(|s| s.partition))
        .collect();
    partitions.sort();
    partitions.dedup();
    let (stats, over_now, in_flight) = hv.stats();
    format!(
        "[{:>4.0}s] agents up {up}/{} | overloaded now {over_now} | overloads {} ({:.1} host-s) | partitions {} | migrations {} done, {in_flight} running, {} failed",
        t.as_secs_f64(),
        agents.list.len(),
        stats.overloads,
        stats.cumulated_violation_s,
        partitions.len(),
        stats.migrations,
        stats.migrations_failed
    )
}

/// What the agents cost over the measured part.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Footprint {
    pub(crate) rss_mib_max: f64,
    pub(crate) cpu_pct_mean: f64,
    pub(crate) cpu_pct_max: f64,
}

/// Peak RSS and CPU of the agents still running, from `/proc`.
pub(crate) fn footprint(agents: &mut Agents, elapsed: Duration) -> Footprint {
    let hz = agents::clock_ticks() as f64;
    let secs = elapsed.as_secs_f64().max(1e-3);
    let mut f = Footprint::default();
    let mut cpus = Vec::new();
    for a in &mut agents.list {
        let Some(pid) = a.pid() else { continue };
        if let Some(kib) = agents::peak_rss_kib(pid) {
            f.rss_mib_max = f.rss_mib_max.max(kib as f64 / 1024.0);
        }
        if let (Some(start), Some(now)) = (a.ticks_at_start, agents::cpu_ticks(pid)) {
            cpus.push(now.saturating_sub(start) as f64 / hz / secs * 100.0);
        }
    }
    if !cpus.is_empty() {
        f.cpu_pct_mean = cpus.iter().sum::<f64>() / cpus.len() as f64;
        f.cpu_pct_max = cpus.iter().copied().fold(0.0, f64::max);
    }
    f
}
