//! Bounded input: the upper bound of every size and value the simulator accepts, and reading
//! files with a size cap.
//!
//! Every bound is documented in `tools/sim/README.md` ("Limits"). The bounds keep every
//! sum the engine computes far inside `u64` (a host's CPU in milli-cores is at most
//! `MAX_VMS_PER_HOST_TOTAL × MAX_VM_CORES × 1000`) and the memory of a run predictable.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Most hosts a run or scenario may have (memory: about 10 KiB per host with dvms).
pub const MAX_HOSTS: usize = 200_000;
/// Most VMs per host in a generated cluster.
pub const MAX_VMS_PER_HOST: usize = 1_000;
/// Most VMs in a run or scenario.
pub const MAX_VMS: usize = 4_000_000;
/// Largest host, in cores (`--host-cores`, scenario `cores`): the most the protocol's wire
/// accepts (`dvms_core::wire::MAX_CPU_MILLI`).
pub const MAX_HOST_CORES: f64 = 1_000_000.0;
/// Largest VM CPU demand, in cores (scenario `cpu`).
pub const MAX_VM_CORES: f64 = 1_000_000.0;
/// Largest host memory, GiB (`--host-mem-gib`, scenario `mem_gib` of a host): 1 PiB, the
/// wire's `MAX_MEM_MIB`.
pub const MAX_HOST_MEM_GIB: f64 = 1_048_576.0;
/// Largest VM memory, GiB (`--vm-mem-gib`, scenario `mem_gib` of a VM).
pub const MAX_VM_MEM_GIB: f64 = 1_048_576.0;
/// Longest simulated time (`--duration`, scenario times).
pub const MAX_DURATION_S: f64 = 30.0 * 86_400.0;
/// Longest one-way latency (`--latency`, `--inter-site-latency`, scenario `latency`).
pub const MAX_LATENCY_S: f64 = 60.0;
/// Longest protocol duration (`--lease`, `--detect-hold`, scenario protocol times).
pub const MAX_PROTOCOL_S: f64 = 3_600.0;
/// Fastest link or NIC, MB/s (`--bandwidth-mbs`, `--nic-mbs`, ...).
pub const MAX_BANDWIDTH_MBS: f64 = 1_000_000.0;
/// Slowest link or NIC, MB/s.
pub const MIN_BANDWIDTH_MBS: f64 = 0.001;
/// Highest crash rate, share of hosts per hour (`--crash-rate`).
pub const MAX_CRASH_RATE: f64 = 100.0;
/// Largest scenario or instance file, bytes.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Largest trace file, bytes (a day of 5-minute samples is about 1 KiB).
pub const MAX_TRACE_FILE_BYTES: u64 = 64 * 1024;
/// Most trace files in a directory.
pub const MAX_TRACE_FILES: usize = 100_000;
/// Most samples in one trace file.
pub const MAX_TRACE_SAMPLES: usize = 10_000;
/// Largest trace sample: percent of one core.
pub const MAX_TRACE_PCT: u16 = 100;

/// Why a file could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// Missing or unreadable (exit 66).
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Larger than the cap (exit 65).
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The cap, bytes.
        cap: u64,
    },
    /// Not UTF-8 (exit 65).
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// Byte offset of the first invalid sequence.
        at: usize,
    },
}

impl ReadError {
    /// True when the file exists but its content is malformed (exit 65 rather than 66).
    pub fn is_malformed(&self) -> bool {
        !matches!(self, ReadError::Io { .. })
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            ReadError::TooLarge { path, cap } => write!(
                f,
                "{}: larger than the limit of {cap} bytes",
                path.display()
            ),
            ReadError::NotUtf8 { path, at } => write!(
                f,
                "{}: not UTF-8 text (invalid byte at offset {at})",
                path.display()
            ),
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Reads `path` as UTF-8 text of at most `cap` bytes, never buffering more than `cap + 1`
/// bytes (so `/dev/zero` fails at once).
pub fn read_text(path: &Path, cap: u64) -> Result<String, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut buf = Vec::new();
    file.take(cap.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(io)?;
    if buf.len() as u64 > cap {
        return Err(ReadError::TooLarge {
            path: path.to_owned(),
            cap,
        });
    }
    String::from_utf8(buf).map_err(|e| ReadError::NotUtf8 {
        path: path.to_owned(),
        at: e.utf8_error().valid_up_to(),
    })
}

/// `v` written short: huge or tiny values in scientific notation.
fn compact(v: f64) -> String {
    if v != 0.0 && v.is_finite() && !(1e-3..1e9).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// Checks that `v` is a finite number in `[lo, hi]` (`lo` excluded when `open_lo`), naming
/// `what` in the error.
pub fn check_range(what: &str, v: f64, lo: f64, hi: f64, open_lo: bool) -> Result<f64, String> {
    let low_ok = if open_lo { v > lo } else { v >= lo };
    if v.is_finite() && low_ok && v <= hi {
        Ok(v)
    } else {
        let lo_text = if open_lo {
            format!("more than {lo}")
        } else {
            format!("at least {lo}")
        };
        Err(format!(
            "{what} {}: expected a number {lo_text} and at most {hi}",
            compact(v)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str, bytes: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dvms-sim-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn files_are_read_with_a_cap_and_must_be_utf8() {
        let ok = tmp("ok", b"seed = 1\n");
        assert_eq!(read_text(&ok, 100).unwrap(), "seed = 1\n");
        let big = tmp("big", &[b'a'; 101]);
        let e = read_text(&big, 100).unwrap_err();
        assert!(e.is_malformed() && e.to_string().contains("limit"), "{e}");
        let bad = tmp("bad", b"ab\xff\xfe");
        let e = read_text(&bad, 100).unwrap_err();
        assert!(
            e.is_malformed() && e.to_string().contains("offset 2"),
            "{e}"
        );
        let e = read_text(Path::new("/nonexistent/x"), 100).unwrap_err();
        assert!(!e.is_malformed());
    }

    #[test]
    fn dev_zero_stops_at_the_cap() {
        let zero = Path::new("/dev/zero");
        if zero.exists() {
            let e = read_text(zero, 1024).unwrap_err();
            assert!(matches!(e, ReadError::TooLarge { .. }), "{e}");
        }
    }

    #[test]
    fn ranges_name_the_value() {
        assert_eq!(check_range("--x", 2.0, 0.0, 3.0, true), Ok(2.0));
        for v in [0.0, -1.0, 1e300, f64::NAN, f64::INFINITY] {
            let e = check_range("--x", v, 0.0, 3.0, true).unwrap_err();
            assert!(e.starts_with("--x"), "{e}");
        }
        assert_eq!(check_range("--x", 0.0, 0.0, 3.0, false), Ok(0.0));
    }
}
