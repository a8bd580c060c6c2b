//! One seal: a canonical JSON line (keys sorted, no whitespace), whose last member is the
//! `signature`: the Ed25519 signature, in hex, of the line's bytes with
//! `,"signature":"…"` removed.

use serde::{Deserialize, Serialize};

use super::keys::{PublicKey, SigningKey};
use super::{hex, unhex};

/// The `format` every seal this version writes carries.
pub const SEAL_FORMAT: u32 = 1;

/// What `,"signature":"` looks like in a line.
const SIGNATURE_MEMBER: &str = ",\"signature\":\"";

/// Why a seal was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SealReason {
    /// `seal_interval_ms` passed with events added.
    Interval,
    /// A file was rotated (size, or a new day's file).
    Rotation,
    /// Retention deleted files.
    Retention,
    /// The trail closed.
    Close,
}

/// One audit file as sealed: its name in the directory, the bytes it held, and its lines,
/// committed through their checksums (see [`super::digest`]). Field order is the canonical
/// (sorted) key order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedFile {
    /// SHA-256, lowercase hex, over the 32 bytes of each of the first `lines` lines'
    /// checksums (a line without a valid checksum: the SHA-256 of its bytes), in file order.
    pub checksums_sha256: String,
    /// How many lines its first `size` bytes hold.
    pub lines: u64,
    /// `audit_YYYY-MM-DD[.N].jsonl`.
    pub name: String,
    /// Its length when sealed.
    pub size: u64,
}

/// The chain anchor as sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealAnchor {
    /// The SHA-256 of `.audit-anchor.json`'s bytes, lowercase hex.
    pub sha256: String,
    /// Its `sequence_number` (where the directory's chain starts).
    pub sequence_number: u64,
}

/// A seal, without its signature. Field order is the canonical (sorted) key order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seal {
    /// The chain anchor, when the directory has one.
    pub anchor: Option<SealAnchor>,
    /// Every audit file in the directory, in sequence order.
    pub files: Vec<SealedFile>,
    /// The first sequence number this seal covers that the previous one did not (for the
    /// first seal: the first sequence number in the directory).
    pub first_sequence: u64,
    /// [`SEAL_FORMAT`].
    pub format: u32,
    /// [`PublicKey::id`] of the key that signed it.
    pub key_id: String,
    /// The checksum of the event at `last_sequence`.
    pub last_checksum: String,
    /// The last sequence number durable in the directory when sealed.
    pub last_sequence: u64,
    /// The previous seal's `signature` (`None` for the first seal).
    pub previous_signature: Option<String>,
    /// Why it was written.
    pub reason: SealReason,
    /// Its number: 1 for the first seal of a directory, then one more each time.
    pub seal: u64,
    /// When it was written: RFC 3339 UTC with microseconds and `Z`.
    pub sealed_at: String,
}

/// A seal read back, with its signature checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedSeal {
    /// What it says.
    pub seal: Seal,
    /// Its signature, hex.
    pub signature: String,
}

impl Seal {
    /// The canonical JSON of the seal without its signature: the bytes signed.
    pub fn body(&self) -> String {
        // Every field is a number, an enum, or ASCII (names, hex, RFC 3339): serde_json's
        // compact output is the canonical form.
        serde_json::to_string(self).unwrap_or_else(|e| {
            unreachable!("a seal always serializes ({e}); this is a bug in audit-format")
        })
    }

    /// The signed line (no newline): the body with `,"signature":"<hex>"` before its `}`.
    pub fn sign(&self, key: &SigningKey) -> (String, String) {
        let body = self.body();
        let signature = hex(&key.sign(body.as_bytes()));
        let mut line = String::with_capacity(body.len() + SIGNATURE_MEMBER.len() + 130);
        line.push_str(&body[..body.len() - 1]);
        line.push_str(SIGNATURE_MEMBER);
        line.push_str(&signature);
        line.push_str("\"}");
        (line, signature)
    }
}

