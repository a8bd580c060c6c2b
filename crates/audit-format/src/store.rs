//! The synchronous file store: appends lines to the day's file, rotates by size, applies
//! retention, rolls a failed write back, and recovers the end of the chain on open.
//!
//! `audit-host`'s `FileStorageBackend` and the `audit-backend-file` plugin are both thin
//! adapters over [`FileStore`].

mod file_mode;
mod retention;
mod rollback;
mod rotate;
mod state;
mod storable;

use std::fs;
use std::path::{Path, PathBuf};

pub use self::file_mode::{DEFAULT_FILE_MODE, check_file_mode};
use self::retention::imported_files;
use self::state::State;
pub use self::storable::Storable;
use crate::anchor::{ANCHOR_FILE, Anchor};
use crate::error::{Error, Result};
use crate::fs::{check_dir_private, create_dir_private};
use crate::lock::lock_dir;
use crate::names::list_log_files;
use crate::record::Integrity;
use crate::recover::{ChainHead, recover_tail};
use crate::seal::SealReason;
use crate::seal::snapshot::SealPoint;
use crate::seal::written::Written;

/// Default size at which a daily file is rotated: 100 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 100 * 1024 * 1024;

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
    /// opened it (see [`Origin`](crate::origin::Origin)); default `false`: retention that
    /// would delete one of them deletes nothing and says so.
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
