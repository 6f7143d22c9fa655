//! Progress of a long run on stderr: simulated time, events, wall time, about once a second.
//!
//! Wall time is read only for this display: it never feeds the simulation.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use dvms_core::Time;

/// The progress line's state.
#[derive(Debug)]
pub(crate) struct Progress {
    started: Instant,
    last: Instant,
    terminal: bool,
    printed: bool,
}

impl Progress {
    pub(crate) fn new() -> Progress {
        let now = Instant::now();
        Progress {
            started: now,
            last: now,
            terminal: std::io::stderr().is_terminal(),
            printed: false,
        }
    }

    fn line(&self, now: Time, end: Time, events: u64) -> String {
        let (t, e) = (now.as_secs_f64(), end.as_secs_f64());
        let pct = if e > 0.0 { 100.0 * t / e } else { 100.0 };
        format!(
            "dvms-sim: {t:.0} of {e:.0} s simulated ({pct:.0} %), {events} events, {:.1} s wall",
            self.started.elapsed().as_secs_f64()
        )
    }

    /// Prints the line if a second has passed since the last one.
    pub(crate) fn tick(&mut self, now: Time, end: Time, events: u64) {
        if self.last.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.last = Instant::now();
        let line = self.line(now, end, events);
        let mut err = std::io::stderr().lock();
        // A terminal gets one line rewritten in place; a file or pipe one line per update.
        let _ = if self.terminal {
            write!(err, "\r{line}")
        } else {
            writeln!(err, "{line}")
        };
        self.printed = true;
    }

    /// Ends the display with the final figures.
    pub(crate) fn done(&mut self, now: Time, end: Time, events: u64) {
        {
            let line = self.line(now, end, events);
            let mut err = std::io::stderr().lock();
            let _ = if self.terminal {
                writeln!(err, "\r{line}")
            } else {
                writeln!(err, "{line}")
            };
            self.printed = false;
        }
    }
}
