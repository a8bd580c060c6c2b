//! `AuditTrailBuilder`: settings and backends, from code or from a [`TrailConfig`]; `build`
//! validates them, opens the file backends and starts the trail.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::backend::StorageBackend;
use crate::config::{BackendConfig, TrailConfig, read_key_file, read_signing_key_file};
use crate::delivery::{BackendOptions, LaneConfig, spool_dir_name};
use crate::file::{DEFAULT_MAX_FILE_BYTES, FileStorageBackend};
use crate::sealing::{DEFAULT_SEAL_INTERVAL_MS, Sealing};
use crate::settings::{
    AlertHook, Clock, DEFAULT_FLUSH_INTERVAL_MS, DEFAULT_QUEUE_CAPACITY,
    DEFAULT_SHUTDOWN_TIMEOUT_MS, Durability, OnFull,
};
use audit_format::error::{ConfigError, Error, Result};
use audit_format::event::AuditEvent;
use audit_format::policy::{AlertReason, CompliancePolicy};
use audit_format::record::Integrity;
use audit_format::seal::SigningKey;

use super::AuditTrail;
use super::start::{OpenedBackend, Setup};

/// The key an HMAC key error is reported under.
const HMAC_KEY_FILE: &str = "trail.integrity.hmac_key_file";

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
/// | signing key (seals) | none |
/// | `seal_interval` | 60 s |
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
    signing_key: Option<Arc<SigningKey>>,
    seal_interval: Duration,
    allow_insecure_permissions: bool,
    file_mode: u32,
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
            .field(
                "allow_insecure_permissions",
                &self.allow_insecure_permissions,
            )
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
            signing_key: None,
            seal_interval: Duration::from_millis(DEFAULT_SEAL_INTERVAL_MS),
            allow_insecure_permissions: false,
            file_mode: audit_format::store::DEFAULT_FILE_MODE,
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

    /// The mode of the audit files the file backends create: 0600 (the default), 0640, 0644
    /// or 0604 (a log shipper running as another user can then read them; the directory gets
    /// the matching `r-x`). `[trail] file_mode` in the configuration. Others are refused by
    /// `build`.
    pub fn file_mode(self, mode: u32) -> Self {
        Self {
            file_mode: mode,
            ..self
        }
    }

    /// Accepts storage and spool directories that are writable by group or others or owned by
    /// a user other than root or this one (default `false`: `build` refuses them). Unsafe:
    /// whoever else can write there can remove or replace audit files. `[trail]
    /// allow_insecure_permissions` in the configuration.
    pub fn allow_insecure_permissions(self, allow: bool) -> Self {
        Self {
            allow_insecure_permissions: allow,
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
        let integrity =
            Integrity::hmac(key).map_err(|message| setting_error(HMAC_KEY_FILE, message))?;
        Ok(Self { integrity, ..self })
    }

    /// Chain with HMAC-SHA256 under the key stored in `path`: refused if the file is
    /// readable by group or others, or shorter than 32 bytes. The bytes are used as stored.
    ///
    /// # Errors
    /// [`Error::Config`] naming the file and what to do.
    pub fn hmac_key_file(self, path: impl AsRef<Path>) -> Result<Self> {
        let integrity = read_key_file(path.as_ref())
            .map_err(|message| setting_error(HMAC_KEY_FILE, message))?;
        Ok(Self { integrity, ..self })
    }

    /// Signs seals of every file backend's directory with `key` (see
    /// [`FileBackendBuilder::sealing`](crate::FileBackendBuilder::sealing)).
    pub fn signing_key(self, key: SigningKey) -> Self {
        Self {
            signing_key: Some(Arc::new(key)),
            ..self
        }
    }

    /// [`signing_key`](Self::signing_key) from `audit keygen`'s `audit-signing.key`, under
    /// the HMAC key file's permission rules.
    ///
    /// # Errors
    /// [`Error::Config`] naming the file and what to do.
    pub fn signing_key_file(self, path: impl AsRef<Path>) -> Result<Self> {
        let key = read_signing_key_file(path.as_ref())
            .map_err(|message| setting_error("trail.integrity.signing_key_file", message))?;
        Ok(self.signing_key(key))
    }

    /// Seals at least this often while events are added (default 60 s; also at every
    /// rotation, retention and close).
    pub fn seal_interval(self, interval: Duration) -> Self {
        Self {
            seal_interval: interval,
            ..self
        }
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
    pub fn build(mut self) -> Result<AuditTrail> {
        self.validate()?;
        let specs = std::mem::take(&mut self.backends);
        let backends = self.open_backends(specs)?;
        let file_dirs = file_dirs(&backends);
        AuditTrail::start(
            Setup {
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

    /// Refuses settings the trail cannot run with.
    fn validate(&self) -> Result<()> {
        self.policy.validate()?;
        if self.flush_interval.is_zero() {
            return Err(setting_error(
                "trail.flush_interval_ms",
                "must be at least 1 ms",
            ));
        }
        if self.queue_capacity == 0 {
            return Err(setting_error("trail.queue_capacity", "must be at least 1"));
        }
        Ok(())
    }

    /// Opens the file backends and gives each other backend its lane settings, in
    /// configuration order; with none configured, one file backend at `storage_path`.
    fn open_backends(&self, mut specs: Vec<BackendSpec>) -> Result<Vec<OpenedBackend>> {
        if specs.is_empty() {
            specs.push(BackendSpec::File(
                None,
                self.storage_path.clone(),
                DEFAULT_MAX_FILE_BYTES,
            ));
        }
        let sealing = self.signing_key.as_ref().map(|key| Sealing {
            key: Arc::clone(key),
            interval: self.seal_interval,
            witnesses: specs
                .iter()
                .filter_map(|s| match s {
                    BackendSpec::Ready(b, _) => b.seal_witness(),
                    BackendSpec::File(..) => None,
                })
                .collect(),
        });
        let mut backends: Vec<OpenedBackend> = Vec::with_capacity(specs.len());
        let mut spool_dirs: Vec<PathBuf> = Vec::new();
        for spec in specs {
            match spec {
                BackendSpec::Ready(b, opts) => {
                    let cfg = self.lane_config(b.name(), &opts, &mut spool_dirs)?;
                    backends.push((b, Some(cfg)));
                }
                BackendSpec::File(name, path, max) => {
                    let fb = FileStorageBackend::builder(&path)
                        .name(name)
                        .max_file_bytes(max)
                        .retention_days(Some(self.policy.retention_days))
                        .retention_of_imported(self.policy.retention_applies_to_imported)
                        .integrity(self.integrity.clone())
                        .allow_insecure_permissions(self.allow_insecure_permissions)
                        .file_mode(self.file_mode)
                        .sealing(sealing.clone())
                        .open()?;
                    backends.push((Box::new(fb), None));
                }
            }
        }
        Ok(backends)
    }

    /// The settings of the lane that delivers to backend `name`. `spool_dirs`: the spools
    /// taken so far (two backends must not share one).
    fn lane_config(
        &self,
        name: &str,
        opts: &BackendOptions,
        spool_dirs: &mut Vec<PathBuf>,
    ) -> Result<LaneConfig> {
        // Also without a spool: the dead-letter file lives there.
        let dir = opts
            .spool_dir
            .clone()
            .unwrap_or_else(|| self.storage_path.join(".spool").join(spool_dir_name(name)));
        let spool = if opts.spool_max_bytes == 0 {
            None
        } else {
            if spool_dirs.contains(&dir) {
                return Err(setting_error(
                    "backends.name",
                    format!(
                        "two backends would share the spool {}: give each backend a distinct `name` (or `spool_dir`)",
                        dir.display()
                    ),
                ));
            }
            spool_dirs.push(dir.clone());
            Some((dir.clone(), opts.spool_max_bytes))
        };
        Ok(LaneConfig {
            required: opts.required,
            spool,
            allow_insecure_permissions: self.allow_insecure_permissions,
            retry_initial: opts.retry_initial.max(Duration::from_millis(1)),
            retry_max: opts.retry_max.max(opts.retry_initial),
            // One trail batch can hold the whole queue: room for two.
            memory_limit: self.queue_capacity.saturating_mul(2),
            on_full: self.on_full,
            durability: self.durability,
            flush_interval: self.flush_interval,
            backfill: opts.backfill,
            on_refuse: opts.on_refuse,
            dead_letter_dir: dir,
        })
    }

    /// A builder with everything `config` sets: its settings, its integrity (the key file is
    /// read now) and its backends (plugins are loaded and opened now).
    ///
    /// # Errors
    /// [`Error::Config`] when the key file became unreadable or invalid; [`Error::Plugin`]
    /// when a plugin cannot be loaded, rejects its configuration (its `validate` capability,
    /// called for every plugin before any is opened), or cannot be opened.
    pub fn from_config(config: &TrailConfig) -> Result<Self> {
        let mut b = Self::default()
            .policy(config.policy.clone())
            .storage_path(config.storage_path.clone())
            .durability(config.durability)
            .flush_interval(Duration::from_millis(config.flush_interval_ms))
            .shutdown_timeout(Duration::from_millis(config.shutdown_timeout_ms))
            .queue_capacity(config.queue_capacity)
            .on_full(config.on_full)
            .allow_insecure_permissions(config.allow_insecure_permissions)
            .file_mode(config.file_mode)
            .integrity(config.integrity()?)
            .seal_interval(Duration::from_millis(config.seal_interval_ms));
        if let Some(key) = &config.signing_key_file {
            b = b.signing_key(read_signing_key_file(key).map_err(|message| {
                Error::from(ConfigError {
                    file: config.source.clone(),
                    line: None,
                    column: None,
                    key: "trail.integrity.signing_key_file".into(),
                    message,
                })
            })?);
        }
        // Every library is loaded first: a plugin without `name` is named by the plugin, and
        // no two backends may share a directory (checked before anything is opened).
        let mut loaded = Vec::with_capacity(config.backends.len());
        for (index, backend) in config.backends.iter().enumerate() {
            loaded.push(match backend {
                BackendConfig::Plugin { .. } => Some(
                    config
                        .load_plugin(backend)
                        .map_err(|e| config.entry(index, &backend.configured_name()).annotate(e))?,
                ),
                BackendConfig::File { .. } => None,
            });
        }
        let names: Vec<Option<String>> = config
            .backends
            .iter()
            .zip(&loaded)
            .map(|(backend, plugin)| match (backend, plugin) {
                (BackendConfig::Plugin { name: None, .. }, Some(p)) => Some(p.info().name.clone()),
                _ => Some(backend.configured_name()),
            })
            .collect();
        if let Some(p) = crate::preflight::directory_collisions(config, &names)
            .into_iter()
            .next()
        {
            // Shown as `backends[N] "NAME" (FILE:LINE): KEY: MESSAGE`, as `audit config
            // check` prints it.
            return Err(ConfigError {
                file: PathBuf::new(),
                line: p.entry.line,
                column: None,
                key: format!("{}: {}", p.entry, p.key),
                message: p.message,
            }
            .into());
        }
        // Every plugin that exports `validate` checks its configuration before any backend
        // is opened: a mistake fails start-up before anything connects or is created.
        for (index, (backend, plugin)) in config.backends.iter().zip(&loaded).enumerate() {
            if let (BackendConfig::Plugin { config_json, .. }, Some(plugin), Some(name)) =
                (backend, plugin, &names[index])
                && let Some(Err(e)) = plugin.validate(config_json)
            {
                return Err(config.entry(index, name).annotate(e));
            }
        }
        for (index, (backend, plugin)) in config.backends.iter().zip(loaded).enumerate() {
            b = b.configured_backend(config, index, backend, plugin)?;
        }
        Ok(b)
    }

    /// Adds entry `index` (0-based) of `config`'s backends (`loaded`: a plugin's library,
    /// loaded already). Errors loading or opening a plugin name the entry
    /// (`backends[N] "NAME" (FILE:LINE)`).
    fn configured_backend(
        self,
        config: &TrailConfig,
        index: usize,
        backend: &BackendConfig,
        loaded: Option<crate::plugin::LoadedPlugin>,
    ) -> Result<Self> {
        Ok(match backend {
            BackendConfig::File {
                name,
                path,
                max_file_bytes,
                ..
            } => self.named_file_backend(name.clone(), path.clone(), *max_file_bytes),
            BackendConfig::Plugin {
                name,
                config_json,
                call_timeout_ms,
                open_timeout_ms,
                options,
                ..
            } => {
                let loaded = match loaded {
                    Some(l) => l,
                    None => config
                        .load_plugin(backend)
                        .map_err(|e| config.entry(index, &backend.configured_name()).annotate(e))?,
                };
                let name = name.clone().unwrap_or_else(|| loaded.info().name.clone());
                let entry = config.entry(index, &name);
                let (opened, deferred) = loaded
                    .open_or_defer(&name, config_json, Duration::from_millis(*open_timeout_ms))
                    .map_err(|e| entry.annotate(e))?;
                if let Some(e) = deferred {
                    // What it connects to is down: start, spool its events, open it on retry.
                    tracing::warn!(
                        backend = %name,
                        entry = %entry,
                        error = %e,
                        "backend `{name}` could not open ({entry}: {e}); starting without it: its events are kept in its spool and each retry opens it again"
                    );
                } else {
                    tracing::debug!(
                        backend = %name,
                        entry = %entry,
                        plugin = %loaded.info().name,
                        version = %loaded.info().version,
                        "backend `{name}` opened ({entry})"
                    );
                }
                let opened = opened
                    .with_call_timeout(Duration::from_millis(*call_timeout_ms))
                    .with_entry(plugin_entry(&entry, loaded.info()));
                self.backend_with(Box::new(opened), options.clone())
            }
        })
    }
}

/// How a plugin backend's call errors name it: its entry, and the plugin when the entry's
/// `name` is not the plugin's own.
fn plugin_entry(entry: &crate::config::BackendEntry, info: &crate::plugin::PluginInfo) -> String {
    if entry.name == info.name {
        entry.to_string()
    } else {
        format!("{entry}, plugin `{}`", info.name)
    }
}

/// A backend as configured: ready, or a file backend opened by `build`.
#[derive(Debug)]
enum BackendSpec {
    Ready(Box<dyn StorageBackend>, BackendOptions),
    File(Option<String>, PathBuf, u64),
}

/// The directories of the file backends (those that keep one), without repeats.
fn file_dirs(backends: &[OpenedBackend]) -> Vec<PathBuf> {
    let mut file_dirs: Vec<PathBuf> = Vec::new();
    for (b, _) in backends {
        if let Some(dir) = b.query_dir()
            && !file_dirs.iter().any(|d| d == dir)
        {
            file_dirs.push(dir.to_path_buf());
        }
    }
    file_dirs
}

/// A bad setting made in code (no file, no line).
fn setting_error(key: &str, message: impl Into<String>) -> Error {
    ConfigError {
        file: PathBuf::new(),
        line: None,
        column: None,
        key: key.into(),
        message: message.into(),
    }
    .into()
}

impl TrailConfig {
    /// A builder with everything this configuration sets: [`AuditTrailBuilder::from_config`].
    ///
    /// # Errors
    /// As [`AuditTrailBuilder::from_config`].
    pub fn builder(&self) -> Result<AuditTrailBuilder> {
        AuditTrailBuilder::from_config(self)
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
        AuditTrailBuilder::from_config(&TrailConfig::load(path.as_ref())?)?.build()
    }
}
