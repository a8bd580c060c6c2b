//! Reads a spool back for delivery: whole lines from the oldest segment, rebuilt into records
//! with every checksum and chain link checked.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::backend::Batch;
use audit_format::error::{Error, Result};
use audit_format::record::{AuditRecord, Integrity};

/// At most this many spool bytes are read and delivered in one call.
const SPOOL_CHUNK: u64 = 1 << 20;

/// Where the worker is in the oldest spool segment.
#[derive(Debug)]
struct Cursor {
    path: PathBuf,
    offset: u64,
}

/// A worker's reading position in its spool and the chain link it last checked.
#[derive(Debug)]
pub(crate) struct SpoolReader {
    integrity: Integrity,
    cursor: Option<Cursor>,
    /// The last read line's sequence number and checksum, to check the next line's link.
    chain: Option<(u64, String)>,
}

impl SpoolReader {
    pub(crate) fn new(integrity: Integrity) -> Self {
        Self {
            integrity,
            cursor: None,
            chain: None,
        }
    }

    /// Whether segment `path`, `len` bytes long, has bytes this reader has not delivered.
    pub(crate) fn unread(&self, path: &Path, len: u64) -> bool {
        match &self.cursor {
            Some(c) if c.path == path => c.offset < len,
            _ => true,
        }
    }

    /// Reads the next chunk of segment `path` (`len` bytes long): the records and the offset
    /// after them. The position moves on only at [`delivered`](Self::delivered).
    pub(crate) fn read(&mut self, path: &Path, len: u64) -> Result<(Batch, u64)> {
        let offset = match &self.cursor {
            Some(c) if c.path == path => c.offset,
            _ => 0,
        };
        let (batch, end) = self.read_at(path, offset, len)?;
        self.cursor = Some(Cursor {
            path: path.to_owned(),
            offset,
        });
        Ok((batch, end))
    }

    /// What was read up to `end` is stored by the backend.
    pub(crate) fn delivered(&mut self, end: u64) {
        if let Some(c) = self.cursor.as_mut() {
            c.offset = end;
        }
    }

    /// The segment read was removed from the spool.
    pub(crate) fn segment_removed(&mut self) {
        self.cursor = None;
    }

    /// A call failed: read again from the oldest segment's start.
    pub(crate) fn restart(&mut self) {
        self.cursor = None;
        self.chain = None;
    }

    /// Reads up to `SPOOL_CHUNK` bytes of whole lines from a segment and rebuilds them,
    /// checking every checksum and link. Returns the records and the offset after them.
    fn read_at(&mut self, path: &Path, offset: u64, len: u64) -> Result<(Batch, u64)> {
        let end = len.min(offset + SPOOL_CHUNK);
        let mut bytes = read_segment(path, offset, end)?;
        if end < len {
            let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            bytes.truncate(whole);
            if whole == 0 {
                // One line longer than a chunk: read up to the segment's end.
                bytes = read_segment(path, offset, len)?;
                let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                bytes.truncate(whole);
            }
        }
        let new_end = offset + bytes.len() as u64;
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            Error::Integrity(format!("spool segment {}: not UTF-8: {e}", path.display()))
        })?;
        let mut records = Vec::new();
        for (i, line) in text.lines().enumerate() {
            records.push(self.rebuild(path, i, line)?);
        }
        Ok((Batch::new(records), new_end))
    }

    /// Rebuilds line `i` of this read and checks that it links to the line before.
    fn rebuild(&mut self, path: &Path, i: usize, line: &str) -> Result<AuditRecord> {
        let bad = |why: String| {
            Error::Integrity(format!(
                "spool segment {} (line {} of this read): {why}; nothing from it is delivered. Move the segment out of the spool directory and restart (its events are also in the file backend, if one is configured)",
                path.display(),
                i + 1
            ))
        };
        let record = AuditRecord::from_stored(line, &self.integrity).map_err(bad)?;
        if let Some((seq, checksum)) = &self.chain
            && record.sequence_number() == seq + 1
            && record.previous_hash() != Some(checksum.as_str())
        {
            return Err(bad(format!(
                "previous_hash does not link to sequence {seq} (a line was removed or altered)"
            )));
        }
        self.chain = Some((record.sequence_number(), record.checksum().to_owned()));
        Ok(record)
    }
}

/// Reads `len - from` bytes of a segment from offset `from`.
pub(crate) fn read_segment(path: &Path, from: u64, len: u64) -> Result<Vec<u8>> {
    let mut f =
        audit_format::fs::open_read(path).map_err(Error::io("cannot open spool segment", path))?;
    f.seek(SeekFrom::Start(from))
        .map_err(Error::io("cannot read spool segment", path))?;
    let mut bytes = vec![0; (len - from) as usize];
    f.read_exact(&mut bytes)
        .map_err(Error::io("cannot read spool segment", path))?;
    Ok(bytes)
}
