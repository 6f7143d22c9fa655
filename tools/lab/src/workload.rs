//! The VMs' CPU demand over time, from the simulator's generators, as a schedule of changes
//! the cluster applies in real time.
//!
//! - `vmplaces`: as `dvms-sim` (`dvms_sim::workload`): initial loads and every new load drawn
//!   from `N(60 %, 20 %)` in steps of 10 %, one global Poisson stream of changes with rate
//!   `#VMs / load_period`, a uniformly chosen VM each time; same seed, same draws.
//! - `planetlab:DIR`: the traces of DIR replayed with one trace step per `load_period` (the
//!   traces' 5-minute steps compressed so a short run sees them change), VM `j` of `n`
//!   switching at offset `j * load_period / n` within each step, as the simulator staggers them.

use std::path::PathBuf;
use std::time::Duration;

use dvms_sim::config::VmplacesParams;
use dvms_sim::rng;
use dvms_sim::workload::{Traces, vmplaces_load};
use rand_chacha::ChaCha8Rng;

/// Which workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// VMPlaceS's Gaussian loads on a Poisson schedule.
    Vmplaces,
    /// PlanetLab traces from this directory.
    Planetlab(PathBuf),
}

impl Kind {
    /// Parses `vmplaces` or `planetlab:DIR`.
    pub fn parse(s: &str) -> Result<Kind, String> {
        match s {
            "vmplaces" => Ok(Kind::Vmplaces),
            _ => match s.strip_prefix("planetlab:") {
                Some(dir) if !dir.is_empty() => Ok(Kind::Planetlab(PathBuf::from(dir))),
                _ => Err(format!("{s:?}: expected vmplaces or planetlab:DIR")),
            },
        }
    }

    /// The name used in reports.
    pub fn name(&self) -> String {
        match self {
            Kind::Vmplaces => "vmplaces".to_owned(),
            Kind::Planetlab(d) => format!("planetlab:{}", d.display()),
        }
    }
}

/// One load change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    /// When, since the start of the run.
    pub at: Duration,
    /// Index of the VM.
    pub vm: usize,
    /// Its new CPU demand, thousandths of a core.
    pub cpu_milli: u64,
}

/// The demand schedule of `n` VMs.
#[derive(Debug)]
pub struct Schedule {
    n: usize,
    period: Duration,
    source: Source,
    /// Time of the next change.
    clock: Duration,
}

#[derive(Debug)]
enum Source {
    Vmplaces {
        rng: Box<ChaCha8Rng>,
        params: VmplacesParams,
    },
    Planetlab {
        traces: Traces,
        cursor: u64,
    },
}

impl Schedule {
    /// A schedule for `n` VMs (at least one) changing every `load_period` on average, seeded
    /// with `seed`; returns it with the VMs' initial demands.
    pub fn new(
        kind: &Kind,
        n: usize,
        load_period: Duration,
        seed: u64,
    ) -> Result<(Schedule, Vec<u64>), String> {
        if n == 0 {
            return Err("no VM to load".to_owned());
        }
        if load_period < Duration::from_millis(10) {
            return Err(format!(
                "load period {load_period:?}: expected at least 10 ms"
            ));
        }
        let (source, initial) = match kind {
            Kind::Vmplaces => {
                let params = VmplacesParams {
                    load_period,
                    ..VmplacesParams::default()
                };
                let mut rng = rng::stream(seed, rng::Stream::Workload);
                let initial = (0..n).map(|_| vmplaces_load(&mut rng, &params)).collect();
                let rng = Box::new(rng);
                (Source::Vmplaces { rng, params }, initial)
            }
            Kind::Planetlab(dir) => {
                let traces = Traces::load(dir).map_err(|e| e.to_string())?;
                let initial = (0..n).map(|j| traces.cpu_milli(j, 0)).collect();
                (
                    Source::Planetlab {
                        traces,
                        cursor: n as u64,
                    },
                    initial,
                )
            }
        };
        let mut s = Schedule {
            n,
            period: load_period,
            source,
            clock: Duration::ZERO,
        };
        s.advance_clock();
        Ok((s, initial))
    }

