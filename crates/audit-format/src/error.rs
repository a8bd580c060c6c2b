//! Errors returned by the audit trail, its backends, its configuration and its verifier: the
//! one error vocabulary the format, the file store and `audit-host` share.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Shorthand for `Result<T, audit_format::Error>` (re-exported as `audit_host::Result`).
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the audit trail (`audit_host::Error` is this type).
///
/// Each variant's message says what failed, where, and what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration file (or an equivalent builder setting) is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// An event given to the trail (or a line given to `audit emit`) is invalid.
    #[error("invalid event: key `{key}`: {message}")]
    InvalidEvent {
        /// The event field that is wrong.
        key: String,
        /// What is wrong with it.
        message: String,
    },

    /// A file-system operation failed.
    #[error("{context} {}: {source}", path.display())]
    Io {
        /// What the trail was doing.
        context: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// Another process (or another backend in this process) holds the directory's lock.
    #[error("audit directory {} is locked: {}", dir.display(), lock_holder(*pid))]
    DirectoryLocked {
        /// The locked directory.
        dir: PathBuf,
        /// The pid recorded by the lock holder, when known.
        pid: Option<u32>,
    },

    /// `on_full = "fail"` and the bounded queue is full: the event was not accepted.
    #[error(
        "audit queue is full ({capacity} events waiting for storage); the event was NOT recorded. \
         Raise trail.queue_capacity or use on_full = \"block\""
    )]
    QueueFull {
        /// The configured `queue_capacity`.
        capacity: usize,
    },

    /// The trail was closed; it accepts no more events.
    #[error("audit trail is closed; the event was NOT recorded")]
    Closed,

    /// A storage backend failed. Events accepted before the failure stay queued and are
    /// retried; while the failure lasts, new events are refused.
    #[error(
        "storage backend `{backend}` failed: {source}; {queued} accepted event(s) are kept \
         queued and retried, new events are refused until it recovers"
    )]
    Storage {
        /// The backend's name.
        backend: String,
        /// How many accepted events were waiting to be written when this was reported.
        queued: usize,
        /// The backend's own error.
        #[source]
        source: Arc<Error>,
    },

    /// Sync durability: the event was accepted (it has its sequence number and stays queued
    /// for retries) but could not be confirmed durable before `log_event` returned.
    #[error(
        "event {event_id} was accepted as sequence {sequence} but is not confirmed durable: \
         {source}"
    )]
    NotDurable {
        /// The sequence number it got.
        sequence: u64,
        /// Its id.
        event_id: String,
        /// Why it is not durable (usually [`Error::Storage`]).
        #[source]
        source: Arc<Error>,
    },

    /// `close` gave up on a failing backend after the shutdown timeout.
    #[error(
        "closing: backend `{backend}` still failed when the shutdown timeout ran out, or failed \
         to close ({source}): {unwritten} accepted event(s) were NOT written to it and \
         {not_durable} were not confirmed durable"
    )]
    Shutdown {
        /// The failing backend.
        backend: String,
        /// Accepted events that were not written to it.
        unwritten: usize,
        /// Accepted events not confirmed durable (written, or not, but never fsynced).
        not_durable: u64,
        /// The backend's last error.
        #[source]
        source: Arc<Error>,
    },

    /// The chain has used up its sequence numbers: it ends at `last`, at or past
    /// [`MAX_SEQUENCE`](crate::MAX_SEQUENCE), so no event can follow it.
    #[error(
        "sequence numbers are used up: the chain ends at sequence {last}, and the highest a \
         trail assigns is {max}; no event can follow it. Continue in a new, \
         empty directory (a new chain)",
        max = crate::MAX_SEQUENCE
    )]
    SequenceExhausted {
        /// The last sequence number of the chain.
        last: u64,
    },

    /// An error reported by a storage backend (custom backends return this).
    #[error("{message}")]
    Backend {
        /// What went wrong, for a person.
        message: String,
    },

    /// A backend failed in a way retrying cannot fix (a custom backend can return this; a
    /// panic inside a backend becomes this). The trail stops calling it until restart; its
    /// events go to its spool.
    #[error("{message}")]
    Fatal {
        /// What went wrong, for a person.
        message: String,
    },

    /// A plugin library could not be loaded or opened.
    #[error("plugin {}: {message}", library.display())]
    Plugin {
        /// The library file.
        library: PathBuf,
        /// What is wrong and what to do (one or two lines).
        message: String,
        /// A long report (for example abi_stable's layout comparison), shown with `--verbose`.
        details: Option<String>,
    },

    /// A call into a loaded plugin failed: `backends[N] "NAME" (FILE:LINE): fatal error:
    /// MESSAGE` for a configured backend, ``plugin backend `NAME`: ...`` for one opened in
    /// code.
    #[error("{}: {}: {message}", call_subject(backend, entry.as_deref()), match kind {
        CallErrorKind::Retryable => "retryable error",
        CallErrorKind::Fatal => "fatal error",
        CallErrorKind::Config => "configuration error",
    })]
    PluginCall {
        /// The backend's name.
        backend: String,
        /// Where it is configured (`backends[N] "NAME" (FILE:LINE)`), when it comes from a
        /// configuration file.
        entry: Option<String>,
        /// What the plugin says the host should do.
        kind: CallErrorKind,
        /// The plugin's message.
        message: String,
    },

    /// The stored chain does not match the configured integrity settings.
    #[error("{0}")]
    Integrity(String),

    /// A setting the trail cannot honour was set; it is refused rather than ignored.
    #[error("`{setting}` is not supported: {reason}")]
    Unsupported {
        /// The setting (config key or policy field).
        setting: &'static str,
        /// Why, and what to do instead.
        reason: &'static str,
    },
}

