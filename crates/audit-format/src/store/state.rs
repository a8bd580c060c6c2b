//! The writer's state behind a [`FileStore`](super::FileStore): the open file, the batch
//! buffer, and appending a batch to the current file in one write.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use super::storable::Storable;
use crate::anchor::Anchor;
use crate::error::{Error, Result};
use crate::fs::truncate_to;
use crate::record::{ChainFields, Integrity};
use crate::seal::SealReason;
use crate::seal::snapshot::SealPoint;
use crate::seal::written::Written;

#[derive(Debug)]
pub(super) struct OpenFile {
    pub(super) file: File,
    pub(super) path: PathBuf,
    pub(super) date: NaiveDate,
    pub(super) index: u32,
    pub(super) len: u64,
    /// Where the last started writeback ended (see [`start_writeback`]).
    pub(super) written_back: u64,
}

#[derive(Debug)]
pub(super) struct Touched {
    pub(super) path: PathBuf,
    pub(super) len_before: u64,
    pub(super) created: bool,
}

#[derive(Debug)]
pub(super) struct State {
    pub(super) max_file_bytes: u64,
    pub(super) retention_days: Option<u32>,
    /// No file before this date is ever written again.
    pub(super) floor: Option<NaiveDate>,
    pub(super) current: Option<OpenFile>,
    pub(super) wbuf: Vec<u8>,
    /// Files whose failed write could not be rolled back yet: (path, length to restore).
    pub(super) repair: Vec<(PathBuf, u64)>,
    /// Set when an fsync failed: the kernel may have dropped dirty pages.
    pub(super) poisoned: Option<String>,
    /// The directory held no audit files when opened: if the first record written is not
    /// sequence 1 (a backend added to an existing trail), record where this directory's
    /// chain starts so `audit verify` accepts it.
    pub(super) fresh: bool,
    /// The key (if any) that authenticates the anchors written.
    pub(super) integrity: Integrity,
    /// A new day's file was started on this day (counting back from it, retention is due
    /// once that file's first batch is durable).
    pub(super) pending_retention: Option<NaiveDate>,
    /// The names of the files the trail did not write ([`Origin`](crate::origin::Origin)'s imported files).
    pub(super) imported: Vec<String>,
    /// Retention may delete `imported` files too.
    pub(super) retention_of_imported: bool,
    /// The mode new audit files get.
    pub(super) file_mode: u32,
    /// The last line appended: its sequence number and checksum (kept per batch, not per
    /// line, for seals).
    pub(super) last_written: Option<(u64, String)>,
    /// What the last flush made durable (see [`FileStore::seal_point`](super::FileStore::seal_point)).
    pub(super) seal_point: Option<SealPoint>,
    /// A rotation or a retention happened since
    /// [`FileStore::take_seal_reason`](super::FileStore::take_seal_reason) was last asked.
    pub(super) seal_reason: Option<SealReason>,
    /// The digests of the files written, for seals (`None`: seals are off).
    pub(super) written: Option<Written>,
    pub(super) _lock: File,
}

impl State {
    pub(super) fn check_usable(&mut self) -> Result<()> {
        if let Some(p) = &self.poisoned {
            return Err(Error::backend(format!(
                "{p}; data written since the last successful flush may be lost. Restart the \
                 process: the files are re-checked on open and `audit verify` shows what is there"
            )));
        }
        while let Some((path, len)) = self.repair.last() {
            truncate_to(path, *len)
                .map_err(Error::io("cannot roll back failed write in", path.clone()))?;
            self.repair.pop();
        }
        Ok(())
    }

