//! The built-in file backend: canonical JSON lines in daily files, rotated by size, retained
//! for a number of days, locked against a second writer, recovered after a crash.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{NaiveDate, Utc};

use crate::backend::{Batch, ChainHead, StorageBackend};
use crate::error::{Error, Result};
use crate::record::AuditRecord;

/// Default size at which a daily file is rotated: 100 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 100 * 1024 * 1024;
const LOCK_FILE: &str = ".audit.lock";
/// Written by retention: where the chain starts once older files are deleted.
pub(crate) const ANCHOR_FILE: &str = ".audit-anchor.json";
const TAIL_CHUNK: u64 = 64 * 1024;

/// One `audit_YYYY-MM-DD[.N].jsonl` file in a directory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct LogFile {
    pub(crate) date: NaiveDate,
    pub(crate) index: u32,
    pub(crate) path: PathBuf,
}

/// The file name for `date` and rotation `index` (0 is the first file of the day).
pub(crate) fn log_file_name(date: NaiveDate, index: u32) -> String {
    if index == 0 {
        format!("audit_{date}.jsonl")
    } else {
        format!("audit_{date}.{index}.jsonl")
    }
}

fn parse_log_file_name(name: &str) -> Option<(NaiveDate, u32)> {
    let stem = name.strip_prefix("audit_")?.strip_suffix(".jsonl")?;
    let (date, index) = match stem.split_once('.') {
        Some((d, i)) => (d, i.parse().ok().filter(|&i| i > 0)?),
        None => (stem, 0),
    };
    if date.len() != 10 {
        return None;
    }
    Some((NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?, index))
}

