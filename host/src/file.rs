//! The built-in file backend: [`StorageBackend`] over `audit-format`'s synchronous
//! [`FileStore`] (canonical JSON lines in daily files, rotated by size, retained for a number
//! of days, locked against a second writer, recovered after a crash).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use audit_format::anchor::{ANCHOR_FILE, AnchorAuth};
use audit_format::error::Error;
use audit_format::{Anchor, FileStore, Integrity};

use crate::backend::{Batch, ChainHead, StorageBackend};
use crate::sealing::{SealThread, Sealing};
use audit_format::error::Result;
use audit_format::record::AuditRecord;

pub use audit_format::names::todays_file_name;
pub use audit_format::store::DEFAULT_MAX_FILE_BYTES;
// The directory helpers, at their old paths in this crate.
pub(crate) use audit_format::fs::{create_dir_private, open_private, sync_dir, truncate_to};
pub(crate) use audit_format::lock::lock_dir;

/// Settings for a [`FileStorageBackend`]; see [`FileStorageBackend::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct FileBackendBuilder {
    dir: PathBuf,
    name: Option<String>,
    max_file_bytes: u64,
    retention_days: Option<u32>,
    retention_of_imported: bool,
    integrity: Integrity,
    allow_insecure_permissions: bool,
    sealing: Option<Sealing>,
    file_mode: u32,
}

impl FileBackendBuilder {
    /// Signs seals of the directory (`.audit-seals/`) with `sealing`'s key: at its interval
    /// when events were added, after each rotation and retention, and at close. Default:
    /// none. The trail sets this from `[trail.integrity] signing_key_file`.
    pub fn sealing(self, sealing: Option<Sealing>) -> Self {
        Self { sealing, ..self }
    }

    /// Authenticates the chain anchors retention writes with `integrity`'s key (HMAC mode),
    /// so `audit verify --key-file` tells them from forged ones. Default SHA-256 (no MAC).
    /// The trail sets this from its own integrity settings.
    pub fn integrity(self, integrity: Integrity) -> Self {
        Self { integrity, ..self }
    }

    /// Rotates a daily file once it would grow past `bytes` (0: never rotate by size).
    /// Default [`DEFAULT_MAX_FILE_BYTES`].
    pub fn max_file_bytes(self, bytes: u64) -> Self {
        Self {
            max_file_bytes: bytes,
            ..self
        }
    }

    /// A name for messages and statistics (default `file:<dir>`).
    pub fn name(self, name: Option<String>) -> Self {
        Self { name, ..self }
    }

    /// Deletes files whose date is more than `days` before the newest event's date, each
    /// time a new day's file is started (`None`: keep everything). The trail sets this from
    /// its policy's `retention_days`.
    pub fn retention_days(self, days: Option<u32>) -> Self {
        Self {
            retention_days: days,
            ..self
        }
    }

    /// Lets retention delete the files found in the directory when a trail first opened it
    /// (lines it did not write, such as the Python trail's; see [`audit_format::Origin`]).
    /// Default `false`: retention that would delete one deletes nothing and says so. The
    /// trail sets this from its policy's `retention_applies_to_imported`.
    pub fn retention_of_imported(self, allow: bool) -> Self {
        Self {
            retention_of_imported: allow,
            ..self
        }
    }

    /// The mode of the audit files it creates (default 0600; 0640, 0644 or 0604 let a log
    /// shipper running as another user read them, and give the directory the matching
    /// `r-x`). [`audit_format::store::check_file_mode`] says which modes are allowed;
    /// `open` refuses others.
    pub fn file_mode(self, mode: u32) -> Self {
        Self {
            file_mode: mode,
            ..self
        }
    }

    /// Accepts an existing directory writable by group or others, or owned by a user other
    /// than root or this one (default `false`: refused). Unsafe: whoever else can write there
    /// can remove or replace audit files.
    pub fn allow_insecure_permissions(self, allow: bool) -> Self {
        Self {
            allow_insecure_permissions: allow,
            ..self
        }
    }

    /// Opens the directory: creates it (mode 0700) if needed, refuses it if others may write
    /// to it (see [`allow_insecure_permissions`](Self::allow_insecure_permissions)), takes its lock, and recovers
    /// the end of the chain from the newest file (or the chain anchor, when no file holds a
    /// line).
    ///
    /// # Errors
    /// [`Error::DirectoryLocked`] if another writer holds the directory; [`Error::Io`] for
    /// file-system failures, a directory others may write to, or a symbolic link where a
    /// file of the directory belongs; [`Error::Integrity`] if the newest line is not an audit event,
    /// or the chain continues from an anchor whose `mac` does not match the HMAC key.
    ///
    /// [`Error::DirectoryLocked`]: crate::Error::DirectoryLocked
    /// [`Error::Io`]: crate::Error::Io
    /// [`Error::Integrity`]: crate::Error::Integrity
    pub fn open(self) -> Result<FileStorageBackend> {
        if let Some(why) = audit_format::store::check_file_mode(self.file_mode) {
            return Err(audit_format::ConfigError {
                file: PathBuf::new(),
                line: None,
                column: None,
                key: "trail.file_mode".into(),
                message: why,
            }
            .into());
        }
        let store = FileStore::open_with(
            self.dir,
            self.max_file_bytes,
            self.retention_days,
            self.allow_insecure_permissions,
        )?;
        let dir = store.dir().to_path_buf();
        if store.chain_head().is_some_and(|h| h.anchor.is_some()) {
            check_anchor_key(&dir, &self.integrity)?;
        }
        let mut store = store
            .with_integrity(self.integrity)
            .with_retention_of_imported(self.retention_of_imported)
            .with_file_mode(self.file_mode)?;
        if self.sealing.is_some() {
            // The writer digests what it writes; the newest file is read once, here.
            store = store.with_seal_digests()?;
        }
        let sealer = match &self.sealing {
            Some(s) => Some(SealThread::start(&dir, s)?),
            None => None,
        };
        Ok(FileStorageBackend {
            sealer,
            name: self
                .name
                .unwrap_or_else(|| format!("file:{}", dir.display())),
            head: store.chain_head().cloned(),
            dir,
            store: Mutex::new(store),
        })
    }
}

