//! `audit query`: print the events that match every filter, newest first.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use audit_host::{AuditEventType, AuditLogLevel, EventQuery};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use clap::Args;

use super::{EXIT_USAGE, broken_pipe_ok};

#[derive(Args)]
pub(crate) struct QueryArgs {
    /// The audit directory.
    dir: PathBuf,
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

pub(crate) fn query(args: QueryArgs) -> ExitCode {
    if !args.dir.is_dir() {
        eprintln!("audit query: {} is not a directory", args.dir.display());
        return ExitCode::from(EXIT_USAGE);
    }
    let q = EventQuery {
        start_time: args.since,
        end_time: args.until,
        event_type: args.event_type,
        log_level: args.level,
        user_id: args.user,
        component: args.component,
        limit: args.limit,
    };
    let lines = match audit_host::query_dir_counting(&args.dir, &q) {
        Ok(report) => {
            for odd in &report.not_regular {
                eprintln!(
                    "audit query: warning: {odd}; not searched. Run `audit verify {}`",
                    args.dir.display()
                );
            }
            if report.unreadable > 0 {
                eprintln!(
                    "audit query: warning: {} line(s) could not be read as events and were skipped; run `audit verify {}`",
                    report.unreadable,
                    args.dir.display()
                );
            }
            report.lines
        }
        Err(e) => {
            eprintln!("audit query: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    for line in &lines {
        if let Err(e) = out
            .write_all(line.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
        {
            return broken_pipe_ok(&e);
        }
    }
    if let Err(e) = out.flush() {
        return broken_pipe_ok(&e);
    }
    ExitCode::SUCCESS
}
