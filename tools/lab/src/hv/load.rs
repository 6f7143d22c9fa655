//! How a saturated host shares its CPU: what each VM gets and how long it waits.
//!
//! Under cgroup v2 every VM is a scope of `machine.slice` with the same `cpu.weight`, so CFS's
//! group scheduling shares a saturated host's cores equally between the VMs that want them: a
//! max-min fair share (water-filling), each VM capped at its demand. What a VM wanted and did not
//! get it spent runnable but not running, which the kernel counts as `run_delay` in its vCPU
//! threads' `schedstat`: the monitor's estimator reads demand as use plus that wait.

/// What one VM gets from its host over a tick, in thousandths of a core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    /// CPU the VM ran.
    pub use_milli: u64,
    /// CPU the VM wanted and waited for (runnable, not running).
    pub wait_milli: u64,
}

/// Shares `capacity_milli` between VMs wanting `demands` (thousandths of a core each, already
/// capped at their vCPUs): max-min fair, in the order of `demands`.
///
/// The uses never sum above the capacity, each use is at most its demand, and use plus wait is
/// exactly the demand.
pub fn fair_share(capacity_milli: u64, demands: &[u64]) -> Vec<Share> {
    let total: u64 = demands.iter().fold(0u64, |a, &d| a.saturating_add(d));
    if total <= capacity_milli {
        return demands
            .iter()
            .map(|&d| Share {
                use_milli: d,
                wait_milli: 0,
            })
            .collect();
    }
    // Water-filling: serve the smallest demands first; the rest share what is left equally.
    let mut order: Vec<usize> = (0..demands.len()).collect();
    order.sort_by_key(|&i| demands[i]);
    let mut uses = vec![0u64; demands.len()];
    let mut left = capacity_milli;
    let mut remaining = demands.len() as u64;
    for &i in &order {
        let fair = left / remaining.max(1);
        let got = demands[i].min(fair);
        uses[i] = got;
        left -= got;
        remaining -= 1;
    }
    demands
        .iter()
        .zip(uses)
        .map(|(&d, u)| Share {
            use_milli: u,
            wait_milli: d - u,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_capacity_everyone_gets_its_demand() {
        let s = fair_share(7000, &[600, 900, 0]);
        assert!(s.iter().all(|x| x.wait_milli == 0));
        assert_eq!(s[1].use_milli, 900);
    }

    #[test]
    fn saturated_host_is_shared_max_min_fair() {
        // 3 cores, demands 0.5, 1, 1, 1 (sum 3.5): the small one gets all it wants, the three
        // others 2.5 / 3 each.
        let s = fair_share(3000, &[1000, 500, 1000, 1000]);
        assert_eq!(
            s[1],
            Share {
                use_milli: 500,
                wait_milli: 0
            }
        );
        for i in [0, 2, 3] {
            assert!((833..=834).contains(&s[i].use_milli), "{s:?}");
        }
        let used: u64 = s.iter().map(|x| x.use_milli).sum();
        assert_eq!(used, 3000, "a saturated host is used fully");
    }

    #[test]
    fn use_plus_wait_is_the_demand_and_use_never_exceeds_capacity() {
        let demands = [1000, 700, 300, 1000, 900, 100, 0, 800];
        for cap in [0, 1, 999, 2000, 4000, 10_000] {
            let s = fair_share(cap, &demands);
            let used: u64 = s.iter().map(|x| x.use_milli).sum();
            assert!(used <= cap, "cap {cap}: used {used}");
            for (d, x) in demands.iter().zip(&s) {
                assert_eq!(x.use_milli + x.wait_milli, *d);
            }
        }
    }
}