impl Error {
    /// A backend error with the given message, for custom storage backends (implementations
    /// of `audit_host::StorageBackend`).
    pub fn backend(message: impl Into<String>) -> Self {
        Self::Backend {
            message: message.into(),
        }
    }

    /// Wraps an `io::Error` with what was being done and on which path, for `map_err`.
    pub fn io(context: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            context,
            path,
            source,
        }
    }

    /// An [`Error::InvalidEvent`] naming `key`.
    pub fn invalid(key: &str, message: impl Into<String>) -> Self {
        Self::InvalidEvent {
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

/// How [`Error::PluginCall`] names the backend: its configuration entry, else its name.
fn call_subject(backend: &str, entry: Option<&str>) -> String {
    match entry {
        Some(entry) => entry.to_owned(),
        None => format!("plugin backend `{backend}`"),
    }
}

/// What a failed call into a backend plugin says the host should do: the plugin ABI's error
/// kind (`audit_plugin_api::ErrorKind`) as [`Error::PluginCall`] carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CallErrorKind {
    /// Try again later; the host keeps the batch and retries it.
    Retryable,
    /// The backend instance is broken; the host stops calling it until restart.
    Fatal,
    /// The backend's configuration is wrong (treated like `Fatal` after `open`).
    Config,
}

/// A configuration error: which file, which line, which key, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{key}: {message}", location(file, *line, *column))]
pub struct ConfigError {
    /// The configuration file (empty for builder settings).
    pub file: PathBuf,
    /// 1-based line of the offending key or value, when known.
    pub line: Option<usize>,
    /// 1-based column (in characters) on `line`, when the TOML parser pointed at one.
    pub column: Option<u32>,
    /// The dotted key, for example `trail.durability`.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

fn location(file: &std::path::Path, line: Option<usize>, column: Option<u32>) -> String {
    match (file.as_os_str().is_empty(), line) {
        (true, _) => String::new(),
        (false, Some(l)) => match column {
            Some(c) => format!("{}:{l}:{c}: ", file.display()),
            None => format!("{}:{l}: ", file.display()),
        },
        (false, None) => format!("{}: ", file.display()),
    }
}

fn lock_holder(pid: Option<u32>) -> String {
    match pid {
        Some(p) if p == std::process::id() => format!(
            "another trail or backend in this process (pid {p}) already writes there; give each its own directory"
        ),
        Some(p) => format!(
            "process {p} holds it; stop that process or point this one at another directory"
        ),
        None => {
            "another process holds it; stop it or point this one at another directory".to_owned()
        }
    }
}
