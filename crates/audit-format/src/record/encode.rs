//! The line encoder: an event serialized once, outside the chain's critical section, then
//! assembled with its chain fields and checksum inside it.

use std::ops::Range;

use chrono::{DateTime, Utc};

use super::audit_record::AuditRecord;
use super::integrity::{BODY_AT, CHECKSUM_PREFIX, HEX_AT, Integrity};
use crate::canonical::{write_i64, write_object, write_str, write_timestamp, write_u64};
use crate::event::{AuditEvent, ComplianceLevel};

/// Writes `,"key":"value"` or `,"key":null`.
fn opt_str(out: &mut Vec<u8>, member: &[u8], v: Option<&str>) {
    out.extend_from_slice(member);
    match v {
        Some(s) => write_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// The line encoder: an event serialized outside the chain's critical section
/// ([`encode`](Self::encode)), with gaps where `previous_hash`, `sequence_number` and
/// `timestamp` go, then completed inside it ([`assemble`](Self::assemble)). The parts are, in
/// key order: `client_ip..plugin_name` | `process_id..retention_category` |
/// `session_id, signature` | `user_agent, user_id`. Its buffer is reused from event to event.
#[derive(Debug, Default)]
pub struct LineEncoder {
    buf: Vec<u8>,
    split: [usize; 3],
    event_id: Range<usize>,
    user_id: Option<Range<usize>>,
}

impl LineEncoder {
    /// A new encoder (its buffer grows on the first event and is reused).
    pub fn new() -> Self {
        Self::default()
    }

    /// Serializes everything but the chain fields and the timestamp. `event_id` is the id to
    /// store (given or generated); `host` and `pid` fill `hostname` and `process_id` when the
    /// event has none.
    pub fn encode(
        &mut self,
        ev: &AuditEvent,
        event_id: &str,
        host: &str,
        pid: i64,
        level: ComplianceLevel,
    ) {
        let out = &mut self.buf;
        out.clear();
        opt_str(out, b"\"client_ip\":", ev.client_ip.as_deref());
        out.extend_from_slice(b",\"compliance_level\":\"");
        out.extend_from_slice(level.as_str().as_bytes());
        out.push(b'"');
        opt_str(out, b",\"component\":", ev.component.as_deref());
        opt_str(out, b",\"container_id\":", ev.container_id.as_deref());
        out.extend_from_slice(if ev.contains_phi {
            b",\"contains_phi\":true"
        } else {
            b",\"contains_phi\":false"
        });
        out.extend_from_slice(if ev.contains_pii {
            b",\"contains_pii\":true"
        } else {
            b",\"contains_pii\":false"
        });
        opt_str(
            out,
            b",\"data_classification\":",
            ev.data_classification.as_deref(),
        );
        opt_str(out, b",\"error_category\":", ev.error_category.as_deref());
        out.extend_from_slice(b",\"error_context\":");
        match &ev.error_context {
            Some(m) => write_object(out, m),
            None => out.extend_from_slice(b"null"),
        }
        opt_str(out, b",\"error_severity\":", ev.error_severity.as_deref());
        out.extend_from_slice(b",\"event_id\":");
        let id_start = out.len();
        write_str(out, event_id);
        self.event_id = id_start..out.len();
        out.extend_from_slice(b",\"event_type\":\"");
        out.extend_from_slice(ev.event_type.as_str().as_bytes());
        out.push(b'"');
        opt_str(
            out,
            b",\"hostname\":",
            Some(ev.hostname.as_deref().unwrap_or(host)),
        );
        out.extend_from_slice(b",\"log_level\":\"");
        out.extend_from_slice(ev.log_level.as_str().as_bytes());
        out.push(b'"');
        out.extend_from_slice(b",\"message\":");
        write_str(out, &ev.message);
        out.extend_from_slice(b",\"metadata\":");
        write_object(out, &ev.metadata);
        opt_str(out, b",\"operation\":", ev.operation.as_deref());
        opt_str(out, b",\"plugin_name\":", ev.plugin_name.as_deref());
        self.split[0] = out.len();
        out.extend_from_slice(b",\"process_id\":");
        write_i64(out, ev.process_id.unwrap_or(pid));
        out.extend_from_slice(b",\"regulatory_tags\":[");
        for (i, tag) in ev.regulatory_tags.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, tag);
        }
        out.push(b']');
        opt_str(out, b",\"request_id\":", ev.request_id.as_deref());
        opt_str(
            out,
            b",\"retention_category\":",
            ev.retention_category.as_deref(),
        );
        self.split[1] = out.len();
        opt_str(out, b",\"session_id\":", ev.session_id.as_deref());
        opt_str(out, b",\"signature\":", ev.signature.as_deref());
        self.split[2] = out.len();
        opt_str(out, b",\"user_agent\":", ev.user_agent.as_deref());
        out.extend_from_slice(b",\"user_id\":");
        self.user_id = ev.user_id.as_deref().map(|u| {
            let start = out.len();
            write_str(out, u);
            start..out.len()
        });
        if self.user_id.is_none() {
            out.extend_from_slice(b"null");
        }
    }

    /// Assembles the final line: must run inside the chain's critical section, since it
    /// decides `previous_hash` and produces the checksum the next event links to.
    pub fn assemble(
        &self,
        ev: &AuditEvent,
        sequence_number: u64,
        previous_hash: Option<&[u8; 64]>,
        timestamp: DateTime<Utc>,
        integrity: &Integrity,
    ) -> (AuditRecord, [u8; 64]) {
        let b = &self.buf;
        let mut line = Vec::with_capacity(BODY_AT + b.len() + 160);
        line.extend_from_slice(CHECKSUM_PREFIX);
        line.extend_from_slice(&[b'0'; 64]);
        line.extend_from_slice(b"\",");
        line.extend_from_slice(&b[..self.split[0]]);
        line.extend_from_slice(b",\"previous_hash\":");
        match previous_hash {
            Some(h) => {
                line.push(b'"');
                line.extend_from_slice(h);
                line.push(b'"');
            }
            None => line.extend_from_slice(b"null"),
        }
        line.extend_from_slice(&b[self.split[0]..self.split[1]]);
        line.extend_from_slice(b",\"sequence_number\":");
        write_u64(&mut line, sequence_number);
        line.extend_from_slice(&b[self.split[1]..self.split[2]]);
        line.extend_from_slice(b",\"timestamp\":");
        let ts_start = line.len() + 1;
        write_timestamp(&mut line, &timestamp);
        let ts_end = line.len() - 1;
        let tail_at = line.len() - self.split[2];
        line.extend_from_slice(&b[self.split[2]..]);
        line.push(b'}');
        let hex = integrity.checksum_hex(&line[BODY_AT..]);
        line[HEX_AT..HEX_AT + 64].copy_from_slice(&hex);
        let at = |r: &Range<usize>, base: usize| (r.start + base) as u32..(r.end + base) as u32;
        let record = AuditRecord {
            // The buffer holds only ASCII: every string went through `write_str`.
            line: String::from_utf8(line).unwrap_or_else(|e| {
                unreachable!("canonical line is ASCII; this is a bug in audit-format: {e}")
            }),
            sequence_number,
            timestamp,
            event_type: ev.event_type,
            log_level: ev.log_level,
            event_id: at(&self.event_id, BODY_AT),
            user_id: self.user_id.as_ref().map(|r| at(r, tail_at)),
            timestamp_text: ts_start as u32..ts_end as u32,
        };
        (record, hex)
    }
}

