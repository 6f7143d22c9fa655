//! Pure parsers of the kernel files the monitor reads.
//!
//! Each takes the text of one file (as the kernel writes it) and returns numbers, never
//! allocating: they run for every VM on every sample. Every number is range-checked; a
//! file that is truncated or half-written gives a [`ParseError`] naming what was wrong.

/// Upper bound accepted for any byte count (memory sizes): 2^52 bytes = 4 PiB.
pub const MAX_BYTES: u64 = 1 << 52;
/// Upper bound accepted for a CPU count (the kernel's NR_CPUS is at most 8192 today).
pub const MAX_CPUS: u32 = 1 << 16;
/// Upper bound accepted for a VM's vCPU count (KVM_MAX_VCPUS is 4096 on x86 today).
pub const MAX_VCPUS: u32 = 4096;

/// What was wrong with the text of a kernel file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// A key the file must carry is absent (for example a truncated `cpu.stat`).
    #[error("key {key} missing")]
    MissingKey {
        /// The key looked for.
        key: &'static str,
    },
    /// A field is not a number where one is expected.
    #[error("{what}: not a number")]
    BadNumber {
        /// The field.
        what: &'static str,
    },
    /// A number outside the range the kernel can produce.
    #[error("{what}: value {value} out of range")]
    OutOfRange {
        /// The field.
        what: &'static str,
        /// The value read (saturated to u64).
        value: u64,
    },
    /// The file does not have the expected shape.
    #[error("{what}: malformed")]
    Malformed {
        /// The field or file.
        what: &'static str,
    },
}

/// Parses an unsigned decimal, rejecting signs, blanks and overflow.
pub fn parse_u64(text: &str, what: &'static str) -> Result<u64, ParseError> {
    let t = text.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::BadNumber { what });
    }
    t.parse::<u64>().map_err(|_| ParseError::OutOfRange {
        what,
        value: u64::MAX,
    })
}

/// The complete lines of a file: everything up to its last newline. The kernel ends every
/// line with one; text after the last newline is a line cut short (a half-written file) and
/// must not be read as a (smaller) number.
pub fn complete_lines(text: &str) -> &str {
    text.rsplit_once('\n').map_or("", |(done, _)| done)
}

/// Parses a file holding a single number and a newline (`memory.current`, `cpuacct.usage`,
/// `memory.usage_in_bytes`). An empty or cut file (half-written) is an error.
pub fn parse_single(text: &str, what: &'static str) -> Result<u64, ParseError> {
    if !text.ends_with('\n') {
        return Err(ParseError::Malformed { what });
    }
    parse_u64(text, what)
}

/// Finds `key value` in a flat keyed file (`cpu.stat`, `memory.stat`) and parses the value.
/// Only complete (newline-terminated) lines count.
pub fn parse_keyed(text: &str, key: &'static str) -> Result<u64, ParseError> {
    for line in complete_lines(text).lines() {
        let mut it = line.split_ascii_whitespace();
        if it.next() == Some(key) {
            let v = it.next().ok_or(ParseError::Malformed { what: key })?;
            return parse_u64(v, key);
        }
    }
    Err(ParseError::MissingKey { key })
}

/// `usage_usec` of a cgroup v2 `cpu.stat`, in microseconds.
pub fn parse_cpu_stat_usage_usec(text: &str) -> Result<u64, ParseError> {
    parse_keyed(text, "usage_usec")
}

/// A memory byte count checked against [`MAX_BYTES`].
pub fn check_bytes(value: u64, what: &'static str) -> Result<u64, ParseError> {
    if value > MAX_BYTES {
        return Err(ParseError::OutOfRange { what, value });
    }
    Ok(value)
}

/// The three fields of `/proc/<pid>/task/<tid>/schedstat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SchedStat {
    /// Time spent on a CPU, nanoseconds.
    pub exec_ns: u64,
    /// Time spent runnable but waiting on a run queue, nanoseconds.
    pub run_delay_ns: u64,
    /// Number of time slices run.
    pub slices: u64,
}

