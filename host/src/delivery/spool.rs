//! A backend's durable spool: the events it has not accepted yet, kept on local disk in
//! sequence order until it does, across restarts.
//!
//! A spool is a directory of segment files `spool-<first sequence, 20 digits>.jsonl`, each
//! holding canonical lines exactly as the trail produced them. Segments are only appended to
//! (the newest) or deleted whole (the oldest, once the backend stored and flushed every event
//! in it), except that a worker whose in-memory batch failed puts it in a segment *before*
//! the others: segment order is always sequence order. Partial progress inside a segment is
//! not recorded, so after a restart a segment may be delivered again (at-least-once; backends
//! ignore a sequence number they already stored). The directory is created only when
//! something must be spooled, and locked (`.audit.lock`) while open. An existing spool
//! directory writable by group or others (or owned by another user) is refused unless
//! allowed, and no file in it is opened through a symbolic link.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::backend::ChainHead;
use crate::file::{create_dir_private, lock_dir, open_private, sync_dir, truncate_to};
use audit_format::error::{Error, Result};
use audit_format::fs::{check_dir_private, open_read};
use audit_format::record::{AuditRecord, ChainFields};

mod reader;

pub(crate) use reader::SpoolReader;

/// The default bound on one backend's spool (`spool_max_bytes`): 1 GiB.
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 1 << 30;
/// A new segment starts once the newest reaches this size.
const SEGMENT_BYTES: u64 = 4 << 20;

#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) path: PathBuf,
    pub(crate) first: u64,
    pub(crate) last: u64,
    /// Bytes written (whole lines only).
    pub(crate) len: u64,
}

impl Segment {
    fn events(&self) -> u64 {
        self.last + 1 - self.first
    }
}

/// Outcome of putting records into the spool.
#[derive(Debug)]
pub(crate) enum Put {
    Stored,
    /// `spool_max_bytes` would be exceeded; nothing was written.
    Full,
}

#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segments: VecDeque<Segment>,
    bytes: u64,
    /// Open for appends: the newest segment.
    tail: Option<File>,
    /// Segments written since the last `sync` (fdatasync pending).
    dirty: Vec<PathBuf>,
    dir_dirty: bool,
    /// Highest sequence number written and fdatasync'd.
    synced: u64,
    lock: Option<File>,
    buf: Vec<u8>,
    /// A failed fdatasync: what was written since may be lost, so nothing more is trusted.
    poisoned: Option<String>,
    /// Skip the refusal of a directory others may write to.
    allow_insecure_permissions: bool,
}

fn segment_name(first: u64) -> String {
    format!("spool-{first:020}.jsonl")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    name.strip_prefix("spool-")?
        .strip_suffix(".jsonl")?
        .parse()
        .ok()
}

