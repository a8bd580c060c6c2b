//! The canonical line and the record every backend receives: encoding (one pass, once per
//! event), checksums (SHA-256 or HMAC-SHA256 over the stored bytes) and parsing of the chain
//! fields back out of a stored line.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use memchr::memmem::FinderRev;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::canonical::{hex_into, write_i64, write_object, write_str, write_timestamp, write_u64};
use crate::event::{AuditEvent, AuditEventType, AuditLogLevel};

/// `{"checksum":"` – every stored line starts with this.
pub(crate) const CHECKSUM_PREFIX: &[u8] = b"{\"checksum\":\"";
/// Offset of the first hex digit of the checksum in a line.
const HEX_AT: usize = CHECKSUM_PREFIX.len();
/// Offset of the body (first member after the checksum) in a line.
const BODY_AT: usize = HEX_AT + 64 + 2;

/// How each line's `checksum` is computed.
#[derive(Clone)]
pub enum Integrity {
    /// Plain SHA-256 (the default).
    Sha256,
    /// HMAC-SHA256 with a secret key.
    Hmac(Box<Hmac<Sha256>>),
}

impl fmt::Debug for Integrity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sha256 => "Integrity::Sha256",
            Self::Hmac(_) => "Integrity::Hmac(<key>)",
        })
    }
}

impl Integrity {
    /// HMAC-SHA256 with `key`.
    ///
    /// # Errors
    /// A key shorter than 32 bytes is refused.
    pub fn hmac(key: &[u8]) -> Result<Self, String> {
        if key.len() < 32 {
            return Err(format!(
                "HMAC key is {} bytes; at least 32 are required (e.g. `head -c 32 /dev/urandom > key`)",
                key.len()
            ));
        }
        let mac = Hmac::<Sha256>::new_from_slice(key).map_err(|e| e.to_string())?;
        Ok(Self::Hmac(Box::new(mac)))
    }

    /// The lowercase hex checksum of `{` followed by `body` (a line without its checksum
    /// member).
    pub(crate) fn checksum_hex(&self, body: &[u8]) -> [u8; 64] {
        let digest: [u8; 32] = match self {
            Self::Sha256 => {
                let mut h = Sha256::new();
                h.update(b"{");
                h.update(body);
                h.finalize().into()
            }
            Self::Hmac(proto) => {
                let mut h = (**proto).clone();
                h.update(b"{");
                h.update(body);
                h.finalize().into_bytes().into()
            }
        };
        let mut hex = [0u8; 64];
        hex_into(&digest, &mut hex);
        hex
    }
}

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
    pub(crate) fn previous_hash(&self) -> Option<&str> {
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
    pub(crate) fn from_stored(line: &str, integrity: &Integrity) -> Result<Self, String> {
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
        let mut prepared = Prepared::default();
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

/// Writes `,"key":"value"` or `,"key":null`.
fn opt_str(out: &mut Vec<u8>, member: &[u8], v: Option<&str>) {
    out.extend_from_slice(member);
    match v {
        Some(s) => write_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// An event serialized outside the chain's critical section, with gaps where
/// `previous_hash`, `sequence_number` and `timestamp` go. The parts are, in key order:
/// `client_ip..plugin_name` | `process_id..retention_category` | `session_id, signature` |
/// `user_agent, user_id`.
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    buf: Vec<u8>,
    split: [usize; 3],
    event_id: Range<usize>,
    user_id: Option<Range<usize>>,
}

impl Prepared {
    /// Serializes everything but the chain fields and the timestamp. `event_id` is the id to
    /// store (given or generated); `host` and `pid` fill `hostname` and `process_id` when the
    /// event has none.
    pub(crate) fn encode(
        &mut self,
        ev: &AuditEvent,
        event_id: &str,
        host: &str,
        pid: i64,
        level: crate::event::ComplianceLevel,
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
    pub(crate) fn assemble(
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
                unreachable!("canonical line is ASCII; this is a bug in audit-host: {e}")
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

/// The chain fields of a stored line.
#[derive(Debug, Deserialize)]
pub(crate) struct ChainFields<'a> {
    pub(crate) sequence_number: u64,
    #[serde(borrow)]
    pub(crate) previous_hash: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) checksum: Option<Cow<'a, str>>,
    /// The line is in the Python trail's own storage form, not the canonical one.
    #[serde(skip)]
    pub(crate) legacy: bool,
}

/// Why a stored line does not check out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LineProblem {
    NotJson(String),
    NoChecksum,
    ChecksumMismatch { stored: String, computed: String },
}

impl fmt::Display for LineProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotJson(e) => write!(f, "line is not a valid audit event ({e})"),
            Self::NoChecksum => f.write_str("line has no `checksum` key"),
            Self::ChecksumMismatch { stored, computed } => write!(
                f,
                "checksum mismatch: stored {stored}, computed {computed} (the line was altered, or the wrong key was used)"
            ),
        }
    }
}

