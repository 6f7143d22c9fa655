//! Workloads: the initial cluster and how VM loads change over time.
//!
//! - `vmplaces` (VMPlaceS, `DVMS-REFERENCE.md` §6): one global Poisson stream of load changes
//!   with rate `#VMs / load_period` (300 s), a uniformly chosen VM each time, its new load
//!   `N(60 %, 20 %)` clamped to `[0, 100]` and rounded to steps of 10 %. VMPlaceS starts every
//!   VM at 0 %; we draw the initial loads from the same Gaussian instead, so the run is in steady
//!   state from the first second (documented deviation).
//! - `planetlab:DIR`: each file of DIR (sorted by name) is 288 integers, the percent of one core
//!   a VM used at 5-minute steps; files are assigned to VMs round-robin. To avoid every VM of the
//!   cluster changing load at the same instant, VM `j` of `n` switches to its next sample at
//!   offset `j * 300 s / n` within each 5-minute step.

use std::path::{Path, PathBuf};

use rand_chacha::ChaCha8Rng;

use crate::config::VmplacesParams;
use crate::input::{
    MAX_TRACE_FILE_BYTES, MAX_TRACE_FILES, MAX_TRACE_PCT, MAX_TRACE_SAMPLES, ReadError, read_text,
};
use crate::rng;

/// One host of the initial cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct HostInit {
    /// Its name in reports (scenarios), or its index.
    pub name: String,
    /// CPU capacity in thousandths of a core.
    pub cpu_milli: u64,
    /// Memory capacity in MiB.
    pub mem_mib: u64,
    /// Site index.
    pub site: u32,
}

/// One VM of the initial cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct VmInit {
    /// Its name in reports.
    pub name: String,
    /// Index of its host.
    pub host: usize,
    /// CPU demand in thousandths of a core.
    pub cpu_milli: u64,
    /// Memory in MiB.
    pub mem_mib: u64,
}

/// The initial cluster.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Setup {
    /// Hosts.
    pub hosts: Vec<HostInit>,
    /// VMs.
    pub vms: Vec<VmInit>,
    /// Site names, by index.
    pub sites: Vec<String>,
}

/// The shape of a generated cluster.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shape {
    /// Number of hosts.
    pub hosts: usize,
    /// VMs per host.
    pub vms_per_host: usize,
    /// Cores per host.
    pub host_cores: f64,
    /// Memory per host, GiB.
    pub host_mem_gib: f64,
    /// Memory per VM, GiB.
    pub vm_mem_gib: f64,
    /// Number of sites (hosts spread over them round-robin).
    pub sites: usize,
}

/// Grid'5000 site names used for `--sites` (the seed's experiments ran on the first three).
const SITE_NAMES: [&str; 8] = [
    "nancy",
    "sophia",
    "rennes",
    "lyon",
    "lille",
    "grenoble",
    "nantes",
    "luxembourg",
];

/// A generated cluster with VMs placed round-robin and zero load (loads are set by the
/// workload).
pub fn generate(shape: &Shape) -> Setup {
    let sites = shape.sites.max(1);
    let site_names = (0..sites)
        .map(|s| {
            SITE_NAMES
                .get(s)
                .map_or_else(|| format!("site{s}"), |n| (*n).to_owned())
        })
        .collect();
    let hosts = (0..shape.hosts)
        .map(|i| HostInit {
            name: format!("h{i}"),
            // A positive size never rounds down to nothing.
            cpu_milli: ((shape.host_cores * 1000.0).round() as u64).max(1),
            mem_mib: ((shape.host_mem_gib * 1024.0).round() as u64).max(1),
            site: u32::try_from(i % sites).unwrap_or(0),
        })
        .collect();
    let n_vms = shape.hosts * shape.vms_per_host;
    let vms = (0..n_vms)
        .map(|j| VmInit {
            name: format!("v{j}"),
            host: j % shape.hosts.max(1),
            cpu_milli: 0,
            mem_mib: ((shape.vm_mem_gib * 1024.0).round() as u64).max(1),
        })
        .collect();
    Setup {
        hosts,
        vms,
        sites: site_names,
    }
}

/// A VMPlaceS load draw, in thousandths of a core of a 1-vCPU VM.
pub fn vmplaces_load(rng: &mut ChaCha8Rng, p: &VmplacesParams) -> u64 {
    let pct = rng::gaussian(rng, p.mean_pct, p.sd_pct).clamp(0.0, 100.0);
    let slot = (pct / 10.0).round() as u64;
    slot * 100
}

/// Replayed PlanetLab traces.
#[derive(Clone, Debug)]
pub struct Traces {
    /// One trace per file: percent of one core per 5-minute step.
    pub series: Vec<Vec<u16>>,
}

/// Samples per trace file.
pub const TRACE_LEN: usize = 288;
/// Time between two samples of a trace.
pub const TRACE_STEP_S: u64 = 300;

/// Why traces could not be loaded.
#[derive(Debug)]
pub enum TraceError {
    /// The directory or a file could not be read, is too large or is not UTF-8.
    Read(ReadError),
    /// The directory could not be listed.
    Dir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line is not a percentage of one core (an integer in `0..=100`).
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The text found.
        text: String,
    },
    /// Too many files, or too many samples in one file.
    TooMany {
        /// The directory or file.
        path: PathBuf,
        /// What is limited, and its limit.
        what: String,
    },
    /// The directory holds no trace file.
    Empty {
        /// The directory.
        path: PathBuf,
    },
}

