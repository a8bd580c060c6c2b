//! The synchronous file store: appends lines to the day's file, rotates by size, applies
//! retention, rolls a failed write back, and recovers the end of the chain on open.
//!
//! `audit-host`'s `FileStorageBackend` and the `audit-backend-file` plugin are both thin
//! adapters over [`FileStore`].

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, Utc};

use crate::anchor::{ANCHOR_FILE, Anchor, AnchorAuth, Removed};
use crate::error::{Error, Result};
use crate::fs::{check_dir_private, create_dir_private, open_private, sync_dir, truncate_to};
use crate::lock::lock_dir;
use crate::names::{LogFile, list_log_files, log_file_name};
use crate::origin::{ORIGIN_FILE, Origin};
use crate::record::{AuditRecord, ChainFields, Integrity};
use crate::recover::{ChainHead, recover_tail};
use crate::seal::SealReason;
use crate::seal::snapshot::SealPoint;
use crate::seal::written::Written;

/// Default size at which a daily file is rotated: 100 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 100 * 1024 * 1024;

/// What the store needs of a line: its bytes, its sequence number and its UTC date.
pub trait Storable {
    /// The stored bytes, without the newline.
    fn line(&self) -> &str;
    /// The line's `sequence_number`.
    fn sequence_number(&self) -> u64;
    /// The UTC date of the event, which picks its file.
    ///
    /// # Errors
    /// When the date cannot be told; nothing of the batch is written then.
    fn date(&self) -> Result<NaiveDate>;
}

impl Storable for AuditRecord {
    fn line(&self) -> &str {
        AuditRecord::line(self)
    }
    fn sequence_number(&self) -> u64 {
        AuditRecord::sequence_number(self)
    }
    fn date(&self) -> Result<NaiveDate> {
        Ok(self.timestamp().date_naive())
    }
}

impl<T: Storable + ?Sized> Storable for &T {
    fn line(&self) -> &str {
        (**self).line()
    }
    fn sequence_number(&self) -> u64 {
        (**self).sequence_number()
    }
    fn date(&self) -> Result<NaiveDate> {
        (**self).date()
    }
}

/// An open audit directory: canonical JSON lines appended to `audit_YYYY-MM-DD.jsonl` (the
/// UTC date of each line's event).
///
/// - Size rotation continues the day as `audit_YYYY-MM-DD.1.jsonl`, `.2`, ...
/// - Files never go back in time: a line dated earlier than the newest file's date is
///   appended to the newest file, so file order is always sequence order.
/// - One [`append`](Self::append) is one `write` call per file; a failed write is rolled back
///   (truncated), so no partial line is ever left behind.
/// - The directory is locked (`.audit.lock`, holding the pid) while the store is open.
/// - Files are created 0600, the directory 0700, and the directory is fsynced after each new
///   file. An existing directory writable by group or others, or owned by a user other than
///   root or this one, is refused (see [`FileStore::open_with`]).
/// - No file in the directory is opened through a symbolic link (`O_NOFOLLOW`): a link
///   under an audit file's name, the lock's or the anchor's is an error.
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
    head: Option<ChainHead>,
    state: State,
}

impl FileStore {
    /// Opens `dir`: creates it (mode 0700) if needed, takes its lock, and recovers the end of
    /// the chain from the newest file (or, when no file holds a line, from the chain anchor).
    /// A day's file is rotated once it would grow past `max_file_bytes` (0: never); files
    /// dated more than `retention_days` before a new day's file are deleted once that file's
    /// first batch is durable (at the next [`flush`](Self::flush); `None`: kept).
    ///
    /// # Errors
    /// [`Error::DirectoryLocked`] if another writer holds the directory; [`Error::Io`] for
    /// file-system failures, a directory others may write to, or a symbolic link in it;
    /// [`Error::Integrity`] if the newest line is not an audit event or the anchor cannot be
    /// read.
    pub fn open(
        dir: impl Into<PathBuf>,
        max_file_bytes: u64,
        retention_days: Option<u32>,
    ) -> Result<Self> {
        Self::open_with(dir, max_file_bytes, retention_days, false)
    }

