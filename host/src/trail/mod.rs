//! `AuditTrail`: accepts events, chains them in one critical section, and hands them in
//! batches to a worker thread that writes every backend.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, SubsecRound, Utc};
use tokio::sync::{Notify, watch};

use crate::backend::{Batch, ChainHead, StorageBackend};
use crate::catch_panics::catch_panics;
use crate::error::{Error, Result};
use crate::event::{
    AuditEvent, AuditEventType, AuditLogLevel, ErrorReport, data_access_event_type,
};
use crate::file::{DEFAULT_MAX_FILE_BYTES, FileStorageBackend};
use crate::lane::{BackendOptions, Lane, LaneConfig, LaneEnd, LaneObserver, Offer, spool_dir_name};
use crate::policy::{AlertReason, CompliancePolicy};
use crate::query::{EventQuery, query_dir};
use crate::record::{AuditRecord, Integrity, Prepared, check_line};
use crate::settings::{
    AlertHook, Clock, DEFAULT_FLUSH_INTERVAL_MS, DEFAULT_QUEUE_CAPACITY,
    DEFAULT_SHUTDOWN_TIMEOUT_MS, Durability, OnFull,
};
use crate::statistics::{BackendState, BackendStatistics, PolicySummary, Receipt, Statistics};
use crate::verify::{VerifyReport, verify_dir};

const MIN_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Builds an [`AuditTrail`]. Defaults:
///
/// | setting | default |
/// |---|---|
/// | `policy` | [`CompliancePolicy::default`] |
/// | `storage_path` | `audit_logs` |
/// | backends | one [`FileStorageBackend`] at `storage_path` |
/// | `durability` | [`Durability::Batched`] |
/// | `flush_interval` | 200 ms |
/// | `queue_capacity` | 16,384 events |
/// | `on_full` | [`OnFull::Block`] |
/// | integrity | SHA-256 |
///
/// ```no_run
/// # fn main() -> audit_host::Result<()> {
/// use audit_host::{AuditTrail, Durability};
/// let trail = AuditTrail::builder().storage_path("/var/log/audit").durability(Durability::Sync).build()?;
/// # Ok(()) }
/// ```
#[must_use]
pub struct AuditTrailBuilder {
    policy: CompliancePolicy,
    storage_path: PathBuf,
    /// In configuration order: the worker writes them in this order.
    backends: Vec<BackendSpec>,
    durability: Durability,
    flush_interval: Duration,
    shutdown_timeout: Duration,
    queue_capacity: usize,
    on_full: OnFull,
    integrity: Integrity,
    clock: Option<Clock>,
    alert_hook: Option<AlertHook>,
}

impl fmt::Debug for AuditTrailBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditTrailBuilder")
            .field("policy", &self.policy)
            .field("storage_path", &self.storage_path)
            .field("backends", &self.backends)
            .field("durability", &self.durability)
            .field("flush_interval", &self.flush_interval)
            .field("queue_capacity", &self.queue_capacity)
            .field("on_full", &self.on_full)
            .finish_non_exhaustive()
    }
}

impl Default for AuditTrailBuilder {
    fn default() -> Self {
        Self {
            policy: CompliancePolicy::default(),
            storage_path: PathBuf::from("audit_logs"),
            backends: Vec::new(),
            durability: Durability::Batched,
            flush_interval: Duration::from_millis(DEFAULT_FLUSH_INTERVAL_MS),
            shutdown_timeout: Duration::from_millis(DEFAULT_SHUTDOWN_TIMEOUT_MS),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            on_full: OnFull::Block,
            integrity: Integrity::Sha256,
            clock: None,
            alert_hook: None,
        }
    }
}

impl AuditTrailBuilder {
    /// The compliance policy.
    pub fn policy(self, policy: CompliancePolicy) -> Self {
        Self { policy, ..self }
    }

    /// Where the default file backend writes (default `audit_logs`).
    pub fn storage_path(self, path: impl Into<PathBuf>) -> Self {
        Self {
            storage_path: path.into(),
            ..self
        }
    }

    /// Adds an in-process backend with the default [`BackendOptions`] (required, spooled
    /// under `STORAGE_PATH/.spool/NAME`). It gets its own worker: a slow or failing backend
    /// does not hold up the others. With none added (and no file backend), the trail uses a
    /// [`FileStorageBackend`] at `storage_path`.
    pub fn backend(self, backend: Box<dyn StorageBackend>) -> Self {
        self.backend_with(backend, BackendOptions::default())
    }

    /// Adds an in-process backend with the given options.
    pub fn backend_with(
        mut self,
        backend: Box<dyn StorageBackend>,
        options: BackendOptions,
    ) -> Self {
        self.backends.push(BackendSpec::Ready(backend, options));
        self
    }

    /// Adds a file backend at `path` rotating at `max_file_bytes` (opened by `build`, with
    /// the policy's retention).
    pub fn file_backend(mut self, path: impl Into<PathBuf>, max_file_bytes: u64) -> Self {
        self.backends
            .push(BackendSpec::File(None, path.into(), max_file_bytes));
        self
    }

    /// Like [`file_backend`](Self::file_backend), with a name for messages and statistics.
    pub fn named_file_backend(
        mut self,
        name: impl Into<String>,
        path: impl Into<PathBuf>,
        max_file_bytes: u64,
    ) -> Self {
        self.backends.push(BackendSpec::File(
            Some(name.into()),
            path.into(),
            max_file_bytes,
        ));
        self
    }

    /// Batched (default) or sync durability.
    pub fn durability(self, durability: Durability) -> Self {
        Self { durability, ..self }
    }

    /// Longest time between fdatasyncs in batched mode (default 200 ms).
    pub fn flush_interval(self, interval: Duration) -> Self {
        Self {
            flush_interval: interval,
            ..self
        }
    }

    /// How long `close` keeps retrying a failing backend before it gives up and reports the
    /// events it could not write (default 5 s).
    pub fn shutdown_timeout(self, timeout: Duration) -> Self {
        Self {
            shutdown_timeout: timeout,
            ..self
        }
    }

    /// How many accepted events may wait for storage (default 16,384).
    pub fn queue_capacity(self, capacity: usize) -> Self {
        Self {
            queue_capacity: capacity,
            ..self
        }
    }

    /// What to do when the queue is full (default block).
    pub fn on_full(self, on_full: OnFull) -> Self {
        Self { on_full, ..self }
    }

    /// Chain with HMAC-SHA256 under `key` (at least 32 bytes) instead of plain SHA-256.
    ///
    /// # Errors
    /// [`Error::Config`] when the key is shorter than 32 bytes.
    pub fn hmac_key(self, key: &[u8]) -> Result<Self> {
        let integrity = Integrity::hmac(key).map_err(|message| crate::ConfigError {
            file: PathBuf::new(),
            line: None,
            key: "trail.integrity.hmac_key_file".into(),
            message,
        })?;
        Ok(Self { integrity, ..self })
    }

    /// Chain with HMAC-SHA256 under the key stored in `path`: refused if the file is
    /// readable by group or others, or shorter than 32 bytes. The bytes are used as stored.
    ///
    /// # Errors
    /// [`Error::Config`] naming the file and what to do.
    pub fn hmac_key_file(self, path: impl AsRef<Path>) -> Result<Self> {
        let integrity =
            crate::config::read_key_file(path.as_ref()).map_err(|message| crate::ConfigError {
                file: PathBuf::new(),
                line: None,
                key: "trail.integrity.hmac_key_file".into(),
                message,
            })?;
        Ok(Self { integrity, ..self })
    }

    /// Chain with the given [`Integrity`] (SHA-256 or a keyed HMAC).
    pub fn integrity(self, integrity: Integrity) -> Self {
        Self { integrity, ..self }
    }

    /// Replaces the wall clock (UTC) used to stamp events.
    pub fn clock(self, clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        Self {
            clock: Some(Arc::new(clock)),
            ..self
        }
    }

    /// Registers the hook that receives events matching the policy's alert rules (critical
    /// errors, security events, PII under GDPR, PHI under HIPAA). It runs on the logging
    /// task right after the event is accepted: keep it quick.
    pub fn alert_hook(
        self,
        hook: impl Fn(&AuditEvent, &[AlertReason]) + Send + Sync + 'static,
    ) -> Self {
        Self {
            alert_hook: Some(Arc::new(hook)),
            ..self
        }
    }

