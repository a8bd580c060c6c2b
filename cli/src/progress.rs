//! The progress line `verify` and `bench` show on a terminal.

use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

/// A one-line progress display on stderr, shown only on a terminal and only once the work
/// has taken more than a second.
pub(crate) struct Progress {
    label: &'static str,
    /// Counting bytes (shown in MiB) rather than events.
    bytes: bool,
    enabled: bool,
    started: Instant,
    last: Instant,
    shown: bool,
}

impl Progress {
    pub(crate) fn new(label: &'static str, bytes: bool) -> Self {
        let now = Instant::now();
        Self {
            label,
            bytes,
            enabled: io::stderr().is_terminal(),
            started: now,
            last: now,
            shown: false,
        }
    }

    pub(crate) fn update(&mut self, done: u64, total: u64) {
        if !self.enabled
            || self.started.elapsed() < Duration::from_secs(1)
            || self.last.elapsed() < Duration::from_millis(100)
        {
            return;
        }
        self.last = Instant::now();
        self.shown = true;
        let pct = (done * 100).checked_div(total).unwrap_or(100);
        let secs = self.started.elapsed().as_secs_f64();
        let bar: String = (0..30)
            .map(|i| if i * 100 / 30 < pct { '#' } else { '.' })
            .collect();
        let label = self.label;
        if self.bytes {
            let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
            eprint!(
                "\r{label} [{bar}] {pct:>3}% {:.0}/{:.0} MiB {:.0} MiB/s",
                mb(done),
                mb(total),
                mb(done) / secs
            );
        } else {
            eprint!(
                "\r{label} [{bar}] {pct:>3}% {done}/{total} events {:.0}/s",
                done as f64 / secs
            );
        }
        let _ = io::stderr().flush();
    }

    pub(crate) fn finish(&self) {
        if self.shown {
            eprint!("\r{:78}\r", "");
        }
    }
}
