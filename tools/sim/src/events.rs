//! Workload and fault events: VMPlaceS load changes, PlanetLab samples, host crashes and
//! restarts.

use std::time::Duration;

use dvms_core::Time;

use crate::engine::{Ev, Sim};
use crate::observe::Seen;
use crate::rng;
use crate::sched::Call;
use crate::workload::TRACE_STEP_S;

/// A scripted action (from a script file), resolved to indices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// VM `vm`'s CPU demand becomes `cpu_milli`.
    Load { vm: usize, cpu_milli: u64 },
    /// Host `host` crashes.
    Crash { host: usize },
    /// Host `host` comes back.
    Restart { host: usize },
    /// Messages between every pair of `hosts` are lost.
    Cut { hosts: Vec<usize> },
    /// ... and get through again.
    Heal { hosts: Vec<usize> },
}

impl Sim {
    /// Performs scripted action `i` (`Ev::Scripted`).
    pub(crate) fn on_scripted(&mut self, i: usize) {
        let Some(a) = self.scripted.get(i).cloned() else {
            return;
        };
        match a {
            Action::Load { vm, cpu_milli } => self.set_vm_load(vm, cpu_milli),
            Action::Crash { host } => self.crash(host),
            Action::Restart { host } => self.restart(host),
            Action::Cut { hosts } => self.net.set_cut(&hosts, true),
            Action::Heal { hosts } => self.net.set_cut(&hosts, false),
        }
    }

    // === workload ===

    pub(crate) fn schedule_load_change(&mut self) {
        if self.vms.is_empty() {
            return;
        }
        let mean = self.cfg.vmplaces.load_period.as_secs_f64() / self.vms.len() as f64;
        let dt = rng::exponential(&mut self.workload_rng, mean);
        let at = self.now + Duration::from_secs_f64(dt);
        self.schedule(at, Ev::LoadChange);
    }

    pub(crate) fn on_load_change(&mut self) {
        let v = rng::below(&mut self.workload_rng, self.vms.len());
        let cpu = crate::workload::vmplaces_load(&mut self.workload_rng, &self.cfg.vmplaces);
        self.set_vm_load(v, cpu);
        self.schedule_load_change();
    }

    fn trace_tick_time(&self, cursor: u64) -> Time {
        let n = self.vms.len() as u64;
        let step = cursor / n;
        let j = cursor % n;
        Time::from_micros((step * TRACE_STEP_S * 1_000_000) + j * TRACE_STEP_S * 1_000_000 / n)
    }

    pub(crate) fn schedule_trace_tick(&mut self) {
        if self.vms.is_empty() {
            return;
        }
        // Step 0 was applied at start; continue from step 1.
        self.trace_cursor = self.vms.len() as u64;
        let at = self.trace_tick_time(self.trace_cursor);
        self.schedule(at, Ev::TraceTick);
    }

    pub(crate) fn on_trace_tick(&mut self) {
        let n = self.vms.len() as u64;
        let at = self.trace_tick_time(self.trace_cursor);
        // Apply every VM due at this instant at once.
        while self.trace_tick_time(self.trace_cursor) == at {
            let j = usize::try_from(self.trace_cursor % n).unwrap_or(0);
            let step = self.trace_cursor / n;
            let cpu = self.traces.as_ref().map_or(0, |t| t.cpu_milli(j, step));
            self.set_vm_load(j, cpu);
            self.trace_cursor += 1;
        }
        let next = self.trace_tick_time(self.trace_cursor);
        self.schedule(next, Ev::TraceTick);
    }

    // === crashes ===

    pub(crate) fn schedule_crash(&mut self) {
        let rate = self.cfg.crash_rate * self.hosts.len() as f64 / 3600.0;
        if rate <= 0.0 {
            return;
        }
        let dt = rng::exponential(&mut self.crash_rng, 1.0 / rate);
        let at = self.now + Duration::from_secs_f64(dt);
        self.schedule(at, Ev::Crash);
    }

    pub(crate) fn on_crash_stream(&mut self) {
        let h = rng::below(&mut self.crash_rng, self.hosts.len());
        let down = rng::exponential(&mut self.crash_rng, self.cfg.restart_after.as_secs_f64());
        if self.hosts[h].up {
            self.crash(h);
            let at = self.now + Duration::from_secs_f64(down);
            self.schedule(at, Ev::Restart { host: h as u32 });
        }
        self.schedule_crash();
    }

    /// Host `h` crashes: its node and all its state are lost; its VMs stay, down.
    pub(crate) fn crash(&mut self, h: usize) {
        if !self.hosts[h].up {
            return;
        }
        self.metrics.crashes += 1;
        self.metrics.hash.record(self.now, h, "crash", &[]);
        if self.cfg.trace {
            eprintln!("{} n{h} (sim) crash", self.now);
        }
        let host = &mut self.hosts[h];
        host.up = false;
        host.epoch += 1;
        host.down_since = Some(self.now);
        self.observe(Seen::Gone { host: h });
        self.drive(Call::Crashed(h));
        self.refresh_host(h);
    }

    /// Host `h` comes back with a fresh node.
    pub(crate) fn restart(&mut self, h: usize) {
        if self.hosts[h].up {
            return;
        }
        self.metrics.restarts += 1;
        self.metrics.hash.record(self.now, h, "restart", &[]);
        if self.cfg.trace {
            eprintln!("{} n{h} (sim) restart", self.now);
        }
        let host = &mut self.hosts[h];
        host.up = true;
        host.epoch += 1;
        host.down_since = None;
        self.gossip.reset(h);
        self.refresh_host(h);
        self.drive(Call::Restarted(h));
    }
}
