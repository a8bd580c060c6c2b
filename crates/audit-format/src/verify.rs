//! `audit verify`: re-checks a directory's chain from the stored bytes alone.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use crate::anchor::{ANCHOR_FILE, Anchor, AnchorAuth, Removed};
use crate::error::Error;
use crate::names::scan_log_dir;
use crate::origin::{ImportedLines, ORIGIN_FILE};
use crate::record::{ChainFields, Integrity, check_line, is_genesis};

mod stream;

pub use stream::StreamVerifier;

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
    /// capability, through [`StreamVerifier`]) is broken at `sequence`.
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
const CHECKSUM_MISMATCH: &str = "checksum mismatch";

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
    let (files, odd) = scan_log_dir(dir).map_err(io("cannot list audit directory", dir))?;
    if let Some(odd) = odd.into_iter().next() {
        return Err(VerifyError::Directory {
            reason: odd.problem(),
            path: odd.path,
        });
    }
    let total: u64 = files
        .iter()
        .filter_map(|f| f.path.metadata().ok())
        .map(|m| m.len())
        .sum();
    let mut report = VerifyReport {
        files: files.len(),
        ..Default::default()
    };
    let anchor = check_anchor(dir, integrity, &mut report.warnings)?;
    let imported = ImportedLines::of(dir).map_err(|e| VerifyError::Directory {
        path: dir.join(ORIGIN_FILE),
        reason: crate::error::chain(&e),
    })?;
    report.removed = anchor.as_ref().and_then(|a| a.removed.clone());
    let mut chain = Chain::new(
        anchor.as_ref().map_or(1, |a| a.sequence_number),
        anchor.and_then(|a| a.previous_hash).map(|h| Hash::new(&h)),
        report,
    );
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    let mut done = 0u64;
    std::thread::scope(|scope| {
        // Workers check lines (hash + chain fields) in parallel; this thread reads the files
        // and applies the sequential chain rules to the results, in order.
        let mut jobs = Vec::with_capacity(workers);
        let mut results = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (job_tx, job_rx) = mpsc::sync_channel::<Vec<u8>>(2);
            let (res_tx, res_rx) = mpsc::sync_channel::<Vec<Result<Checked, String>>>(2);
            scope.spawn(move || {
                while let Ok(chunk) = job_rx.recv() {
                    // Every job ends with a newline: one item per line, empty lines included.
                    let mut start = 0;
                    let out = memchr::memchr_iter(b'\n', &chunk)
                        .map(|end| {
                            let line = &chunk[start..end];
                            start = end + 1;
                            check_line(line, integrity)
                                .map(Checked::from)
                                .map_err(|p| p.to_string())
                        })
                        .collect();
                    if res_tx.send(out).is_err() {
                        return;
                    }
                }
            });
            jobs.push(job_tx);
            results.push(res_rx);
        }
        let mut in_flight: VecDeque<Item> = VecDeque::new();
        let mut next_worker = 0;
        let process = |item: Item, chain: &mut Chain| -> Result<(), VerifyError> {
            match item {
                Item::Lines { file, worker } => {
                    let out = results[worker].recv().map_err(|_| {
                        VerifyError::Io(Error::backend(
                            "a verification thread stopped; this is a bug in audit-host",
                        ))
                    })?;
                    chain.enter(file);
                    let name = files[file]
                        .path
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy();
                    for checked in out {
                        let line = chain.next_line;
                        chain.next_line += 1;
                        let path = &files[file].path;
                        let checksum = checked.as_ref().ok().and_then(|c| c.checksum.as_ref());
                        chain.imported_line = imported
                            .check(&name, line, checksum.map(Hash::text).as_deref())
                            .map_err(|reason| chain.broken(reason).at(path, line))?;
                        chain
                            .accept(checked, &format_args!("{}:{line}", path.display()))
                            .map_err(|b| b.at(path, line))?;
                    }
                    Ok(())
                }
                Item::Tail { file, bytes } => {
                    chain.enter(file);
                    let line = chain.next_line;
                    let path = &files[file].path;
                    if file + 1 == files.len() {
                        chain.report.warnings.push(format!(
                            "{}:{line}: unterminated final line ({bytes} bytes) not verified: a write in progress or a crash; the next open of the directory moves it aside",
                            path.display()
                        ));
                        Ok(())
                    } else {
                        Err(Break {
                            sequence: chain.expected_seq,
                            reason: "unterminated line in a file that is not the newest".into(),
                        }
                        .at(path, line))
                    }
                }
            }
        };
        for (fi, f) in files.iter().enumerate() {
            let mut file = crate::fs::open_read(&f.path).map_err(io("cannot open", &f.path))?;
            let mut carry: Vec<u8> = Vec::new();
            loop {
                let mut chunk = std::mem::take(&mut carry);
                let had = chunk.len();
                chunk.reserve_exact(CHUNK);
                // Appends into the spare capacity: no zeroing of a buffer about to be
                // overwritten.
                let n = (&mut file)
                    .take(CHUNK as u64)
                    .read_to_end(&mut chunk)
                    .map_err(io("cannot read", &f.path))?;
                debug_assert_eq!(chunk.len(), had + n);
                done += n as u64;
                let eof = n == 0;
                let cut = match memchr::memrchr(b'\n', &chunk) {
                    Some(i) => i + 1,
                    None if eof => 0,
                    None => {
                        carry = chunk; // a line longer than the chunk: read on
                        continue;
                    }
                };
                carry = chunk.split_off(cut);
                if !chunk.is_empty() {
                    // A full pipeline: settle the oldest result first.
                    if in_flight.len() >= 2 * workers
                        && let Some(item) = in_flight.pop_front()
                    {
                        process(item, &mut chain)?;
                    }
                    jobs[next_worker].send(chunk).map_err(|_| {
                        VerifyError::Io(Error::backend(
                            "a verification thread stopped; this is a bug in audit-host",
                        ))
                    })?;
                    in_flight.push_back(Item::Lines {
                        file: fi,
                        worker: next_worker,
                    });
                    next_worker = (next_worker + 1) % workers;
                    progress(done, total);
                }
                if eof {
                    if !carry.is_empty() {
                        in_flight.push_back(Item::Tail {
                            file: fi,
                            bytes: carry.len(),
                        });
                    }
                    break;
                }
            }
        }
        while let Some(item) = in_flight.pop_front() {
            process(item, &mut chain)?;
        }
        Ok::<_, VerifyError>(())
    })?;
    let report = chain.report;
    progress(total, total);
    Ok(report)
}

