//! The `dvms` scheduler as a [`Driver`]: one `dvms_core::Node` per up host, driven by the
//! functions of `crate::dvms`.

use crate::engine::{Owner, Sim};
use crate::sched::{Call, Driver, Ended};

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
            Call::MigrationEnded(_) | Call::Event(_) => {}
        }
    }

    fn open_events(&self, sim: &Sim) -> u64 {
        sim.starts.len() as u64
    }

    fn idle(&self) -> bool {
        true
    }
}