/// Under an HMAC key, the chain may continue from `dir`'s anchor only if the key
/// authenticates it (as a last line must verify); an anchor without a `mac` (an older
/// version's) is accepted with a warning, `audit verify --key-file` reports it.
fn check_anchor_key(dir: &Path, integrity: &Integrity) -> Result<()> {
    let path = dir.join(ANCHOR_FILE);
    match Anchor::read_checked(dir, integrity)? {
        Some((_, AnchorAuth::Mismatch)) => Err(Error::Integrity(format!(
            "cannot continue the stored chain from {}: no audit file holds a line and the anchor \
             does not authenticate with this trail's HMAC key (altered, forged, or written under \
             another key). Use the key it was written with, or move it aside to start a new \
             chain at sequence 1",
            path.display()
        ))),
        Some((_, AnchorAuth::Missing)) => {
            tracing::warn!(
                path = %path.display(),
                "warning: continuing the chain from {}, which is not authenticated (no `mac`); `audit verify --key-file` reports it until retention next replaces it",
                path.display()
            );
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The built-in backend: appends each record's canonical line to
/// `audit_YYYY-MM-DD.jsonl` (the UTC date of the event) in one directory.
///
/// - Size rotation continues the day as `audit_YYYY-MM-DD.1.jsonl`, `.2`, ...
/// - Files never go back in time: an event stamped earlier than the newest file's date
///   (an import, or a clock step backwards) is appended to the newest file, so file order is
///   always sequence order.
/// - One batch is one `write` call per file; a failed write is rolled back (truncated), so no
///   partial line is ever left behind.
/// - The directory is locked (`.audit.lock`, holding the pid) while the backend is open.
/// - Files are created 0600, the directory 0700, and the directory is fsynced after each new
///   file.
///
/// ```no_run
/// # fn main() -> audit_host::Result<()> {
/// use audit_host::FileStorageBackend;
/// let backend = FileStorageBackend::builder("audit_logs").max_file_bytes(64 << 20).open()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct FileStorageBackend {
    name: String,
    dir: PathBuf,
    head: Option<ChainHead>,
    store: Mutex<FileStore>,
    sealer: Option<SealThread>,
}

impl FileStorageBackend {
    /// Settings for a backend writing into `dir`.
    pub fn builder(dir: impl Into<PathBuf>) -> FileBackendBuilder {
        FileBackendBuilder {
            dir: dir.into(),
            name: None,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            retention_days: None,
            retention_of_imported: false,
            integrity: Integrity::Sha256,
            allow_insecure_permissions: false,
            sealing: None,
            file_mode: audit_format::store::DEFAULT_FILE_MODE,
        }
    }

    /// Opens `dir` with default settings; see [`FileBackendBuilder::open`].
    ///
    /// # Errors
    /// As [`FileBackendBuilder::open`].
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        Self::builder(dir).open()
    }

    /// The directory this backend writes into.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> MutexGuard<'_, FileStore> {
        // A panic while holding the lock leaves state that the next call re-checks
        // (`repair`, `current = None` paths), so recovering the guard is sound.
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends a batch synchronously (the async trait methods call this).
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) when the write fails; nothing of the batch is left in
    /// the files then.
    pub fn write_batch_blocking(&self, records: &[AuditRecord]) -> Result<()> {
        self.lock().append(records)
    }

    /// Where the stored chain ended when the directory was opened (what
    /// [`StorageBackend::resume`] returns), or `None` for an empty directory.
    pub fn chain_head(&self) -> Option<&ChainHead> {
        self.head.as_ref()
    }

    /// fsyncs the current file.
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) when fdatasync fails; the backend then refuses further
    /// writes (the kernel may have dropped the unsynced data; restart to re-check the files).
    pub fn flush_blocking(&self) -> Result<()> {
        let mut store = self.lock();
        store.flush()?;
        if let Some(s) = &self.sealer {
            let reason = store.take_seal_reason();
            s.offer(store.seal_point(), reason);
        }
        Ok(())
    }

    /// Flushes and closes the current file; with sealing, writes the close seal (durable
    /// when this returns) and ends the seal thread.
    ///
    /// # Errors
    /// As [`flush_blocking`](Self::flush_blocking), or the close seal's failure.
    pub fn close_blocking(&self) -> Result<()> {
        let mut store = self.lock();
        store.close()?;
        match &self.sealer {
            Some(s) => s.close(store.seal_point()),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl StorageBackend for FileStorageBackend {
    fn name(&self) -> &str {
        &self.name
    }

    async fn write(&self, record: &AuditRecord) -> Result<()> {
        self.write_batch_blocking(std::slice::from_ref(record))
    }

    async fn write_batch(&self, batch: &Batch) -> Result<()> {
        self.write_batch_blocking(batch)
    }

    async fn flush(&self) -> Result<()> {
        self.flush_blocking()
    }

    async fn close(&self) -> Result<()> {
        self.close_blocking()
    }

    async fn resume(&self) -> Result<Option<ChainHead>> {
        Ok(self.head.clone())
    }

    fn query_dir(&self) -> Option<&Path> {
        Some(&self.dir)
    }
}