/// Reads the directory's anchor and judges it: under an HMAC key it must be authenticated,
/// and what it records as removed must end where the chain starts and lie outside the
/// retention it names. Says what it records in `warnings`.
fn check_anchor(
    dir: &Path,
    integrity: &Integrity,
    warnings: &mut Vec<String>,
) -> Result<Option<Anchor>, VerifyError> {
    let Some((anchor, auth)) = Anchor::read_checked(dir, integrity).map_err(VerifyError::Io)?
    else {
        return Ok(None);
    };
    let fail = |reason: String| VerifyError::Directory {
        path: dir.join(ANCHOR_FILE),
        reason,
    };
    let start = anchor.sequence_number;
    match auth {
        AnchorAuth::Missing => return Err(fail(format!(
            "is not authenticated (it has no `mac`): it cannot show that the events before sequence {start} were removed by retention rather than deleted by someone who can write the directory. An older version's retention (or the file plugin, which has no key) wrote anchors like this one: check the removed events against your archive; the trail's next retention run replaces it with an authenticated anchor (docs/operations.md)"
        ))),
        AnchorAuth::Mismatch => return Err(fail(
            "does not authenticate with this key (its `mac` does not match): it was altered, forged, or written under another key".into(),
        )),
        AnchorAuth::Authentic | AnchorAuth::Unkeyed => {}
    }
    warnings.push(format!(
        "the chain in this directory starts at sequence {start} ({ANCHOR_FILE} records the link: older files were removed by retention, or this backend was added to a running trail)"
    ));
    let Some(r) = &anchor.removed else {
        return Ok(Some(anchor));
    };
    if r.last_sequence.checked_add(1) != Some(start)
        || r.first_sequence > start
        || r.oldest_date > r.newest_date
    {
        return Err(fail(format!(
            "records removed events {}..{} (files dated {} to {}), which do not end where the chain starts (sequence {start}): the anchor is inconsistent",
            r.first_sequence, r.last_sequence, r.oldest_date, r.newest_date
        )));
    }
    let due = r
        .removed_on
        .checked_sub_days(chrono::Days::new(u64::from(r.retention_days)));
    if due.is_none_or(|due| r.newest_date >= due) {
        return Err(fail(format!(
            "records that files dated up to {} were removed on {}, inside their retention of {} days",
            r.newest_date, r.removed_on, r.retention_days
        )));
    }
    if r.first_sequence <= r.last_sequence {
        warnings.push(format!(
            "events {}..{} (files dated {} to {}) were removed by retention on {} (retention_days {})",
            r.first_sequence,
            r.last_sequence,
            r.oldest_date,
            r.newest_date,
            r.removed_on,
            r.retention_days
        ));
    }
    if r.first_sequence > 1 {
        warnings.push(format!(
            "events 1..{} were removed before the removals {ANCHOR_FILE} records (by an older version, by hand, or never stored here: a backend added to a running trail); check them against your archive",
            r.first_sequence - 1
        ));
    }
    Ok(Some(anchor))
}