impl TraceError {
    /// True when the traces exist but are malformed (exit 65), false when unreadable (66).
    pub fn is_malformed(&self) -> bool {
        match self {
            TraceError::Read(e) => e.is_malformed(),
            TraceError::Dir { .. } => false,
            TraceError::Parse { .. } | TraceError::TooMany { .. } | TraceError::Empty { .. } => {
                true
            }
        }
    }
}

impl std::fmt::Display for TraceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TraceError::Read(e) => write!(f, "{e}"),
            TraceError::Dir { path, .. } => write!(f, "cannot read {}", path.display()),
            TraceError::Parse { path, line, text } => write!(
                f,
                "{}:{line}: expected a percentage of one core (an integer in 0..={MAX_TRACE_PCT}), found {text:?}",
                path.display()
            ),
            TraceError::TooMany { path, what } => write!(f, "{}: {what}", path.display()),
            TraceError::Empty { path } => write!(f, "no trace file in {}", path.display()),
        }
    }
}

impl std::error::Error for TraceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TraceError::Read(e) => e.source(),
            TraceError::Dir { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl Traces {
    /// Loads every regular file of `dir`, sorted by name: at most
    /// [`MAX_TRACE_FILES`] files of at most [`MAX_TRACE_FILE_BYTES`] bytes and
    /// [`MAX_TRACE_SAMPLES`] samples each, every sample in `0..=100`.
    pub fn load(dir: &Path) -> Result<Traces, TraceError> {
        let dir_err = |source| TraceError::Dir {
            path: dir.to_owned(),
            source,
        };
        let mut files: Vec<PathBuf> = Vec::new();
        for e in std::fs::read_dir(dir).map_err(dir_err)? {
            let Ok(e) = e else { continue };
            let p = e.path();
            if p.is_file() {
                if files.len() >= MAX_TRACE_FILES {
                    return Err(TraceError::TooMany {
                        path: dir.to_owned(),
                        what: format!("more than {MAX_TRACE_FILES} trace files"),
                    });
                }
                files.push(p);
            }
        }
        files.sort();
        let mut series = Vec::with_capacity(files.len());
        for path in files {
            let text = read_text(&path, MAX_TRACE_FILE_BYTES).map_err(TraceError::Read)?;
            let mut s = Vec::with_capacity(TRACE_LEN);
            for (i, line) in text.lines().enumerate() {
                let l = line.trim();
                if l.is_empty() {
                    continue;
                }
                let v = l
                    .parse::<u16>()
                    .ok()
                    .filter(|&v| v <= MAX_TRACE_PCT)
                    .ok_or_else(|| TraceError::Parse {
                        path: path.clone(),
                        line: i + 1,
                        text: l.chars().take(40).collect(),
                    })?;
                if s.len() >= MAX_TRACE_SAMPLES {
                    return Err(TraceError::TooMany {
                        path: path.clone(),
                        what: format!("more than {MAX_TRACE_SAMPLES} samples"),
                    });
                }
                s.push(v);
            }
            if !s.is_empty() {
                series.push(s);
            }
        }
        if series.is_empty() {
            return Err(TraceError::Empty {
                path: dir.to_owned(),
            });
        }
        Ok(Traces { series })
    }

    /// The CPU demand of VM `vm` at trace step `step`, in thousandths of a core.
    pub fn cpu_milli(&self, vm: usize, step: u64) -> u64 {
        let s = &self.series[vm % self.series.len()];
        let idx = usize::try_from(step % s.len() as u64).unwrap_or(0);
        u64::from(s[idx]) * 10
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmplaces_loads_are_slots_of_ten_percent() {
        let mut r = rng::stream(3, rng::Stream::Workload);
        let p = VmplacesParams::default();
        for _ in 0..1000 {
            let l = vmplaces_load(&mut r, &p);
            assert!(l <= 1000 && l % 100 == 0);
        }
    }

    #[test]
    fn generated_cluster_is_round_robin() {
        let s = generate(&Shape {
            hosts: 3,
            vms_per_host: 2,
            host_cores: 7.0,
            host_mem_gib: 32.0,
            vm_mem_gib: 1.0,
            sites: 2,
        });
        assert_eq!(
            s.vms.iter().map(|v| v.host).collect::<Vec<_>>(),
            [0, 1, 2, 0, 1, 2]
        );
        assert_eq!(s.hosts[1].site, 1);
        assert_eq!(s.hosts[0].mem_mib, 32768);
    }

    #[test]
    fn bad_trace_line_is_named() {
        let dir = std::env::temp_dir().join(format!("dvms-sim-trace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a"), "10\nx\n").unwrap();
        let err = Traces::load(&dir).unwrap_err();
        assert!(
            err.is_malformed() && err.to_string().contains(":2:"),
            "{err}"
        );
        std::fs::write(dir.join("a"), "10\n65535\n").unwrap();
        let err = Traces::load(&dir).unwrap_err().to_string();
        assert!(err.contains(":2:") && err.contains("65535"), "{err}");
        std::fs::write(dir.join("a"), b"10\n\xff\n").unwrap();
        let err = Traces::load(&dir).unwrap_err();
        assert!(
            err.is_malformed() && err.to_string().contains("UTF-8"),
            "{err}"
        );
        std::fs::write(dir.join("a"), "101\n").unwrap();
        assert!(Traces::load(&dir).is_err());
        std::fs::write(dir.join("a"), "100\n0\n").unwrap();
        assert_eq!(Traces::load(&dir).unwrap().series, vec![vec![100, 0]]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