/// Parses `/proc/<pid>/task/<tid>/schedstat`: `exec_ns run_delay_ns slices\n`.
pub fn parse_schedstat(text: &str) -> Result<SchedStat, ParseError> {
    let mut it = text.split_ascii_whitespace();
    let mut field = |what: &'static str| -> Result<u64, ParseError> {
        parse_u64(it.next().ok_or(ParseError::Malformed { what })?, what)
    };
    let exec_ns = field("schedstat exec time")?;
    let run_delay_ns = field("schedstat run delay")?;
    let slices = field("schedstat slices")?;
    if !text.ends_with('\n') {
        return Err(ParseError::Malformed { what: "schedstat" });
    }
    Ok(SchedStat {
        exec_ns,
        run_delay_ns,
        slices,
    })
}

/// One line (`some` or `full`) of a pressure file.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PsiLine {
    /// Share of the last 10 s with at least one task stalled, percent (0..=100).
    pub avg10: f32,
    /// Total stall time since boot, microseconds.
    pub total_us: u64,
}

/// A pressure file (`/proc/pressure/cpu`, a cgroup's `cpu.pressure`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Psi {
    /// The `some` line.
    pub some: PsiLine,
    /// The `full` line, absent for `/proc/pressure/cpu` on kernels before 5.13.
    pub full: Option<PsiLine>,
}

fn parse_avg(v: &str, what: &'static str) -> Result<f32, ParseError> {
    // The kernel prints "%lu.%02lu": digits, a dot, two digits.
    let (int, frac) = v.split_once('.').ok_or(ParseError::Malformed { what })?;
    let int = parse_u64(int, what)?;
    let frac = parse_u64(frac, what)?;
    if int > 100 || frac > 99 || (int == 100 && frac != 0) {
        return Err(ParseError::OutOfRange { what, value: int });
    }
    // Both parts are below 101, exactly representable.
    Ok(int as f32 + frac as f32 / 100.0)
}

fn parse_psi_line(line: &str) -> Result<(bool, PsiLine), ParseError> {
    const WHAT: &str = "pressure line";
    let mut it = line.split_ascii_whitespace();
    let some = match it.next() {
        Some("some") => true,
        Some("full") => false,
        _ => return Err(ParseError::Malformed { what: WHAT }),
    };
    let mut avg10 = None;
    let mut total = None;
    for kv in it {
        let (k, v) = kv
            .split_once('=')
            .ok_or(ParseError::Malformed { what: WHAT })?;
        match k {
            "avg10" => avg10 = Some(parse_avg(v, "pressure avg10")?),
            "avg60" => _ = parse_avg(v, "pressure avg60")?,
            "avg300" => _ = parse_avg(v, "pressure avg300")?,
            "total" => total = Some(parse_u64(v, "pressure total")?),
            _ => {}
        }
    }
    Ok((
        some,
        PsiLine {
            avg10: avg10.ok_or(ParseError::MissingKey { key: "avg10" })?,
            total_us: total.ok_or(ParseError::MissingKey { key: "total" })?,
        },
    ))
}

/// Parses a PSI file: a `some` line and, optionally, a `full` line.
pub fn parse_psi(text: &str) -> Result<Psi, ParseError> {
    let mut some = None;
    let mut full = None;
    for line in complete_lines(text).lines().filter(|l| !l.is_empty()) {
        let (is_some, l) = parse_psi_line(line)?;
        if is_some {
            some = Some(l);
        } else {
            full = Some(l);
        }
    }
    Ok(Psi {
        some: some.ok_or(ParseError::MissingKey { key: "some" })?,
        full,
    })
}

