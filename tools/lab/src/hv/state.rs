//! The hypervisor's state: hosts, VMs (the ground truth of where each VM is), migrations in
//! flight, counters. Guarded by one mutex; every method runs with it held.

use std::collections::BTreeMap;
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use dvms_sim::migration;

use super::load::fair_share;
use super::root::HostRoot;
use super::{HvError, Stats};

/// The result of one migration, sent to the connection that asked for it.
pub(crate) type Outcome = Result<Duration, String>;

/// One host.
#[derive(Debug)]
pub(crate) struct Host {
    pub(crate) name: String,
    pub(crate) cpu_milli: u64,
    pub(crate) mem_mib: u64,
    pub(crate) root: HostRoot,
    /// Onset of the current overload, if overloaded.
    pub(crate) over_since: Option<Instant>,
    /// Whether a migration out of it was asked for during the current overload.
    pub(crate) decided: bool,
    /// Demand and use at the last tick.
    pub(crate) demand_milli: u64,
    pub(crate) use_milli: u64,
}

/// One VM, wherever it is.
#[derive(Debug)]
pub(crate) struct Vm {
    /// Index of the host it runs on (the lab's ground truth).
    pub(crate) host: usize,
    pub(crate) vcpus: u32,
    pub(crate) mem_mib: u64,
    /// CPU it wants, thousandths of a core, capped at its vCPUs.
    pub(crate) demand_milli: u64,
    /// Memory-dirtying intensity: share of the migration bandwidth at full CPU.
    pub(crate) dirty: f64,
}

/// A migration in flight.
#[derive(Debug)]
pub(crate) struct Migration {
    pub(crate) from: usize,
    pub(crate) to: usize,
    pub(crate) started: Instant,
    pub(crate) ends: Instant,
    /// The connection waiting for the answer (gone if the client disconnected: nothing changes).
    pub(crate) reply: SyncSender<Outcome>,
}

/// Everything behind the mutex.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) hosts: Vec<Host>,
    pub(crate) vms: BTreeMap<String, Vm>,
    pub(crate) migrations: BTreeMap<String, Migration>,
    pub(crate) bandwidth_mib_s: f64,
    pub(crate) last_tick: Instant,
    pub(crate) stats: Stats,
    pub(crate) decide_s: Vec<f64>,
    pub(crate) episode_s: Vec<f64>,
    pub(crate) migration_s: Vec<f64>,
}

impl State {
    pub(crate) fn host_index(&self, name: &str) -> Option<usize> {
        self.hosts.iter().position(|h| h.name == name)
    }

    /// Starts a migration; the answer goes to `reply` when it ends.
    pub(crate) fn start_migration(
        &mut self,
        now: Instant,
        vm: &str,
        from: &str,
        to: &str,
        reply: SyncSender<Outcome>,
    ) -> Result<Instant, String> {
        let from_i = self
            .host_index(from)
            .ok_or_else(|| format!("unknown node {from}"))?;
        let to_i = self
            .host_index(to)
            .ok_or_else(|| format!("unknown node {to}"))?;
        let v = self.vms.get(vm).ok_or_else(|| format!("unknown vm {vm}"))?;
        if v.host != from_i {
            return Err(format!(
                "vm {vm} is on {}, not on {from}",
                self.hosts[v.host].name
            ));
        }
        if from_i == to_i {
            return Err(format!("vm {vm} is already on {to}"));
        }
        if self.migrations.contains_key(vm) {
            return Err(format!("vm {vm} is already migrating"));
        }
        // The destination must have the memory (counting migrations already headed there).
        let mem_at_dest = self
            .vms
            .values()
            .filter(|w| w.host == to_i)
            .map(|w| w.mem_mib)
            .chain(
                self.migrations
                    .iter()
                    .filter(|(_, m)| m.to == to_i)
                    .filter_map(|(name, _)| self.vms.get(name).map(|w| w.mem_mib)),
            )
            .fold(0u64, u64::saturating_add);
        if mem_at_dest.saturating_add(v.mem_mib) > self.hosts[to_i].mem_mib {
            return Err(format!("not enough memory on {to} for vm {vm}"));
        }
        let cpu_share = v.demand_milli as f64 / (f64::from(v.vcpus.max(1)) * 1000.0);
        let bw = self.bandwidth_mib_s;
        let est = migration::estimate(v.mem_mib as f64, bw, v.dirty * bw * cpu_share);
        let ends = now + est.total;
        let host = &mut self.hosts[from_i];
        if host.over_since.is_some() && !host.decided {
            host.decided = true;
            if let Some(onset) = host.over_since {
                self.decide_s
                    .push(now.saturating_duration_since(onset).as_secs_f64());
            }
        }
        self.stats.migrations_started += 1;
        self.migrations.insert(
            vm.to_owned(),
            Migration {
                from: from_i,
                to: to_i,
                started: now,
                ends,
                reply,
            },
        );
        Ok(ends)
    }

    /// Aborts the migration of `vm`: it stays on its source.
    pub(crate) fn abort(&mut self, vm: &str) -> Result<(), String> {
        let m = self
            .migrations
            .remove(vm)
            .ok_or_else(|| "not migrating".to_owned())?;
        self.stats.migrations_aborted += 1;
        let _ = m.reply.try_send(Err("aborted".to_owned()));
        Ok(())
    }

