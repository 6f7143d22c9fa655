//! The one interface between the engine and a scheduler.
//!
//! The engine ([`crate::engine`]) models time, hosts, VMs, the workload, faults, the network
//! and migrations; it knows no scheduler by name. A scheduler is a [`Driver`]: the engine
//! tells it what happened ([`Call`]) and the driver acts on the engine (starts migrations,
//! schedules its own events, sends messages). `dvms` (`crate::dvms_driver`), `entropy`,
//! `centralized`, `oracle` and `none` (`crate::baseline`) are the drivers; [`driver_for`] is
//! the only place that maps a [`Scheduler`] to one.
//!
//! A call the engine makes while the driver is already running (the driver started a
//! migration whose bookkeeping calls back, say) is queued and delivered, in order, as soon as
//! the running call returns: a driver never re-enters itself.

use dvms_core::model::{Candidate, MigrationId, Plan, QueryId, SolveId, Unsolvable};
use dvms_core::msg::Msg;

use crate::config::Scheduler;
use crate::engine::{Owner, Sim};

/// An event a driver scheduled for itself (`Ev::Sched`).
#[derive(Debug)]
pub(crate) enum SchedEv {
    /// A periodic round starts (entropy, centralized).
    Round,
    /// Plan run `run` may go on (its computation ended, or its step's migrations did).
    Apply {
        /// The run.
        run: u32,
    },
    /// dvms: a node's timer, valid if `generation` is still the host's current one.
    Timer { host: u32, generation: u64 },
    /// dvms: a message arrives.
    Deliver { to: u32, from: u32, msg: Msg },
    /// dvms: the sender learns that `peer` could not be reached.
    Unreachable { host: u32, epoch: u32, peer: u32 },
    /// dvms: the overlay answers a candidate query.
    Candidates {
        host: u32,
        epoch: u32,
        query: QueryId,
        list: Vec<Candidate>,
    },
    /// dvms: the solver answers.
    Plan {
        host: u32,
        epoch: u32,
        id: SolveId,
        result: Result<Plan, Unsolvable>,
    },
    /// dvms: a migration command was refused at once.
    MigrationRefused {
        host: u32,
        epoch: u32,
        id: MigrationId,
        reason: String,
    },
}

/// A migration that ended, as told to whoever asked for it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ended {
    /// Who asked for it.
    pub(crate) owner: Owner,
    /// Its source.
    pub(crate) from: usize,
    /// The VM moved.
    pub(crate) ok: bool,
    /// The source is still up, in the same life.
    pub(crate) src_ok: bool,
}

/// What the engine tells a driver.
#[derive(Debug)]
pub(crate) enum Call {
    /// The run starts (every host is up, loads are set).
    Start,
    /// One of the driver's own events is due.
    Event(SchedEv),
    /// Host `h`'s VMs changed: their loads, or the set.
    HostChanged(usize),
    /// Host `h` went over (true) or back under (false) its CPU limit, or crashed while over.
    Overload(usize, bool),
    /// Host `h` crashed.
    Crashed(usize),
    /// Host `h` came back.
    Restarted(usize),
    /// A migration ended.
    MigrationEnded(Ended),
}

/// A scheduler, driven by the engine.
pub(crate) trait Driver: std::fmt::Debug {
    /// Handles one call.
    fn call(&mut self, sim: &mut Sim, call: Call);
    /// Events started and not ended (reported as `events_open`).
    fn open_events(&self, sim: &Sim) -> u64;
    /// True when nothing of the driver's own is in progress (scenarios stop when quiet).
    fn idle(&self) -> bool;
}

/// The driver of `s`.
pub(crate) fn driver_for(s: Scheduler, hosts: usize) -> Box<dyn Driver> {
    match s {
        Scheduler::Dvms => Box::new(crate::dvms::DvmsDriver::new(hosts)),
        Scheduler::Entropy => Box::new(crate::baseline::Central::new(true)),
        Scheduler::Centralized => Box::new(crate::baseline::Central::new(false)),
        Scheduler::Oracle => Box::new(crate::baseline::Oracle::default()),
        Scheduler::None => Box::new(crate::baseline::Idle),
    }
}

impl Sim {
    /// Makes `call` to the driver, or queues it if the driver is busy with another call.
    pub(crate) fn drive(&mut self, call: Call) {
        self.deferred.push_back(call);
        if self.driving {
            return;
        }
        let Some(mut d) = self.driver.take() else {
            return;
        };
        self.driving = true;
        while let Some(c) = self.deferred.pop_front() {
            d.call(self, c);
        }
        self.driving = false;
        self.driver = Some(d);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::config::{SimConfig, Workload};
    use crate::workload::{HostInit, Setup, VmInit};

    /// Records the calls it gets; on the first change of VM 0's host it changes VM 1's load
    /// (a call back into the engine, which calls the driver again).
    #[derive(Debug)]
    struct Recorder {
        log: Arc<Mutex<Vec<String>>>,
        depth: u32,
    }

    impl Driver for Recorder {
        fn call(&mut self, sim: &mut Sim, call: Call) {
            assert_eq!(self.depth, 0, "the driver was re-entered");
            self.depth += 1;
            let text = match &call {
                Call::HostChanged(h) => format!("changed h{h}"),
                Call::Overload(h, o) => format!("overload h{h} {o}"),
                Call::Start => "start".to_owned(),
                other => format!("{other:?}"),
            };
            self.log.lock().unwrap().push(text);
            if let Call::HostChanged(0) = call {
                if sim.vms[1].cpu == 0 {
                    sim.set_vm_load(1, 500);
                }
            }
            self.depth -= 1;
        }

        fn open_events(&self, _sim: &Sim) -> u64 {
            0
        }

        fn idle(&self) -> bool {
            true
        }
    }

    #[test]
    fn calls_made_while_the_driver_runs_are_queued_in_order() {
        let hosts = (0..2)
            .map(|i| HostInit {
                name: format!("h{i}"),
                cpu_milli: 1000,
                mem_mib: 4096,
                site: 0,
            })
            .collect();
        let vms = (0..2)
            .map(|j| VmInit {
                name: format!("v{j}"),
                host: j,
                cpu_milli: 0,
                mem_mib: 512,
            })
            .collect();
        let cfg = SimConfig {
            workload: Workload::Scripted,
            ..SimConfig::default()
        };
        let setup = Setup {
            hosts,
            vms,
            sites: vec![],
        };
        let mut sim = Sim::new(cfg, setup).unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        sim.driver = Some(Box::new(Recorder {
            log: Arc::clone(&log),
            depth: 0,
        }));
        sim.set_vm_load(0, 1500);
        let got = log.lock().unwrap().clone();
        assert_eq!(
            got,
            ["overload h0 true", "changed h0", "changed h1"],
            "{got:?}"
        );
    }

    /// The engine (outside its tests) names no scheduler, no check and no scenario: it knows
    /// them only through `Driver` and the observers (issue 12).
    #[test]
    fn the_engine_names_no_scheduler_and_no_check() {
        for (file, text) in [
            ("engine.rs", include_str!("engine.rs")),
            ("events.rs", include_str!("events.rs")),
            ("migrations.rs", include_str!("migrations.rs")),
        ] {
            let code = text.split("#[cfg(test)]").next().unwrap_or(text);
            for word in [
                "baseline",
                "invariant",
                "scenario",
                "crate::dvms",
                "DvmsDriver",
                "Central",
                "Oracle",
                "Idle",
                "Scheduler",
            ] {
                assert!(!code.contains(word), "{file} names {word}");
            }
        }
    }
}
