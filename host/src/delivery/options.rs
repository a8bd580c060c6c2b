//! How a lane behaves: the public per-backend options and the lane's resolved settings.

use std::path::PathBuf;
use std::time::Duration;

use crate::settings::{Durability, OnFull};

/// Default first retry delay (`retry_initial_ms`).
pub const DEFAULT_RETRY_INITIAL: Duration = Duration::from_millis(100);
/// Default longest retry delay (`retry_max_ms`).
pub const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(30);

/// How a backend's lane behaves.
#[derive(Debug, Clone)]
pub(crate) struct LaneConfig {
    pub(crate) required: bool,
    /// The spool directory and its bound; `None`: no spool.
    pub(crate) spool: Option<(PathBuf, u64)>,
    /// Accept a spool directory writable by group or others or owned by another user.
    pub(crate) allow_insecure_permissions: bool,
    pub(crate) retry_initial: Duration,
    pub(crate) retry_max: Duration,
    /// Events held in memory before the writer spools (or, without a spool, waits): twice
    /// the trail's queue capacity. Written but unflushed events count too (a flush is then
    /// due).
    pub(crate) memory_limit: usize,
    pub(crate) on_full: OnFull,
    pub(crate) durability: Durability,
    pub(crate) flush_interval: Duration,
    /// What an empty store receives of the history the file backend holds.
    pub(crate) backfill: Backfill,
    /// What a refused record does (`refuse`).
    pub(crate) on_refuse: OnRefuse,
    /// The directory of the dead-letter file: the spool directory, also when the spool is
    /// disabled (created on the first refusal).
    pub(crate) dead_letter_dir: PathBuf,
}

/// What a backend whose store is empty receives, at start, of the history a file backend of
/// the trail holds (`backfill` in a `[[backends]]` entry). A store that is not empty but
/// behind the trail is always caught up from the file backend, whatever this says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Backfill {
    /// `"none"`: only the events logged from now on.
    None,
    /// `"all"` (default): everything from the first line the file backend holds.
    #[default]
    All,
    /// A sequence number: the history from this sequence on.
    From(u64),
}

impl std::fmt::Display for Backfill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("none"),
            Self::All => f.write_str("all"),
            Self::From(seq) => write!(f, "{seq}"),
        }
    }
}

/// What the trail does when a backend refuses records
/// ([`StorageBackend::write_batch_refusing`](crate::StorageBackend::write_batch_refusing));
/// the `refuse` key of a `[[backends]]` plugin entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnRefuse {
    /// `"dead-letter"` (default): the refused records go to `dead-letter.jsonl` in the
    /// backend's spool directory with the reason, are counted (`refused`) and reported once;
    /// the rest of the batch counts as delivered.
    #[default]
    DeadLetter,
    /// `"fail"`: a refusal fails the backend as a fatal error does; the batch stays in the
    /// spool. With `required = true` the trail refuses new events until restart (the
    /// configuration accepts `"fail"` only then; with `required = false` only the backend
    /// fails).
    Fail,
}

impl OnRefuse {
    /// As the configuration spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::DeadLetter => "dead-letter",
            Self::Fail => "fail",
        }
    }
}

/// How the trail treats one in-process or plugin backend; see
/// [`AuditTrailBuilder::backend_with`](crate::AuditTrailBuilder::backend_with).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackendOptions {
    /// `true` (default): when the trail can no longer keep events for this backend (its
    /// spool is full, or it failed and has no spool), `log_event` returns an error.
    /// `false`: the backend only ever degrades itself; what it cannot keep is dropped and
    /// counted in its statistics.
    pub required: bool,
    /// Bound on the backend's durable spool in bytes; 0 disables the spool.
    pub spool_max_bytes: u64,
    /// The spool directory; default `STORAGE_PATH/.spool/NAME`.
    pub spool_dir: Option<PathBuf>,
    /// First retry delay after a retryable failure; doubles (with jitter) up to `retry_max`.
    pub retry_initial: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// What the backend receives of the existing history when its store is empty at start
    /// (default [`Backfill::All`]).
    pub backfill: Backfill,
    /// What a refused record does (default: it goes to the dead-letter file).
    pub on_refuse: OnRefuse,
}

impl Default for BackendOptions {
    fn default() -> Self {
        Self {
            required: true,
            spool_max_bytes: super::spool::DEFAULT_SPOOL_MAX_BYTES,
            spool_dir: None,
            retry_initial: DEFAULT_RETRY_INITIAL,
            retry_max: DEFAULT_RETRY_MAX,
            backfill: Backfill::All,
            on_refuse: OnRefuse::DeadLetter,
        }
    }
}

impl BackendOptions {
    /// Sets `required`.
    #[must_use]
    pub fn required(self, required: bool) -> Self {
        Self { required, ..self }
    }
    /// Sets `spool_max_bytes` (0: no spool).
    #[must_use]
    pub fn spool_max_bytes(self, spool_max_bytes: u64) -> Self {
        Self {
            spool_max_bytes,
            ..self
        }
    }
    /// Sets the spool directory.
    #[must_use]
    pub fn spool_dir(self, dir: impl Into<PathBuf>) -> Self {
        Self {
            spool_dir: Some(dir.into()),
            ..self
        }
    }
    /// Sets what an empty store receives of the existing history.
    #[must_use]
    pub fn backfill(self, backfill: Backfill) -> Self {
        Self { backfill, ..self }
    }

    /// Sets what a refused record does.
    #[must_use]
    pub fn on_refuse(self, on_refuse: OnRefuse) -> Self {
        Self { on_refuse, ..self }
    }
    /// Sets the retry delays.
    #[must_use]
    pub fn retry(self, initial: Duration, max: Duration) -> Self {
        Self {
            retry_initial: initial,
            retry_max: max.max(initial),
            ..self
        }
    }
}

/// The spool directory name for a backend name: letters, digits, `.`, `_` and `-` kept,
/// anything else replaced by `_`.
pub(crate) fn spool_dir_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("_{s}")
    } else {
        s
    }
}