/// Every audit log file in `dir`, oldest first (by date, then rotation index).
pub(crate) fn list_log_files(dir: &Path) -> io::Result<Vec<LogFile>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if let Some((date, index)) = name.to_str().and_then(parse_log_file_name)
            && entry.file_type()?.is_file()
        {
            files.push(LogFile {
                date,
                index,
                path: entry.path(),
            });
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(unix)]
pub(crate) fn create_dir_private(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
pub(crate) fn create_dir_private(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

pub(crate) fn open_private(path: &Path, append: bool) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).create(true);
    if append {
        o.append(true);
    } else {
        o.write(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
}

/// Makes a new directory entry durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// How long [`lock_dir`] keeps trying when the lock's holder is this very process.
const OWN_LOCK_WAIT: Duration = Duration::from_millis(500);

/// Takes the directory's `.audit.lock` (an exclusive `flock` held while the returned file
/// is open) and writes this process's pid into it.
///
/// When the recorded holder is this process, it keeps trying for up to [`OWN_LOCK_WAIT`]:
/// a lock released by closing a trail (or backend) stays held as long as a copy of its
/// descriptor lives, and a child process that another thread is starting holds such a copy
/// until it `exec`s. Reopening a directory right after closing it then failed now and then
/// in a process that also runs commands.
pub(crate) fn lock_dir(dir: &Path) -> Result<File> {
    let lock_path = dir.join(LOCK_FILE);
    let mut lock =
        open_private(&lock_path, false).map_err(Error::io("cannot open lock file", &lock_path))?;
    let started = Instant::now();
    loop {
        match lock.try_lock() {
            Ok(()) => break,
            Err(fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = lock.seek(SeekFrom::Start(0));
                let _ = lock.read_to_string(&mut text);
                let pid: Option<u32> = text.trim().parse().ok();
                if pid == Some(std::process::id()) && started.elapsed() < OWN_LOCK_WAIT {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                }
                return Err(Error::DirectoryLocked {
                    dir: dir.to_path_buf(),
                    pid,
                });
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(Error::io("cannot lock audit directory", dir)(e));
            }
        }
    }
    lock.set_len(0)
        .and_then(|()| lock.write_all(format!("{}\n", std::process::id()).as_bytes()))
        .map_err(Error::io("cannot write lock file", &lock_path))?;
    Ok(lock)
}

/// Settings for a [`FileStorageBackend`]; see [`FileStorageBackend::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct FileBackendBuilder {
    dir: PathBuf,
    name: Option<String>,
    max_file_bytes: u64,
    retention_days: Option<u32>,
}

impl FileBackendBuilder {
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

    /// Opens the directory: creates it (mode 0700) if needed, takes its lock, and recovers
    /// the end of the chain from the newest file.
    ///
    /// # Errors
    /// [`Error::DirectoryLocked`] if another writer holds the directory; [`Error::Io`] for
    /// file-system failures; [`Error::Integrity`] if the newest line is not an audit event.
    pub fn open(self) -> Result<FileStorageBackend> {
        let dir = self.dir;
        create_dir_private(&dir).map_err(Error::io("cannot create audit directory", &dir))?;
        let lock = lock_dir(&dir)?;
        let files = list_log_files(&dir).map_err(Error::io("cannot list audit directory", &dir))?;
        let head = recover_tail(&files)?;
        let floor = files.last().map(|f| f.date);
        let fresh = files.is_empty() && !dir.join(ANCHOR_FILE).exists();
        Ok(FileStorageBackend {
            name: self
                .name
                .unwrap_or_else(|| format!("file:{}", dir.display())),
            dir,
            head,
            state: Mutex::new(State {
                max_file_bytes: self.max_file_bytes,
                retention_days: self.retention_days,
                floor,
                current: None,
                wbuf: Vec::with_capacity(256 * 1024),
                repair: Vec::new(),
                poisoned: None,
                fresh,
                _lock: lock,
            }),
        })
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
    state: Mutex<State>,
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
    _lock: File,
}

impl FileStorageBackend {
    /// Settings for a backend writing into `dir`.
    pub fn builder(dir: impl Into<PathBuf>) -> FileBackendBuilder {
        FileBackendBuilder {
            dir: dir.into(),
            name: None,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            retention_days: None,
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

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves state that the next call re-checks
        // (`repair`, `current = None` paths), so recovering the guard is sound.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends a batch synchronously (the async trait methods call this).
    ///
    /// # Errors
    /// [`Error::Io`] when the write fails; nothing of the batch is left in the files then.
    pub fn write_batch_blocking(&self, records: &[AuditRecord]) -> Result<()> {
        self.write_blocking(records)
    }

    /// Appends records as a plugin receives them (the `audit-backend-file` plugin, which
    /// exposes this backend through `audit-plugin-api`, calls this): the same files, the
    /// same bytes as [`write_batch_blocking`](Self::write_batch_blocking), and no copy of a
    /// line.
    ///
    /// # Errors
    /// As [`write_batch_blocking`](Self::write_batch_blocking); [`Error::Backend`] for a
    /// record whose `timestamp_micros` is out of range (nothing of the batch is written).
    pub fn write_plugin_records_blocking(
        &self,
        records: &[audit_plugin_api::Record<'_>],
    ) -> Result<()> {
        self.write_blocking(records)
    }

    /// Where the stored chain ended when the directory was opened (what
    /// [`StorageBackend::resume`] returns), or `None` for an empty directory.
    pub fn chain_head(&self) -> Option<&ChainHead> {
        self.head.as_ref()
    }

    fn write_blocking<R: Storable>(&self, records: &[R]) -> Result<()> {
        let mut st = self.lock();
        st.check_usable()?;
        let mut touched = Vec::new();
        let result = st.append(&self.dir, records, &mut touched);
        if result.is_err() {
            st.rollback(touched);
        }
        result
    }

    /// fsyncs the current file.
    ///
    /// # Errors
    /// [`Error::Io`] when fdatasync fails; the backend then refuses further writes (the
    /// kernel may have dropped the unsynced data; restart to re-check the files).
    pub fn flush_blocking(&self) -> Result<()> {
        let mut st = self.lock();
        st.check_usable()?;
        if let Some(cur) = &mut st.current {
            if let Err(e) = cur.file.sync_data() {
                let path = cur.path.clone();
                st.poisoned = Some(format!("fdatasync of {} failed: {e}", path.display()));
                return Err(Error::io("fdatasync failed on", path)(e));
            }
            // Everything is on disk: no writeback to start for it.
            cur.written_back = cur.len;
        }
        Ok(())
    }
}

/// What the file backend needs of a record: the line, its sequence number and its UTC date.
trait Storable {
    fn line(&self) -> &str;
    fn sequence_number(&self) -> u64;
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

impl Storable for audit_plugin_api::Record<'_> {
    fn line(&self) -> &str {
        audit_plugin_api::Record::line(self)
    }
    fn sequence_number(&self) -> u64 {
        self.sequence_number
    }
    fn date(&self) -> Result<NaiveDate> {
        chrono::DateTime::from_timestamp_micros(self.timestamp_micros)
            .map(|t| t.date_naive())
            .ok_or_else(|| {
                Error::backend(format!(
                    "record {}: timestamp_micros {} is out of range",
                    self.sequence_number, self.timestamp_micros
                ))
            })
    }
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

    fn append<R: Storable>(
        &mut self,
        dir: &Path,
        records: &[R],
        touched: &mut Vec<Touched>,
    ) -> Result<()> {
        self.wbuf.clear();
        if self.fresh
            && let Some(first) = records.first()
        {
            if first.sequence_number() > 1 {
                let fields: crate::record::ChainFields<'_> = serde_json::from_str(first.line())
                    .map_err(|e| Error::backend(format!("unreadable record: {e}")))?;
                let anchor = serde_json::json!({
                    "sequence_number": first.sequence_number(),
                    "previous_hash": fields.previous_hash.as_deref(),
                });
                write_anchor(dir, &anchor.to_string())
                    .map_err(Error::io("cannot write chain anchor in", dir))?;
            }
            self.fresh = false;
        }
        for rec in records {
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
        }
        self.write_out(touched)
    }

    /// Writes the buffered lines to the current file in one call.
    fn write_out(&mut self, touched: &mut Vec<Touched>) -> Result<()> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let Some(cur) = self.current.as_mut() else {
            unreachable!("lines buffered with no open file; this is a bug in audit-host")
        };
        if !touched.iter().any(|t| t.path == cur.path) {
            touched.push(Touched {
                path: cur.path.clone(),
                len_before: cur.len,
                created: false,
            });
        }
        cur.file
            .write_all(&self.wbuf)
            .map_err(Error::io("cannot write audit file", cur.path.clone()))?;
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
                // files of the present.
                self.apply_retention(dir, date.min(Utc::now().date_naive()), &files);
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
        if !existed {
            touched.push(Touched {
                path: path.clone(),
                len_before: 0,
                created: true,
            });
            sync_dir(dir).map_err(Error::io("cannot fsync directory", dir))?;
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

    /// Undoes a failed batch: truncates files back, removes files it created.
    fn rollback(&mut self, touched: Vec<Touched>) {
        self.current = None;
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
                eprintln!(
                    "audit: could not roll back a failed write in {} ({e}); will retry before the next write",
                    t.path.display()
                );
                self.repair
                    .push((t.path, if t.created { 0 } else { t.len_before }));
            }
        }
    }

    fn apply_retention(&mut self, dir: &Path, today: NaiveDate, files: &[LogFile]) {
        let Some(days) = self.retention_days else {
            return;
        };
        let Some(cutoff) = today.checked_sub_days(chrono::Days::new(u64::from(days))) else {
            return;
        };
        let expired: Vec<&LogFile> = files.iter().filter(|f| f.date < cutoff).collect();
        if expired.is_empty() {
            return;
        }
        // Record where the chain now starts, so `audit verify` accepts the shortened chain.
        // Either the first line of the oldest kept file, or (when every older file expires)
        // the link the next line written will carry: after the newest expired file's end.
        let anchor = match files.iter().find(|f| f.date >= cutoff) {
            Some(kept) => first_line_anchor(&kept.path),
            None => expired.last().and_then(|f| last_line_anchor(&f.path)),
        };
        let Some(anchor) = anchor else {
            eprintln!(
                "audit: retention skipped in {}: cannot read where the kept chain starts",
                dir.display()
            );
            return;
        };
        if let Err(e) = write_anchor(dir, &anchor) {
            eprintln!(
                "audit: retention skipped: cannot write {ANCHOR_FILE} in {}: {e}",
                dir.display()
            );
            return;
        }
        for f in expired {
            match fs::remove_file(&f.path) {
                Ok(()) => eprintln!(
                    "audit: retention: deleted {} (older than {days} days)",
                    f.path.display()
                ),
                Err(e) => eprintln!("audit: retention: cannot delete {}: {e}", f.path.display()),
            }
        }
        let _ = sync_dir(dir);
    }
}

pub(crate) fn truncate_to(path: &Path, len: u64) -> io::Result<()> {
    let f = OpenOptions::new().write(true).open(path)?;
    f.set_len(len)?;
    f.sync_data()
}

fn first_line_anchor(path: &Path) -> Option<String> {
    // The whole first line, however long.
    let mut buf = Vec::new();
    io::BufReader::new(File::open(path).ok()?)
        .read_until(b'\n', &mut buf)
        .ok()?;
    let line = buf.strip_suffix(b"\n")?;
    let fields: crate::record::ChainFields<'_> = serde_json::from_slice(line).ok()?;
    let prev = match fields.previous_hash.as_deref() {
        Some(h) => serde_json::Value::String(h.to_owned()),
        None => serde_json::Value::Null,
    };
    Some(
        serde_json::json!({"sequence_number": fields.sequence_number, "previous_hash": prev})
            .to_string(),
    )
}

fn last_line_anchor(path: &Path) -> Option<String> {
    let mut f = File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    // Read further back (4x) until the chunk holds the start of the last line.
    let mut chunk = TAIL_CHUNK.min(len);
    let (buf, line_start) = loop {
        let start = len - chunk;
        let mut buf = vec![0u8; chunk as usize];
        f.seek(SeekFrom::Start(start)).ok()?;
        f.read_exact(&mut buf).ok()?;
        let body = buf.strip_suffix(b"\n")?;
        match body.iter().rposition(|&b| b == b'\n') {
            Some(i) => break (buf, i + 1),
            None if start == 0 => break (buf, 0),
            None => chunk = (chunk * 4).min(len),
        }
    };
    let line = &buf[line_start..buf.len() - 1];
    let fields: crate::record::ChainFields<'_> = serde_json::from_slice(line).ok()?;
    let checksum = fields.checksum.as_deref()?;
    Some(serde_json::json!({"sequence_number": fields.sequence_number + 1, "previous_hash": checksum}).to_string())
}

fn write_anchor(dir: &Path, anchor: &str) -> io::Result<()> {
    let tmp = dir.join(".audit-anchor.tmp");
    {
        let mut f = open_private(&tmp, false)?;
        f.set_len(0)?;
        f.write_all(anchor.as_bytes())?;
        f.sync_all()?;
    }
    fs::rename(&tmp, dir.join(ANCHOR_FILE))?;
    sync_dir(dir)
}

/// Finds the last complete line of the newest non-empty file; moves a torn tail (bytes
/// after the last newline, or trailing lines that are not JSON) to `<file>.torn`.
fn recover_tail(files: &[LogFile]) -> Result<Option<ChainHead>> {
    for f in files.iter().rev() {
        let path = &f.path;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(Error::io("cannot open", path))?;
        let len = file
            .metadata()
            .map_err(Error::io("cannot stat", path))?
            .len();
        if len == 0 {
            continue;
        }
        let mut chunk = TAIL_CHUNK.min(len);
        // Reads the last `chunk` bytes; whenever the torn tail or a line being judged may
        // begin before them, reads further back (4x) and starts over.
        let (start, buf, keep, last_line) = 'read: loop {
            let start = len - chunk;
            let mut buf = vec![0u8; chunk as usize];
            file.seek(SeekFrom::Start(start))
                .and_then(|_| file.read_exact(&mut buf))
                .map_err(Error::io("cannot read", path))?;
            // `keep` = length of buf that holds complete, parseable lines.
            let mut keep = match buf.iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                None if start > 0 => {
                    chunk = (chunk * 4).min(len);
                    continue 'read;
                }
                None => 0,
            };
            let mut last_line: Option<(usize, usize)> = None;
            while keep > 0 {
                let line_start = buf[..keep - 1]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                if line_start == 0 && start > 0 {
                    // The line begins before our chunk: read it whole.
                    chunk = (chunk * 4).min(len);
                    continue 'read;
                }
                let line = &buf[line_start..keep - 1];
                if serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok() {
                    last_line = Some((line_start, keep - 1));
                    break;
                }
                keep = line_start;
            }
            break (start, buf, keep, last_line);
        };
        let cut = start + keep as u64;
        if cut < len {
            let torn = &buf[keep..];
            let torn_path = path.with_extension("jsonl.torn");
            let mut t =
                open_private(&torn_path, true).map_err(Error::io("cannot create", &torn_path))?;
            t.write_all(torn)
                .and_then(|()| t.write_all(b"\n"))
                .and_then(|()| t.sync_all())
                .map_err(Error::io("cannot write", &torn_path))?;
            file.set_len(cut)
                .and_then(|()| file.sync_all())
                .map_err(Error::io("cannot truncate", path))?;
            eprintln!(
                "audit: recovered a torn final line in {}: {} byte(s) moved to {}; the chain continues from the last complete line",
                path.display(),
                torn.len(),
                torn_path.display()
            );
        }
        let Some((a, b)) = last_line else {
            continue; // the whole file was torn (cut to 0 above); look at the previous one
        };
        let line = &buf[a..b];
        let fields: crate::record::ChainFields<'_> = serde_json::from_slice(line).map_err(|e| {
            Error::Integrity(format!(
                "{}: the last line is JSON but not an audit event ({e}); this directory holds \
                 foreign data: point the trail at another directory or move the file aside",
                path.display()
            ))
        })?;
        let line_no = count_lines_before(&mut file, start + a as u64, path)? + 1;
        return Ok(Some(ChainHead {
            sequence_number: fields.sequence_number,
            line: String::from_utf8_lossy(line).into_owned(),
            location: format!("{}:{line_no}", path.display()),
        }));
    }
    Ok(None)
}