/// Parses the chain fields of `line` and recomputes its checksum over the stored bytes.
///
/// Lines in the canonical form (checksum first) are hashed as stored. Other lines are taken
/// to be the Python trail's own storage form (`model_dump_json()`), whose checksum is
/// SHA-256 over `json.dumps(event_without_checksum, sort_keys=True, default=str)`; that
/// payload is rebuilt from the parsed line (see [`python_payload`]).
pub(crate) fn check_line<'a>(
    line: &'a [u8],
    integrity: &Integrity,
) -> Result<ChainFields<'a>, LineProblem> {
    let mut fields: ChainFields<'a> = match canonical_fields(line) {
        Some(f) => f,
        None => serde_json::from_slice(line).map_err(|e| LineProblem::NotJson(e.to_string()))?,
    };
    let Some(stored) = fields.checksum.as_deref() else {
        return Err(LineProblem::NoChecksum);
    };
    let canonical = line.len() >= BODY_AT
        && line.starts_with(CHECKSUM_PREFIX)
        && &line[HEX_AT + 64..BODY_AT] == b"\",";
    let computed = if canonical {
        integrity.checksum_hex(&line[BODY_AT..])
    } else {
        fields.legacy = true;
        // `checksum_hex` hashes `{` + body: hand it each payload after its opening brace.
        let hashes: Vec<[u8; 64]> = python_payloads(line)
            .map_err(LineProblem::NotJson)?
            .iter()
            .map(|p| integrity.checksum_hex(&p[1..]))
            .collect();
        hashes
            .iter()
            .find(|h| h[..] == *stored.as_bytes())
            .copied()
            .unwrap_or(hashes[0])
    };
    if computed != stored.as_bytes() {
        return Err(LineProblem::ChecksumMismatch {
            stored: stored.to_owned(),
            computed: String::from_utf8_lossy(&computed).into_owned(),
        });
    }
    Ok(fields)
}

/// The chain fields of a line in the canonical form, read without a JSON parser: the
/// checksum at its fixed offset, and the last top-level `previous_hash` and
/// `sequence_number` members (no key that sorts after them holds an object, and a string
/// cannot contain an unescaped `"`, so the last occurrence is the top-level one). `None` when
/// the line does not have that shape; the caller then parses it fully. What this reads is
/// then checked against the checksum over the line's bytes, so a line it misreads fails.
fn canonical_fields(line: &[u8]) -> Option<ChainFields<'_>> {
    if line.len() < BODY_AT
        || !line.starts_with(CHECKSUM_PREFIX)
        || &line[HEX_AT + 64..BODY_AT] != b"\","
        || line.last() != Some(&b'}')
        || !line.is_ascii()
    {
        return None;
    }
    let is_hex = |b: &[u8]| b.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    let checksum = &line[HEX_AT..HEX_AT + 64];
    if !is_hex(checksum) {
        return None;
    }
    // Searchers built once: building one per line cost as much as the search.
    static SEQ: LazyLock<FinderRev<'static>> =
        LazyLock::new(|| FinderRev::new(b",\"sequence_number\":"));
    static PREV: LazyLock<FinderRev<'static>> =
        LazyLock::new(|| FinderRev::new(b",\"previous_hash\":"));
    let seq_at = SEQ.rfind(line)? + SEQ.needle().len();
    let digits = line[seq_at..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    if digits == 0 || digits > 20 || line.get(seq_at + digits) != Some(&b',') {
        return None;
    }
    let sequence_number = std::str::from_utf8(&line[seq_at..seq_at + digits])
        .ok()?
        .parse()
        .ok()?;
    // `previous_hash` sorts before `sequence_number`: search only the part before it.
    let prev_at = PREV.rfind(&line[..seq_at])? + PREV.needle().len();
    let rest = &line[prev_at..];
    let previous_hash = if rest.starts_with(b"null,") {
        None
    } else if rest.len() > 66
        && rest[0] == b'"'
        && rest[65] == b'"'
        && rest[66] == b','
        && is_hex(&rest[1..65])
    {
        Some(Cow::Borrowed(std::str::from_utf8(&rest[1..65]).ok()?))
    } else {
        return None;
    };
    Some(ChainFields {
        sequence_number,
        previous_hash,
        checksum: Some(Cow::Borrowed(std::str::from_utf8(checksum).ok()?)),
        legacy: false,
    })
}

