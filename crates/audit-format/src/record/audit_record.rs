//! The record every backend receives: the stored line and the typed fields read from it.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::integrity::{HEX_AT, Integrity, LineProblem, canonical_fields, check_line};
use crate::event::{AuditEvent, AuditEventType, AuditLogLevel};

/// One accepted event as every storage backend receives it: the canonical JSON line
/// (exactly the bytes the file backend stores, without the newline) plus the fields a
/// database would index.
#[derive(Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub(super) line: String,
    pub(super) sequence_number: u64,
    pub(super) timestamp: DateTime<Utc>,
    pub(super) event_type: AuditEventType,
    pub(super) log_level: AuditLogLevel,
    pub(super) event_id: Range<u32>,
    pub(super) user_id: Option<Range<u32>>,
    pub(super) timestamp_text: Range<u32>,
}

impl fmt::Debug for AuditRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditRecord")
            .field("sequence_number", &self.sequence_number)
            .field("line", &self.line)
            .finish_non_exhaustive()
    }
}

fn decode_json_str(raw: &str) -> Cow<'_, str> {
    let inner = &raw[1..raw.len() - 1];
    if inner.contains('\\') {
        Cow::Owned(serde_json::from_str(raw).unwrap_or_else(|_| inner.to_owned()))
    } else {
        Cow::Borrowed(inner)
    }
}

impl AuditRecord {
    /// The canonical JSON line, without the trailing newline.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// The position of this event in the chain (1-based, contiguous).
    pub fn sequence_number(&self) -> u64 {
        self.sequence_number
    }

    /// When the event happened (UTC).
    pub fn timestamp(&self) -> DateTime<Utc> {
        self.timestamp
    }

    /// The timestamp as stored in the line: RFC 3339 UTC with microseconds and `Z`.
    pub fn timestamp_str(&self) -> &str {
        &self.line[self.timestamp_text.start as usize..self.timestamp_text.end as usize]
    }

    /// The event type.
    pub fn event_type(&self) -> AuditEventType {
        self.event_type
    }

    /// The log level.
    pub fn log_level(&self) -> AuditLogLevel {
        self.log_level
    }

    /// The event id.
    pub fn event_id(&self) -> Cow<'_, str> {
        decode_json_str(&self.line[self.event_id.start as usize..self.event_id.end as usize])
    }

    /// The acting user, if any.
    pub fn user_id(&self) -> Option<Cow<'_, str>> {
        self.user_id
            .as_ref()
            .map(|r| decode_json_str(&self.line[r.start as usize..r.end as usize]))
    }

    /// The checksum stored in the line (lowercase hex).
    pub fn checksum(&self) -> &str {
        &self.line[HEX_AT..HEX_AT + 64]
    }

    /// The common case of [`from_stored`](Self::from_stored) without building the event: the
    /// checksum is verified over the stored bytes of a canonical line, and the typed fields
    /// are read in place. `Ok(None)`: a field needs unescaping; take the full path.
    pub(super) fn from_stored_fast(
        line: &str,
        integrity: &Integrity,
    ) -> Result<Option<Self>, String> {
        #[derive(Deserialize)]
        struct Stored<'a> {
            sequence_number: u64,
            #[serde(borrow)]
            timestamp: Cow<'a, str>,
            #[serde(borrow)]
            event_type: Cow<'a, str>,
            #[serde(borrow)]
            log_level: Cow<'a, str>,
            #[serde(borrow)]
            event_id: Cow<'a, str>,
            #[serde(borrow)]
            user_id: Option<CowStr<'a>>,
        }
        // `#[serde(borrow)]` borrows a `Cow` field only when it is the field's own type.
        #[derive(Deserialize)]
        struct CowStr<'a>(#[serde(borrow)] Cow<'a, str>);
        let fields = check_line(line.as_bytes(), integrity).map_err(|p| match p {
            LineProblem::ChecksumMismatch { .. } => {
                "the line does not match its checksum (it was altered, or written with another integrity key)"
                    .to_owned()
            }
            other => other.to_string(),
        })?;
        if fields.legacy {
            return Ok(None);
        }
        let s: Stored<'_> = serde_json::from_str(line).map_err(|e| e.to_string())?;
        // Where a borrowed value sits in the line (with its quotes when `quoted`).
        let at = |v: &Cow<'_, str>, quoted: bool| -> Option<Range<u32>> {
            let Cow::Borrowed(b) = v else { return None };
            let start = (b.as_ptr() as usize).checked_sub(line.as_ptr() as usize)?;
            let q = usize::from(quoted);
            Some((start - q) as u32..(start + b.len() + q) as u32)
        };
        let (Some(event_id), Some(timestamp_text)) =
            (at(&s.event_id, true), at(&s.timestamp, false))
        else {
            return Ok(None);
        };
        let user_id = match &s.user_id {
            None => None,
            Some(u) => match at(&u.0, true) {
                Some(r) => Some(r),
                None => return Ok(None),
            },
        };
        if fields.sequence_number != s.sequence_number {
            return Err("sequence_number is ambiguous".to_owned());
        }
        let timestamp = DateTime::parse_from_rfc3339(&s.timestamp)
            .map_err(|e| format!("timestamp: {e}"))?
            .with_timezone(&Utc);
        Ok(Some(Self {
            line: line.to_owned(),
            sequence_number: s.sequence_number,
            timestamp,
            event_type: s
                .event_type
                .parse()
                .map_err(|e| format!("event_type: {e}"))?,
            log_level: s.log_level.parse().map_err(|e| format!("log_level: {e}"))?,
            event_id,
            user_id,
            timestamp_text,
        }))
    }

    /// The `previous_hash` stored in the line (`None` for the first event), read in place.
    pub fn previous_hash(&self) -> Option<&str> {
        let fields = canonical_fields(self.line.as_bytes())?;
        match fields.previous_hash? {
            Cow::Borrowed(h) => {
                let start = h.as_ptr() as usize - self.line.as_ptr() as usize;
                Some(&self.line[start..start + h.len()])
            }
            Cow::Owned(_) => None,
        }
    }

    /// Parses the line back into a full event.
    pub fn to_event(&self) -> crate::error::Result<AuditEvent> {
        AuditEvent::from_json(&self.line)
    }
}
