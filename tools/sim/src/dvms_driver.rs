//! The `dvms` scheduler as a [`Driver`]: one `dvms_core::Node` per up host, driven by the
//! functions of `crate::dvms`.

use crate::dvms::DvmsDriver;
use crate::engine::{Owner, Sim};
use crate::sched::{Call, Driver, Ended, SchedEv};

impl DvmsDriver {
    /// One of the protocol's own events.
    fn event(&mut self, sim: &mut Sim, e: SchedEv) {
        match e {
            SchedEv::Timer { host, generation } => self.on_timer(sim, host as usize, generation),
            SchedEv::Deliver { to, from, msg } => {
                self.in_flight = self.in_flight.saturating_sub(1);
                self.on_deliver(sim, to as usize, from as usize, msg);
            }
            SchedEv::Unreachable { host, epoch, peer } => {
                self.on_unreachable(sim, host as usize, epoch, peer as usize);
            }
            SchedEv::Candidates {
                host,
                epoch,
                query,
                list,
            } => self.on_candidates(sim, host as usize, epoch, query, list),
            SchedEv::Plan {
                host,
                epoch,
                id,
                result,
            } => self.on_plan(sim, host as usize, epoch, id, result),
            SchedEv::MigrationRefused {
                host,
                epoch,
                id,
                reason,
            } => self.on_migration_refused(sim, host as usize, epoch, id, reason),
            SchedEv::Round | SchedEv::Apply { .. } => {}
        }
    }
}

impl Driver for DvmsDriver {
    fn call(&mut self, sim: &mut Sim, call: Call) {
        match call {
            Call::Start => {
                for h in 0..sim.hosts.len() {
                    self.boot_node(sim, h);
                }
            }
            Call::HostChanged(h) => self.send_sample(sim, h),
            Call::Overload(h, over) => {
                // `time_to_solve`: from the first `EventStarted` of the episode to its end.
                if !over {
                    if let Some(ep) = sim.hosts[h].episode.take() {
                        let d = sim.now.saturating_since(ep.start).as_secs_f64();
                        sim.metrics.time_to_solve.push(d);
                    }
                }
            }
            Call::Crashed(h) => {
                // The node dies with the host, so do its episode and the events it initiated
                // (they count as expired).
                self.drop_node(h);
                sim.hosts[h].episode = None;
                let lost: Vec<_> = self
                    .starts
                    .keys()
                    .filter(|p| p.initiator.0 == h as u64)
                    .copied()
                    .collect();
                for p in lost {
                    self.starts.remove(&p);
                    sim.metrics.events_expired += 1;
                }
            }
            Call::Restarted(h) => self.boot_node(sim, h),
            Call::MigrationEnded(Ended {
                owner: Owner::Node { id, partition },
                from,
                ok,
                src_ok,
            }) => {
                if !sim.partition_alive(partition) {
                    sim.metrics.migrations_after_dissolve += 1;
                }
                if src_ok {
                    let outcome = if ok {
                        dvms_core::MigrationOutcome::Done
                    } else {
                        dvms_core::MigrationOutcome::Failed {
                            reason: "destination host down".into(),
                        }
                    };
                    self.node_input(sim, from, |n, now| n.handle_migration(now, id, outcome));
                }
            }
            Call::Event(e) => self.event(sim, e),
            Call::MigrationEnded(_) => {}
        }
    }

    fn open_events(&self, _sim: &Sim) -> u64 {
        self.starts.len() as u64
    }

    fn idle(&self) -> bool {
        self.in_flight == 0
    }
}