    /// [`open`](Self::open), with the refusal of a directory writable by group or others or
    /// owned by another user skipped when `allow_insecure_permissions` (unsafe: whoever else
    /// can write there can remove or replace audit files).
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with(
        dir: impl Into<PathBuf>,
        max_file_bytes: u64,
        retention_days: Option<u32>,
        allow_insecure_permissions: bool,
    ) -> Result<Self> {
        let dir = dir.into();
        create_dir_private(&dir).map_err(Error::io("cannot create audit directory", &dir))?;
        if !allow_insecure_permissions {
            check_dir_private(&dir)?;
        }
        let lock = lock_dir(&dir)?;
        let files = list_log_files(&dir).map_err(Error::io("cannot list audit directory", &dir))?;
        let mut head = recover_tail(&files)?;
        let imported = imported_files(&dir, &files)?;
        let anchored = dir.join(ANCHOR_FILE).exists();
        let fresh = files.is_empty() && !anchored;
        // No file holds a line: the anchor is where the chain continues (read only then, so
        // a damaged anchor does not stop a directory that has lines).
        if head.is_none()
            && anchored
            && let Some(anchor) = Anchor::read(&dir)?
        {
            head = Some(ChainHead::from_anchor(anchor, &dir));
        }
        let floor = files.last().map(|f| f.date);
        Ok(Self {
            dir,
            head,
            state: State {
                max_file_bytes,
                retention_days,
                floor,
                current: None,
                wbuf: Vec::with_capacity(256 * 1024),
                repair: Vec::new(),
                poisoned: None,
                fresh,
                integrity: Integrity::Sha256,
                pending_retention: None,
                imported,
                retention_of_imported: false,
                file_mode: DEFAULT_FILE_MODE,
                last_written: None,
                seal_point: None,
                seal_reason: None,
                written: None,
                _lock: lock,
            },
        })
    }

    /// Authenticates the chain anchors this store writes with `integrity`'s key (HMAC mode),
    /// so `audit verify --key-file` can tell them from forged ones. With SHA-256 (the default)
    /// they carry no MAC.
    #[must_use]
    pub fn with_integrity(mut self, integrity: Integrity) -> Self {
        self.state.integrity = integrity;
        self
    }

    /// Lets retention delete the files this store found in the directory when it first
    /// opened it (see [`Origin`]); default `false`: retention that would delete one of them
    /// deletes nothing and says so.
    #[must_use]
    pub fn with_retention_of_imported(mut self, allow: bool) -> Self {
        self.state.retention_of_imported = allow;
        self
    }