/// Counts the CPUs of a CPU list such as `/sys/devices/system/cpu/online` (`0-3,8-11\n`).
pub fn parse_cpu_list_count(text: &str) -> Result<u32, ParseError> {
    const WHAT: &str = "cpu list";
    let t = text.trim();
    if t.is_empty() || !text.ends_with('\n') {
        return Err(ParseError::Malformed { what: WHAT });
    }
    let mut count: u64 = 0;
    for part in t.split(',') {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (parse_u64(a, WHAT)?, parse_u64(b, WHAT)?),
            None => {
                let a = parse_u64(part, WHAT)?;
                (a, a)
            }
        };
        if b < a || b >= u64::from(MAX_CPUS) {
            return Err(ParseError::OutOfRange {
                what: WHAT,
                value: b,
            });
        }
        count = count.saturating_add(b - a + 1);
    }
    if count > u64::from(MAX_CPUS) {
        return Err(ParseError::OutOfRange {
            what: WHAT,
            value: count,
        });
    }
    u32::try_from(count).map_err(|_| ParseError::OutOfRange {
        what: WHAT,
        value: count,
    })
}

/// Parses a cgroup v2 `cpu.max` (`max 100000` or `200000 100000`) into milli-cores;
/// `None` when unlimited.
pub fn parse_cpu_max_milli(text: &str) -> Result<Option<u64>, ParseError> {
    const WHAT: &str = "cpu.max";
    let mut it = complete_lines(text).split_ascii_whitespace();
    let quota = it.next().ok_or(ParseError::Malformed { what: WHAT })?;
    let period = parse_u64(it.next().ok_or(ParseError::Malformed { what: WHAT })?, WHAT)?;
    if !(1_000..=1_000_000).contains(&period) {
        return Err(ParseError::OutOfRange {
            what: WHAT,
            value: period,
        });
    }
    if quota == "max" {
        return Ok(None);
    }
    let quota = parse_u64(quota, WHAT)?;
    let milli = u128::from(quota) * 1000 / u128::from(period);
    let cap = u128::from(MAX_CPUS) * 1000;
    Ok(Some(u64::try_from(milli.min(cap)).unwrap_or(u64::MAX)))
}

/// A `/proc/meminfo` value in kB (for example `MemTotal`), checked against [`MAX_BYTES`].
pub fn parse_meminfo_kb(text: &str, key: &'static str) -> Result<u64, ParseError> {
    for line in complete_lines(text).lines() {
        if let Some(rest) = line.strip_prefix(key) {
            let rest = rest
                .strip_prefix(':')
                .ok_or(ParseError::Malformed { what: key })?;
            let mut it = rest.split_ascii_whitespace();
            let v = parse_u64(it.next().ok_or(ParseError::Malformed { what: key })?, key)?;
            if it.next() != Some("kB") {
                return Err(ParseError::Malformed { what: key });
            }
            return check_bytes(v, key)
                .and_then(|_| check_bytes(v.saturating_mul(1024), key))
                .map(|_| v);
        }
    }
    Err(ParseError::MissingKey { key })
}

/// The first pid of a `cgroup.procs`/`cgroup.threads`/`tasks` file, if any; the next ones are
/// reachable with [`pids`].
pub fn first_pid(text: &str) -> Result<Option<u32>, ParseError> {
    pids(text).next().transpose()
}