impl Spool {
    /// Opens the spool in `dir`: when the directory exists, locks it and recovers its segments
    /// (a torn last line, from a crash, is cut off: it was never acknowledged). Otherwise the
    /// directory is created on the first write. A directory writable by group or others or
    /// owned by another user is refused unless `allow_insecure_permissions`.
    pub(crate) fn open(
        dir: PathBuf,
        max_bytes: u64,
        allow_insecure_permissions: bool,
    ) -> Result<Self> {
        let mut spool = Self {
            dir,
            max_bytes,
            segments: VecDeque::new(),
            bytes: 0,
            tail: None,
            dirty: Vec::new(),
            dir_dirty: false,
            synced: 0,
            lock: None,
            buf: Vec::new(),
            poisoned: None,
            allow_insecure_permissions,
        };
        if !spool.dir.is_dir() {
            return Ok(spool);
        }
        if !allow_insecure_permissions {
            check_dir_private(&spool.dir)?;
        }
        spool.lock = Some(lock_dir(&spool.dir)?);
        let mut found = Vec::new();
        let entries = std::fs::read_dir(&spool.dir)
            .map_err(Error::io("cannot list spool directory", &spool.dir))?;
        for entry in entries {
            let entry = entry.map_err(Error::io("cannot list spool directory", &spool.dir))?;
            if let Some(first) = entry.file_name().to_str().and_then(parse_segment_name) {
                found.push((first, entry.path()));
            }
        }
        found.sort();
        for (first, path) in found {
            if let Some(seg) = recover_segment(path, first)? {
                spool.bytes += seg.len;
                spool.segments.push_back(seg);
            }
        }
        spool.synced = spool.segments.back().map_or(0, |s| s.last);
        Ok(spool)
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the segments hold every sequence number from `from` to `to`.
    pub(crate) fn covers(&self, from: u64, to: u64) -> bool {
        let mut next = from;
        for seg in &self.segments {
            if seg.first > next {
                break;
            }
            next = next.max(seg.last + 1);
        }
        next > to
    }

    pub(crate) fn segment_count(&self) -> usize {
        self.segments.len()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    pub(crate) fn events(&self) -> u64 {
        self.segments.iter().map(Segment::events).sum()
    }

    /// The highest sequence number held and fdatasync'd (0 when none).
    pub(crate) fn synced(&self) -> u64 {
        if self.dirty.is_empty() && !self.dir_dirty {
            self.segments.back().map_or(self.synced, |s| s.last)
        } else {
            self.synced
        }
    }

    /// The oldest segment.
    pub(crate) fn head(&self) -> Option<&Segment> {
        self.segments.front()
    }

    /// The last stored line, so a restarted trail continues the chain after it.
    pub(crate) fn last_head(&self) -> Result<Option<ChainHead>> {
        let Some(seg) = self.segments.back() else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        open_read(&seg.path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(Error::io("cannot read spool segment", &seg.path))?;
        let line = String::from_utf8_lossy(last_line_of(&bytes[..seg.len as usize])).into_owned();
        Ok(Some(ChainHead {
            sequence_number: seg.last,
            line,
            location: format!("the spool segment {}", seg.path.display()),
            anchor: None,
        }))
    }

    fn check_usable(&self) -> Result<()> {
        match &self.poisoned {
            Some(why) => Err(Error::backend(format!(
                "the spool {} is unusable since a failed fdatasync ({why}); restart the process",
                self.dir.display()
            ))),
            None => Ok(()),
        }
    }

    fn ensure_dir(&mut self) -> Result<()> {
        self.check_usable()?;
        if self.lock.is_none() {
            create_dir_private(&self.dir)
                .map_err(Error::io("cannot create spool directory", &self.dir))?;
            if !self.allow_insecure_permissions {
                check_dir_private(&self.dir)?;
            }
            self.lock = Some(lock_dir(&self.dir)?);
            if let Some(parent) = self.dir.parent() {
                let _ = sync_dir(parent);
            }
        }
        Ok(())
    }

    fn encode(&mut self, records: &[AuditRecord]) {
        self.buf.clear();
        for r in records {
            self.buf.extend_from_slice(r.line().as_bytes());
            self.buf.push(b'\n');
        }
    }

    fn room_for(&self, n: u64) -> bool {
        // An empty spool takes one batch of any size, so a batch larger than the bound
        // cannot wedge the backend forever.
        self.segments.is_empty() || self.bytes + n <= self.max_bytes
    }

    /// Appends records newer than everything spooled.
    pub(crate) fn append(&mut self, records: &[AuditRecord]) -> Result<Put> {
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return Ok(Put::Stored);
        };
        let (first, last) = (first.sequence_number(), last.sequence_number());
        self.encode(records);
        let n = self.buf.len() as u64;
        if !self.room_for(n) {
            return Ok(Put::Full);
        }
        self.ensure_dir()?;
        let start_new = match (self.segments.back(), &self.tail) {
            (Some(seg), Some(_)) => seg.len >= SEGMENT_BYTES,
            _ => true,
        };
        if start_new {
            let path = self.dir.join(segment_name(first));
            let file = open_private(&path, true)
                .map_err(Error::io("cannot create spool segment", &path))?;
            self.tail = Some(file);
            self.dir_dirty = true;
            self.segments.push_back(Segment {
                path,
                first,
                last: first - 1,
                len: 0,
            });
        }
        let (Some(file), Some(seg)) = (self.tail.as_mut(), self.segments.back_mut()) else {
            unreachable!("a tail segment was just ensured");
        };
        if let Err(e) = file.write_all(&self.buf) {
            // Leave no partial line: cut back to the last whole line.
            let _ = file.set_len(seg.len);
            let _ = file.seek(SeekFrom::End(0));
            return Err(Error::io("cannot write spool segment", &seg.path)(e));
        }
        seg.len += n;
        seg.last = last;
        self.bytes += n;
        if self.dirty.last() != Some(&seg.path) {
            self.dirty.push(seg.path.clone());
        }
        Ok(Put::Stored)
    }

    /// Puts records older than everything spooled in a segment of their own, first in line.
    pub(crate) fn prepend(&mut self, records: &[AuditRecord]) -> Result<Put> {
        if self.segments.is_empty() {
            return self.append(records);
        }
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return Ok(Put::Stored);
        };
        let (first, last) = (first.sequence_number(), last.sequence_number());
        self.encode(records);
        let n = self.buf.len() as u64;
        if self.bytes + n > self.max_bytes {
            return Ok(Put::Full);
        }
        self.ensure_dir()?;
        let path = self.dir.join(segment_name(first));
        let mut file =
            open_private(&path, true).map_err(Error::io("cannot create spool segment", &path))?;
        if let Err(e) = file.write_all(&self.buf) {
            drop(file);
            let _ = std::fs::remove_file(&path);
            return Err(Error::io("cannot write spool segment", &path)(e));
        }
        self.bytes += n;
        self.dirty.push(path.clone());
        self.dir_dirty = true;
        self.segments.push_front(Segment {
            path,
            first,
            last,
            len: n,
        });
        Ok(Put::Stored)
    }

    /// fdatasyncs what was written since the last call (and the directory, for new segments).
    pub(crate) fn sync(&mut self) -> Result<()> {
        self.check_usable()?;
        for path in std::mem::take(&mut self.dirty) {
            let same_as_tail = self.segments.back().is_some_and(|s| s.path == path);
            let result = match (&self.tail, same_as_tail) {
                (Some(f), true) => f.sync_data(),
                _ => match open_read(&path) {
                    Ok(f) => f.sync_data(),
                    // Delivered and removed meanwhile.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = result {
                // After a failed fsync the kernel may have dropped the pages: a later
                // success would prove nothing.
                let e = Error::io("cannot fdatasync spool segment", &path)(e);
                self.poisoned = Some(audit_format::error::chain(&e));
                return Err(e);
            }
        }
        if self.dir_dirty {
            if let Err(e) = sync_dir(&self.dir) {
                let e = Error::io("cannot fsync spool directory", &self.dir)(e);
                self.poisoned = Some(audit_format::error::chain(&e));
                return Err(e);
            }
            self.dir_dirty = false;
        }
        self.synced = self.segments.back().map_or(self.synced, |s| s.last);
        Ok(())
    }

    /// Removes the oldest segment once every event in it is stored and flushed by the
    /// backend. `len` is how much of it the worker read: a newest segment that grew since is
    /// kept.
    pub(crate) fn pop_head(&mut self, len: u64) -> Result<bool> {
        let Some(seg) = self.segments.front() else {
            return Ok(false);
        };
        if seg.len != len {
            return Ok(false);
        }
        if self.segments.len() == 1 {
            self.tail = None;
        }
        let seg = self.segments.pop_front().unwrap_or_else(|| unreachable!());
        self.bytes -= seg.len;
        self.dirty.retain(|p| *p != seg.path);
        std::fs::remove_file(&seg.path).map_err(Error::io(
            "cannot remove delivered spool segment",
            &seg.path,
        ))?;
        Ok(true)
    }
}

/// Reads a segment found at start: cuts a torn last line, removes it if nothing is left,
/// and reads its last sequence number.
fn recover_segment(path: PathBuf, first: u64) -> Result<Option<Segment>> {
    let mut bytes = Vec::new();
    open_read(&path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(Error::io("cannot read spool segment", &path))?;
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if whole < bytes.len() {
        truncate_to(&path, whole as u64).map_err(Error::io(
            "cannot cut the torn tail of spool segment",
            &path,
        ))?;
    }
    if whole == 0 {
        std::fs::remove_file(&path)
            .map_err(Error::io("cannot remove empty spool segment", &path))?;
        return Ok(None);
    }
    let last_line = last_line_of(&bytes[..whole]);
    let fields: ChainFields<'_> = serde_json::from_slice(last_line).map_err(|e| {
        Error::Integrity(format!(
            "spool segment {}: its last line is not an audit event ({e}); move the file out of the spool directory (its events are also in the file backend, if one is configured)",
            path.display()
        ))
    })?;
    Ok(Some(Segment {
        last: fields.sequence_number,
        path,
        first,
        len: whole as u64,
    }))
}

fn last_line_of(bytes: &[u8]) -> &[u8] {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    match body.iter().rposition(|&b| b == b'\n') {
        Some(i) => &body[i + 1..],
        None => body,
    }
}

#[cfg(test)]
pub(super) mod test;