impl AuditRecord {
    /// Rebuilds the record of a line this trail stored (a spool line): parses it, encodes it
    /// again and checks that the result is the same bytes with the same checksum, so a line
    /// altered on disk (or written with another integrity key) is refused, not delivered.
    pub fn from_stored(line: &str, integrity: &Integrity) -> Result<Self, String> {
        if let Some(record) = Self::from_stored_fast(line, integrity)? {
            return Ok(record);
        }
        let ev = AuditEvent::from_json(line).map_err(|e| crate::error::chain(&e))?;
        let (Some(seq), Some(ts), Some(event_id)) =
            (ev.sequence_number, ev.timestamp, ev.event_id.as_deref())
        else {
            return Err("sequence_number, timestamp or event_id is missing".to_owned());
        };
        let prev: Option<[u8; 64]> = match ev.previous_hash.as_deref() {
            None => None,
            Some(h) => Some(
                h.as_bytes()
                    .try_into()
                    .map_err(|_| format!("previous_hash `{h}` is not 64 hex digits"))?,
            ),
        };
        let mut prepared = LineEncoder::default();
        prepared.encode(
            &ev,
            event_id,
            ev.hostname.as_deref().unwrap_or_default(),
            ev.process_id.unwrap_or_default(),
            ev.compliance_level,
        );
        let (record, _) = prepared.assemble(&ev, seq, prev.as_ref(), ts, integrity);
        if record.line != line {
            return Err(
                "the line does not match its checksum (it was altered, or written with another integrity key)"
                    .to_owned(),
            );
        }
        Ok(record)
    }
}