/// Iterates over the pids of a `cgroup.procs`/`cgroup.threads`/`tasks` file.
pub fn pids(text: &str) -> impl Iterator<Item = Result<u32, ParseError>> + '_ {
    complete_lines(text).split_ascii_whitespace().map(|t| {
        let v = parse_u64(t, "pid")?;
        // PID_MAX_LIMIT is 2^22.
        if v == 0 || v > 1 << 22 {
            return Err(ParseError::OutOfRange {
                what: "pid",
                value: v,
            });
        }
        u32::try_from(v).map_err(|_| ParseError::OutOfRange {
            what: "pid",
            value: v,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_stat_v2() {
        let t = "usage_usec 8172637\nuser_usec 6171000\nsystem_usec 2001637\n\
                 nr_periods 0\nnr_throttled 0\nthrottled_usec 0\nnr_bursts 0\nburst_usec 0\n";
        assert_eq!(parse_cpu_stat_usage_usec(t), Ok(8_172_637));
        assert_eq!(
            parse_cpu_stat_usage_usec("user_usec 1\n"),
            Err(ParseError::MissingKey { key: "usage_usec" })
        );
        assert!(parse_cpu_stat_usage_usec("usage_usec \n").is_err());
        assert!(parse_cpu_stat_usage_usec("usage_usec -3\n").is_err());
        assert!(parse_cpu_stat_usage_usec("usage_usec 99999999999999999999999\n").is_err());
        // Cut mid-number: not read as a smaller counter.
        assert!(parse_cpu_stat_usage_usec("usage_usec 81").is_err());
    }

    #[test]
    fn single_values() {
        assert_eq!(parse_single("1073741824\n", "memory.current"), Ok(1 << 30));
        assert!(parse_single("", "memory.current").is_err());
        assert!(parse_single("10737", "memory.current").is_err());
        assert!(parse_single("max\n", "memory.current").is_err());
        assert!(check_bytes(1 << 53, "x").is_err());
    }

    #[test]
    fn schedstat() {
        assert_eq!(
            parse_schedstat("93670 4206 2\n"),
            Ok(SchedStat {
                exec_ns: 93670,
                run_delay_ns: 4206,
                slices: 2
            })
        );
        // Half-written: truncated before the newline or a field.
        assert!(parse_schedstat("93670 4206").is_err());
        assert!(parse_schedstat("93670 42").is_err());
        assert!(parse_schedstat("").is_err());
    }

    #[test]
    fn psi() {
        let t = "some avg10=9.80 avg60=12.11 avg300=8.44 total=43506604\n\
                 full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
        let p = parse_psi(t).unwrap();
        assert!((p.some.avg10 - 9.8).abs() < 1e-4);
        assert_eq!(p.some.total_us, 43_506_604);
        assert_eq!(p.full.map(|f| f.total_us), Some(0));
        let old = parse_psi("some avg10=100.00 avg60=0.00 avg300=0.00 total=5\n").unwrap();
        assert!(old.full.is_none());
        assert!(parse_psi("some avg10=100.01 avg60=0.00 avg300=0.00 total=5\n").is_err());
        assert!(parse_psi("some avg10=1.00 avg60=0.00 avg3").is_err());
        assert!(parse_psi("").is_err());
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list_count("0-1\n"), Ok(2));
        assert_eq!(parse_cpu_list_count("0\n"), Ok(1));
        assert_eq!(parse_cpu_list_count("0-3,8-11,16\n"), Ok(9));
        assert!(parse_cpu_list_count("3-1\n").is_err());
        assert!(parse_cpu_list_count("\n").is_err());
        assert!(parse_cpu_list_count("0-1").is_err());
        assert!(parse_cpu_list_count("0-999999\n").is_err());
    }

    #[test]
    fn cpu_max() {
        assert_eq!(parse_cpu_max_milli("max 100000\n"), Ok(None));
        assert_eq!(parse_cpu_max_milli("150000 100000\n"), Ok(Some(1500)));
        assert!(parse_cpu_max_milli("150000 0\n").is_err());
        assert!(parse_cpu_max_milli("150000\n").is_err());
    }

    #[test]
    fn meminfo() {
        let t = "MemTotal:       24684100 kB\nMemFree:          258720 kB\n";
        assert_eq!(parse_meminfo_kb(t, "MemTotal"), Ok(24_684_100));
        assert_eq!(parse_meminfo_kb(t, "MemFree"), Ok(258_720));
        assert!(parse_meminfo_kb(t, "MemAvailable").is_err());
        assert!(parse_meminfo_kb("MemTotal:       24684100", "MemTotal").is_err());
    }

    #[test]
    fn pid_lists() {
        assert_eq!(first_pid("4242\n4243\n"), Ok(Some(4242)));
        assert_eq!(first_pid(""), Ok(None));
        assert_eq!(first_pid("4242\n43"), Ok(Some(4242)));
        assert_eq!(first_pid("42"), Ok(None));
        assert!(first_pid("0\n").is_err());
        assert!(first_pid("x\n").is_err());
        let all: Result<Vec<u32>, _> = pids("1\n2\n3\n").collect();
        assert_eq!(all, Ok(vec![1, 2, 3]));
    }
}