    /// Creates audit files with `mode` (default 0600; [`check_file_mode`] says which are
    /// allowed), set with `fchmod` so the process umask does not narrow it. When it lets the
    /// group or others read, the directory gets their `r-x` too, so they can reach the files.
    ///
    /// # Errors
    /// [`Error::Io`] when the directory's mode cannot be changed.
    pub fn with_file_mode(mut self, mode: u32) -> Result<Self> {
        self.state.file_mode = mode;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let read = mode & 0o044;
            if read != 0 {
                let meta = std::fs::metadata(&self.dir)
                    .map_err(Error::io("cannot stat audit directory", &self.dir))?;
                let dir_mode = meta.permissions().mode() & 0o7777;
                let wanted = dir_mode | read | (read >> 2);
                if wanted != dir_mode {
                    std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(wanted))
                        .map_err(Error::io("cannot open up audit directory", &self.dir))?;
                }
            }
        }
        Ok(self)
    }

    /// Keeps, for seals, the digest of each file's lines as they are written (see
    /// [`SealPoint::digests`]); reads the newest file now, since it may be continued.
    ///
    /// # Errors
    /// [`Error::Io`] when the newest file cannot be read.
    pub fn with_seal_digests(mut self) -> Result<Self> {
        let files = list_log_files(&self.dir)
            .map_err(Error::io("cannot list audit directory", &self.dir))?;
        let newest = match files.last() {
            Some(f) => {
                let len = fs::metadata(&f.path)
                    .map_err(Error::io("cannot stat", &f.path))?
                    .len();
                Some((f.path.clone(), len))
            }
            None => None,
        };
        let written = Written::open(newest.as_ref().map(|(p, l)| (p.as_path(), *l)))
            .map_err(Error::io("cannot read for sealing", &self.dir))?;
        self.state.written = Some(written);
        Ok(self)
    }

    /// The directory this store writes into.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the stored chain ended when the directory was opened, or `None` for an empty
    /// directory.
    pub fn chain_head(&self) -> Option<&ChainHead> {
        self.head.as_ref()
    }

    /// Appends `lines`, in order.
    ///
    /// # Errors
    /// [`Error::Io`] when the write fails, or the error of a line's [`Storable::date`];
    /// nothing of the batch is left in the files then.
    pub fn append<I>(&mut self, lines: I) -> Result<()>
    where
        I: IntoIterator,
        I::Item: Storable,
    {
        let st = &mut self.state;
        st.check_usable()?;
        let mut touched = Vec::new();
        let mut last = None;
        let before = st.written.as_ref().map(Written::snapshot);
        let result = st.append(&self.dir, lines, &mut touched, &mut last);
        if result.is_err() {
            st.rollback(touched);
            st.written = before;
        } else if last.is_some() {
            st.last_written = last;
        }
        result
    }

    /// fdatasyncs the current file.
    ///
    /// # Errors
    /// [`Error::Io`] when fdatasync fails; the store then refuses further writes (the
    /// kernel may have dropped the unsynced data; reopen to re-check the files).
    pub fn flush(&mut self) -> Result<()> {
        let st = &mut self.state;
        st.check_usable()?;
        if let Some(cur) = &mut st.current {
            if let Err(e) = cur.file.sync_data() {
                let path = cur.path.clone();
                st.poisoned = Some(format!("fdatasync of {} failed: {e}", path.display()));
                return Err(Error::io("fdatasync failed on", path)(e));
            }
            // Everything is on disk: no writeback to start for it.
            cur.written_back = cur.len;
            if let Some((seq, sum)) = &st.last_written {
                st.seal_point = Some(SealPoint {
                    last_sequence: *seq,
                    last_checksum: sum.clone(),
                    file: cur.path.clone(),
                    len: cur.len,
                    digests: st.written.as_mut().map(Written::take).unwrap_or_default(),
                });
            }
        }
        st.apply_pending_retention(&self.dir);
        Ok(())
    }

    /// Where the data was durable at the last successful [`flush`](Self::flush): what a seal
    /// may cover (`None` before anything was written and flushed).
    pub fn seal_point(&self) -> Option<&SealPoint> {
        self.state.seal_point.as_ref()
    }

    /// Whether a file was rotated or retention deleted files since the last call (each is
    /// a moment to seal): [`SealReason::Retention`] over [`SealReason::Rotation`].
    pub fn take_seal_reason(&mut self) -> Option<SealReason> {
        self.state.seal_reason.take()
    }

    /// Flushes and closes the current file (the directory stays locked until the store is
    /// dropped).
    ///
    /// # Errors
    /// As [`flush`](Self::flush).
    pub fn close(&mut self) -> Result<()> {
        self.flush()?;
        self.state.current = None;
        Ok(())
    }
}

#[derive(Debug)]
struct OpenFile {
    file: File,
    path: PathBuf,
    date: NaiveDate,
    index: u32,
    len: u64,
    /// Where the last started writeback ended (see [`start_writeback`]).
    written_back: u64,
}

#[derive(Debug)]
struct Touched {
    path: PathBuf,
    len_before: u64,
    created: bool,
}

