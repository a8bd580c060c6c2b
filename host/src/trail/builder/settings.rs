//! [`AuditTrailBuilder`]: the settings and backends a trail is built from, their defaults
//! and their setters.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::backend::StorageBackend;
use crate::config::{read_key_file, read_signing_key_file};
use crate::delivery::BackendOptions;
use crate::sealing::DEFAULT_SEAL_INTERVAL_MS;
use crate::settings::{
    AlertHook, Clock, DEFAULT_FLUSH_INTERVAL_MS, DEFAULT_QUEUE_CAPACITY,
    DEFAULT_SHUTDOWN_TIMEOUT_MS, Durability, OnFull,
};
use audit_format::error::{ConfigError, Error, Result};
use audit_format::event::AuditEvent;
use audit_format::policy::{AlertReason, CompliancePolicy};
use audit_format::record::Integrity;
use audit_format::seal::SigningKey;

/// The key an HMAC key error is reported under.
const HMAC_KEY_FILE: &str = "trail.integrity.hmac_key_file";

/// Builds an [`AuditTrail`](crate::AuditTrail). Defaults:
///
/// | setting | default |
/// |---|---|
/// | `policy` | [`CompliancePolicy::default`] |
/// | `storage_path` | `audit_logs` |
/// | backends | one [`FileStorageBackend`](crate::FileStorageBackend) at `storage_path` |
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
    pub(super) policy: CompliancePolicy,
    pub(super) storage_path: PathBuf,
    /// In configuration order: the worker writes them in this order.
    pub(super) backends: Vec<BackendSpec>,
    pub(super) durability: Durability,
    pub(super) flush_interval: Duration,
    pub(super) shutdown_timeout: Duration,
    pub(super) queue_capacity: usize,
    pub(super) on_full: OnFull,
    pub(super) integrity: Integrity,
    pub(super) signing_key: Option<Arc<SigningKey>>,
    pub(super) seal_interval: Duration,
    pub(super) allow_insecure_permissions: bool,
    pub(super) file_mode: u32,
    pub(super) clock: Option<Clock>,
    pub(super) alert_hook: Option<AlertHook>,
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
    /// [`FileStorageBackend`](crate::FileStorageBackend) at `storage_path`.
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
}

/// A backend as configured: ready, or a file backend opened by `build`.
#[derive(Debug)]
pub(super) enum BackendSpec {
    Ready(Box<dyn StorageBackend>, BackendOptions),
    File(Option<String>, PathBuf, u64),
}

/// A bad setting made in code (no file, no line).
pub(super) fn setting_error(key: &str, message: impl Into<String>) -> Error {
    ConfigError {
        file: PathBuf::new(),
        line: None,
        column: None,
        key: key.into(),
        message: message.into(),
    }
    .into()
}
