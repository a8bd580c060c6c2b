//! What the library reports (`tracing` events from audit-host and audit-format) goes to
//! stderr through the subscriber installed here: `--log-format text` (the default: one line
//! `audit: MESSAGE` per event, the same text as before the library used `tracing`) or
//! `json` (one object per line), filtered by `--log-level` or `AUDIT_LOG` (default `info`).
//!
//! The commands' own output (`ok: ...`, `FAILED: ...`, errors, `emitted N events`) is not a
//! log and does not pass through here.

use std::fmt;

use clap::ValueEnum;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The environment variable read when `--log-level` is not given.
pub(crate) const LEVEL_ENV: &str = "AUDIT_LOG";

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub(crate) enum LogFormat {
    /// `audit: MESSAGE`, one line per event (the message names the backend, path and counts).
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message` and the event's
    /// fields (`backend`, `path`, `error`, counts).
    Json,
}

/// `--log-level` and `AUDIT_LOG`: the least severe level printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogLevel {
    /// Nothing.
    Off,
    /// Failures only.
    Error,
    /// Failures and warnings (a failing backend, skipped retention, a torn line).
    Warn,
    /// Also progress worth an operator's eye (recovered, caught up, retention deleted a file).
    Info,
    /// Also details for debugging.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    const fn filter(self) -> LevelFilter {
        match self {
            Self::Off => LevelFilter::OFF,
            Self::Error => LevelFilter::ERROR,
            Self::Warn => LevelFilter::WARN,
            Self::Info => LevelFilter::INFO,
            Self::Debug => LevelFilter::DEBUG,
            Self::Trace => LevelFilter::TRACE,
        }
    }
}

/// The level: `--log-level`, else `AUDIT_LOG`, else `info`.
///
/// # Errors
/// `AUDIT_LOG` set to something that is not a level: the message names it and the levels.
pub(crate) fn level(flag: Option<LogLevel>) -> Result<LogLevel, String> {
    if let Some(level) = flag {
        return Ok(level);
    }
    match std::env::var(LEVEL_ENV) {
        Ok(v) if v.trim().is_empty() => Ok(LogLevel::Info),
        Ok(v) => LogLevel::from_str(v.trim(), true).map_err(|_| {
            format!(
                "{LEVEL_ENV}={v:?} is not a log level; use one of off, error, warn, info, debug, trace (or pass --log-level)"
            )
        }),
        Err(std::env::VarError::NotPresent) => Ok(LogLevel::Info),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!(
            "{LEVEL_ENV} is not valid UTF-8; use one of off, error, warn, info, debug, trace"
        )),
    }
}

/// Installs the stderr subscriber for the whole process.
///
/// # Errors
/// Another global subscriber is installed already (a bug in `audit`).
pub(crate) fn init(format: LogFormat, level: LogLevel) -> Result<(), String> {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level.filter())
        .with_ansi(false);
    let installed = match format {
        LogFormat::Text => builder.event_format(Plain).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
    installed.map_err(|e| format!("cannot install the log subscriber: {e}; this is a bug in audit"))
}

/// `audit: MESSAGE`: the text the library wrote to stderr before it used `tracing`, which
/// scripts and the CLI tests match. The structured fields are in `--log-format json`.
struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut message = Message(String::new());
        event.record(&mut message);
        writeln!(writer, "audit: {}", message.0)
    }
}

/// Collects the `message` field.
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            use fmt::Write as _;
            let _ = write!(self.0, "{value:?}");
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn the_flag_wins_over_the_environment_and_info_is_the_default() {
        assert_eq!(level(Some(LogLevel::Error)), Ok(LogLevel::Error));
        // The variable is not set in the test environment (`cargo test` does not set it).
        if std::env::var_os(LEVEL_ENV).is_none() {
            assert_eq!(level(None), Ok(LogLevel::Info));
        }
    }
}