fn count_lines_before(file: &mut File, offset: u64, path: &Path) -> Result<u64> {
    file.seek(SeekFrom::Start(0))
        .map_err(Error::io("cannot read", path))?;
    let mut remaining = offset;
    let mut count = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    while remaining > 0 {
        let want = remaining.min(buf.len() as u64) as usize;
        file.read_exact(&mut buf[..want])
            .map_err(Error::io("cannot read", path))?;
        count += buf[..want].iter().filter(|&&b| b == b'\n').count() as u64;
        remaining -= want as u64;
    }
    Ok(count)
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
        self.flush_blocking()?;
        self.lock().current = None;
        Ok(())
    }

    async fn resume(&self) -> Result<Option<ChainHead>> {
        Ok(self.head.clone())
    }

    fn query_dir(&self) -> Option<&Path> {
        Some(&self.dir)
    }
}

/// Today's file name, for messages and tests: `audit_YYYY-MM-DD.jsonl` in UTC.
pub fn todays_file_name() -> String {
    log_file_name(Utc::now().date_naive(), 0)
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

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn file_names_round_trip() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 26).expect("date");
        assert_eq!(log_file_name(d, 0), "audit_2026-11-26.jsonl");
        assert_eq!(log_file_name(d, 3), "audit_2026-11-26.3.jsonl");
        assert_eq!(
            parse_log_file_name("audit_2026-11-26.3.jsonl"),
            Some((d, 3))
        );
        assert_eq!(parse_log_file_name("audit_2026-11-26.jsonl"), Some((d, 0)));
        assert_eq!(parse_log_file_name("audit_2026-11-26.0.jsonl"), None);
        assert_eq!(parse_log_file_name("audit_2026-11-26.jsonl.torn"), None);
        assert_eq!(parse_log_file_name("audit_x.jsonl"), None);
    }
}
