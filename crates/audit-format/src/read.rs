//! Reading a directory's stored lines back in sequence order, a page at a time: what the
//! file plugin's `read` capability returns, so that a host can verify and query a store it
//! reaches only through the plugin.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::names::list_log_files;
use crate::record::ChainFields;

/// Reads `audit_*.jsonl` files oldest first. It remembers where the last page ended, so
/// reading page after page (each from the last line's sequence number plus one) reads every
/// file once; any other `from_sequence` scans from the oldest file that may hold it.
///
/// ```
/// # fn main() -> audit_format::Result<()> {
/// let dir = tempfile::tempdir().map_err(|e| audit_format::Error::backend(e.to_string()))?;
/// let mut reader = audit_format::read::DirReader::new(dir.path());
/// assert!(reader.read_from(1, 100)?.is_empty());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct DirReader {
    dir: PathBuf,
    /// Where the last page ended.
    cursor: Option<Cursor>,
}

#[derive(Debug)]
struct Cursor {
    /// The sequence number after the last line returned.
    next_sequence: u64,
    /// The file that line was in, and the byte offset after it.
    file: PathBuf,
    offset: u64,
}

impl DirReader {
    /// A reader of the directory `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            cursor: None,
        }
    }

    /// The stored lines (without newlines) from the first whose `sequence_number` is
    /// `from_sequence` or higher, in file order, at most `limit`; empty when nothing more is
    /// stored. Lines are returned as stored, also those that are not audit events (after the
    /// first returned line), so that verification sees them. A final line without a newline
    /// in the newest file (a write in progress) is not returned; one in an older file is.
    ///
    /// # Errors
    /// [`Error::Io`] when the directory or a file cannot be read.
    pub fn read_from(&mut self, from_sequence: u64, limit: usize) -> Result<Vec<String>> {
        let files = list_log_files(&self.dir).map_err(Error::io("cannot list", &self.dir))?;
        let resume = self.cursor.take().and_then(|c| {
            let at = files.iter().position(|f| f.path == c.file)?;
            (c.next_sequence == from_sequence).then_some((at, c.offset))
        });
        let (first, mut offset, mut started) = match resume {
            Some((at, offset)) => (at, offset, true),
            None => (
                first_file_holding(&files, from_sequence)?,
                0,
                from_sequence <= 1,
            ),
        };
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        for (i, f) in files.iter().enumerate().skip(first) {
            let newest = i + 1 == files.len();
            let mut reader = open_at(&f.path, offset)?;
            let mut buf = Vec::new();
            loop {
                buf.clear();
                let n = reader
                    .read_until(b'\n', &mut buf)
                    .map_err(Error::io("cannot read", &f.path))?;
                if n == 0 || (newest && buf.last() != Some(&b'\n')) {
                    break;
                }
                offset += n as u64;
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                }
                let line = String::from_utf8_lossy(&buf);
                // Parsed only where the sequence number matters: to start, and to end a page.
                if !started {
                    started = sequence_of(&line).is_some_and(|s| s >= from_sequence);
                }
                if started {
                    out.push(line.into_owned());
                    if out.len() == limit {
                        let last = out.last().and_then(|l| sequence_of(l));
                        self.cursor = last.map(|s| Cursor {
                            next_sequence: s + 1,
                            file: f.path.clone(),
                            offset,
                        });
                        return Ok(out);
                    }
                }
            }
            offset = 0;
        }
        Ok(out)
    }
}

/// The index of the oldest file that may hold `from_sequence`: the last whose first line
/// has a sequence number at or below it (files hold increasing sequence numbers).
fn first_file_holding(files: &[crate::names::LogFile], from_sequence: u64) -> Result<usize> {
    let mut first = 0;
    for (i, f) in files.iter().enumerate().skip(1) {
        match first_sequence(&f.path)? {
            Some(s) if s <= from_sequence => first = i,
            Some(_) => break,
            None => {}
        }
    }
    Ok(first)
}

/// The sequence number of a file's first line, when it is an audit event.
fn first_sequence(path: &Path) -> Result<Option<u64>> {
    let mut line = Vec::new();
    open_at(path, 0)?
        .read_until(b'\n', &mut line)
        .map_err(Error::io("cannot read", path))?;
    Ok(sequence_of(&String::from_utf8_lossy(&line)))
}

fn sequence_of(line: &str) -> Option<u64> {
    serde_json::from_str::<ChainFields<'_>>(line.trim_end())
        .ok()
        .map(|f| f.sequence_number)
}

fn open_at(path: &Path, offset: u64) -> Result<BufReader<File>> {
    let mut file = File::open(path).map_err(Error::io("cannot open", path))?;
    if offset > 0 {
        file.seek(SeekFrom::Start(offset))
            .map_err(Error::io("cannot seek", path))?;
    }
    Ok(BufReader::with_capacity(256 * 1024, file))
}
