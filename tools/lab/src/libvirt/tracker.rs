//! The lab's ground truth of overload on real hosts: the demand the lab set for each guest,
//! summed over the guests libvirt runs on each host, against the host's capacity times the
//! threshold; sampled (the placement is polled through libvirt), integrated between samples.

use std::collections::BTreeMap;
use std::time::SystemTime;

/// One overload episode of one host.
#[derive(Clone, Debug, PartialEq)]
pub struct Episode {
    /// The host.
    pub host: String,
    /// When the lab first saw the host overloaded.
    pub onset: SystemTime,
    /// When it saw it no longer overloaded (`None`: still overloaded at the end).
    pub end: Option<SystemTime>,
}

/// Overload onsets, episodes and host-seconds of violation.
#[derive(Clone, Debug)]
pub struct Tracker {
    limit_milli: u64,
    last: Option<SystemTime>,
    open: BTreeMap<String, usize>,
    /// Every episode, in onset order.
    pub episodes: Vec<Episode>,
    /// Host-seconds spent overloaded.
    pub violation_s: f64,
}

impl Tracker {
    /// Hosts of `cpu_milli` capacity, overloaded above `threshold_pct` of it.
    pub fn new(cpu_milli: u64, threshold_pct: u8) -> Tracker {
        Tracker {
            limit_milli: cpu_milli.saturating_mul(u64::from(threshold_pct.min(100))) / 100,
            last: None,
            open: BTreeMap::new(),
            episodes: Vec::new(),
            violation_s: 0.0,
        }
    }

    /// One sample at `now`: `load` is each host's demand (thousandths of a core). Returns the
    /// hosts overloaded now.
    pub fn sample(&mut self, now: SystemTime, load: &BTreeMap<String, u64>) -> usize {
        let dt = self
            .last
            .and_then(|l| now.duration_since(l).ok())
            .map_or(0.0, |d| d.as_secs_f64());
        self.last = Some(now);
        let mut over_now = 0;
        for (host, &milli) in load {
            let over = milli > self.limit_milli;
            match (over, self.open.get(host).copied()) {
                (true, Some(_)) => {
                    over_now += 1;
                    self.violation_s += dt;
                }
                (true, None) => {
                    over_now += 1;
                    self.open.insert(host.clone(), self.episodes.len());
                    self.episodes.push(Episode {
                        host: host.clone(),
                        onset: now,
                        end: None,
                    });
                }
                (false, Some(i)) => {
                    self.violation_s += dt;
                    if let Some(e) = self.episodes.get_mut(i) {
                        e.end = Some(now);
                    }
                    self.open.remove(host);
                }
                (false, None) => {}
            }
        }
        over_now
    }

    /// Overload onsets seen.
    pub fn onsets(&self) -> u64 {
        self.episodes.len() as u64
    }
}

/// Each host's demand: the sum of the demands of the guests it runs (`placement`: guest to
/// hosts), every host of `hosts` present.
pub fn host_load(
    hosts: &[String],
    placement: &BTreeMap<String, Vec<String>>,
    demand: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    let mut load: BTreeMap<String, u64> = hosts.iter().map(|h| (h.clone(), 0)).collect();
    for (vm, on) in placement {
        let d = demand.get(vm).copied().unwrap_or(0);
        for h in on {
            if let Some(l) = load.get_mut(h) {
                *l = l.saturating_add(d);
            }
        }
    }
    load
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000 + s)
    }

    #[test]
    fn episodes_open_and_close_and_violation_integrates() {
        let mut t = Tracker::new(2000, 95); // limit 1900
        let l = |a: u64, b: u64| BTreeMap::from([("h00".to_owned(), a), ("h01".to_owned(), b)]);
        assert_eq!(t.sample(at(0), &l(1900, 100)), 0);
        assert_eq!(t.sample(at(1), &l(2000, 100)), 1);
        assert_eq!(t.sample(at(3), &l(2500, 2100)), 2);
        assert_eq!(t.sample(at(4), &l(1000, 2100)), 1);
        assert_eq!(t.onsets(), 2);
        // h00: 1 -> 4 (3 s), h01: 3 -> 4 (1 s)
        assert!((t.violation_s - 4.0).abs() < 1e-9, "{}", t.violation_s);
        assert_eq!(t.episodes[0].end, Some(at(4)));
        assert_eq!(t.episodes[1].host, "h01");
        assert_eq!(t.episodes[1].end, None);
    }

    #[test]
    fn load_sums_the_guests_each_host_runs() {
        let hosts = ["h00".to_owned(), "h01".to_owned(), "h02".to_owned()];
        let placement = BTreeMap::from([
            ("a".to_owned(), vec!["h00".to_owned()]),
            ("b".to_owned(), vec!["h00".to_owned()]),
            ("c".to_owned(), vec!["h01".to_owned()]),
            ("stranger".to_owned(), vec!["h01".to_owned()]),
        ]);
        let demand = BTreeMap::from([
            ("a".to_owned(), 600),
            ("b".to_owned(), 700),
            ("c".to_owned(), 100),
        ]);
        let load = host_load(&hosts, &placement, &demand);
        assert_eq!(load["h00"], 1300);
        assert_eq!(load["h01"], 100);
        assert_eq!(load["h02"], 0);
    }
}
