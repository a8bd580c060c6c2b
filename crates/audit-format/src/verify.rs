//! `audit verify`: re-checks a directory's chain from the stored bytes alone.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use crate::anchor::{ANCHOR_FILE, Anchor};
use crate::error::Error;
use crate::names::list_log_files;
use crate::record::{ChainFields, Integrity, check_line, is_genesis};

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
    let anchor = Anchor::read(dir).map_err(VerifyError::Io)?;
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
    let mut chain = Chain {
        expected_seq: anchor.as_ref().map_or(1, |a| a.sequence_number),
        expected_prev: anchor.and_then(|a| a.previous_hash).map(|h| Hash::new(&h)),
        first: true,
        report,
        file: usize::MAX,
        next_line: 1,
    };
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
                    for checked in out {
                        let line = chain.next_line;
                        chain.next_line += 1;
                        chain.accept(checked, &files[file].path, line)?;
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
                        Err(chain.broken(
                            path,
                            line,
                            "unterminated line in a file that is not the newest".into(),
                        ))
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

/// The sequential rules: contiguous sequence numbers and `previous_hash` links.
struct Chain {
    expected_seq: u64,
    expected_prev: Option<Hash>,
    first: bool,
    report: VerifyReport,
    /// The file being checked, and the line number of its next line.
    file: usize,
    next_line: u64,
}

impl Chain {
    /// Results from file `file` follow: line numbers start at 1 in a new file.
    fn enter(&mut self, file: usize) {
        if self.file != file {
            self.file = file;
            self.next_line = 1;
        }
    }

    fn broken(&self, file: &Path, line: u64, reason: String) -> VerifyError {
        VerifyError::Broken {
            sequence: self.expected_seq,
            file: file.to_path_buf(),
            line,
            reason,
        }
    }

    fn accept(
        &mut self,
        checked: Result<Checked, String>,
        file: &Path,
        line_no: u64,
    ) -> Result<(), VerifyError> {
        let fields = checked.map_err(|reason| self.broken(file, line_no, reason))?;
        let seq = fields.sequence_number;
        if fields.legacy
            && !self.first
            && seq == 1
            && is_genesis(fields.previous_hash.as_ref().map(Hash::text).as_deref())
        {
            // The Python trail started a new chain at 1 after every process restart.
            self.report.warnings.push(format!(
                "{}:{line_no}: a new chain starts at sequence 1 (the Python trail restarted its sequence after each process restart); verification continues with it",
                file.display()
            ));
            self.expected_seq = 1;
            self.expected_prev = None;
            self.first = true;
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
            return Err(self.broken(file, line_no, reason));
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
            return Err(self.broken(file, line_no, reason));
        }
        self.expected_prev = fields.checksum;
        self.report.first_sequence.get_or_insert(seq);
        self.report.last_sequence = Some(seq);
        self.report.events += 1;
        self.expected_seq = seq + 1;
        self.first = false;
        Ok(())
    }
}
