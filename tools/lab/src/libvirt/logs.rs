//! What the agents' JSON logs (`DVMS_LOG_FORMAT=json`) say about migrations: when each one
//! started on which host, libvirt's duration and downtime of each one done, failures and
//! aborts.

use std::path::Path;
use std::time::SystemTime;

use serde_json::Value;

/// The most bytes of one agent log read.
const MAX_LOG_BYTES: u64 = 256 << 20;

/// Migration facts from one or more agent logs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Migrations {
    /// `(host, time)` of every `migration_started`.
    pub started: Vec<(String, SystemTime)>,
    /// Migrations done (`migration_done`).
    pub done: u64,
    /// Migrations failed (`migration_failed`).
    pub failed: u64,
    /// Migrations aborted (`migration_aborted`).
    pub aborted: u64,
    /// Duration of each libvirt live migration done, ms (dvms-libvirt's call).
    pub duration_ms: Vec<f64>,
    /// Downtime of each, ms, as libvirt's job statistics report it.
    pub downtime_ms: Vec<f64>,
    /// `(host, start, end)` of each libvirt live migration done: its end is when dvmsd logged
    /// it, its start that minus its duration (`migration_started` is logged before the
    /// migration waits for a `max_parallel_migrations` permit, so it cannot tell).
    pub intervals: Vec<(String, f64, f64)>,
}

/// The field `k` of a log line, at top level or under `fields`.
fn field<'a>(v: &'a Value, k: &str) -> Option<&'a Value> {
    v.get("fields").and_then(|f| f.get(k)).or_else(|| v.get(k))
}

fn timestamp(v: &Value) -> Option<SystemTime> {
    v.get("timestamp")
        .and_then(Value::as_str)
        .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
}

fn number(v: Option<&Value>) -> Option<f64> {
    let v = v?;
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .filter(|x: &f64| x.is_finite() && *x >= 0.0)
}