    pub(super) fn append<I>(
        &mut self,
        dir: &Path,
        records: I,
        touched: &mut Vec<Touched>,
        last: &mut Option<(u64, String)>,
    ) -> Result<()>
    where
        I: IntoIterator,
        I::Item: Storable,
    {
        self.wbuf.clear();
        let mut records = records.into_iter().peekable();
        if self.fresh
            && let Some(first) = records.peek()
        {
            if first.sequence_number() > 1 {
                let fields: ChainFields<'_> = serde_json::from_str(first.line())
                    .map_err(|e| Error::backend(format!("unreadable record: {e}")))?;
                let anchor = Anchor {
                    sequence_number: first.sequence_number(),
                    previous_hash: fields.previous_hash.map(|h| h.into_owned()),
                    removed: None,
                };
                anchor
                    .write(dir, &self.integrity)
                    .map_err(Error::io("cannot write chain anchor in", dir))?;
            }
            self.fresh = false;
        }
        while let Some(rec) = records.next() {
            let date = rec.date()?;
            let date = match self.floor {
                Some(floor) => date.max(floor),
                None => date,
            };
            let need = rec.line().len() as u64 + 1;
            let switch = match &self.current {
                None => true,
                Some(cur) => cur.date != date,
            };
            if switch {
                self.write_out(touched)?;
                self.open_for(dir, date, need, touched)?;
            } else if let Some((len, index)) = self.current.as_ref().map(|c| (c.len, c.index)) {
                let size = len + self.wbuf.len() as u64;
                if self.max_file_bytes > 0 && size > 0 && size + need > self.max_file_bytes {
                    self.write_out(touched)?;
                    self.rotate_to(dir, date, index + 1, touched)?;
                }
            }
            self.wbuf.extend_from_slice(rec.line().as_bytes());
            self.wbuf.push(b'\n');
            if let Some(w) = &mut self.written {
                w.buffer(rec.line().as_bytes());
            }
            if records.peek().is_none() {
                *last = Some((rec.sequence_number(), checksum_of(rec.line())));
            }
        }
        self.write_out(touched)
    }

    /// Writes the buffered lines to the current file in one call.
    pub(super) fn write_out(&mut self, touched: &mut Vec<Touched>) -> Result<()> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let Some(cur) = self.current.as_mut() else {
            unreachable!("lines buffered with no open file; this is a bug in audit-format")
        };
        if !touched.iter().any(|t| t.path == cur.path) {
            touched.push(Touched {
                path: cur.path.clone(),
                len_before: cur.len,
                created: false,
            });
        }
        let wrote = cur.file.write_all(&self.wbuf);
        if let Some(w) = &mut self.written {
            match wrote {
                Ok(()) => w.written(),
                Err(_) => w.discard(),
            }
        }
        wrote.map_err(Error::io("cannot write audit file", cur.path.clone()))?;
        cur.len += self.wbuf.len() as u64;
        self.wbuf.clear();
        if cur.len - cur.written_back >= WRITEBACK_CHUNK {
            start_writeback(&cur.file, cur.written_back, cur.len - cur.written_back);
            cur.written_back = cur.len;
        }
        Ok(())
    }
}

/// The checksum of a stored line: canonical lines lead with it (`{"checksum":"<64 hex>"`).
fn checksum_of(line: &str) -> String {
    const AT: usize = "{\"checksum\":\"".len();
    match line.get(AT..AT + 64) {
        Some(hex) if line.starts_with("{\"checksum\":\"") => hex.to_owned(),
        _ => serde_json::from_str::<ChainFields<'_>>(line)
            .ok()
            .and_then(|c| c.checksum.map(|c| c.into_owned()))
            .unwrap_or_default(),
    }
}

/// Bytes appended to a file before the kernel is asked to start writing them out.
const WRITEBACK_CHUNK: u64 = 8 << 20;

/// Asks the kernel to start writing `len` bytes at `offset` to disk now, without waiting
/// for them (`sync_file_range(SYNC_FILE_RANGE_WRITE)`), so that data streams to the disk
/// as it is appended and the periodic fdatasync waits only for the last chunk instead of
/// everything since the previous one. A hint only: an I/O error it meets is reported by
/// the next fdatasync, which is what decides durability.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    #[expect(unsafe_code, reason = "sync_file_range has no safe std equivalent")]
    // SAFETY: the descriptor belongs to `file`, which outlives the call; the call reads no
    // memory of ours and only starts writeback of the file's own pages.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) {}
