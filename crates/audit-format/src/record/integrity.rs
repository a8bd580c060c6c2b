//! How a line's checksum is computed and checked: SHA-256 or HMAC-SHA256 over the stored
//! bytes, and the chain fields read back out of a stored line.

use std::borrow::Cow;
use std::fmt;
use std::sync::LazyLock;

use hmac::{Hmac, Mac};
use memchr::memmem::FinderRev;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::python::python_payloads;
use crate::canonical::hex_into;

/// `{"checksum":"` – every stored line starts with this.
pub(super) const CHECKSUM_PREFIX: &[u8] = b"{\"checksum\":\"";
/// Offset of the first hex digit of the checksum in a line.
pub(super) const HEX_AT: usize = CHECKSUM_PREFIX.len();
/// Offset of the body (first member after the checksum) in a line.
pub(super) const BODY_AT: usize = HEX_AT + 64 + 2;

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
    pub fn checksum_hex(&self, body: &[u8]) -> [u8; 64] {
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

/// What an anchor's MAC is computed over, before the anchor's bytes: keeps a MAC of an anchor
/// from ever equalling a line's checksum under the same key.
const ANCHOR_MAC_DOMAIN: &[u8] = b"audit-anchor-v1\n";

impl Integrity {
    /// The lowercase hex HMAC of a chain anchor's `body` (its JSON without the `mac` member)
    /// under this key; `None` with plain SHA-256, which has no secret to authenticate with.
    pub fn anchor_mac(&self, body: &[u8]) -> Option<[u8; 64]> {
        let Self::Hmac(proto) = self else {
            return None;
        };
        let mut h = (**proto).clone();
        h.update(ANCHOR_MAC_DOMAIN);
        h.update(body);
        let digest: [u8; 32] = h.finalize().into_bytes().into();
        let mut hex = [0u8; 64];
        hex_into(&digest, &mut hex);
        Some(hex)
    }
}

/// The chain fields of a stored line.
#[derive(Debug, Deserialize)]
pub struct ChainFields<'a> {
    /// `sequence_number`.
    pub sequence_number: u64,
    /// `previous_hash` (`None` for `null`).
    #[serde(borrow)]
    pub previous_hash: Option<Cow<'a, str>>,
    /// `checksum`, if the line has one.
    #[serde(borrow)]
    pub checksum: Option<Cow<'a, str>>,
    /// The line is in the Python trail's own storage form, not the canonical one.
    #[serde(skip)]
    pub legacy: bool,
}

/// Why a stored line does not check out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineProblem {
    /// The line is not a JSON object with the chain fields (the parser's message).
    NotJson(String),
    /// The line has no `checksum` member.
    NoChecksum,
    /// The checksum recomputed over the line's bytes differs from the stored one.
    ChecksumMismatch {
        /// The checksum in the line.
        stored: String,
        /// The checksum of the line's bytes.
        computed: String,
    },
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
/// payload is rebuilt from the parsed line (see `python_payloads`).
pub fn check_line<'a>(
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
pub(super) fn canonical_fields(line: &[u8]) -> Option<ChainFields<'_>> {
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

/// Is this `previous_hash` a valid start of a chain (`null`, or the Python trail's genesis
/// hash of 64 zeros)?
pub fn is_genesis(previous_hash: Option<&str>) -> bool {
    match previous_hash {
        None | Some("") => true,
        Some(h) => h.len() == 64 && h.bytes().all(|b| b == b'0'),
    }
}