    /// Opens the backends, resumes the chain from what is stored, and starts the worker.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for a policy setting the trail cannot honour,
    /// [`Error::Config`] for a zero queue capacity, [`Error::DirectoryLocked`] /
    /// [`Error::Io`] from the file backend, [`Error::Integrity`] when the stored chain was
    /// written with other integrity settings.
    pub fn build(self) -> Result<AuditTrail> {
        self.policy.validate()?;
        if self.flush_interval.is_zero() {
            return Err(crate::ConfigError {
                file: PathBuf::new(),
                line: None,
                key: "trail.flush_interval_ms".into(),
                message: "must be at least 1 ms".into(),
            }
            .into());
        }
        if self.queue_capacity == 0 {
            return Err(crate::ConfigError {
                file: PathBuf::new(),
                line: None,
                key: "trail.queue_capacity".into(),
                message: "must be at least 1".into(),
            }
            .into());
        }
        let mut specs = self.backends;
        if specs.is_empty() {
            specs.push(BackendSpec::File(
                None,
                self.storage_path.clone(),
                DEFAULT_MAX_FILE_BYTES,
            ));
        }
        let mut backends: Vec<(Box<dyn StorageBackend>, Option<LaneConfig>)> =
            Vec::with_capacity(specs.len());
        let mut file_dirs = Vec::new();
        let mut spool_dirs: Vec<PathBuf> = Vec::new();
        for spec in specs {
            match spec {
                BackendSpec::Ready(b, opts) => {
                    let spool = if opts.spool_max_bytes == 0 {
                        None
                    } else {
                        let dir = opts.spool_dir.clone().unwrap_or_else(|| {
                            self.storage_path
                                .join(".spool")
                                .join(spool_dir_name(b.name()))
                        });
                        if spool_dirs.contains(&dir) {
                            return Err(crate::ConfigError {
                                file: PathBuf::new(),
                                line: None,
                                key: "backends.name".into(),
                                message: format!(
                                    "two backends would share the spool {}: give each backend a distinct `name` (or `spool_dir`)",
                                    dir.display()
                                ),
                            }
                            .into());
                        }
                        spool_dirs.push(dir.clone());
                        Some((dir, opts.spool_max_bytes))
                    };
                    let cfg = LaneConfig {
                        required: opts.required,
                        spool,
                        retry_initial: opts.retry_initial.max(Duration::from_millis(1)),
                        retry_max: opts.retry_max.max(opts.retry_initial),
                        // One trail batch can hold the whole queue: room for two.
                        memory_limit: self.queue_capacity.saturating_mul(2),
                        on_full: self.on_full,
                        durability: self.durability,
                        flush_interval: self.flush_interval,
                    };
                    backends.push((b, Some(cfg)));
                }
                BackendSpec::File(name, path, max) => {
                    let fb = FileStorageBackend::builder(&path)
                        .name(name)
                        .max_file_bytes(max)
                        .retention_days(Some(self.policy.retention_days))
                        .open()?;
                    backends.push((Box::new(fb), None));
                }
            }
        }
        for (b, _) in &backends {
            if let Some(dir) = b.query_dir()
                && !file_dirs.iter().any(|d| d == dir)
            {
                file_dirs.push(dir.to_path_buf());
            }
        }
        AuditTrail::start(
            Config {
                policy: self.policy,
                durability: self.durability,
                flush_interval: self.flush_interval,
                shutdown_timeout: self.shutdown_timeout,
                queue_capacity: self.queue_capacity,
                on_full: self.on_full,
                integrity: self.integrity,
                clock: self.clock,
                alert_hook: self.alert_hook,
                file_dirs,
            },
            backends,
        )
    }
}

/// A backend as configured: ready, or a file backend opened by `build`.
#[derive(Debug)]
enum BackendSpec {
    Ready(Box<dyn StorageBackend>, BackendOptions),
    File(Option<String>, PathBuf, u64),
}

struct Config {
    policy: CompliancePolicy,
    durability: Durability,
    flush_interval: Duration,
    shutdown_timeout: Duration,
    queue_capacity: usize,
    on_full: OnFull,
    integrity: Integrity,
    clock: Option<Clock>,
    alert_hook: Option<AlertHook>,
    file_dirs: Vec<PathBuf>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    total: u64,
    errors: u64,
    security: u64,
    alerts: u64,
}

struct State {
    next_seq: u64,
    prev: Option<[u8; 64]>,
    pending: Vec<AuditRecord>,
    /// Accepted events not yet written by every backend (pending + in the worker's hands).
    queued: usize,
    closing: bool,
    /// When `close` (or drop) asked the writer to stop: the shutdown timeout counts from here.
    closing_since: Option<Instant>,
    flush_target: u64,
    error: Option<(String, Arc<Error>)>,
    worker_idle: bool,
    /// The idle writer is lingering for more events to fill its batch (batched mode):
    /// producers wake it only once `wake_batch` events wait.
    lingering: bool,
    /// Waiting events at which producers wake a lingering writer.
    linger_target: usize,
    counters: Counters,
}

#[derive(Debug, Clone, Default)]
struct Progress {
    /// Every event up to this sequence is written and fdatasync'd by every backend.
    durable: u64,
    /// The current storage failure, if any.
    error: Option<(String, Arc<Error>)>,
    /// The worker has stopped (after close).
    stopped: bool,
    /// Events lost because the worker had to stop with them unwritten.
    abandoned: usize,
}

pub(crate) struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    space: Notify,
    progress: watch::Sender<Progress>,
    /// Per backend, in configuration order; updated after each call.
    backend_stats: Mutex<Vec<BackendStatistics>>,
    /// The backends with a worker of their own.
    lanes: Vec<Arc<Lane>>,
    /// Written (and, when due, fdatasync'd) by the writer's own backends and handed to
    /// every lane up to here.
    dispatched: AtomicU64,
    /// `progress.durable`, readable without the watch channel's lock (for spinning callers).
    durable_now: AtomicU64,
    /// The sequence number of the last accepted event (for the spinning writer).
    accepted: AtomicU64,
    /// Sync callers waiting in [`AuditTrail::wait_durable`].
    sync_waiters: AtomicUsize,
    /// The writer's recent `fdatasync` time in nanoseconds (moving average), sync mode.
    sync_nanos: AtomicU64,
    /// The writer is inside its backends' `flush` (their `fdatasync`).
    syncing: AtomicBool,
    /// Random bytes for generated `event_id`s.
    ids: Mutex<crate::ids::IdPool>,
    /// When polling (sync mode) is off: a poller lost its CPU, or polls ran out of budget.
    spin_pause: SpinPause,
}

impl Shared {
    /// Updates one backend's statistics.
    pub(crate) fn update_stats(&self, backend: usize, f: impl FnOnce(&mut BackendStatistics)) {
        let mut stats = self
            .backend_stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = stats.get_mut(backend) {
            f(s);
        }
    }

