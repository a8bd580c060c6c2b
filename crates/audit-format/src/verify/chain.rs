//! The sequential chain rules (contiguous sequence numbers, `previous_hash` links) over
//! lines already checked one by one, shared by the directory walk and [`StreamVerifier`].
//!
//! [`StreamVerifier`]: super::StreamVerifier

use std::borrow::Cow;
use std::fmt;
use std::path::Path;

use super::report::{VerifyError, VerifyReport};
use crate::origin::ORIGIN_FILE;
use crate::record::{ChainFields, is_genesis};

/// A line's chain fields, checked and owned (they cross threads).
pub(super) struct Checked {
    pub(super) sequence_number: u64,
    pub(super) previous_hash: Option<Hash>,
    pub(super) checksum: Option<Hash>,
    pub(super) legacy: bool,
}

/// A chain hash crossing threads: the usual 64 hex digits inline, anything else boxed, so
/// the common line costs no allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Hash {
    Hex64([u8; 64]),
    Other(Box<str>),
}

impl Hash {
    pub(super) fn new(s: &str) -> Self {
        match <[u8; 64]>::try_from(s.as_bytes()) {
            Ok(a) => Self::Hex64(a),
            Err(_) => Self::Other(s.into()),
        }
    }

    pub(super) fn bytes(&self) -> &[u8] {
        match self {
            Self::Hex64(a) => a,
            Self::Other(s) => s.as_bytes(),
        }
    }

    /// For messages and the genesis test (it came from a `&str`, so nothing is replaced).
    pub(super) fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(self.bytes())
    }
}

impl From<ChainFields<'_>> for Checked {
    fn from(f: ChainFields<'_>) -> Self {
        Self {
            sequence_number: f.sequence_number,
            previous_hash: f.previous_hash.as_deref().map(Hash::new),
            checksum: f.checksum.as_deref().map(Hash::new),
            legacy: f.legacy,
        }
    }
}

/// Where the chain broke, before the caller says where the line was.
pub(super) struct Break {
    pub(super) sequence: u64,
    pub(super) reason: String,
}

impl Break {
    /// In a directory: at `file`:`line`.
    pub(super) fn at(self, file: &Path, line: u64) -> VerifyError {
        VerifyError::Broken {
            sequence: self.sequence,
            file: file.to_path_buf(),
            line,
            reason: self.reason,
        }
    }
}

/// The sequential rules: contiguous sequence numbers and `previous_hash` links.
#[derive(Debug)]
pub(super) struct Chain {
    pub(super) expected_seq: u64,
    pub(super) expected_prev: Option<Hash>,
    pub(super) first: bool,
    pub(super) report: VerifyReport,
    /// The file being checked, and the line number of its next line.
    pub(super) file: usize,
    pub(super) next_line: u64,
    /// The next line is one the trail did not write ([`ImportedLines`]).
    pub(super) imported_line: bool,
}

impl Chain {
    /// A chain expected to start at `expected_seq`, linked to `expected_prev` (`None`: a
    /// genesis `previous_hash`).
    pub(super) fn new(
        expected_seq: u64,
        expected_prev: Option<Hash>,
        report: VerifyReport,
    ) -> Self {
        Self {
            expected_seq,
            expected_prev,
            first: true,
            report,
            file: usize::MAX,
            next_line: 1,
            imported_line: false,
        }
    }

    /// Results from file `file` follow: line numbers start at 1 in a new file.
    pub(super) fn enter(&mut self, file: usize) {
        if self.file != file {
            self.file = file;
            self.next_line = 1;
        }
    }

    pub(super) fn broken(&self, reason: String) -> Break {
        Break {
            sequence: self.expected_seq,
            reason,
        }
    }

    /// Applies the chain rules to the next line, read at `place` (for warnings).
    pub(super) fn accept(
        &mut self,
        checked: Result<Checked, String>,
        place: &dyn fmt::Display,
    ) -> Result<(), Break> {
        let fields = checked.map_err(|reason| self.broken(reason))?;
        let seq = fields.sequence_number;
        if (fields.legacy || self.imported_line)
            && !self.first
            && seq == 1
            && is_genesis(fields.previous_hash.as_ref().map(Hash::text).as_deref())
        {
            // fapilog's trail started a new chain at 1 in every process. Only in lines the
            // trail did not write: in its own, a restart is a broken chain.
            self.report.warnings.push(format!(
                "{place}: a new chain starts at sequence 1 (the Python trail, fapilog 0.3.5, restarted its sequence in every process; a line this trail did not write: {ORIGIN_FILE} records it as imported, or no trail has opened the directory); verification continues with it"
            ));
            self.expected_seq = 1;
            self.expected_prev = None;
            self.first = true;
        }
        self.check_sequence(seq)?;
        self.check_link(fields.previous_hash.as_ref(), seq)?;
        self.expected_prev = fields.checksum;
        self.report.first_sequence.get_or_insert(seq);
        self.report.last_sequence = Some(seq);
        self.report.events += 1;
        // Checked above: nothing follows u64::MAX.
        self.expected_seq = seq.saturating_add(1);
        self.first = false;
        Ok(())
    }

    /// `seq` is the one expected next (and nothing follows `u64::MAX`).
    fn check_sequence(&self, seq: u64) -> Result<(), Break> {
        if !self.first && self.report.last_sequence == Some(u64::MAX) {
            let reason = format!("sequence {seq} follows sequence {}, the largest", u64::MAX);
            return Err(self.broken(reason));
        }
        let expected_seq = self.expected_seq;
        if seq != expected_seq {
            let reason = if self.first && expected_seq == 1 && seq > 1 {
                format!(
                    "the chain starts at sequence {seq}: events 1..{} are missing",
                    seq - 1
                )
            } else if seq > expected_seq {
                format!(
                    "sequence {expected_seq} is missing (found {seq}): lines were deleted or reordered"
                )
            } else {
                format!(
                    "found sequence {seq} where {expected_seq} was expected: lines were duplicated or reordered"
                )
            };
            return Err(self.broken(reason));
        }
        Ok(())
    }

    /// `prev` (the line's `previous_hash`) links it to the previous line, or is a genesis
    /// value where the chain starts.
    fn check_link(&self, prev: Option<&Hash>, seq: u64) -> Result<(), Break> {
        let linked = match (&self.expected_prev, self.first) {
            (None, true) => is_genesis(prev.map(Hash::text).as_deref()),
            (Some(want), _) => prev == Some(want),
            (None, false) => false,
        };
        if !linked {
            let prev = prev.map_or(Cow::Borrowed("null"), Hash::text);
            let reason = match &self.expected_prev {
                Some(want) => format!(
                    "previous_hash {prev} does not match the checksum of sequence {} ({})",
                    seq.saturating_sub(1),
                    want.text()
                ),
                None => format!("the first event's previous_hash must be null, found {prev}"),
            };
            return Err(self.broken(reason));
        }
        Ok(())
    }
}