    /// When the next change happens.
    pub fn next_at(&self) -> Duration {
        self.clock
    }

    fn advance_clock(&mut self) {
        match &mut self.source {
            Source::Vmplaces { rng, .. } => {
                let mean = self.period.as_secs_f64() / self.n as f64;
                let dt = rng::exponential(rng, mean);
                self.clock += Duration::from_secs_f64(dt.clamp(0.0, 1e9));
            }
            Source::Planetlab { cursor, .. } => {
                let n = self.n as u64;
                let step = u32::try_from(*cursor / n).unwrap_or(u32::MAX);
                let j = u32::try_from(*cursor % n).unwrap_or(0);
                let within = self.period * j / u32::try_from(n).unwrap_or(u32::MAX);
                self.clock = self.period.saturating_mul(step).saturating_add(within);
            }
        }
    }

    /// The next change, advancing the schedule.
    pub fn next_change(&mut self) -> Change {
        let at = self.clock;
        let (vm, cpu_milli) = match &mut self.source {
            Source::Vmplaces { rng, params } => {
                let vm = rng::below(rng, self.n);
                (vm, vmplaces_load(rng, params))
            }
            Source::Planetlab { traces, cursor } => {
                let n = self.n as u64;
                let j = usize::try_from(*cursor % n).unwrap_or(0);
                let cpu = traces.cpu_milli(j, *cursor / n);
                *cursor += 1;
                (j, cpu)
            }
        };
        self.advance_clock();
        Change { at, vm, cpu_milli }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmplaces_changes_at_the_requested_rate() {
        let (mut s, init) =
            Schedule::new(&Kind::Vmplaces, 100, Duration::from_secs(10), 1).expect("schedule");
        assert_eq!(init.len(), 100);
        assert!(init.iter().all(|&l| l <= 1000 && l % 100 == 0));
        let mut last = Duration::ZERO;
        let mut count = 0;
        while s.next_at() < Duration::from_secs(100) {
            let c = s.next_change();
            assert!(c.at >= last && c.vm < 100 && c.cpu_milli <= 1000);
            last = c.at;
            count += 1;
        }
        // 100 s x 100 VMs / 10 s = 1000 changes expected.
        assert!((850..1150).contains(&count), "{count}");
    }

    #[test]
    fn same_seed_same_schedule() {
        let draw = |seed| {
            let (mut s, init) =
                Schedule::new(&Kind::Vmplaces, 10, Duration::from_secs(5), seed).expect("s");
            (init, (0..50).map(|_| s.next_change()).collect::<Vec<_>>())
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }

    #[test]
    fn planetlab_steps_are_staggered_over_one_period() {
        let dir = std::env::temp_dir().join(format!("dvms-lab-traces-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("a"), "10\n20\n30\n").expect("a");
        std::fs::write(dir.join("b"), "50\n60\n70\n").expect("b");
        let (mut s, init) =
            Schedule::new(&Kind::Planetlab(dir.clone()), 2, Duration::from_secs(4), 0)
                .expect("schedule");
        assert_eq!(init, [100, 500]);
        let c: Vec<Change> = (0..4).map(|_| s.next_change()).collect();
        assert_eq!(
            c[0],
            Change {
                at: Duration::from_secs(4),
                vm: 0,
                cpu_milli: 200
            }
        );
        assert_eq!(
            c[1],
            Change {
                at: Duration::from_secs(6),
                vm: 1,
                cpu_milli: 600
            }
        );
        assert_eq!(c[2].at, Duration::from_secs(8));
        assert_eq!(c[3].cpu_milli, 700);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn bad_workloads_are_named() {
        assert!(Kind::parse("planetlab:").is_err());
        assert!(Kind::parse("nope").unwrap_err().contains("nope"));
        let e = Schedule::new(
            &Kind::Planetlab("/nonexistent-dir".into()),
            1,
            Duration::from_secs(1),
            0,
        )
        .unwrap_err();
        assert!(e.contains("/nonexistent-dir"), "{e}");
    }
}