    /// The writer waits up to `timeout` for `target` events to be pending; producers wake it
    /// once that many wait.
    fn linger<'a>(
        &self,
        mut st: MutexGuard<'a, State>,
        target: usize,
        timeout: Duration,
    ) -> MutexGuard<'a, State> {
        st.worker_idle = true;
        st.lingering = true;
        st.linger_target = target;
        let mut st = self
            .wake
            .wait_timeout(st, timeout)
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0;
        st.worker_idle = false;
        st.lingering = false;
        st
    }

    /// Accepted events the lanes hold in memory (not stored by their backend, not spooled).
    pub(crate) fn lane_memory(&self) -> usize {
        self.lanes.iter().map(|l| l.memory_events()).sum()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No code path panics while holding this lock except through a bug; keep going with
        // the state as it is rather than poisoning every caller.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl LaneObserver for Shared {
    fn update_stats(&self, backend: usize, f: &mut dyn FnMut(&mut BackendStatistics)) {
        Shared::update_stats(self, backend, f);
    }

    /// New events are refused (fail closed) while this lasts.
    fn set_error(&self, backend: &str, e: Arc<Error>) {
        let err = (backend.to_owned(), e);
        self.lock().error = Some(err.clone());
        self.progress.send_modify(|p| p.error = Some(err));
    }

    /// Clears the failure if `backend` reported it.
    fn clear_error_of(&self, backend: &str) {
        let mut st = self.lock();
        if st.error.as_ref().is_some_and(|(b, _)| b == backend) {
            st.error = None;
            drop(st);
            self.progress.send_modify(|p| p.error = None);
        }
    }

    /// Publishes the durable sequence: what the writer's backends made durable, bounded by
    /// every required lane.
    fn publish_durable(&self) {
        let mut durable = self.dispatched.load(Ordering::Acquire);
        for lane in &self.lanes {
            if lane.cfg.required {
                durable = durable.min(lane.durable());
            }
        }
        self.progress.send_if_modified(|p| {
            if durable > p.durable {
                p.durable = durable;
                self.durable_now.fetch_max(durable, Ordering::Release);
                true
            } else {
                false
            }
        });
    }

    /// Counts one backend call: `stored` events on success, the error otherwise.
    fn record_call(&self, backend: usize, error: Option<&Error>, stored: u64) {
        let mut stats = self
            .backend_stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(s) = stats.get_mut(backend) else {
            return;
        };
        match error {
            None => s.delivered += stored,
            Some(e) => {
                s.failed_calls += 1;
                s.last_error = Some(e.to_string());
                s.last_error_at =
                    Some(Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
            }
        }
    }
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Prepared> = std::cell::RefCell::new(Prepared::default());
}

/// A tamper-evident, append-only audit trail.
///
/// Events are sequenced, timestamped, hash-chained and serialized to one canonical JSON line
/// in one critical section, then written in batches by a worker thread to every backend
/// (by default one [`FileStorageBackend`] in `audit_logs/`).
///
/// ```no_run
/// # async fn demo() -> audit_host::Result<()> {
/// use audit_host::{AuditTrail, AuditEventType};
/// let trail = AuditTrail::new(None, None, None)?;
/// let id = trail.log_event(AuditEventType::ConfigChanged, "raised rate limit")
///     .user_id("alice")
///     .meta("limit", 500)
///     .await?;
/// trail.close().await?;
/// # let _ = id; Ok(()) }
/// ```
pub struct AuditTrail {
    shared: Arc<Shared>,
    worker: Mutex<Option<JoinHandle<()>>>,
    policy: CompliancePolicy,
    durability: Durability,
    queue_capacity: usize,
    on_full: OnFull,
    integrity: Integrity,
    clock: Option<Clock>,
    alert_hook: Option<AlertHook>,
    file_dirs: Vec<PathBuf>,
    backend_names: Vec<String>,
    hostname: String,
    pid: i64,
}

impl fmt::Debug for AuditTrail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditTrail")
            .field("backends", &self.backend_names)
            .field("durability", &self.durability)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl AuditTrail {
    /// The Python constructor's counterpart: `AuditTrail(policy, storage_path)`, plus an
    /// optional in-process backend. `None` everywhere gives the default policy and a file
    /// backend in `audit_logs/`.
    ///
    /// # Errors
    /// As [`AuditTrailBuilder::build`].
    pub fn new(
        policy: Option<CompliancePolicy>,
        storage_path: Option<PathBuf>,
        backend: Option<Box<dyn StorageBackend>>,
    ) -> Result<Self> {
        let mut b = Self::builder();
        if let Some(p) = policy {
            b = b.policy(p);
        }
        if let Some(s) = storage_path {
            b = b.storage_path(s);
        }
        if let Some(be) = backend {
            b = b.backend(be);
        }
        b.build()
    }

    /// A builder with every default.
    pub fn builder() -> AuditTrailBuilder {
        AuditTrailBuilder::default()
    }

    /// Builds a trail from a TOML configuration file (see `docs/configuration.md`).
    ///
    /// # Errors
    /// [`Error::Config`] naming the file, line and key of a bad setting, and everything
    /// [`AuditTrailBuilder::build`] returns.
    pub fn from_config_file(path: impl AsRef<Path>) -> Result<Self> {
        crate::config::TrailConfig::load(path.as_ref())?
            .builder()?
            .build()
    }

    fn start(
        cfg: Config,
        backends: Vec<(Box<dyn StorageBackend>, Option<LaneConfig>)>,
    ) -> Result<Self> {
        let (progress, _) = watch::channel(Progress::default());
        let mut lanes = Vec::new();
        let mut slots = Vec::new();
        let mut lane_slots = Vec::new();
        let mut stats = Vec::new();
        for (index, (backend, lane_cfg)) in backends.into_iter().enumerate() {
            let name = backend.name().to_owned();
            stats.push(BackendStatistics {
                name: name.clone(),
                required: lane_cfg.as_ref().is_none_or(|c| c.required),
                state: BackendState::Ok,
                ..BackendStatistics::default()
            });
            match lane_cfg {
                None => slots.push(Slot {
                    backend,
                    written: 0,
                    index,
                }),
                Some(lane_cfg) => {
                    let lane = Arc::new(Lane::new(name, index, lane_cfg, 0)?);
                    lanes.push(Arc::clone(&lane));
                    lane_slots.push(LaneSlot {
                        lane,
                        backend: Some(backend),
                        handed: 0,
                        thread: None,
                    });
                }
            }
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                next_seq: 1,
                prev: None,
                pending: Vec::new(),
                queued: 0,
                closing: false,
                closing_since: None,
                flush_target: 0,
                error: None,
                worker_idle: false,
                lingering: false,
                linger_target: 1,
                counters: Counters::default(),
            }),
            wake: Condvar::new(),
            space: Notify::new(),
            progress,
            backend_stats: Mutex::new(stats.clone()),
            lanes,
            dispatched: AtomicU64::new(0),
            durable_now: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            sync_waiters: AtomicUsize::new(0),
            sync_nanos: AtomicU64::new(0),
            syncing: AtomicBool::new(false),
            ids: Mutex::default(),
            spin_pause: SpinPause::new(),
        });
        let backend_names: Vec<String> = stats.into_iter().map(|s| s.name).collect();
        let (head_tx, head_rx) = std::sync::mpsc::channel();
        let worker = Worker {
            shared: Arc::clone(&shared),
            backends: slots,
            lanes: lane_slots,
            durability: cfg.durability,
            interval: cfg.flush_interval,
            shutdown_timeout: cfg.shutdown_timeout,
            integrity: cfg.integrity.clone(),
            queue_capacity: cfg.queue_capacity,
        };
        let handle = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || worker.run(head_tx))
            .map_err(|e| Error::backend(format!("cannot start the audit writer thread: {e}")))?;
        let trail = Self {
            shared,
            worker: Mutex::new(Some(handle)),
            policy: cfg.policy,
            durability: cfg.durability,
            queue_capacity: cfg.queue_capacity,
            on_full: cfg.on_full,
            integrity: cfg.integrity,
            clock: cfg.clock,
            alert_hook: cfg.alert_hook,
            file_dirs: cfg.file_dirs,
            backend_names,
            hostname: gethostname::gethostname().to_string_lossy().into_owned(),
            pid: i64::from(std::process::id()),
        };
        let head = head_rx.recv().unwrap_or_else(|_| {
            Err(Error::backend(
                "the audit writer thread stopped while opening the backends",
            ))
        });
        if let Err(e) = head.and_then(|h| trail.resume_from(h)) {
            trail.stop_worker();
            return Err(e);
        }
        Ok(trail)
    }

    fn resume_from(&self, head: Option<ChainHead>) -> Result<()> {
        let Some(head) = head else { return Ok(()) };
        let fields = check_line(head.line.as_bytes(), &self.integrity).map_err(|problem| {
            Error::Integrity(format!(
                "cannot continue the stored chain: the last event at {} does not verify with this \
                 trail's integrity settings ({problem}). Use the same [trail.integrity] key it was \
                 written with, or give this backend a new, empty store",
                head.location
            ))
        })?;
        let mut prev = [0u8; 64];
        let checksum = fields.checksum.as_deref().unwrap_or_default();
        prev.copy_from_slice(checksum.as_bytes());
        let mut st = self.shared.lock();
        st.next_seq = head.sequence_number + 1;
        st.prev = Some(prev);
        st.flush_target = head.sequence_number;
        drop(st);
        self.shared
            .dispatched
            .fetch_max(head.sequence_number, Ordering::AcqRel);
        self.shared.publish_durable();
        Ok(())
    }

    fn now(&self) -> DateTime<Utc> {
        match &self.clock {
            Some(c) => c(),
            None => Utc::now(),
        }
    }

    /// Records a fully built event and returns its id once it is accepted (in `sync`
    /// durability: once it is fdatasync'd).
    ///
    /// # Errors
    /// [`Error::Closed`] after [`close`](Self::close); [`Error::QueueFull`] with
    /// `on_full = fail`; [`Error::Storage`] while a backend is failing (in batched mode a
    /// failure after an earlier call returned is reported here); in sync mode also when
    /// this event could not be made durable (it stays queued and is retried);
    /// [`Error::InvalidEvent`] for a `timestamp` outside the years 0000-9999.
    pub async fn log(&self, event: AuditEvent) -> Result<String> {
        self.log_receipt(event).await.map(|r| r.event_id)
    }

    /// Like [`log`](Self::log), also returning the sequence number the event got (0 when
    /// the policy is disabled and nothing was recorded).
    ///
    /// # Errors
    /// As [`log`](Self::log).
    pub async fn log_receipt(&self, event: AuditEvent) -> Result<Receipt> {
        self.log_ref(&event).await
    }

    /// Like [`log_receipt`](Self::log_receipt), borrowing the event: for callers that log
    /// the same event value repeatedly or keep it afterwards, no clone is needed. The event
    /// is stored with the trail's `compliance_level`, hostname and pid defaults, as
    /// [`log`](Self::log) does.
    ///
    /// # Errors
    /// As [`log`](Self::log).
    pub async fn log_ref(&self, event: &AuditEvent) -> Result<Receipt> {
        if !self.policy.enabled {
            return Ok(Receipt {
                sequence_number: 0,
                event_id: String::new(),
            });
        }
        // Such a date has no RFC 3339 form and no `audit_YYYY-MM-DD.jsonl` file name: the
        // event would land in a file that verify, query and recovery never see.
        if let Some(ts) = event.timestamp
            && !(0..=9999).contains(&ts.year())
        {
            return Err(Error::invalid(
                "timestamp",
                format!("{ts} is outside the years 0000-9999 that RFC 3339 can express"),
            ));
        }
        let event_id = match &event.event_id {
            Some(id) => id.clone(),
            None => self
                .shared
                .ids
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .next_id()?,
        };
        let error_kind = event.event_type == AuditEventType::ErrorOccurred
            || matches!(
                event.log_level,
                AuditLogLevel::Error | AuditLogLevel::Critical
            );
        let security_kind = event.event_type.is_security();
        let (seq, ts) = loop {
            let notified = self.shared.space.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            let accepted = SCRATCH.with(|cell| {
                let mut prepared = cell.borrow_mut();
                prepared.encode(
                    event,
                    &event_id,
                    &self.hostname,
                    self.pid,
                    self.policy.level,
                );
                self.try_accept(&prepared, event, error_kind, security_kind)
            })?;
            match accepted {
                Some(done) => break done,
                None if self.on_full == OnFull::Fail => {
                    return Err(Error::QueueFull {
                        capacity: self.queue_capacity,
                    });
                }
                None => notified.await,
            }
        };
        if let Some(hook) = &self.alert_hook {
            let reasons = self.policy.alert_reasons(event);
            if !reasons.is_empty() {
                self.shared.lock().counters.alerts += 1;
                // The hook sees the event as stored.
                let mut event = event.clone();
                event.compliance_level = self.policy.level;
                event.event_id = Some(event_id.clone());
                event.hostname.get_or_insert_with(|| self.hostname.clone());
                event.process_id.get_or_insert(self.pid);
                event.sequence_number = Some(seq);
                event.timestamp = Some(ts);
                hook(&event, &reasons);
            }
        }
        if self.durability == Durability::Sync {
            self.wait_durable(seq)
                .await
                .map_err(|e| Error::NotDurable {
                    sequence: seq,
                    event_id: event_id.clone(),
                    source: Arc::new(e),
                })?;
        }
        Ok(Receipt {
            sequence_number: seq,
            event_id,
        })
    }

    /// Every event up to this sequence number is written and fdatasync'd by every backend.
    pub fn durable_sequence(&self) -> u64 {
        self.shared.progress.borrow().durable
    }

    /// The critical section: sequence, timestamp, previous hash, checksum, enqueue.
    /// `Ok(None)`: the queue is full.
    fn try_accept(
        &self,
        prepared: &Prepared,
        event: &AuditEvent,
        error_kind: bool,
        security_kind: bool,
    ) -> Result<Option<(u64, DateTime<Utc>)>> {
        let mut st = self.shared.lock();
        if st.closing {
            return Err(Error::Closed);
        }
        if let Some((backend, source)) = &st.error {
            return Err(Error::Storage {
                backend: backend.clone(),
                queued: st.queued + self.shared.lane_memory(),
                source: Arc::clone(source),
            });
        }
        if st.queued >= self.queue_capacity {
            return Ok(None);
        }
        let seq = st.next_seq;
        // The line stores microseconds: so does the record (and what the alert hook sees).
        let ts = event
            .timestamp
            .unwrap_or_else(|| self.now())
            .trunc_subsecs(6);
        let (record, checksum) =
            prepared.assemble(event, seq, st.prev.as_ref(), ts, &self.integrity);
        st.next_seq += 1;
        self.shared.accepted.store(seq, Ordering::Release);
        st.prev = Some(checksum);
        st.pending.push(record);
        st.queued += 1;
        st.counters.total += 1;
        st.counters.errors += u64::from(error_kind);
        st.counters.security += u64::from(security_kind);
        if self.durability == Durability::Sync {
            st.flush_target = seq;
        }
        // A lingering writer is woken once a batch's worth waits (or by its short timer): one
        // futex wake per batch, not per event.
        if st.worker_idle && (!st.lingering || st.pending.len() >= st.linger_target) {
            st.worker_idle = false;
            self.shared.wake.notify_one();
        }
        Ok(Some((seq, ts)))
    }

    /// Waits until `seq` is durable, or reports why it is not.
    async fn wait_durable(&self, seq: u64) -> Result<()> {
        let waiters = WaiterGuard::new(&self.shared.sync_waiters);
        // A lone sync caller (the usual case in a request handler) polls for its commit for
        // about one `fdatasync`, yielding to the runtime's other tasks in between, instead of
        // parking its thread: waking a parked thread costs 30-100 us on virtual machines,
        // which is a third of a fast disk's `fdatasync`. Concurrent callers share a group
        // commit and park.
        let budget = caller_spin(self.shared.sync_nanos.load(Ordering::Relaxed));
        if waiters.alone && !budget.is_zero() && !self.shared.spin_pause.active() {
            let mut last = Instant::now();
            let until = last + budget;
            loop {
                if self.shared.durable_now.load(Ordering::Acquire) >= seq {
                    self.shared.spin_pause.succeeded();
                    return Ok(());
                }
                tokio::task::yield_now().await;
                // Out of budget, or the thread lost its core for a while (a busy machine,
                // or the runtime's other tasks): polling on would only take CPU from the
                // writer. Park instead.
                let now = Instant::now();
                if now - last > SPIN_GAP {
                    self.shared.spin_pause.start(now);
                    break;
                }
                if now >= until {
                    if !self.shared.syncing.load(Ordering::Relaxed) {
                        self.shared.spin_pause.timed_out(now);
                    }
                    break;
                }
                last = now;
            }
        }
        let mut rx = self.shared.progress.subscribe();
        let p = rx
            .wait_for(|p| p.durable >= seq || p.error.is_some() || p.stopped)
            .await
            .map_err(|_| Error::Closed)?
            .clone();
        if p.durable >= seq {
            return Ok(());
        }
        match p.error {
            Some((backend, source)) => {
                let queued = self.shared.lock().queued + self.shared.lane_memory();
                Err(Error::Storage {
                    backend,
                    queued,
                    source,
                })
            }
            None => Err(Error::Closed),
        }
    }

    /// Starts an event the way the Python `log_event(event_type, message, **kwargs)` does:
    /// chain setters for the keyword arguments, then `.await` it.
    ///
    /// ```no_run
    /// # async fn demo(trail: &audit_host::AuditTrail) -> audit_host::Result<()> {
    /// use audit_host::{AuditEventType, AuditLogLevel};
    /// trail.log_event(AuditEventType::DataExport, "exported ledger")
    ///     .log_level(AuditLogLevel::Warning)
    ///     .user_id("bob")
    ///     .contains_pii(true)
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn log_event(
        &self,
        event_type: AuditEventType,
        message: impl Into<String>,
    ) -> PendingEvent<'_> {
        PendingEvent {
            trail: self,
            event: AuditEvent::new(event_type, message),
        }
    }

    /// A security event: like [`log_event`](Self::log_event) with level `security`.
    pub fn log_security_event(
        &self,
        event_type: AuditEventType,
        message: impl Into<String>,
    ) -> PendingEvent<'_> {
        self.log_event(event_type, message)
            .log_level(AuditLogLevel::Security)
    }

    /// A data access: `operation` `read` → `data_access`, `write`/`update` →
    /// `data_modification`, `delete` → `data_deletion`, `export` → `data_export`; message
    /// `Data {operation} on resource: {resource}`; `metadata.resource` set.
    pub fn log_data_access(&self, resource: &str, operation: &str) -> PendingEvent<'_> {
        self.log_event(
            data_access_event_type(operation),
            format!("Data {operation} on resource: {resource}"),
        )
        .operation(operation)
        .meta("resource", resource)
    }

    /// An error: type `error_occurred`, message `Error occurred: {message}`, level from the
    /// severity, the report's context as `error_context`.
    pub fn log_error(&self, report: ErrorReport) -> PendingEvent<'_> {
        PendingEvent {
            trail: self,
            event: report.into_event(),
        }
    }

    /// Returns once every event accepted before the call is written and fdatasync'd by
    /// every backend.
    ///
    /// # Errors
    /// [`Error::Storage`] when a backend is failing (the events stay queued and are
    /// retried); [`Error::Closed`] if the writer stopped.
    pub async fn flush(&self) -> Result<()> {
        let target = {
            let mut st = self.shared.lock();
            let target = st.next_seq - 1;
            if let Some((backend, source)) = &st.error {
                return Err(Error::Storage {
                    backend: backend.clone(),
                    queued: st.queued + self.shared.lane_memory(),
                    source: Arc::clone(source),
                });
            }
            st.flush_target = st.flush_target.max(target);
            if st.worker_idle {
                st.worker_idle = false;
                self.shared.wake.notify_one();
            }
            target
        };
        self.wait_durable(target).await
    }

    /// Drains the queue, flushes and closes every backend. Afterwards `log_event` returns
    /// [`Error::Closed`]. Calling it again returns the first call's result.
    ///
    /// A backend that fails meanwhile is retried for up to the shutdown timeout (default 5 s).
    ///
    /// # Errors
    /// [`Error::Shutdown`] when a backend still failed when the timeout ran out: it says how
    /// many accepted events were not written to it (they are not stored there) and how many
    /// were not confirmed durable.
    pub async fn close(&self) -> Result<()> {
        {
            let mut st = self.shared.lock();
            st.closing = true;
            st.closing_since.get_or_insert_with(Instant::now);
            self.shared.wake.notify_one();
        }
        self.shared.space.notify_waiters();
        let mut rx = self.shared.progress.subscribe();
        let p = rx
            .wait_for(|p| p.stopped)
            .await
            .map(|p| p.clone())
            .unwrap_or_default();
        self.join_worker();
        let last = self.shared.lock().next_seq - 1;
        match p.error {
            Some((backend, source)) => Err(Error::Shutdown {
                backend,
                unwritten: p.abandoned,
                not_durable: last - p.durable.min(last),
                source,
            }),
            None => Ok(()),
        }
    }

    fn join_worker(&self) {
        let handle = self
            .worker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(h) = handle
            && h.join().is_err()
        {
            eprintln!("audit: the writer thread panicked; this is a bug in audit-host");
        }
    }

    /// Blocking stop used by `Drop` and failed construction.
    fn stop_worker(&self) {
        {
            let mut st = self.shared.lock();
            st.closing = true;
            st.closing_since.get_or_insert_with(Instant::now);
            self.shared.wake.notify_one();
        }
        self.join_worker();
    }

    /// Counters, queue depth and the current failure, if any.
    pub fn statistics(&self) -> Statistics {
        let st = self.shared.lock();
        let p = self.shared.progress.borrow();
        Statistics {
            total_events: st.counters.total,
            error_events: st.counters.errors,
            security_events: st.counters.security,
            alerts: st.counters.alerts,
            queue_size: st.queued,
            last_sequence: st.next_seq - 1,
            durable_sequence: p.durable,
            last_error: st.error.as_ref().map(|(b, e)| format!("{b}: {e}")),
            backends: self.backend_names.clone(),
            per_backend: self
                .shared
                .backend_stats
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
            policy: PolicySummary {
                compliance_level: self.policy.level,
                enabled: self.policy.enabled,
                retention_days: self.policy.retention_days,
                encryption_enabled: false,
            },
        }
    }

    /// The events matching `query`, newest first, read from the first file backend's
    /// directory after a flush. Reads files synchronously.
    ///
    /// # Errors
    /// [`Error::Backend`] when no backend keeps a readable directory; [`Error::Io`] for
    /// read failures; flush errors.
    pub async fn get_events(&self, query: &EventQuery) -> Result<Vec<AuditEvent>> {
        self.flush().await?;
        let dir = self.query_dir()?;
        query_dir(dir, query)?
            .iter()
            .map(|line| AuditEvent::from_json(line))
            .collect()
    }

    /// Verifies the stored chain in the first file backend's directory (after a flush):
    /// contiguous sequence numbers, every checksum, every link.
    ///
    /// # Errors
    /// [`Error::Integrity`] naming the first bad sequence number and its `file:line`;
    /// [`Error::Io`] for read failures.
    pub async fn verify_chain(&self) -> Result<VerifyReport> {
        self.flush().await?;
        verify_dir(self.query_dir()?, &self.integrity).map_err(|e| match e {
            crate::verify::VerifyError::Io(e) => e,
            bad => Error::Integrity(bad.to_string()),
        })
    }

    fn query_dir(&self) -> Result<&Path> {
        self.file_dirs.first().map(PathBuf::as_path).ok_or_else(|| {
            Error::backend("no file backend is configured, so there is no audit directory to read")
        })
    }

    /// The policy in force.
    pub fn policy(&self) -> &CompliancePolicy {
        &self.policy
    }

    /// The directories of the file backends, in configuration order.
    pub fn file_dirs(&self) -> &[PathBuf] {
        &self.file_dirs
    }
}