    /// Where `vm` is migrating to, if it is.
    pub(crate) fn migrating_to(&self, vm: &str) -> Result<Option<String>, String> {
        if !self.vms.contains_key(vm) {
            return Err(format!("unknown vm {vm}"));
        }
        Ok(self
            .migrations
            .get(vm)
            .map(|m| self.hosts[m.to].name.clone()))
    }

    /// Ends every migration due at `now`: the VM's files move to the destination root.
    pub(crate) fn finish_due(&mut self, now: Instant) {
        let due: Vec<String> = self
            .migrations
            .iter()
            .filter(|(_, m)| m.ends <= now)
            .map(|(vm, _)| vm.clone())
            .collect();
        for vm in due {
            let Some(m) = self.migrations.remove(&vm) else {
                continue;
            };
            let outcome = self.move_files(&vm, m.from, m.to);
            let took = m.ends.saturating_duration_since(m.started);
            let answer = match outcome {
                Ok(()) => {
                    if let Some(v) = self.vms.get_mut(&vm) {
                        v.host = m.to;
                        self.stats.migrated_mib = self.stats.migrated_mib.saturating_add(v.mem_mib);
                    }
                    self.stats.migrations += 1;
                    self.migration_s.push(took.as_secs_f64());
                    tracing::info!(vm = %vm, from = %self.hosts[m.from].name, to = %self.hosts[m.to].name, elapsed_ms = took.as_millis() as u64, "migration done");
                    Ok(took)
                }
                Err(e) => {
                    self.stats.migrations_failed += 1;
                    tracing::warn!(vm = %vm, error = %e, "migration failed");
                    Err(e.to_string())
                }
            };
            // The client may be gone: the migration happened all the same.
            let _ = m.reply.try_send(answer);
        }
    }

    fn move_files(&mut self, vm: &str, from: usize, to: usize) -> Result<(), HvError> {
        let (src, dst) = if from < to {
            let (a, b) = self.hosts.split_at_mut(to);
            (&mut a[from], &mut b[0])
        } else {
            let (a, b) = self.hosts.split_at_mut(from);
            (&mut b[0], &mut a[to])
        };
        src.root
            .move_vm(vm, &mut dst.root)
            .map_err(|source| HvError::Root {
                what: format!("move vm {vm} from {} to {}", src.name, dst.name),
                source,
            })
    }

    /// The earliest end of a migration in flight.
    pub(crate) fn next_end(&self) -> Option<Instant> {
        self.migrations.values().map(|m| m.ends).min()
    }

    /// Advances every VM's counters by the time since the last tick, from its demand, with use
    /// capped at its host's capacity; integrates overload.
    pub(crate) fn tick(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last_tick);
        self.last_tick = now;
        let secs = dt.as_secs_f64();
        let mut per_host: Vec<Vec<(&String, u64, u64)>> = vec![Vec::new(); self.hosts.len()];
        for (name, v) in &self.vms {
            if let Some(list) = per_host.get_mut(v.host) {
                list.push((name, v.demand_milli, v.mem_mib));
            }
        }
        for (h, list) in per_host.iter().enumerate() {
            let host = &mut self.hosts[h];
            let demands: Vec<u64> = list.iter().map(|(_, d, _)| *d).collect();
            let shares = fair_share(host.cpu_milli, &demands);
            let demand: u64 = demands.iter().fold(0u64, |a, &d| a.saturating_add(d));
            host.demand_milli = demand;
            host.use_milli = shares.iter().map(|s| s.use_milli).sum();
            for ((name, _, mem), share) in list.iter().zip(&shares) {
                let used = share.use_milli as f64 / 1000.0 * secs;
                let waited = share.wait_milli as f64 / 1000.0 * secs;
                if let Err(e) = host.root.advance(name, used, waited, *mem) {
                    tracing::warn!(vm = %name, node = %host.name, error = %e, "cannot advance counters");
                }
            }
            let over = demand > host.cpu_milli;
            match (over, host.over_since) {
                (true, None) => {
                    host.over_since = Some(now);
                    host.decided = false;
                    self.stats.overloads += 1;
                }
                (false, Some(onset)) => {
                    host.over_since = None;
                    self.episode_s
                        .push(now.saturating_duration_since(onset).as_secs_f64());
                }
                _ => {}
            }
            if over {
                self.stats.cumulated_violation_s += secs;
            }
        }
        if let Err(e) = self.write_host_pressure(secs) {
            tracing::warn!(error = %e, "cannot write host pressure");
        }
    }

    fn write_host_pressure(&mut self, secs: f64) -> std::io::Result<()> {
        for host in &mut self.hosts {
            let waiting = host.demand_milli > host.use_milli;
            host.root.advance_host(secs, waiting)?;
        }
        Ok(())
    }

    /// Host index and VM count of every host currently overloaded.
    pub(crate) fn overloaded(&self) -> usize {
        self.hosts.iter().filter(|h| h.over_since.is_some()).count()
    }

    /// Closes the open overload episodes (end of a run).
    pub(crate) fn close_episodes(&mut self, now: Instant) {
        for h in &mut self.hosts {
            if let Some(onset) = h.over_since.take() {
                self.episode_s
                    .push(now.saturating_duration_since(onset).as_secs_f64());
            }
        }
    }
}