/// Rebuilds what the Python trail hashed for a line it stored: the event without `checksum`,
/// keys sorted, `", "`/`": "` separators, non-ASCII escaped, and datetimes as Python's
/// `str(datetime)` (`2025-06-01 12:00:01.250000+00:00`; no fraction when it is zero).
///
/// The top-level `timestamp` is always a datetime. Values inside `error_context` and
/// `metadata` may have been datetimes too (pydantic wrote them as ISO strings), or genuine
/// strings that look like one, so two candidates are returned: without and with those
/// nested strings converted.
fn python_payloads(line: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(line).map_err(|e| e.to_string())?;
    map.remove("checksum");
    if let Some(serde_json::Value::String(ts)) = map.get_mut("timestamp") {
        *ts =
            python_str_datetime(ts).ok_or_else(|| format!("timestamp `{ts}` is not a datetime"))?;
    }
    let render = |map: serde_json::Map<String, serde_json::Value>| {
        let mut out = Vec::with_capacity(line.len() + 128);
        crate::canonical::write_value_styled(
            &mut out,
            &serde_json::Value::Object(map),
            crate::canonical::Style::Python,
        );
        out
    };
    let mut nested = map.clone();
    let mut converted = false;
    for key in ["error_context", "metadata"] {
        if let Some(v) = nested.get_mut(key) {
            converted |= convert_nested_datetimes(v);
        }
    }
    let mut out = vec![render(map)];
    if converted {
        out.push(render(nested));
    }
    Ok(out)
}

/// Python's `str(datetime)` for an ISO 8601 string as pydantic writes it, if it is one.
fn python_str_datetime(s: &str) -> Option<String> {
    if s.len() < 19 || s.as_bytes()[10] != b'T' {
        return None;
    }
    let fraction = |micros: u32| if micros == 0 { "" } else { "%.6f" };
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        let f = fraction(t.timestamp_subsec_micros());
        return Some(t.format(&format!("%Y-%m-%d %H:%M:%S{f}%:z")).to_string());
    }
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    let f = fraction(naive.and_utc().timestamp_subsec_micros());
    Some(naive.format(&format!("%Y-%m-%d %H:%M:%S{f}")).to_string())
}

fn convert_nested_datetimes(v: &mut serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => match python_str_datetime(s) {
            Some(c) => {
                *s = c;
                true
            }
            None => false,
        },
        serde_json::Value::Array(items) => items
            .iter_mut()
            .fold(false, |acc, i| convert_nested_datetimes(i) | acc),
        serde_json::Value::Object(m) => m
            .values_mut()
            .fold(false, |acc, i| convert_nested_datetimes(i) | acc),
        _ => false,
    }
}

/// Is this `previous_hash` a valid start of a chain (`null`, or the Python trail's genesis
/// hash of 64 zeros)?
pub(crate) fn is_genesis(previous_hash: Option<&str>) -> bool {
    match previous_hash {
        None | Some("") => true,
        Some(h) => h.len() == 64 && h.bytes().all(|b| b == b'0'),
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use chrono::TimeZone;

    fn sample() -> AuditEvent {
        AuditEvent::new(AuditEventType::DataAccess, "read \"x\" é")
            .user_id("ü1")
            .meta("b", 2)
            .meta("a", "x")
    }

    /// The bench's second sample event (`audit bench`, cli/src/bench/sample.rs): all 30
    /// fields, nothing escaped.
    fn bench_sample_event() -> AuditEvent {
        let mut ctx = serde_json::Map::new();
        ctx.insert("retries".into(), serde_json::Value::from(1));
        let mut ev = AuditEvent::new(
            AuditEventType::DataModification,
            "user u00001 read customer record 00000001 from the billing ledger",
        )
        .log_level(crate::event::AuditLogLevel::Info)
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
        ev.compliance_level = crate::event::ComplianceLevel::Sox;
        ev
    }

    #[test]
    fn stored_lines_are_read_back_in_place_unless_a_field_is_escaped() {
        let ts = Utc
            .with_ymd_and_hms(2026, 5, 6, 7, 8, 9)
            .single()
            .expect("ts");
        let plain = bench_sample_event();
        for (ev, fast) in [(plain, true), (sample(), false)] {
            let mut p = Prepared::default();
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
        let mut p = Prepared::default();
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
        let mut p = Prepared::default();
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
        let mut p = Prepared::default();
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