impl Drop for AuditTrail {
    fn drop(&mut self) {
        let running = self.worker.get_mut().map(|w| w.is_some()).unwrap_or(false);
        if !running {
            return;
        }
        let pending = self.shared.lock().queued;
        self.stop_worker();
        let p = self.shared.progress.borrow().clone();
        match p.error {
            Some((backend, e)) if p.abandoned > 0 => eprintln!(
                "audit: AuditTrail dropped without close(): {} event(s) could NOT be written ({backend}: {e})",
                p.abandoned
            ),
            _ => eprintln!(
                "audit: AuditTrail dropped without close(): flushed {pending} pending event(s); call close().await before dropping"
            ),
        }
    }
}

/// An event being built by [`AuditTrail::log_event`] and friends; `.await` it to record it.
#[must_use = "an event is recorded only when the PendingEvent is awaited"]
#[derive(Debug)]
pub struct PendingEvent<'a> {
    trail: &'a AuditTrail,
    event: AuditEvent,
}

macro_rules! forward {
    ($( $(#[$m:meta])* $name:ident ( $($arg:ident : $ty:ty),* ) ; )*) => {
        $(
            $(#[$m])*
            pub fn $name(self, $($arg: $ty),*) -> Self {
                Self { event: self.event.$name($($arg),*), ..self }
            }
        )*
    };
}

impl<'a> PendingEvent<'a> {
    forward! {
        /// Sets `component`.
        component(v: impl Into<String>);
        /// Sets `operation`.
        operation(v: impl Into<String>);
        /// Sets `user_id`.
        user_id(v: impl Into<String>);
        /// Sets `session_id`.
        session_id(v: impl Into<String>);
        /// Sets `request_id`.
        request_id(v: impl Into<String>);
        /// Sets `client_ip`.
        client_ip(v: impl Into<String>);
        /// Sets `user_agent`.
        user_agent(v: impl Into<String>);
        /// Sets `container_id`.
        container_id(v: impl Into<String>);
        /// Sets `plugin_name`.
        plugin_name(v: impl Into<String>);
        /// Sets `data_classification`.
        data_classification(v: impl Into<String>);
        /// Sets `retention_category`.
        retention_category(v: impl Into<String>);
        /// Sets `signature`.
        signature(v: impl Into<String>);
        /// Sets `log_level`.
        log_level(v: AuditLogLevel);
        /// Sets `contains_pii`.
        contains_pii(v: bool);
        /// Sets `contains_phi`.
        contains_phi(v: bool);
        /// Adds a regulatory tag.
        tag(v: impl Into<String>);
        /// Adds a metadata entry.
        meta(k: impl Into<String>, v: impl Into<serde_json::Value>);
        /// Sets the timestamp (normally stamped on acceptance).
        timestamp(v: DateTime<Utc>);
        /// Sets the event id (normally generated).
        event_id(v: impl Into<String>);
    }

    /// The event as built so far.
    pub fn event(&self) -> &AuditEvent {
        &self.event
    }
}

impl<'a> IntoFuture for PendingEvent<'a> {
    type Output = Result<String>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<String>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.trail.log(self.event))
    }
}

struct Slot {
    backend: Box<dyn StorageBackend>,
    /// Highest sequence number this backend has stored.
    written: u64,
    /// Its place in the statistics.
    index: usize,
}

/// A backend with a worker of its own, as the writer sees it.
struct LaneSlot {
    lane: Arc<Lane>,
    /// Until the worker starts.
    backend: Option<Box<dyn StorageBackend>>,
    /// Highest sequence number handed to the lane.
    handed: u64,
    thread: Option<(JoinHandle<()>, std::sync::mpsc::Receiver<LaneEnd>)>,
}

/// How long the writer waits for a batch to fill in batched mode.
const LINGER: Duration = Duration::from_millis(1);

/// How long the writer waits in sync mode for the callers of its last batch to join the next.
const SYNC_LINGER: Duration = Duration::from_micros(100);

/// The longest a lone sync caller polls for its commit instead of parking; beyond it (a slow
/// disk), the cost of one wake-up hardly counts.
const CALLER_SPIN_MAX: Duration = Duration::from_millis(1);

/// A gap this long between two polls means the poller lost its CPU: it stops polling.
const SPIN_GAP: Duration = Duration::from_micros(200);

/// How long nobody polls after a poller lost its CPU, or after polls in a row ran out of
/// budget (the first time; see [`SPIN_PAUSE_DOUBLINGS`]). On a busy machine a polling
/// thread is runnable, so it takes CPU the writer needs to finish the commit, and the
/// scheduler may give its core away just when the commit lands, where a sleeping thread
/// would be woken at once: measured with two busy loops on the two cores, 95% of polls ran
/// out of budget and sync throughput halved.
const SPIN_PAUSE: Duration = Duration::from_millis(10);

/// Each pause that follows another without a successful poll in between is twice as long,
/// up to `SPIN_PAUSE << SPIN_PAUSE_DOUBLINGS` (1.28 s).
const SPIN_PAUSE_DOUBLINGS: u32 = 7;

/// Polls in a row that ran out of budget before polling pauses. Only polls that ran out while
/// the writer was not inside its `fdatasync` count: on an idle machine 1-2% of polls run out
/// during a slower `fdatasync`, often several in a row while the disk has a slow spell, and
/// pausing for those turned polling off for 70% of the events.
const SPIN_FAILURES: u32 = 2;

/// When polling is paused (see [`SPIN_PAUSE`]).
struct SpinPause {
    epoch: Instant,
    /// Nanoseconds after `epoch` until which nobody polls.
    until: AtomicU64,
    /// Caller polls in a row that ran out of budget.
    failures: std::sync::atomic::AtomicU32,
    /// Pauses since the last successful poll.
    pauses: std::sync::atomic::AtomicU32,
}

impl SpinPause {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            until: AtomicU64::new(0),
            failures: std::sync::atomic::AtomicU32::new(0),
            pauses: std::sync::atomic::AtomicU32::new(0),
        }
    }

    fn succeeded(&self) {
        self.failures.store(0, Ordering::Relaxed);
        self.pauses.store(0, Ordering::Relaxed);
    }

    fn timed_out(&self, now: Instant) {
        if self.failures.fetch_add(1, Ordering::Relaxed) + 1 >= SPIN_FAILURES {
            self.failures.store(0, Ordering::Relaxed);
            self.start(now);
        }
    }

    fn nanos(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    fn active(&self) -> bool {
        self.nanos(Instant::now()) < self.until.load(Ordering::Relaxed)
    }

    fn start(&self, now: Instant) {
        let n = self.pauses.fetch_add(1, Ordering::Relaxed);
        let pause = SPIN_PAUSE * (1 << n.min(SPIN_PAUSE_DOUBLINGS));
        self.until
            .fetch_max(self.nanos(now + pause), Ordering::Relaxed);
    }
}

