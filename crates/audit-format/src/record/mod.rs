//! The canonical line and the record every backend receives: encoding (one pass, once per
//! event), checksums (SHA-256 or HMAC-SHA256 over the stored bytes) and parsing of the chain
//! fields back out of a stored line.

mod encode;
mod integrity;
mod python;

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::event::{AuditEvent, AuditEventType, AuditLogLevel};
use integrity::canonical_fields;

pub use encode::LineEncoder;
pub use integrity::{ChainFields, Integrity, LineProblem, check_line, is_genesis};

/// `{"checksum":"` – every stored line starts with this.
pub(crate) const CHECKSUM_PREFIX: &[u8] = b"{\"checksum\":\"";
/// Offset of the first hex digit of the checksum in a line.
const HEX_AT: usize = CHECKSUM_PREFIX.len();
/// Offset of the body (first member after the checksum) in a line.
const BODY_AT: usize = HEX_AT + 64 + 2;

/// One accepted event as every storage backend receives it: the canonical JSON line
/// (exactly the bytes the file backend stores, without the newline) plus the fields a
/// database would index.
#[derive(Clone, PartialEq, Eq)]
pub struct AuditRecord {
    line: String,
    sequence_number: u64,
    timestamp: DateTime<Utc>,
    event_type: AuditEventType,
    log_level: AuditLogLevel,
    event_id: Range<u32>,
    user_id: Option<Range<u32>>,
    timestamp_text: Range<u32>,
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
    fn from_stored_fast(line: &str, integrity: &Integrity) -> Result<Option<Self>, String> {
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
    pub fn to_event(&self) -> crate::Result<AuditEvent> {
        AuditEvent::from_json(&self.line)
    }

    /// Rebuilds the record of a line this trail stored (a spool line): parses it, encodes it
    /// again and checks that the result is the same bytes with the same checksum, so a line
    /// altered on disk (or written with another integrity key) is refused, not delivered.
    pub fn from_stored(line: &str, integrity: &Integrity) -> Result<Self, String> {
        if let Some(record) = Self::from_stored_fast(line, integrity)? {
            return Ok(record);
        }
        let ev = AuditEvent::from_json(line).map_err(|e| e.to_string())?;
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

#[cfg(test)]
mod test {
    use super::*;
    use crate::canonical::{hex_into, write_object};
    use crate::event::ComplianceLevel;
    use chrono::TimeZone;
    use sha2::{Digest, Sha256};

    fn sample() -> AuditEvent {
        AuditEvent::new(AuditEventType::DataAccess, "read \"x\" é")
            .user_id("ü1")
            .meta("b", 2)
            .meta("a", "x")
    }

    /// Every field set, nothing to escape (the benchmark's second sample event).
    fn plain() -> AuditEvent {
        let mut ctx = serde_json::Map::new();
        ctx.insert("retries".into(), 1.into());
        let mut ev = AuditEvent::new(
            AuditEventType::DataModification,
            "user u00001 read customer record 00000001 from the billing ledger",
        )
        .log_level(AuditLogLevel::Info)
        .component("billing-service")
        .operation("read")
        .user_id("u00001")
        .session_id("s-9e3779b9")
        .request_id("r-85ebca6b")
        .client_ip("10.1.0.1")
        .user_agent("billing-client/4.2")
        .container_id("c0ffee")
        .plugin_name("ledger")
        .error_category("none")
        .error_severity("low")
        .data_classification("confidential")
        .retention_category("7y")
        .signature("sig-v1")
        .contains_pii(false)
        .tag("sox")
        .tag("pci")
        .meta("resource", "customers/1")
        .meta("rows", 1u64)
        .meta("region", "eu-west-1")
        .error_context(ctx);
        ev.compliance_level = ComplianceLevel::Sox;
        ev
    }

    #[test]
    fn stored_lines_are_read_back_in_place_unless_a_field_is_escaped() {
        let ts = Utc
            .with_ymd_and_hms(2026, 5, 6, 7, 8, 9)
            .single()
            .expect("ts");
        for (ev, fast) in [(plain(), true), (sample(), false)] {
            let mut p = LineEncoder::default();
            p.encode(&ev, "id-1", "host", 1, ev.compliance_level);
            let (rec, _) = p.assemble(&ev, 7, Some(&[b'a'; 64]), ts, &Integrity::Sha256);
            let quick =
                AuditRecord::from_stored_fast(rec.line(), &Integrity::Sha256).expect("verifies");
            assert_eq!(quick.is_some(), fast, "{}", rec.line());
            if let Some(q) = quick {
                assert_eq!(q, rec);
            }
            let back = AuditRecord::from_stored(rec.line(), &Integrity::Sha256).expect("rebuilt");
            assert_eq!(back, rec);
            assert_eq!(back.user_id(), rec.user_id());
            assert_eq!(back.previous_hash(), Some("a".repeat(64).as_str()));
        }
    }

    #[test]
    fn line_is_canonical_sorted_and_verifiable() {
        let ev = sample();
        let mut p = LineEncoder::default();
        p.encode(&ev, "id-1", "host", 1, ev.compliance_level);
        let ts = Utc
            .with_ymd_and_hms(2026, 5, 6, 7, 8, 9)
            .single()
            .expect("ts");
        let (rec, hex) = p.assemble(&ev, 7, Some(&[b'a'; 64]), ts, &Integrity::Sha256);
        let v: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(rec.line()).expect("json");
        assert_eq!(v.len(), 30);
        let keys: Vec<_> = v.keys().cloned().collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        // Re-serializing the parsed object canonically gives the same bytes.
        let mut again = Vec::new();
        write_object(&mut again, &v);
        assert_eq!(again, rec.line().as_bytes());
        assert!(rec.line().is_ascii());
        assert_eq!(rec.event_id(), "id-1");
        assert_eq!(rec.timestamp_str(), "2026-05-06T07:08:09.000000Z");
        assert_eq!(rec.user_id().as_deref(), Some("ü1"));
        assert_eq!(rec.checksum().as_bytes(), &hex);
        let fields = check_line(rec.line().as_bytes(), &Integrity::Sha256).expect("verifies");
        assert_eq!(fields.sequence_number, 7);
        // Checksum is SHA-256 of the line without its checksum member.
        let without = rec
            .line()
            .replacen(&format!("\"checksum\":\"{}\",", rec.checksum()), "", 1);
        let mut h = Sha256::new();
        h.update(without.as_bytes());
        let mut want = [0u8; 64];
        hex_into(&h.finalize(), &mut want);
        assert_eq!(want, hex);
    }

    #[test]
    fn the_fast_reader_agrees_with_the_json_parser() {
        let ev = sample()
            .meta("previous_hash", "x")
            .meta("sequence_number", 99);
        let mut p = LineEncoder::default();
        p.encode(&ev, "id-1", "host", 1, ev.compliance_level);
        for (seq, prev) in [(1, None), (123_456_789, Some([b'c'; 64]))] {
            let (rec, _) = p.assemble(&ev, seq, prev.as_ref(), Utc::now(), &Integrity::Sha256);
            let fast = canonical_fields(rec.line().as_bytes()).expect("canonical");
            let full: ChainFields<'_> = serde_json::from_str(rec.line()).expect("json");
            assert_eq!(fast.sequence_number, full.sequence_number);
            assert_eq!(fast.previous_hash, full.previous_hash);
            assert_eq!(fast.checksum, full.checksum);
        }
        // Not the canonical shape: left to the JSON parser.
        assert!(canonical_fields(br#"{"sequence_number":1}"#).is_none());
    }

    #[test]
    fn tampering_and_wrong_key_are_detected() {
        let ev = sample();
        let mut p = LineEncoder::default();
        p.encode(&ev, "id-1", "host", 1, ev.compliance_level);
        let key = Integrity::hmac(&[7u8; 32]).expect("key");
        let (rec, _) = p.assemble(&ev, 1, None, Utc::now(), &key);
        assert!(check_line(rec.line().as_bytes(), &key).is_ok());
        assert!(matches!(
            check_line(rec.line().as_bytes(), &Integrity::Sha256),
            Err(LineProblem::ChecksumMismatch { .. })
        ));
        let tampered = rec.line().replace("read", "reed");
        assert!(matches!(
            check_line(tampered.as_bytes(), &key),
            Err(LineProblem::ChecksumMismatch { .. })
        ));
        assert!(Integrity::hmac(&[1u8; 31]).is_err());
    }
}
