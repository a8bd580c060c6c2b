//! `audit query`: print the events that match every filter, newest first, from a directory
//! or from the store of a configured backend (`--config FILE --backend NAME`).

use std::collections::VecDeque;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use audit_host::{AuditEventType, AuditLogLevel, EventQuery};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use clap::Args;

use super::configured::{self, ConfiguredStore};
use super::{EXIT_NOINPUT, EXIT_USAGE, broken_pipe_ok, exit_code_for, fail, runtime};

#[derive(Args)]
pub(crate) struct QueryArgs {
    /// The audit directory.
    #[arg(required_unless_present = "config")]
    dir: Option<PathBuf>,
    #[command(flatten)]
    store: ConfiguredStore,
    /// Only events at or after T (RFC 3339, or YYYY-MM-DD for the start of that UTC day).
    #[arg(long, value_name = "T", value_parser = parse_since)]
    since: Option<DateTime<Utc>>,
    /// Only events at or before T (RFC 3339, or YYYY-MM-DD for the end of that UTC day).
    #[arg(long, value_name = "T", value_parser = parse_until)]
    until: Option<DateTime<Utc>>,
    /// Only this event type (e.g. data_access, authentication_failed).
    #[arg(long, value_name = "X", value_parser = parse_event_type)]
    event_type: Option<AuditEventType>,
    /// Only this level: debug, info, warning, error, critical, security.
    #[arg(long, value_name = "L", value_parser = parse_level)]
    level: Option<AuditLogLevel>,
    /// Only this user_id.
    #[arg(long, value_name = "U")]
    user: Option<String>,
    /// Only this component.
    #[arg(long, value_name = "C")]
    component: Option<String>,
    /// At most N events.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
}

fn parse_time(s: &str, end_of_day: bool) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let t = if end_of_day {
            NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999)
        } else {
            Some(NaiveTime::MIN)
        };
        if let Some(t) = t {
            return Ok(d.and_time(t).and_utc());
        }
    }
    Err(format!(
        "`{s}` is not a time: use RFC 3339 (2026-01-31T12:00:00Z) or a date (2026-01-31)"
    ))
}

fn parse_since(s: &str) -> Result<DateTime<Utc>, String> {
    parse_time(s, false)
}

fn parse_until(s: &str) -> Result<DateTime<Utc>, String> {
    parse_time(s, true)
}

fn parse_event_type(s: &str) -> Result<AuditEventType, String> {
    s.parse()
}

fn parse_level(s: &str) -> Result<AuditLogLevel, String> {
    s.parse()
}

pub(crate) fn query(args: QueryArgs, verbose: bool) -> ExitCode {
    let q = EventQuery {
        start_time: args.since,
        end_time: args.until,
        event_type: args.event_type,
        log_level: args.level,
        user_id: args.user,
        component: args.component,
        limit: args.limit,
    };
    let stdout = io::stdout();
    let mut out = Output::new(stdout.lock());
    let done = match (&args.dir, &args.store.config, &args.store.backend) {
        (_, Some(config), Some(backend)) => {
            query_configured(config, backend, &q, verbose, &mut out)
        }
        (_, Some(config), None) => match configured::file_directory(config) {
            Ok((_, dir)) => {
                let verify_args = format!("--config {}", config.display());
                query_directory(&dir, &q, &verify_args, &mut out)
            }
            Err(e) => Err(e.report("audit query", verbose)),
        },
        (Some(dir), _, _) => query_directory(dir, &q, &dir.display().to_string(), &mut out),
        _ => {
            eprintln!("audit query: give DIR, or --config FILE --backend NAME");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if let Err(code) = done {
        return code;
    }
    match out.finish() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => broken_pipe_ok(&e),
    }
}

/// Matching lines as they are found: buffered, and flushed at least every 100 ms so a reader
/// sees the first lines while the search goes on. Remembers the first write error (a closed
/// pipe: the reader has seen enough).
struct Output<W: Write> {
    out: io::BufWriter<W>,
    flushed: Instant,
    error: Option<io::Error>,
}

impl<W: Write> Output<W> {
    fn new(w: W) -> Self {
        Self {
            out: io::BufWriter::new(w),
            flushed: Instant::now(),
            error: None,
        }
    }

    /// Writes `line`; `false` once writing failed (stop searching).
    fn line(&mut self, line: &str) -> bool {
        let written = self
            .out
            .write_all(line.as_bytes())
            .and_then(|()| self.out.write_all(b"\n"))
            .and_then(|()| {
                if self.flushed.elapsed() >= FLUSH_EVERY {
                    self.flushed = Instant::now();
                    self.out.flush()
                } else {
                    Ok(())
                }
            });
        match written {
            Ok(()) => true,
            Err(e) => {
                self.error = Some(e);
                false
            }
        }
    }

    fn finish(mut self) -> io::Result<()> {
        match self.error.take() {
            Some(e) => Err(e),
            None => self.out.flush(),
        }
    }
}

/// The longest a found line waits in the output buffer.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Prints the matching lines of the directory `dir`, newest first, as they are found;
/// `verify_args` is what `audit verify` is told in the warning about unreadable lines.
fn query_directory<W: Write>(
    dir: &Path,
    q: &EventQuery,
    verify_args: &str,
    out: &mut Output<W>,
) -> Result<(), ExitCode> {
    if !dir.is_dir() {
        eprintln!("audit query: {} is not a directory", dir.display());
        return Err(ExitCode::from(EXIT_NOINPUT));
    }
    match audit_host::query_dir_each(dir, q, |line| out.line(line)) {
        Ok(scan) => {
            for odd in &scan.not_regular {
                eprintln!(
                    "audit query: warning: {odd}; not searched. Run `audit verify {verify_args}`"
                );
            }
            warn_unreadable(scan.unreadable, verify_args);
            Ok(())
        }
        Err(e) => {
            eprintln!("audit query: {e}");
            Err(ExitCode::from(exit_code_for(&e)))
        }
    }
}

/// Prints the matching lines of a configured backend's store, newest first: a file
/// backend's directory as it is searched, or a plugin's store read back in sequence order
/// (the newest `limit` kept, then printed).
fn query_configured<W: Write>(
    config: &Path,
    backend: &str,
    q: &EventQuery,
    verbose: bool,
    out: &mut Output<W>,
) -> Result<(), ExitCode> {
    let verify_args = format!("--config {} --backend {backend}", config.display());
    let (_, store) =
        configured::open(config, backend).map_err(|e| fail("audit query", &e, verbose))?;
    if let Some(dir) = store.directory() {
        return query_directory(dir, q, &verify_args, out);
    }
    let rt = runtime()?;
    let limit = q.limit.unwrap_or(usize::MAX);
    let mut newest: VecDeque<String> = VecDeque::new();
    let mut unreadable = 0;
    let read = rt.block_on(configured::read_all(store, |line| {
        match q.matches(line) {
            Some(true) if limit > 0 => {
                if newest.len() == limit {
                    newest.pop_front();
                }
                newest.push_back(line.to_owned());
            }
            Some(_) => {}
            None => unreadable += 1,
        }
        true
    }));
    if let Err(e) = read {
        return Err(fail("audit query", &e, verbose));
    }
    warn_unreadable(unreadable, &verify_args);
    for line in newest.iter().rev() {
        if !out.line(line) {
            break;
        }
    }
    Ok(())
}

fn warn_unreadable(unreadable: usize, verify_args: &str) {
    if unreadable > 0 {
        eprintln!(
            "audit query: warning: {unreadable} line(s) could not be read as events and were skipped; run `audit verify {verify_args}`"
        );
    }
}