/// The longest the writer, in sync mode, polls for the next event before it sleeps.
const WRITER_SPIN_MAX: Duration = Duration::from_micros(50);

/// How long a lone sync caller polls for its commit: about one and a half `fdatasync`s
/// (`sync_nanos`, the writer's moving average; before the first one, the maximum), none when
/// that is over [`CALLER_SPIN_MAX`].
fn caller_spin(sync_nanos: u64) -> Duration {
    if sync_nanos == 0 {
        return CALLER_SPIN_MAX;
    }
    let d = Duration::from_nanos(sync_nanos.saturating_mul(3) / 2);
    if d > CALLER_SPIN_MAX {
        Duration::ZERO
    } else {
        d
    }
}

/// Counts a sync caller in [`AuditTrail::wait_durable`] for as long as it waits (also when
/// its future is dropped).
struct WaiterGuard<'a> {
    count: &'a AtomicUsize,
    alone: bool,
}

impl<'a> WaiterGuard<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        let alone = count.fetch_add(1, Ordering::AcqRel) == 0;
        Self { count, alone }
    }
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How many waiting events make producers wake a lingering writer.
fn wake_batch(queue_capacity: usize) -> usize {
    (queue_capacity / 2).clamp(1, 512)
}

/// How long `close` waits for a lane's worker past the shutdown deadline.
const LANE_GRACE: Duration = Duration::from_secs(1);

