//! The `dvms` scheduler as a [`Driver`]: one `dvms_core::Node` per up host, driven by the
//! functions of `crate::dvms`.

use crate::engine::{Owner, Sim};
use crate::sched::{Call, Driver, Ended, SchedEv};

/// One of the protocol's own events.
fn event(sim: &mut Sim, e: SchedEv) {
    match e {
        SchedEv::Timer { host, generation } => sim.on_timer(host as usize, generation),
        SchedEv::Deliver { to, from, msg } => {
            sim.in_flight_msgs = sim.in_flight_msgs.saturating_sub(1);
            sim.on_deliver(to as usize, from as usize, msg);
        }
        SchedEv::Unreachable { host, epoch, peer } => {
            sim.on_unreachable(host as usize, epoch, peer as usize);
        }
        SchedEv::Candidates {
            host,
            epoch,
            query,
            list,
        } => sim.on_candidates(host as usize, epoch, query, list),
        SchedEv::Plan {
            host,
            epoch,
            id,
            result,
        } => sim.on_plan(host as usize, epoch, id, result),
        SchedEv::MigrationRefused {
            host,
            epoch,
            id,
            reason,
        } => sim.on_migration_refused(host as usize, epoch, id, reason),
        SchedEv::Round | SchedEv::Apply { .. } => {}
    }
}

/// The DVMS protocol on every host.
#[derive(Debug)]
pub(crate) struct DvmsDriver;

impl Driver for DvmsDriver {
    fn call(&mut self, sim: &mut Sim, call: Call) {
        match call {
            Call::Start => {
                for h in 0..sim.hosts.len() {
                    sim.boot_node(h);
                }
            }
            Call::HostChanged(h) => sim.send_sample(h),
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
                // The episode dies with the host; the events it initiated count as expired.
                sim.hosts[h].episode = None;
                let lost: Vec<_> = sim
                    .starts
                    .keys()
                    .filter(|p| p.initiator.0 == h as u64)
                    .copied()
                    .collect();
                for p in lost {
                    sim.starts.remove(&p);
                    sim.metrics.events_expired += 1;
                }
            }
            Call::Restarted(h) => sim.boot_node(h),
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
                    sim.node_input(from, |n, now| n.handle_migration(now, id, outcome));
                }
            }
            Call::Event(e) => event(sim, e),
            Call::MigrationEnded(_) => {}
        }
    }

    fn open_events(&self, sim: &Sim) -> u64 {
        sim.starts.len() as u64
    }

    fn idle(&self) -> bool {
        true
    }
}
