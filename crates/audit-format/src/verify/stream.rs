//! Verifying lines that arrive one by one, in sequence order (a plugin's store read back
//! through its `read` capability), with the same checks and the same chain rules as
//! [`verify_dir`](super::verify_dir).

use super::chain::{Break, Chain, Checked};
use super::report::{VerifyError, VerifyReport};
use crate::record::{Integrity, check_line};

/// Verifies a chain fed line by line, oldest first: each checksum (or HMAC) recomputed over
/// the line's bytes, contiguous sequence numbers from 1, each `previous_hash` equal to the
/// previous line's checksum. The first failure names the sequence number, as `audit verify
/// DIR` does.
///
/// ```
/// use audit_format::verify::StreamVerifier;
/// use audit_format::{AuditEvent, AuditEventType, ComplianceLevel, Integrity, LineEncoder};
/// let integrity = Integrity::Sha256;
/// let mut encoder = LineEncoder::new();
/// let mut lines = Vec::new();
/// let mut prev: Option<[u8; 64]> = None;
/// for seq in 1..=3 {
///     let event = AuditEvent::new(AuditEventType::DataAccess, "read");
///     encoder.encode(&event, &format!("id-{seq}"), "host", 1, ComplianceLevel::Basic);
///     let (record, hex) =
///         encoder.assemble(&event, seq, prev.as_ref(), chrono::Utc::now(), &integrity);
///     prev = Some(hex);
///     lines.push(record.line().to_owned());
/// }
/// let mut verifier = StreamVerifier::new(&integrity, "backend \"memory\"");
/// for line in &lines {
///     verifier.push(line).expect("intact");
/// }
/// assert_eq!(verifier.finish().events, 3);
///
/// let mut verifier = StreamVerifier::new(&integrity, "backend \"memory\"");
/// verifier.push(&lines[0]).expect("intact");
/// let err = verifier.push(&lines[2]).expect_err("sequence 2 is missing");
/// assert_eq!(err.broken_sequence(), Some(2));
/// ```
#[derive(Debug)]
pub struct StreamVerifier<'a> {
    integrity: &'a Integrity,
    source: String,
    chain: Chain,
    /// Lines pushed so far.
    position: u64,
}

impl<'a> StreamVerifier<'a> {
    /// A verifier for the chain read from `source` (named in messages, for example
    /// `backend "sqlite"`), starting at sequence 1.
    pub fn new(integrity: &'a Integrity, source: impl Into<String>) -> Self {
        Self {
            integrity,
            source: source.into(),
            chain: Chain::new(1, None, VerifyReport::default()),
            position: 0,
        }
    }

    /// Checks the next line (without its newline).
    ///
    /// # Errors
    /// [`VerifyError::BrokenRecord`] naming the first bad (or missing) sequence number; the
    /// verifier should not be fed further.
    pub fn push(&mut self, line: &str) -> Result<(), VerifyError> {
        self.position += 1;
        let position = self.position;
        let checked = check_line(line.as_bytes(), self.integrity)
            .map(Checked::from)
            .map_err(|p| p.to_string());
        let place = format_args!("{}, line {position} read back", self.source);
        self.chain
            .accept(checked, &place)
            .map_err(|b: Break| VerifyError::BrokenRecord {
                sequence: b.sequence,
                source: self.source.clone(),
                position,
                reason: b.reason,
            })
    }

    /// Events verified so far.
    pub fn events(&self) -> u64 {
        self.chain.report.events
    }

    /// What was verified (`files` is 0).
    pub fn finish(self) -> VerifyReport {
        self.chain.report
    }
}