struct Worker {
    shared: Arc<Shared>,
    /// The built-in file backends: written by the writer thread itself.
    backends: Vec<Slot>,
    /// Every other backend: handed each batch, delivered by its own worker.
    lanes: Vec<LaneSlot>,
    durability: Durability,
    interval: Duration,
    shutdown_timeout: Duration,
    integrity: Integrity,
    queue_capacity: usize,
}

/// Runs a backend call to completion on the writer's runtime; a panic inside the backend
/// becomes an error instead of killing the writer thread (which would strand every caller).
fn block_on_caught<T>(
    rt: &tokio::runtime::Runtime,
    fut: impl Future<Output = Result<T>>,
) -> Result<T> {
    rt.block_on(catch_panics(fut))
}

/// Marks the writer stopped however it ends, so `close` and sync callers never wait on a
/// thread that is gone.
struct StopGuard(Arc<Shared>);

impl Drop for StopGuard {
    fn drop(&mut self) {
        self.0.lock().closing = true;
        self.0.space.notify_waiters();
        self.0.progress.send_if_modified(|p| {
            if p.stopped {
                return false;
            }
            p.stopped = true;
            p.abandoned = p.abandoned.max(1);
            if p.error.is_none() {
                p.error = Some((
                    "audit-writer".to_owned(),
                    Arc::new(Error::backend(
                        "the writer thread stopped unexpectedly; this is a bug in audit-host",
                    )),
                ));
            }
            true
        });
    }
}