/// Why a seal line does not check out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealLineError {
    /// Not a seal line at all (no signature member, not JSON, not canonical).
    Malformed(String),
    /// The signature does not match the public key: signed by another key, or altered.
    BadSignature {
        /// The key id the seal names, if readable.
        key_id: Option<String>,
    },
}

impl std::fmt::Display for SealLineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed(m) => write!(f, "not a seal: {m}"),
            Self::BadSignature { key_id } => {
                write!(f, "the signature does not match the public key")?;
                if let Some(id) = key_id {
                    write!(f, " (the seal names key {id})")?;
                }
                write!(f, ": the seal was altered, or signed by another key")
            }
        }
    }
}

/// Parses a seal line and checks its signature with `key`.
///
/// # Errors
/// [`SealLineError`] saying what is wrong.
pub fn parse_signed(line: &str, key: &PublicKey) -> Result<SignedSeal, SealLineError> {
    let malformed = |m: &str| SealLineError::Malformed(m.to_owned());
    let at = line
        .rfind(SIGNATURE_MEMBER)
        .ok_or_else(|| malformed("no \"signature\" member at its end"))?;
    let tail = &line[at + SIGNATURE_MEMBER.len()..];
    let signature = tail
        .strip_suffix("\"}")
        .filter(|s| s.len() == 128)
        .ok_or_else(|| {
            malformed("the \"signature\" member is not 128 hex digits closing the line")
        })?;
    let sig_bytes = unhex(signature).ok_or_else(|| malformed("the signature is not hex"))?;
    let body = format!("{}}}", &line[..at]);
    let seal: Result<Seal, _> = serde_json::from_str(&body);
    if !key.verifies(body.as_bytes(), &sig_bytes) {
        return Err(SealLineError::BadSignature {
            key_id: seal.ok().map(|s| s.key_id),
        });
    }
    let seal =
        seal.map_err(|e| SealLineError::Malformed(format!("signed, but unreadable: {e}")))?;
    if seal.body() != body {
        return Err(malformed("signed, but not in canonical form"));
    }
    Ok(SignedSeal {
        seal,
        signature: signature.to_owned(),
    })
}

#[cfg(test)]
mod test {
    use super::*;

    fn sample() -> Seal {
        Seal {
            anchor: None,
            files: vec![SealedFile {
                checksums_sha256: "00".repeat(32),
                lines: 1,
                name: "audit_2026-01-01.jsonl".into(),
                size: 10,
            }],
            first_sequence: 1,
            format: SEAL_FORMAT,
            key_id: "k".into(),
            last_checksum: "ab".repeat(32),
            last_sequence: 3,
            previous_signature: None,
            reason: SealReason::Close,
            seal: 1,
            sealed_at: "2026-01-01T00:00:00.000000Z".into(),
        }
    }

    #[test]
    fn signed_line_round_trips_and_edits_fail() -> Result<(), String> {
        let key =
            SigningKey::from_pkcs8(&SigningKey::generate().map_err(|e| crate::error::chain(&e))?)?;
        let (line, sig) = sample().sign(&key);
        assert!(line.starts_with("{\"anchor\":null,\"files\":[{\"checksums_sha256\":"));
        assert!(line.ends_with(&format!(",\"signature\":\"{sig}\"}}")));
        let back = parse_signed(&line, key.public()).map_err(|e| e.to_string())?;
        assert_eq!(back.seal, sample());
        let edited = line.replace("\"size\":10", "\"size\":11");
        assert!(matches!(
            parse_signed(&edited, key.public()),
            Err(SealLineError::BadSignature { .. })
        ));
        let other =
            SigningKey::from_pkcs8(&SigningKey::generate().map_err(|e| crate::error::chain(&e))?)?;
        assert!(matches!(
            parse_signed(&line, other.public()),
            Err(SealLineError::BadSignature { key_id: Some(_) })
        ));
        Ok(())
    }
}
