//! dvms-placement: the placement solver.
//!
//! PLACEHOLDER API (the placement issue replaces the body, keeping these signatures): a pure,
//! deterministic function from a [`Problem`] to a [`Plan`], budgeted in work units.

use dvms_core::model::{Plan, Problem, Resources, Unsolvable};

/// How much work the solver may do, in abstract work units (never wall time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Work units allowed.
    pub work_units: u64,
}

/// Which VMs the solver may move.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// Any migratable VM (partitions of tens of hosts).
    #[default]
    Full,
    /// Only VMs on hosts that violate a threshold or constraint: near-linear on a whole cluster.
    Repair,
}

/// Solver options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Work budget.
    pub budget: Budget,
    /// Search mode.
    pub mode: Mode,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            budget: Budget {
                work_units: 1_000_000,
            },
            mode: Mode::Full,
        }
    }
}

/// A solver answer with the work it took (drivers model solve time from it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The plan, or why there is none.
    pub result: Result<Plan, Unsolvable>,
    /// Work units spent.
    pub work_units: u64,
}

/// Solves a placement problem.
pub fn solve(problem: &Problem, _opts: &Options) -> Outcome {
    let over = problem.hosts.iter().find(|h| {
        let used: Resources = problem
            .vms
            .iter()
            .filter(|v| v.host == h.id)
            .map(|v| v.demand)
            .sum();
        !used.fits_in(h.limit())
    });
    let result = match over {
        None => Ok(Plan::default()),
        Some(h) => Err(Unsolvable::BudgetExhausted { host: h.id }),
    };
    Outcome {
        result,
        work_units: problem.vms.len() as u64,
    }
}