impl Worker {
    fn run(mut self, head_tx: std::sync::mpsc::Sender<Result<Option<ChainHead>>>) {
        let _guard = StopGuard(Arc::clone(&self.shared));
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = head_tx.send(Err(Error::backend(format!(
                    "cannot start the writer runtime: {e}"
                ))));
                return;
            }
        };
        let head = rt.block_on(self.resume_all());
        let start = match &head {
            Ok(h) => h.as_ref().map_or(0, |h| h.sequence_number),
            Err(_) => 0,
        };
        for slot in &mut self.backends {
            slot.written = start;
        }
        self.shared.dispatched.store(start, Ordering::Release);
        if head.is_ok() {
            for slot in &mut self.lanes {
                slot.lane.set_start(start);
            }
        }
        let head = match head {
            Ok(h) => match self.start_lanes() {
                Ok(()) => Ok(h),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let failed = head.is_err();
        let _ = head_tx.send(head);
        if failed {
            // Nothing was accepted: close what was opened and stop.
            return self.finish(&rt, 0, start);
        }
        self.serve(&rt, start);
    }

    /// Reads every backend's chain head (and each spool's): the trail continues after the
    /// highest. A lane's backend that cannot answer is tolerated when the writer has a
    /// backend of its own that knows the head; its worker then delivers from its spool.
    async fn resume_all(&mut self) -> Result<Option<ChainHead>> {
        let mut best: Option<ChainHead> = None;
        let mut consider = |h: Option<ChainHead>| {
            if let Some(h) = h
                && best
                    .as_ref()
                    .is_none_or(|b| h.sequence_number > b.sequence_number)
            {
                best = Some(h);
            }
        };
        for slot in &self.backends {
            consider(catch_panics(slot.backend.resume()).await?);
        }
        let has_own = !self.backends.is_empty();
        for slot in &mut self.lanes {
            consider(slot.lane.spool_head()?);
            let Some(backend) = &slot.backend else {
                continue;
            };
            match catch_panics(backend.resume()).await {
                Ok(h) => {
                    slot.handed = h.as_ref().map_or(0, |h| h.sequence_number);
                    consider(h);
                }
                Err(e) if has_own => {
                    eprintln!(
                        "audit: backend `{}` cannot say where its stored chain ends ({e}); starting anyway, it gets its spool and new events when it answers",
                        slot.lane.name
                    );
                    slot.handed = 0;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(best)
    }

    /// Starts every lane's worker. `handed` holds each backend's own head on entry.
    fn start_lanes(&mut self) -> Result<()> {
        for slot in &mut self.lanes {
            let Some(backend) = slot.backend.take() else {
                continue;
            };
            let start = slot.lane.durable();
            let stored = std::mem::replace(&mut slot.handed, start);
            // A backend that stored part of the chain but is behind it, with no spool to catch
            // up from, has a gap: say so rather than let it pass unnoticed.
            if stored > 0 && stored < start && !slot.lane.spool_covers(stored + 1, start) {
                let message = format!(
                    "this backend's store ends at sequence {stored} but the trail is at {start}: sequences {}..={start} are neither in its store nor in its spool and will not reach it (the file backend has them; see docs/operations.md, known limits)",
                    stored + 1
                );
                eprintln!("audit: backend `{}`: {message}", slot.lane.name);
                self.shared.update_stats(slot.lane.index, |s| {
                    s.last_error = Some(message);
                    s.last_error_at =
                        Some(Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
                });
            }
            slot.thread = Some(slot.lane.spawn(
                backend,
                Arc::clone(&self.shared) as Arc<dyn LaneObserver>,
                stored,
                self.integrity.clone(),
            )?);
        }
        Ok(())
    }

    fn set_error(&self, backend: &str, e: Arc<Error>) {
        self.shared.set_error(backend, e);
    }

    /// Clears a failure the writer reported (a lane clears its own).
    fn clear_error(&self) {
        let mut st = self.shared.lock();
        let ours = st.error.as_ref().is_some_and(|(b, _)| {
            !self
                .lanes
                .iter()
                .any(|l| l.lane.name == *b && l.lane.refusing())
        });
        if ours {
            st.error = None;
            drop(st);
            self.shared.progress.send_modify(|p| p.error = None);
        }
    }

    fn serve(mut self, rt: &tokio::runtime::Runtime, start: u64) {
        let mut inflight: Option<Batch> = None;
        let mut written = start;
        let mut durable = start;
        let mut last_sync = Instant::now();
        let mut retry_at: Option<Instant> = None;
        let mut backoff = MIN_BACKOFF;
        let mut shutdown_deadline: Option<Instant> = None;
        let mut flushed_lanes_to = start;
        let wake_batch = wake_batch(self.queue_capacity);
        let mut last_batch = 1;
        let mut spin_budget = WRITER_SPIN_MAX;
        loop {
            let mut lingered = false;
            let mut spun = false;
            let (closing, flush_target) = {
                let mut st = self.shared.lock();
                loop {
                    let now = Instant::now();
                    if let Some(since) = st.closing_since {
                        // Shutting down: a back-off never runs past the shutdown deadline.
                        let deadline = since + self.shutdown_timeout;
                        shutdown_deadline = Some(deadline);
                        retry_at = retry_at.map(|t| t.min(deadline));
                    }
                    let retry_ok = retry_at.is_none_or(|t| now >= t);
                    let unsynced = written > durable;
                    let flush_due = unsynced && now >= last_sync + self.interval;
                    let wants_flush =
                        st.flush_target > durable || st.flush_target > flushed_lanes_to;
                    let urgent = inflight.is_some() || st.closing || flush_due || wants_flush;
                    // Batched mode, a few events waiting and nothing urgent: give the
                    // producers LINGER to fill the batch (once), instead of taking them one
                    // wake-up at a time.
                    if retry_ok
                        && !urgent
                        && !lingered
                        && self.durability == Durability::Batched
                        && !st.pending.is_empty()
                        && st.pending.len() < wake_batch
                    {
                        lingered = true;
                        st = self.shared.linger(st, wake_batch, LINGER);
                        continue;
                    }
                    // Sync mode, group commit: the callers woken by the last fdatasync are
                    // logging again. When fewer are back than the last batch held, give the
                    // rest SYNC_LINGER to join this batch rather than pay for the next
                    // fdatasync (a lone caller never waits: its last batch was 1).
                    if retry_ok
                        && !lingered
                        && self.durability == Durability::Sync
                        && inflight.is_none()
                        && !st.closing
                        && !st.pending.is_empty()
                        && st.pending.len() < last_batch
                    {
                        lingered = true;
                        st = self.shared.linger(st, last_batch, SYNC_LINGER);
                        continue;
                    }
                    if retry_ok && (!st.pending.is_empty() || urgent) {
                        break;
                    }
                    // Sync mode, idle after a commit: a caller that was polling for it logs its
                    // next event within microseconds. Poll for that briefly before sleeping (a
                    // futex wake of an idle CPU costs 30-100 us on virtual machines). The
                    // budget halves each time nothing came, and is whole again once something
                    // did.
                    if self.durability == Durability::Sync
                        && !spun
                        && retry_at.is_none()
                        && !st.closing
                        && spin_budget > Duration::ZERO
                        && !self.shared.spin_pause.active()
                    {
                        spun = true;
                        // Stored under the lock by every accept.
                        let seen = self.shared.accepted.load(Ordering::Acquire);
                        drop(st);
                        let mut last = Instant::now();
                        let until = last + spin_budget;
                        let mut came = false;
                        loop {
                            if self.shared.accepted.load(Ordering::Acquire) != seen {
                                came = true;
                                break;
                            }
                            std::hint::spin_loop();
                            let now = Instant::now();
                            if now - last > SPIN_GAP {
                                self.shared.spin_pause.start(now);
                                break;
                            }
                            if now >= until {
                                break;
                            }
                            last = now;
                        }
                        spin_budget = if came {
                            WRITER_SPIN_MAX
                        } else {
                            (spin_budget / 2).max(WRITER_SPIN_MAX / 16)
                        };
                        st = self.shared.lock();
                        continue;
                    }
                    let mut deadline: Option<Instant> = retry_at;
                    if unsynced {
                        let t = last_sync + self.interval;
                        deadline = Some(deadline.map_or(t, |d| d.min(t)));
                    }
                    st.worker_idle = true;
                    st = match deadline {
                        Some(d) => {
                            self.shared
                                .wake
                                .wait_timeout(st, d.saturating_duration_since(now))
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .0
                        }
                        None => self
                            .shared
                            .wake
                            .wait(st)
                            .unwrap_or_else(std::sync::PoisonError::into_inner),
                    };
                    st.worker_idle = false;
                }
                if inflight.is_none() && !st.pending.is_empty() {
                    let cap = st.pending.len();
                    last_batch = cap;
                    inflight = Some(Batch::new(std::mem::replace(
                        &mut st.pending,
                        Vec::with_capacity(cap),
                    )));
                } else if let Some(batch) = inflight.as_ref().filter(|_| retry_at.is_some())
                    && !st.pending.is_empty()
                {
                    // Retrying after a failure (a backend or a lane refused the batch): what
                    // was accepted meanwhile joins the batch, so the backends that work (the
                    // local files when a lane is refusing) store it now rather than only
                    // after the failing one recovers, or never when the trail is closed
                    // first. Each backend skips what it already has.
                    let mut records = batch.to_vec();
                    records.append(&mut st.pending);
                    inflight = Some(Batch::new(records));
                }
                (st.closing, st.flush_target)
            };
            // After a failure: when to try again, or `None` when shutting down has run out of time.
            let next_try = |backoff: &mut Duration| {
                let now = Instant::now();
                let at = now + *backoff;
                *backoff = (*backoff * 2).min(MAX_BACKOFF);
                match shutdown_deadline {
                    Some(d) if now >= d => None,
                    Some(d) => Some(at.min(d)),
                    None => Some(at),
                }
            };

            if let Some(batch) = &inflight {
                // The writer's own backends first: a lane never holds an event that the
                // local record does not (after a restart the chain continues from it).
                let failure = match self.write_all(rt, batch) {
                    Err((name, e)) => Some(Some((name, Arc::new(e)))),
                    Ok(()) => self.offer_all(batch).err(),
                };
                if let Some(refused) = failure {
                    if let Some((name, e)) = refused {
                        self.set_error(&name, e);
                    }
                    retry_at = next_try(&mut backoff);
                    if retry_at.is_none() {
                        let n = inflight.as_ref().map_or(0, |b| b.len());
                        return self.finish(rt, n, durable);
                    }
                    continue;
                }
                written = batch.last().map_or(written, AuditRecord::sequence_number);
                let n = batch.len();
                inflight = None;
                self.shared.lock().queued -= n;
                self.shared.space.notify_waiters();
            }

            if flush_target > flushed_lanes_to {
                for slot in &self.lanes {
                    slot.lane.request_flush(flush_target);
                }
                flushed_lanes_to = flush_target;
            }
            let now = Instant::now();
            let must_sync = written > durable
                && (self.durability == Durability::Sync
                    || flush_target > durable
                    || closing
                    || now >= last_sync + self.interval);
            if must_sync {
                let started = Instant::now();
                self.shared.syncing.store(true, Ordering::Relaxed);
                let flushed = self.flush_all(rt);
                self.shared.syncing.store(false, Ordering::Relaxed);
                if self.durability == Durability::Sync {
                    // Moving average over about 8 syncs.
                    let took = started.elapsed().as_nanos() as u64;
                    let avg = self.shared.sync_nanos.load(Ordering::Relaxed);
                    let avg = if avg == 0 {
                        took
                    } else {
                        avg - avg / 8 + took / 8
                    };
                    self.shared.sync_nanos.store(avg, Ordering::Relaxed);
                }
                if let Err((name, e)) = flushed {
                    self.set_error(&name, Arc::new(e));
                    retry_at = next_try(&mut backoff);
                    if retry_at.is_none() {
                        return self.finish(rt, 0, durable);
                    }
                    continue;
                }
                durable = written;
                last_sync = now;
                self.shared.dispatched.store(durable, Ordering::Release);
                self.shared.publish_durable();
            }
            retry_at = None;
            backoff = MIN_BACKOFF;
            self.clear_error();
            if closing
                && written == durable
                && inflight.is_none()
                && self.shared.lock().pending.is_empty()
            {
                return self.finish(rt, 0, durable);
            }
        }
    }

    /// Hands the batch to every lane that has not had it. `Err(Some(..))`: a required lane
    /// cannot keep it and the trail must refuse events; `Err(None)`: offer it again later.
    fn offer_all(&mut self, batch: &Batch) -> Result<(), Option<(String, Arc<Error>)>> {
        let mut outcome = Ok(());
        for slot in &mut self.lanes {
            let from = batch.partition_point(|r| r.sequence_number() <= slot.handed);
            if from == batch.len() {
                continue;
            }
            match slot.lane.offer(&batch.skip(from), &*self.shared) {
                Offer::Taken => slot.handed = batch[batch.len() - 1].sequence_number(),
                Offer::Later(e) => {
                    if outcome.is_ok() || matches!(outcome, Err(None)) {
                        outcome = Err(e.map(|e| (slot.lane.name.clone(), e)));
                    }
                }
            }
        }
        outcome
    }

    /// Hands the batch to every backend of the writer's own that has not stored it yet. A
    /// failing backend does not keep the others from storing it; the first failure is
    /// returned.
    fn write_all(
        &mut self,
        rt: &tokio::runtime::Runtime,
        batch: &Batch,
    ) -> Result<(), (String, Error)> {
        let mut first_error = None;
        for slot in &mut self.backends {
            // A backend that already stored part of this batch (another backend failed
            // after it) gets only what it has not seen.
            let from = batch.partition_point(|r| r.sequence_number() <= slot.written);
            if from == batch.len() {
                continue;
            }
            let result = block_on_caught(rt, slot.backend.write_batch(&batch.skip(from)));
            self.shared.record_call(
                slot.index,
                result.as_ref().err(),
                (batch.len() - from) as u64,
            );
            match result {
                Ok(()) => slot.written = batch[batch.len() - 1].sequence_number(),
                Err(e) => {
                    self.shared.update_stats(slot.index, |s| {
                        s.state = BackendState::Retrying;
                        s.retried += 1;
                    });
                    if first_error.is_none() {
                        first_error = Some((slot.backend.name().to_owned(), e));
                    }
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn flush_all(&mut self, rt: &tokio::runtime::Runtime) -> Result<(), (String, Error)> {
        for slot in &self.backends {
            let result = block_on_caught(rt, slot.backend.flush());
            self.shared
                .record_call(slot.index, result.as_ref().err(), 0);
            if result.is_err() {
                self.shared.update_stats(slot.index, |s| {
                    s.state = BackendState::Retrying;
                    s.retried += 1;
                });
            }
            result.map_err(|e| (slot.backend.name().to_owned(), e))?;
            let written = slot.written;
            self.shared.update_stats(slot.index, |s| {
                s.delivered_sequence = written;
                s.state = BackendState::Ok;
            });
        }
        for slot in &self.lanes {
            if let Err(e) = slot.lane.sync_spool(&*self.shared) {
                self.shared.record_call(slot.lane.index, Some(&e), 0);
                // Only a required backend's spool holds the trail back.
                if slot.lane.cfg.required {
                    return Err((slot.lane.name.clone(), e));
                }
            }
        }
        Ok(())
    }

    /// Closes every lane (each delivers until the shutdown deadline, then spools what is
    /// left) and every backend of the writer's own, and reports the end.
    fn finish(mut self, rt: &tokio::runtime::Runtime, abandoned: usize, durable: u64) {
        let deadline = {
            let st = self.shared.lock();
            st.closing_since.unwrap_or_else(Instant::now) + self.shutdown_timeout
        };
        for slot in &self.lanes {
            slot.lane.close(deadline);
        }
        let mut lost = 0;
        let mut lane_error: Option<(String, Arc<Error>)> = None;
        for slot in &mut self.lanes {
            let Some((handle, ended)) = slot.thread.take() else {
                continue;
            };
            // A worker stuck in a call that never returns (an in-process backend blocking
            // its thread) cannot be stopped: it is left behind after a grace period.
            let wait = deadline.saturating_duration_since(Instant::now()) + LANE_GRACE;
            let end = match ended.recv_timeout(wait) {
                Ok(end) => {
                    let _ = handle.join();
                    end
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    eprintln!(
                        "audit: backend `{}` did not stop by the shutdown deadline (a call into it never returned); its thread is left behind",
                        slot.lane.name
                    );
                    LaneEnd {
                        lost: slot.lane.memory_events() as u64,
                        error: Some(Arc::new(Error::backend(
                            "a call into the backend did not return before the shutdown deadline",
                        ))),
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    eprintln!(
                        "audit: the worker of backend `{}` panicked; this is a bug in audit-host",
                        slot.lane.name
                    );
                    LaneEnd {
                        lost: slot.lane.memory_events() as u64,
                        ..LaneEnd::default()
                    }
                }
            };
            if slot.lane.cfg.required && end.lost > 0 {
                lost += end.lost as usize;
                let e = end.error.unwrap_or_else(|| {
                    Arc::new(Error::backend("events could not be delivered or spooled"))
                });
                lane_error.get_or_insert((slot.lane.name.clone(), e));
            }
        }
        for slot in &self.backends {
            if let Err(e) = block_on_caught(rt, slot.backend.close()) {
                let name = slot.backend.name().to_owned();
                eprintln!("audit: closing backend {name} failed: {e}");
                self.set_error(&name, Arc::new(e));
            }
        }
        let pending = self.shared.lock().pending.len();
        self.shared.dispatched.fetch_max(durable, Ordering::AcqRel);
        self.shared.publish_durable();
        self.shared.progress.send_modify(|p| {
            p.stopped = true;
            p.abandoned = abandoned + pending + lost;
            if p.error.is_none() {
                p.error = lane_error;
            }
            if p.error.is_none() && p.abandoned > 0 {
                // Never report success with events unwritten.
                p.error = Some((
                    "audit-writer".to_owned(),
                    Arc::new(Error::backend(
                        "the writer stopped with events still queued; this is a bug in audit-host",
                    )),
                ));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_sync_caller_polls_for_about_one_and_a_half_fdatasyncs() {
        // Before the first fdatasync: the most.
        assert_eq!(caller_spin(0), CALLER_SPIN_MAX);
        assert_eq!(caller_spin(200_000), Duration::from_micros(300));
        // A slow disk: one wake-up hardly counts against it, so the caller parks at once.
        assert_eq!(caller_spin(2_000_000), Duration::ZERO);
    }

    #[test]
    fn polling_pauses_after_polls_in_a_row_run_out_or_a_poller_loses_its_cpu() {
        let pause = SpinPause::new();
        let now = Instant::now();
        pause.timed_out(now);
        // One slow fdatasync is not a busy machine...
        assert!(!pause.active());
        pause.succeeded();
        pause.timed_out(now);
        assert!(!pause.active());
        // ...two in a row are.
        pause.timed_out(now);
        assert!(pause.active());
        // A lost CPU pauses at once, for SPIN_PAUSE.
        let pause = SpinPause::new();
        pause.start(Instant::now());
        assert!(pause.active());
        assert!(pause.until.load(Ordering::Relaxed) >= pause.nanos(now + SPIN_PAUSE));
    }

    #[test]
    fn pauses_in_a_row_double_until_a_poll_succeeds() {
        let pause = SpinPause::new();
        let now = Instant::now() + Duration::from_secs(10);
        let until = |p: &SpinPause| p.until.load(Ordering::Relaxed);
        pause.start(now);
        assert_eq!(until(&pause), pause.nanos(now + SPIN_PAUSE));
        pause.start(now);
        assert_eq!(until(&pause), pause.nanos(now + SPIN_PAUSE * 2));
        for _ in 0..20 {
            pause.start(now);
        }
        let longest = SPIN_PAUSE * (1 << SPIN_PAUSE_DOUBLINGS);
        assert_eq!(until(&pause), pause.nanos(now + longest));
        // A busy spell is over once a poll succeeds: the next pause is short again.
        pause.succeeded();
        let later = now + Duration::from_secs(5);
        pause.start(later);
        assert_eq!(until(&pause), pause.nanos(later + SPIN_PAUSE));
    }

    #[test]
    fn only_a_sync_caller_without_company_is_alone() {
        let count = AtomicUsize::new(0);
        let first = WaiterGuard::new(&count);
        let second = WaiterGuard::new(&count);
        assert!(first.alone);
        assert!(!second.alone);
        drop(first);
        drop(second);
        // A dropped (cancelled) wait counts itself out.
        assert_eq!(count.load(Ordering::Acquire), 0);
        assert!(WaiterGuard::new(&count).alone);
    }
}
