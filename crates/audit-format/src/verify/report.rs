//! What a verification found: the [`VerifyReport`] of a chain that holds, or the
//! [`VerifyError`] that says where and why it does not.

use std::fmt;
use std::path::PathBuf;

use crate::anchor::Removed;
use crate::error::Error;

/// What a successful verification covered; serializes with these field names (`removed`
/// as the anchor stores it, dates `YYYY-MM-DD`).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
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
    /// What the directory's anchor records as removed by retention (it held: authenticated
    /// under an HMAC key, consistent in any mode).
    pub removed: Option<Removed>,
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
    /// The chain read back from a store that is not a directory (a plugin's `read`
    /// capability, through [`StreamVerifier`](super::StreamVerifier)) is broken at `sequence`.
    BrokenRecord {
        /// The first bad (or missing) sequence number.
        sequence: u64,
        /// What was read, for messages (for example `backend "sqlite"`).
        source: String,
        /// 1-based position of the bad line among the lines read back.
        position: u64,
        /// What is wrong.
        reason: String,
    },
    /// The directory fails for a reason outside its lines: an audit file name that is not a
    /// regular file, or a chain anchor that does not hold (not authenticated under an HMAC
    /// key, altered, or recording a removal inside the retention period).
    Directory {
        /// The entry at fault.
        path: PathBuf,
        /// What is wrong, and what to do.
        reason: String,
    },
    /// The directory or a file could not be read.
    Io(Error),
}

impl VerifyError {
    /// The first bad sequence number, when the chain is broken (not when reading failed).
    pub fn broken_sequence(&self) -> Option<u64> {
        match self {
            Self::Broken { sequence, .. } | Self::BrokenRecord { sequence, .. } => Some(*sequence),
            Self::Directory { .. } | Self::Io(_) => None,
        }
    }

    /// Whether a line's checksum did not match its bytes: what a missing or wrong HMAC key
    /// looks like (a gap or a broken link does not).
    pub fn is_checksum_mismatch(&self) -> bool {
        match self {
            Self::Broken { reason, .. } | Self::BrokenRecord { reason, .. } => {
                reason.starts_with(CHECKSUM_MISMATCH)
            }
            Self::Directory { .. } | Self::Io(_) => false,
        }
    }
}

/// How the reason of a line whose checksum does not match its bytes begins.
pub(super) const CHECKSUM_MISMATCH: &str = "checksum mismatch";

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
            Self::BrokenRecord {
                sequence,
                source,
                position,
                reason,
            } => write!(
                f,
                "sequence {sequence} in {source}, line {position} read back: {reason}"
            ),
            Self::Directory { path, reason } => write!(f, "{}: {reason}", path.display()),
            Self::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for VerifyError {
    /// `Io`'s own source (its message is the wrapped error's): print with
    /// [`chain`](crate::error::chain).
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => std::error::Error::source(e),
            _ => None,
        }
    }
}
