//! Verifying a directory: its files read in order, their lines checked on worker threads
//! and settled, in order, by the chain rules.

use std::collections::VecDeque;
use std::io::Read;
use std::path::Path;
use std::sync::mpsc;

use super::anchor_check::check_anchor;
use super::chain::{Break, Chain, Checked, Hash};
use super::report::{VerifyError, VerifyReport};
use crate::error::Error;
use crate::names::{LogFile, scan_log_dir};
use crate::origin::{ImportedLines, ORIGIN_FILE};
use crate::record::{Integrity, check_line};

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
        let mut pipeline = Pipeline::start(scope, workers, integrity, &files, &imported);
        for fi in 0..files.len() {
            pipeline.read_file(fi, &mut chain, &mut done, &mut |done| progress(done, total))?;
        }
        pipeline.finish(&mut chain)
    })?;
    let report = chain.report;
    progress(total, total);
    Ok(report)
}

/// Maps an I/O error on `p` to a [`VerifyError::Io`] with `ctx`.
fn io(ctx: &'static str, p: &Path) -> impl FnOnce(std::io::Error) -> VerifyError {
    let p = p.to_path_buf();
    move |e| {
        VerifyError::Io(Error::Io {
            context: ctx,
            path: p,
            source: e,
        })
    }
}

/// The parts of the files sent to the checking threads, settled in file order.
struct Pipeline<'a> {
    files: &'a [LogFile],
    imported: &'a ImportedLines,
    jobs: Vec<mpsc::SyncSender<Vec<u8>>>,
    results: Vec<mpsc::Receiver<Vec<Result<Checked, String>>>>,
    in_flight: VecDeque<Item>,
    next_worker: usize,
}

impl<'a> Pipeline<'a> {
    /// Spawns `workers` threads in `scope` that check the lines of the chunks they are sent.
    fn start<'scope>(
        scope: &'scope std::thread::Scope<'scope, 'a>,
        workers: usize,
        integrity: &'a Integrity,
        files: &'a [LogFile],
        imported: &'a ImportedLines,
    ) -> Self {
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
        Self {
            files,
            imported,
            jobs,
            results,
            in_flight: VecDeque::new(),
            next_worker: 0,
        }
    }

    /// Reads file `fi` in chunks of whole lines, each sent to the next worker; `done` counts
    /// the bytes read, passed to `progress` after each chunk sent.
    fn read_file(
        &mut self,
        fi: usize,
        chain: &mut Chain,
        done: &mut u64,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), VerifyError> {
        let f = &self.files[fi];
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
            *done += n as u64;
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
                self.send(fi, chunk, chain)?;
                progress(*done);
            }
            if eof {
                if !carry.is_empty() {
                    self.in_flight.push_back(Item::Tail {
                        file: fi,
                        bytes: carry.len(),
                    });
                }
                return Ok(());
            }
        }
    }

    /// Sends the complete lines `chunk` of file `fi` to the next worker, settling the
    /// oldest result first when the pipeline is full.
    fn send(&mut self, fi: usize, chunk: Vec<u8>, chain: &mut Chain) -> Result<(), VerifyError> {
        if self.in_flight.len() >= 2 * self.jobs.len()
            && let Some(item) = self.in_flight.pop_front()
        {
            self.settle(item, chain)?;
        }
        self.jobs[self.next_worker]
            .send(chunk)
            .map_err(|_| worker_stopped())?;
        self.in_flight.push_back(Item::Lines {
            file: fi,
            worker: self.next_worker,
        });
        self.next_worker = (self.next_worker + 1) % self.jobs.len();
        Ok(())
    }

    /// Settles everything still in flight, in order.
    fn finish(mut self, chain: &mut Chain) -> Result<(), VerifyError> {
        while let Some(item) = self.in_flight.pop_front() {
            self.settle(item, chain)?;
        }
        Ok(())
    }

    /// Applies the chain rules to the next item's results, in file order.
    fn settle(&self, item: Item, chain: &mut Chain) -> Result<(), VerifyError> {
        match item {
            Item::Lines { file, worker } => self.settle_lines(file, worker, chain),
            Item::Tail { file, bytes } => {
                chain.enter(file);
                let line = chain.next_line;
                let path = &self.files[file].path;
                if file + 1 == self.files.len() {
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
    }

    /// The lines of file `file` that `worker` checked: each must be where the origin
    /// record expects it (imported or not) and follow the chain.
    fn settle_lines(
        &self,
        file: usize,
        worker: usize,
        chain: &mut Chain,
    ) -> Result<(), VerifyError> {
        let out = self.results[worker].recv().map_err(|_| worker_stopped())?;
        chain.enter(file);
        let path = &self.files[file].path;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        for checked in out {
            let line = chain.next_line;
            chain.next_line += 1;
            let checksum = checked.as_ref().ok().and_then(|c| c.checksum.as_ref());
            chain.imported_line = self
                .imported
                .check(&name, line, checksum.map(Hash::text).as_deref())
                .map_err(|reason| chain.broken(reason).at(path, line))?;
            chain
                .accept(checked, &format_args!("{}:{line}", path.display()))
                .map_err(|b| b.at(path, line))?;
        }
        Ok(())
    }
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

/// A checking thread hung up before the walk was done.
fn worker_stopped() -> VerifyError {
    VerifyError::Io(Error::backend(
        "a verification thread stopped; this is a bug in audit-host",
    ))
}