#[derive(Debug)]
struct State {
    max_file_bytes: u64,
    retention_days: Option<u32>,
    /// No file before this date is ever written again.
    floor: Option<NaiveDate>,
    current: Option<OpenFile>,
    wbuf: Vec<u8>,
    /// Files whose failed write could not be rolled back yet: (path, length to restore).
    repair: Vec<(PathBuf, u64)>,
    /// Set when an fsync failed: the kernel may have dropped dirty pages.
    poisoned: Option<String>,
    /// The directory held no audit files when opened: if the first record written is not
    /// sequence 1 (a backend added to an existing trail), record where this directory's
    /// chain starts so `audit verify` accepts it.
    fresh: bool,
    /// The key (if any) that authenticates the anchors written.
    integrity: Integrity,
    /// A new day's file was started on this day (counting back from it, retention is due
    /// once that file's first batch is durable).
    pending_retention: Option<NaiveDate>,
    /// The names of the files the trail did not write ([`Origin`]'s imported files).
    imported: Vec<String>,
    /// Retention may delete `imported` files too.
    retention_of_imported: bool,
    /// The mode new audit files get.
    file_mode: u32,
    /// The last line appended: its sequence number and checksum (kept per batch, not per
    /// line, for seals).
    last_written: Option<(u64, String)>,
    /// What the last flush made durable (see [`FileStore::seal_point`]).
    seal_point: Option<SealPoint>,
    /// A rotation or a retention happened since [`FileStore::take_seal_reason`] was last asked.
    seal_reason: Option<SealReason>,
    /// The digests of the files written, for seals (`None`: seals are off).
    written: Option<Written>,
    _lock: File,
}

