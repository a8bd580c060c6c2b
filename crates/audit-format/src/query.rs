//! Reading events back: filters over the stored lines, newest first.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::event::{AuditEventType, AuditLogLevel};
use crate::names::{NotRegular, scan_log_dir};
use crate::rev_lines::for_each_line_rev;

/// Filters for `AuditTrail::get_events` (in `audit-host`) and `audit query`;
/// every filter set must match. The default matches everything, with a limit of 100 (as
/// in the Python trail).
///
/// ```
/// use audit_format::{EventQuery, AuditEventType};
/// let q = EventQuery { event_type: Some(AuditEventType::DataAccess), user_id: Some("alice".into()), ..Default::default() };
/// assert_eq!(q.limit, Some(100));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQuery {
    /// Only events at or after this time.
    pub start_time: Option<DateTime<Utc>>,
    /// Only events at or before this time.
    pub end_time: Option<DateTime<Utc>>,
    /// Only this event type.
    pub event_type: Option<AuditEventType>,
    /// Only this level.
    pub log_level: Option<AuditLogLevel>,
    /// Only this user.
    pub user_id: Option<String>,
    /// Only this component.
    pub component: Option<String>,
    /// At most this many events (`None`: all).
    pub limit: Option<usize>,
}

impl Default for EventQuery {
    fn default() -> Self {
        Self {
            start_time: None,
            end_time: None,
            event_type: None,
            log_level: None,
            user_id: None,
            component: None,
            limit: Some(100),
        }
    }
}

#[derive(Deserialize)]
struct Filterable<'a> {
    #[serde(borrow)]
    timestamp: Option<std::borrow::Cow<'a, str>>,
    event_type: Option<AuditEventType>,
    log_level: Option<AuditLogLevel>,
    #[serde(borrow)]
    user_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    component: Option<std::borrow::Cow<'a, str>>,
}

impl EventQuery {
    /// Whether the stored `line` matches every filter (the limit aside); `None` when it
    /// cannot be read as an event.
    ///
    /// ```
    /// use audit_format::{AuditEventType, EventQuery};
    /// let q = EventQuery { user_id: Some("alice".into()), ..Default::default() };
    /// assert_eq!(q.matches(r#"{"user_id":"alice"}"#), Some(true));
    /// assert_eq!(q.matches(r#"{"user_id":"bob"}"#), Some(false));
    /// assert_eq!(q.matches("not json"), None);
    /// ```
    pub fn matches(&self, line: &str) -> Option<bool> {
        let f = serde_json::from_str::<Filterable<'_>>(line).ok()?;
        Some(self.matches_fields(&f))
    }

    fn matches_fields(&self, f: &Filterable<'_>) -> bool {
        if self.start_time.is_some() || self.end_time.is_some() {
            let Some(ts) = f
                .timestamp
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            else {
                return false;
            };
            let ts = ts.with_timezone(&Utc);
            if self.start_time.is_some_and(|s| ts < s) || self.end_time.is_some_and(|e| ts > e) {
                return false;
            }
        }
        self.event_type.is_none_or(|t| f.event_type == Some(t))
            && self.log_level.is_none_or(|l| f.log_level == Some(l))
            && self
                .user_id
                .as_deref()
                .is_none_or(|u| f.user_id.as_deref() == Some(u))
            && self
                .component
                .as_deref()
                .is_none_or(|c| f.component.as_deref() == Some(c))
    }
}

/// The stored lines in `dir` matching `query`, newest first (files newest first, lines
/// last to first).
///
/// # Errors
/// [`Error::Io`] when the directory or a file cannot be read.
pub fn query_dir(dir: &Path, query: &EventQuery) -> Result<Vec<String>> {
    query_dir_counting(dir, query).map(|r| r.lines)
}

/// What [`query_dir_counting`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct QueryReport {
    /// The matching lines, newest first.
    pub lines: Vec<String>,
    /// Lines in the files searched that could not be read as events (they match no filter;
    /// `audit verify` says what is wrong with them).
    pub unreadable: usize,
    /// Entries with an audit file name that are not regular files: not searched.
    pub not_regular: Vec<NotRegular>,
}

/// Like [`query_dir`], also counting the lines that could not be read as events and listing
/// the audit file names that are not regular files (symlinks, FIFOs, directories), which are
/// not searched.
///
/// # Errors
/// [`Error::Io`] when the directory or a file cannot be read.
pub fn query_dir_counting(dir: &Path, query: &EventQuery) -> Result<QueryReport> {
    let mut lines = Vec::new();
    let found = query_dir_each(dir, query, |line| {
        lines.push(line.to_owned());
        true
    })?;
    Ok(QueryReport {
        lines,
        unreadable: found.unreadable,
        not_regular: found.not_regular,
    })
}

/// What [`query_dir_each`] saw besides the matching lines.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct QueryScan {
    /// Matching lines passed to the callback.
    pub matched: usize,
    /// Lines that could not be read as events (they match no filter).
    pub unreadable: usize,
    /// Entries with an audit file name that are not regular files: not searched.
    pub not_regular: Vec<NotRegular>,
}

/// Calls `on_match` with each stored line in `dir` matching `query`, newest first (files
/// newest first, each read backwards), as it is found: memory holds one 64 KiB block and the
/// longest line, not the matches. Stops after `query.limit` matches, or when `on_match`
/// returns `false`.
///
/// # Errors
/// [`Error::Io`] when the directory or a file cannot be read.
pub fn query_dir_each(
    dir: &Path,
    query: &EventQuery,
    mut on_match: impl FnMut(&str) -> bool,
) -> Result<QueryScan> {
    let (files, not_regular) =
        scan_log_dir(dir).map_err(Error::io("cannot list audit directory", dir))?;
    let mut scan = QueryScan {
        not_regular,
        ..Default::default()
    };
    let limit = query.limit.unwrap_or(usize::MAX);
    let start_date = query.start_time.map(|t| t.date_naive());
    let mut more = limit > 0;
    for f in files.iter().rev() {
        if !more {
            break;
        }
        // A file holds no event dated after its own date (older ones, yes: imports), so a
        // file dated before the start holds nothing that matches.
        if start_date.is_some_and(|d| f.date < d) {
            continue;
        }
        let file = crate::fs::open_read(&f.path).map_err(Error::io("cannot read", &f.path))?;
        for_each_line_rev(file, |bytes| {
            let line = String::from_utf8_lossy(bytes);
            match query.matches(&line) {
                Some(true) => {
                    scan.matched += 1;
                    more = on_match(&line) && scan.matched < limit;
                }
                Some(false) => {}
                None => scan.unreadable += 1,
            }
            more
        })
        .map_err(Error::io("cannot read", &f.path))?;
    }
    Ok(scan)
}