/// How much of a file one verification job covers.
const CHUNK: usize = 1 << 20;

/// What is in flight, in file order.
enum Item {
    /// The complete lines of the next part of file `file`, checked by `worker` (their line
    /// numbers follow from the parts before).
    Lines { file: usize, worker: usize },
    /// Bytes after the last newline of file `file`.
    Tail { file: usize, bytes: usize },
}

/// A line's chain fields, checked and owned (they cross threads).
struct Checked {
    sequence_number: u64,
    previous_hash: Option<Hash>,
    checksum: Option<Hash>,
    legacy: bool,
}

/// A chain hash crossing threads: the usual 64 hex digits inline, anything else boxed, so
/// the common line costs no allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Hash {
    Hex64([u8; 64]),
    Other(Box<str>),
}

impl Hash {
    fn new(s: &str) -> Self {
        match <[u8; 64]>::try_from(s.as_bytes()) {
            Ok(a) => Self::Hex64(a),
            Err(_) => Self::Other(s.into()),
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Self::Hex64(a) => a,
            Self::Other(s) => s.as_bytes(),
        }
    }

    /// For messages and the genesis test (it came from a `&str`, so nothing is replaced).
    fn text(&self) -> Cow<'_, str> {
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
struct Break {
    sequence: u64,
    reason: String,
}

impl Break {
    /// In a directory: at `file`:`line`.
    fn at(self, file: &Path, line: u64) -> VerifyError {
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
struct Chain {
    expected_seq: u64,
    expected_prev: Option<Hash>,
    first: bool,
    report: VerifyReport,
    /// The file being checked, and the line number of its next line.
    file: usize,
    next_line: u64,
    /// The next line is one the trail did not write ([`ImportedLines`]).
    imported_line: bool,
}

impl Chain {
    /// A chain expected to start at `expected_seq`, linked to `expected_prev` (`None`: a
    /// genesis `previous_hash`).
    fn new(expected_seq: u64, expected_prev: Option<Hash>, report: VerifyReport) -> Self {
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
    fn enter(&mut self, file: usize) {
        if self.file != file {
            self.file = file;
            self.next_line = 1;
        }
    }

    fn broken(&self, reason: String) -> Break {
        Break {
            sequence: self.expected_seq,
            reason,
        }
    }

    /// Applies the chain rules to the next line, read at `place` (for warnings).
    fn accept(
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
        let prev = fields.previous_hash.as_ref();
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
        self.expected_prev = fields.checksum;
        self.report.first_sequence.get_or_insert(seq);
        self.report.last_sequence = Some(seq);
        self.report.events += 1;
        // Checked above: nothing follows u64::MAX.
        self.expected_seq = seq.saturating_add(1);
        self.first = false;
        Ok(())
    }
}