impl State {
    fn check_usable(&mut self) -> Result<()> {
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

    fn append<I>(
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
    fn write_out(&mut self, touched: &mut Vec<Touched>) -> Result<()> {
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

    /// Opens the file for `date`: the newest rotation of that day if there is one (rotating
    /// on if it is full), else a new day file.
    fn open_for(
        &mut self,
        dir: &Path,
        date: NaiveDate,
        need: u64,
        touched: &mut Vec<Touched>,
    ) -> Result<()> {
        let files = list_log_files(dir).map_err(Error::io("cannot list audit directory", dir))?;
        match files.iter().rev().find(|f| f.date == date) {
            Some(f) => {
                let len = fs::metadata(&f.path)
                    .map_err(Error::io("cannot stat", &f.path))?
                    .len();
                if self.max_file_bytes > 0 && len > 0 && len + need > self.max_file_bytes {
                    self.rotate_to(dir, date, f.index + 1, touched)
                } else {
                    self.switch_to(dir, date, f.index, false, touched)
                }
            }
            None => {
                self.switch_to(dir, date, 0, true, touched)?;
                // Retention counts back from the new day, but never from a day later than the
                // wall clock's: an imported event dated in the future must not expire the
                // files of the present. It waits until the new file's first batch is durable.
                self.pending_retention = Some(date.min(Utc::now().date_naive()));
                Ok(())
            }
        }
    }

    fn rotate_to(
        &mut self,
        dir: &Path,
        date: NaiveDate,
        index: u32,
        touched: &mut Vec<Touched>,
    ) -> Result<()> {
        self.switch_to(dir, date, index, true, touched)
    }

    fn switch_to(
        &mut self,
        dir: &Path,
        date: NaiveDate,
        index: u32,
        may_create: bool,
        touched: &mut Vec<Touched>,
    ) -> Result<()> {
        if let Some(old) = self.current.take() {
            if self.seal_reason.is_none() {
                self.seal_reason = Some(SealReason::Rotation);
            }
            // Everything in a file we leave is durable, so `flush` only syncs the current one.
            old.file.sync_data().map_err(|e| {
                self.poisoned = Some(format!("fdatasync of {} failed: {e}", old.path.display()));
                Error::io("fdatasync failed on", old.path.clone())(e)
            })?;
        }
        let path = dir.join(log_file_name(date, index));
        let existed = path.exists();
        if !existed && !may_create {
            return Err(Error::Integrity(format!(
                "{} disappeared while the trail was running",
                path.display()
            )));
        }
        let file = open_private(&path, true).map_err(Error::io("cannot open audit file", &path))?;
        let len = file
            .metadata()
            .map_err(Error::io("cannot stat", &path))?
            .len();
        #[cfg(unix)]
        if !existed && self.file_mode != DEFAULT_FILE_MODE {
            use std::os::unix::fs::PermissionsExt as _;
            file.set_permissions(std::fs::Permissions::from_mode(self.file_mode))
                .map_err(Error::io("cannot set the mode of audit file", &path))?;
        }
        if !existed {
            touched.push(Touched {
                path: path.clone(),
                len_before: 0,
                created: true,
            });
            sync_dir(dir).map_err(Error::io("cannot fsync directory", dir))?;
        }
        if let Some(w) = &mut self.written {
            w.switch(&path, len)
                .map_err(Error::io("cannot read for sealing", &path))?;
        }
        self.floor = Some(date);
        self.current = Some(OpenFile {
            file,
            path,
            date,
            index,
            len,
            written_back: len,
        });
        Ok(())
    }

    /// Undoes a failed batch: truncates files back (each truncation is fdatasynced), removes
    /// files it created. Everything written before the batch is then durable: the open file
    /// is fdatasynced too when the batch failed before writing to it, so `flush` after a
    /// rollback has nothing left to sync.
    fn rollback(&mut self, touched: Vec<Touched>) {
        if let Some(cur) = self.current.take()
            && !touched.iter().any(|t| t.path == cur.path)
            && let Err(e) = cur.file.sync_data()
        {
            self.poisoned = Some(format!("fdatasync of {} failed: {e}", cur.path.display()));
        }
        for t in touched.into_iter().rev() {
            let undone = if t.created {
                fs::remove_file(&t.path).or_else(|e| {
                    if e.kind() == io::ErrorKind::NotFound {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })
            } else {
                truncate_to(&t.path, t.len_before)
            };
            if let Err(e) = undone {
                tracing::error!(
                    path = %t.path.display(),
                    error = %e,
                    "could not roll back a failed write in {} ({e}); will retry before the next write",
                    t.path.display()
                );
                self.repair
                    .push((t.path, if t.created { 0 } else { t.len_before }));
            }
        }
    }

    /// Deletes the files retention expired when a new day's file started, once that file's
    /// first batch is durable (after a successful fdatasync): deleting before would leave only
    /// the anchor if the first write failed or the process died first. Writes the anchor
    /// (the first kept line, and what was removed) before deleting anything.
    fn apply_pending_retention(&mut self, dir: &Path) {
        let (Some(today), Some(days)) = (self.pending_retention, self.retention_days) else {
            return;
        };
        let Some(cutoff) = today.checked_sub_days(chrono::Days::new(u64::from(days))) else {
            self.pending_retention = None;
            return;
        };
        let files = match list_log_files(dir) {
            Ok(files) => files,
            Err(e) => {
                tracing::error!(
                    dir = %dir.display(),
                    error = %e,
                    "retention skipped: cannot list {}: {e}",
                    dir.display()
                );
                return;
            }
        };
        let expired: Vec<&LogFile> = files.iter().filter(|f| f.date < cutoff).collect();
        // The kept chain starts at the first line of the oldest kept file that holds one.
        let Some(kept) = files
            .iter()
            .find(|f| f.date >= cutoff && fs::metadata(&f.path).is_ok_and(|m| m.len() > 0))
        else {
            return; // nothing durable kept yet (the new day's batch was rolled back): wait
        };
        self.pending_retention = None;
        if expired.is_empty() {
            return;
        }
        if !self.retention_of_imported && self.refuse_imported(dir, &expired, days) {
            return;
        }
        let Some(mut anchor) = Anchor::at_first_line(&kept.path) else {
            tracing::error!(
                dir = %dir.display(),
                path = %kept.path.display(),
                "retention skipped in {}: cannot read where the kept chain starts ({})",
                dir.display(),
                kept.path.display()
            );
            return;
        };
        anchor.removed = Some(self.removed_range(dir, &expired, &anchor, today, days));
        if let Err(e) = anchor.write(dir, &self.integrity) {
            tracing::error!(
                dir = %dir.display(),
                error = %e,
                "retention skipped: cannot write {ANCHOR_FILE} in {}: {e}",
                dir.display()
            );
            return;
        }
        for f in expired {
            match fs::remove_file(&f.path) {
                Ok(()) => tracing::info!(
                    path = %f.path.display(),
                    days,
                    "retention: deleted {} (older than {days} days)",
                    f.path.display()
                ),
                Err(e) => tracing::error!(
                    path = %f.path.display(),
                    error = %e,
                    "retention: cannot delete {}: {e}",
                    f.path.display()
                ),
            }
        }
        let _ = sync_dir(dir);
        self.seal_reason = Some(SealReason::Retention);
    }

    /// Whether `expired` includes files the trail did not write (it then deletes nothing:
    /// deleting only the newer of them would cut the chain in the middle); says so.
    fn refuse_imported(&self, dir: &Path, expired: &[&LogFile], days: u32) -> bool {
        let names: Vec<String> = expired
            .iter()
            .filter_map(|f| f.path.file_name().map(|n| n.to_string_lossy().into_owned()))
            .filter(|n| self.imported.contains(n))
            .collect();
        if names.is_empty() {
            return false;
        }
        tracing::warn!(
            dir = %dir.display(),
            files = names.len(),
            days,
            "retention skipped in {}: {} expired (older than {days} days) but {} not written by this trail ({ORIGIN_FILE} records them as imported, e.g. from the Python trail); nothing was deleted. Archive them and set `retention_applies_to_imported = true` in [trail.policy] to let retention delete them, or raise `retention_days` to keep them",
            dir.display(),
            names.join(", "),
            if names.len() == 1 {
                "it was"
            } else {
                "they were"
            },
        );
        true
    }

    /// What the anchor at `kept` records as removed: the `expired` files, and before them
    /// what the directory's current anchor recorded, when that anchor holds (authentic under
    /// the key, or unkeyed) and starts where the expired files start.
    fn removed_range(
        &self,
        dir: &Path,
        expired: &[&LogFile],
        kept: &Anchor,
        today: NaiveDate,
        days: u32,
    ) -> Removed {
        let oldest = expired[0];
        let first = expired
            .iter()
            .find_map(|f| Anchor::at_first_line(&f.path))
            .map_or(kept.sequence_number, |a| a.sequence_number);
        let prior = Anchor::read_checked(dir, &self.integrity).unwrap_or_else(|e| {
            tracing::warn!(dir = %dir.display(), error = %crate::error::DisplayChain(&e), "retention: the anchor it replaces is unreadable ({e}); the new one records only the removals of this run", e = crate::error::chain(&e));
            None
        });
        let (first_sequence, oldest_date) = match prior {
            Some((p, AnchorAuth::Authentic | AnchorAuth::Unkeyed))
                if p.sequence_number == first =>
            {
                p.removed
                    .map_or((first, oldest.date), |r| (r.first_sequence, r.oldest_date))
            }
            _ => (first, oldest.date),
        };
        Removed {
            first_sequence,
            last_sequence: kept.sequence_number.saturating_sub(1),
            newest_date: expired[expired.len() - 1].date,
            oldest_date,
            removed_on: today,
            retention_days: days,
        }
    }
}

/// The names of the files in `dir` the trail did not write, as its origin record says (written
/// now if it has none: the files present are then imported).
fn imported_files(dir: &Path, files: &[LogFile]) -> Result<Vec<String>> {
    let origin = Origin::record_on_open(dir, files)?;
    Ok(origin.imported.map(|i| i.files).unwrap_or_default())
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

/// The mode of new audit files unless `file_mode` says otherwise.
pub const DEFAULT_FILE_MODE: u32 = 0o600;

/// Why `mode` cannot be the mode of audit files, or `None`: the owner must read and write
/// them, nobody else may write them, and nobody may execute them (0600, 0640, 0644 and 0604
/// are the modes allowed).
pub fn check_file_mode(mode: u32) -> Option<String> {
    if mode & !0o777 != 0 || mode & 0o600 != 0o600 || mode & 0o133 != 0 {
        return Some(format!(
            "{mode:04o} is not allowed: audit files must be readable and writable by their owner, writable by nobody else and executable by nobody (use 0600, 0640, 0644 or 0604)"
        ));
    }
    None
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