impl Migrations {
    /// Adds the lines of `host`'s log text.
    pub fn add_text(&mut self, host: &str, text: &str) {
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let event = field(&v, "event").and_then(Value::as_str).unwrap_or("");
            let message = field(&v, "message").and_then(Value::as_str).unwrap_or("");
            match event {
                "migration_started" => {
                    if let Some(t) = timestamp(&v) {
                        self.started.push((host.to_owned(), t));
                    }
                }
                "migration_done" => self.done = self.done.saturating_add(1),
                "migration_failed" => self.failed = self.failed.saturating_add(1),
                "migration_aborted" => self.aborted = self.aborted.saturating_add(1),
                _ => {}
            }
            if message == "libvirt live migration done" {
                if let Some(d) = number(field(&v, "duration_ms")) {
                    self.duration_ms.push(d);
                    let end = timestamp(&v)
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map(|t| t.as_secs_f64());
                    if let Some(end) = end {
                        self.intervals
                            .push((host.to_owned(), end - d / 1000.0, end));
                    }
                }
                if let Some(d) = number(field(&v, "downtime_ms")) {
                    self.downtime_ms.push(d);
                }
            }
        }
    }

    /// Most live migrations one host ran at once (intervals overlapping by more than 100 ms).
    pub fn max_parallel(&self) -> u64 {
        let mut best = 0;
        let mut hosts: Vec<&str> = self.intervals.iter().map(|(h, _, _)| h.as_str()).collect();
        hosts.sort_unstable();
        hosts.dedup();
        for h in hosts {
            let mut edges: Vec<(f64, i64)> = Vec::new();
            for (_, start, end) in self.intervals.iter().filter(|(x, _, _)| x == h) {
                edges.push((start + 0.1, 1));
                edges.push((*end, -1));
            }
            edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let mut n: i64 = 0;
            for (_, step) in edges {
                n = n.saturating_add(step);
                best = best.max(u64::try_from(n).unwrap_or(0));
            }
        }
        best
    }

    /// Adds `host`'s log file (at most its first 256 MiB); a missing file adds nothing.
    pub fn add_file(&mut self, host: &str, path: &Path) {
        use std::io::Read as _;
        let Ok(f) = std::fs::File::open(path) else {
            return;
        };
        let mut text = String::new();
        if f.take(MAX_LOG_BYTES).read_to_string(&mut text).is_err() {
            // not UTF-8 throughout: read what is, lossily
            let bytes = std::fs::read(path).unwrap_or_default();
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        self.add_text(host, &text);
    }

    /// The first migration started from `host` in `[from, to]`.
    pub fn first_from(&self, host: &str, from: SystemTime, to: SystemTime) -> Option<SystemTime> {
        self.started
            .iter()
            .filter(|(h, t)| h == host && *t >= from && *t <= to)
            .map(|(_, t)| *t)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const LOG: &str = r#"{"timestamp":"2026-12-01T04:00:00.500000Z","level":"INFO","fields":{"message":"migration started","event":"migration_started","vm":"a"},"target":"dvmsd"}
{"timestamp":"2026-12-01T04:00:00.600000Z","level":"INFO","fields":{"message":"migration started","event":"migration_started","vm":"b"},"target":"dvmsd"}
not json at all
{"timestamp":"2026-12-01T04:00:01Z","level":"INFO","fields":{"message":"libvirt live migration done","vm":"a","duration_ms":420,"downtime_ms":12},"target":"dvmsd"}
{"timestamp":"2026-12-01T04:00:01Z","level":"INFO","fields":{"message":"migration done","event":"migration_done","vm":"a"},"target":"dvmsd"}
{"timestamp":"2026-12-01T04:00:02Z","level":"WARN","fields":{"message":"x","event":"migration_aborted","vm":"b"},"target":"dvmsd"}
{"timestamp":"2026-12-01T04:00:03Z","level":"INFO","fields":{"message":"migration started","event":"migration_started","vm":"c"},"target":"dvmsd"}
{"timestamp":"2026-12-01T04:00:04Z","level":"INFO","fields":{"message":"libvirt live migration done","vm":"c","duration_ms":"380","downtime_ms":-3},"target":"dvmsd"}
{"timestamp":"2026-12-01T04:00:04Z","level":"INFO","fields":{"message":"m","event":"migration_failed","vm":"c"},"target":"dvmsd"}
"#;

    #[test]
    fn the_log_is_read_line_by_line() {
        let mut m = Migrations::default();
        m.add_text("h00", LOG);
        assert_eq!(m.started.len(), 3);
        assert_eq!((m.done, m.aborted, m.failed), (1, 1, 1));
        assert_eq!(m.duration_ms, [420.0, 380.0]);
        assert_eq!(m.downtime_ms, [12.0], "a negative downtime is not a number");
        // a: 0.58 -> 1.0; c: 3.62 -> 4.0: one at a time
        assert_eq!(m.max_parallel(), 1);
        m.add_text(
            "h00",
            r#"{"timestamp":"2026-12-01T04:00:01.200Z","fields":{"message":"libvirt live migration done","duration_ms":500}}"#,
        );
        assert_eq!(m.max_parallel(), 2, "0.7 -> 1.2 overlaps a by 0.3 s");
        m.add_text(
            "h01",
            r#"{"timestamp":"2026-12-01T04:00:01.000Z","fields":{"message":"libvirt live migration done","duration_ms":400}}"#,
        );
        assert_eq!(
            m.max_parallel(),
            2,
            "another host's migration is not counted"
        );
        let t0 = humantime::parse_rfc3339_weak("2026-12-01T04:00:00Z").expect("t0");
        let first = m.first_from("h00", t0, t0 + Duration::from_secs(10));
        assert_eq!(first, Some(t0 + Duration::from_millis(500)));
        assert_eq!(m.first_from("h01", t0, t0 + Duration::from_secs(10)), None);
        let later = m.first_from(
            "h00",
            t0 + Duration::from_secs(1),
            t0 + Duration::from_secs(10),
        );
        assert_eq!(later, Some(t0 + Duration::from_secs(3)));
    }
}
