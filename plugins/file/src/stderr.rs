//! Prints what `audit-format` reports (retention, torn-line recovery, a failed roll-back)
//! on stderr, one line each: `audit: backend plugin file: MESSAGE`.
//!
//! A plugin library has its own copy of `tracing`, whose dispatcher the host's subscriber
//! never sees; without a subscriber in this copy those reports would be lost. Plugins write
//! to stderr (docs/extension-guide.md "Logging"); the host's `--log-level` and
//! `--log-format` do not reach here, so this prints `info` and above as text.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::Once;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Installs [`StderrLines`] as this library's global subscriber, once. Does nothing when
/// another one is installed already (the library linked as an rlib into a program that set
/// its own).
pub(crate) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // An `Err` means a subscriber is set already: that one gets the events instead.
        let _ = tracing::subscriber::set_global_default(StderrLines);
    });
}

/// A subscriber with no spans that prints each event's message on one stderr line.
#[derive(Debug)]
pub(crate) struct StderrLines;

impl Subscriber for StderrLines {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= Level::INFO
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut line = Message(String::from("audit: backend plugin file: "));
        event.record(&mut line);
        line.0.push('\n');
        // One write per line, so lines from several threads do not interleave. A failed write
        // to stderr has nowhere left to be reported.
        let _ = std::io::stderr().lock().write_all(line.0.as_bytes());
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// Collects the `message` field.
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }
}
