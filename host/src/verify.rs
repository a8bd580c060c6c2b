//! `audit verify`: re-checks a directory's chain from the stored bytes alone.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::Error;
use crate::file::{ANCHOR_FILE, list_log_files};
use crate::record::{Integrity, check_line, is_genesis};

/// What a successful verification covered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Events verified.
    pub events: u64,
    /// Files read.
    pub files: usize,
    /// First sequence number (1 unless retention removed older files).
    pub first_sequence: Option<u64>,
    /// Last sequence number verified.
    pub last_sequence: Option<u64>,
    /// Things worth knowing that are not failures (an unterminated final line, a chain
    /// shortened by retention).
    pub warnings: Vec<String>,
}

/// Why verification failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum VerifyError {
    /// The chain is broken at `sequence` (the first sequence number that does not check
    /// out), found at `file:line`.
    Broken {
        /// The first bad (or missing) sequence number.
        sequence: u64,
        /// The file where the problem was found.
        file: PathBuf,
        /// 1-based line in that file.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// The directory or a file could not be read.
    Io(Error),
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Broken {
                sequence,
                file,
                line,
                reason,
            } => {
                write!(
                    f,
                    "sequence {sequence} at {}:{line}: {reason}",
                    file.display()
                )
            }
            Self::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for VerifyError {}

#[derive(Deserialize)]
struct Anchor {
    sequence_number: u64,
    previous_hash: Option<String>,
}

/// Verifies every `audit_*.jsonl` file in `dir` in sequence order; see
/// [`verify_dir_with_progress`].
///
/// # Errors
/// As [`verify_dir_with_progress`].
pub fn verify_dir(dir: &Path, integrity: &Integrity) -> Result<VerifyReport, VerifyError> {
    verify_dir_with_progress(dir, integrity, &mut |_, _| {})
}

/// Verifies every `audit_*.jsonl` file in `dir`, oldest first: contiguous sequence numbers
/// (starting at 1, or where retention's anchor says), each checksum recomputed over the
/// stored bytes, each `previous_hash` equal to the previous line's checksum. `progress`
/// receives (bytes done, bytes total) as it goes.
///
/// An unterminated final line in the newest file (a write in progress, or a crash) is a
/// warning, not a failure.
///
/// # Errors
/// [`VerifyError::Broken`] at the first bad sequence; [`VerifyError::Io`] when reading fails.
pub fn verify_dir_with_progress(
    dir: &Path,
    integrity: &Integrity,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VerifyReport, VerifyError> {
    let io = |ctx, p: &Path| {
        let p = p.to_path_buf();
        move |e| {
            VerifyError::Io(Error::Io {
                context: ctx,
                path: p,
                source: e,
            })
        }
    };
    let files = list_log_files(dir).map_err(io("cannot list audit directory", dir))?;
    let total: u64 = files
        .iter()
        .filter_map(|f| f.path.metadata().ok())
        .map(|m| m.len())
        .sum();
    let anchor_path = dir.join(ANCHOR_FILE);
    let anchor: Option<Anchor> = match std::fs::read(&anchor_path) {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| {
            VerifyError::Io(Error::Integrity(format!(
                "{}: unreadable retention anchor: {e}",
                anchor_path.display()
            )))
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io("cannot read", &anchor_path)(e)),
    };
    let mut report = VerifyReport {
        files: files.len(),
        ..Default::default()
    };
    if let Some(a) = &anchor {
        report.warnings.push(format!(
            "the chain in this directory starts at sequence {} ({ANCHOR_FILE} records the link: older files were removed by retention, or this backend was added to a running trail)",
            a.sequence_number
        ));
    }
    let mut expected_seq = anchor.as_ref().map_or(1, |a| a.sequence_number);
    let mut expected_prev: Option<String> = anchor.and_then(|a| a.previous_hash);
    let mut first = true;
    let mut done = 0u64;
    let mut buf = Vec::with_capacity(4096);
    for (fi, f) in files.iter().enumerate() {
        let newest = fi + 1 == files.len();
        let file = File::open(&f.path).map_err(io("cannot open", &f.path))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut line_no = 0u64;
        let mut since_progress = 0u64;
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .map_err(io("cannot read", &f.path))?;
            if n == 0 {
                break;
            }
            line_no += 1;
            done += n as u64;
            since_progress += n as u64;
            if since_progress >= 4 << 20 {
                progress(done, total);
                since_progress = 0;
            }
            let broken = |sequence: u64, reason: String| VerifyError::Broken {
                sequence,
                file: f.path.clone(),
                line: line_no,
                reason,
            };
            if buf.last() != Some(&b'\n') {
                if newest {
                    report.warnings.push(format!(
                        "{}:{line_no}: unterminated final line ({n} bytes) not verified: a write in progress or a crash; the next open of the directory moves it aside",
                        f.path.display()
                    ));
                    break;
                }
                return Err(broken(
                    expected_seq,
                    "unterminated line in a file that is not the newest".into(),
                ));
            }
            let line = &buf[..buf.len() - 1];
            let fields =
                check_line(line, integrity).map_err(|p| broken(expected_seq, p.to_string()))?;
            let seq = fields.sequence_number;
            if fields.legacy && !first && seq == 1 && is_genesis(fields.previous_hash.as_deref()) {
                // The Python trail started a new chain at 1 after every process restart.
                report.warnings.push(format!(
                    "{}:{line_no}: a new chain starts at sequence 1 (the Python trail restarted its sequence after each process restart); verification continues with it",
                    f.path.display()
                ));
                expected_seq = 1;
                expected_prev = None;
                first = true;
            }
            if seq != expected_seq {
                let reason = if first && expected_seq == 1 && seq > 1 {
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
                return Err(broken(expected_seq, reason));
            }
            let prev = fields.previous_hash.as_deref();
            let linked = match (&expected_prev, first) {
                (None, true) => is_genesis(prev),
                (Some(want), _) => prev == Some(want.as_str()),
                (None, false) => false,
            };
            if !linked {
                let reason = match &expected_prev {
                    Some(want) => format!(
                        "previous_hash {} does not match the checksum of sequence {} ({want})",
                        prev.unwrap_or("null"),
                        seq.saturating_sub(1)
                    ),
                    None => format!(
                        "the first event's previous_hash must be null, found {}",
                        prev.unwrap_or("null")
                    ),
                };
                return Err(broken(expected_seq, reason));
            }
            // Reuse the string's buffer: no allocation per line.
            match (&mut expected_prev, fields.checksum.as_deref()) {
                (Some(prev), Some(sum)) => {
                    prev.clear();
                    prev.push_str(sum);
                }
                (slot, sum) => *slot = sum.map(str::to_owned),
            }
            report.first_sequence.get_or_insert(seq);
            report.last_sequence = Some(seq);
            report.events += 1;
            expected_seq = seq + 1;
            first = false;
        }
    }
    progress(total, total);
    Ok(report)
}
