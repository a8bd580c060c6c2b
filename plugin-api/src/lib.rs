//! `audit-plugin-api`: the stable ABI between the `audit` host and storage-backend plugins.
//!
//! A vendor builds a storage backend (a database, a SIEM, a bucket) as a shared library
//! (`cdylib`) against this crate; an operator names the file in the host's TOML config; the
//! host loads it at start-up. Everything that crosses the boundary is an `abi_stable` type,
//! checked for layout compatibility when the library is loaded.
//!
//! # Writing a plugin
//!
//! Implement [`Backend`] (plain Rust, no FFI types in your code beyond [`Record`]), write an
//! `open` function that parses the JSON configuration, and export both with
//! [`export_backend!`]:
//!
//! ```
//! use audit_plugin_api::{Backend, PluginError, Record, export_backend};
//!
//! struct Counter { seen: u64 }
//!
//! impl Backend for Counter {
//!     fn write_batch(&mut self, records: &[Record<'_>]) -> Result<(), PluginError> {
//!         self.seen += records.len() as u64;
//!         Ok(())
//!     }
//!     fn flush(&mut self) -> Result<(), PluginError> { Ok(()) }
//!     fn close(&mut self) -> Result<(), PluginError> { Ok(()) }
//! }
//!
//! fn open(config_json: &str) -> Result<Counter, PluginError> {
//!     if config_json.trim() != "{}" {
//!         return Err(PluginError::config("this backend takes no configuration keys"));
//!     }
//!     Ok(Counter { seen: 0 })
//! }
//!
//! export_backend! {
//!     name: "counter",
//!     description: "Counts events and forgets them",
//!     config_help: "No keys.",
//!     open: open,
//! }
//! # fn main() {}
//! ```
//!
//! In `Cargo.toml`: `crate-type = ["cdylib", "rlib"]` (the `rlib` lets unit tests call the
//! functions directly), and depend on `audit-plugin-api` and `abi_stable` (the export macro
//! expands to `abi_stable` attributes).
//!
//! # Panics never cross the boundary
//!
//! `abi_stable` aborts the whole process when a panic reaches an `extern "C"` shim. The
//! wrapper [`export_backend!`] installs catches every panic in `open`, `write_batch`, `flush`,
//! `last_line` and `close` and turns it into a [`ErrorKind::Fatal`] error carrying the panic message;
//! after a panic the instance is not called again (every later call returns that error).
//! The message names the method and where the panic happened (`panicked in write_batch: ...
//! (at src/lib.rs:57:13)`); the host reports it once. Rust's default panic message (`thread
//! '<unnamed>' panicked at ...`, from the plugin's own copy of the standard library) is not
//! printed for these panics, unless `RUST_BACKTRACE` is set; panics on threads the plugin
//! starts itself go to the hook that was installed before.
//!
//! # Versioning
//!
//! The host checks, when it loads a library: `abi_stable`'s own ABI header, then this
//! crate's version (`VERSION_STRINGS`: the same major version; the plugin's minor version may
//! be lower or higher than the host's), then the full type layout of everything reachable
//! from the root module. That layout check refuses a library in which any of those types has
//! fewer fields, methods or variants than the host's, so adding one after
//! `#[sabi(last_prefix_field)]` would make a newer host refuse every older plugin. Therefore
//! what 1.0.0 plugins export is frozen for all of 1.x: the root module ([`PluginModule`]),
//! the [`StorageBackend`] methods, [`Record`], [`PluginError`] and [`ErrorKind`] keep their
//! 1.0.0 layout, and a plugin built against any 1.y loads into any 1.x host. New capabilities
//! come as optional extension modules ([`ext`]), each exported under its own symbol and
//! layout-checked on its own, that a host uses when a plugin exports them; without them a
//! plugin gets documented defaults (the repository's `docs/plugin-abi.md`). This release has
//! `health` ([`Health`], [`export_health!`]), `validate` ([`Validate`],
//! [`export_validate!`]), `read` ([`ReadBack`], [`export_read!`]), `stats` ([`Stats`],
//! [`export_stats!`]), `refuse` ([`Refuse`], [`export_refuse!`]) and `seal` ([`Witness`],
//! [`export_seal!`]). A breaking
//! change is a new major version, and a 1.x host refuses a 2.x plugin by its version. The
//! repository's CI loads a plugin built against a frozen copy of 1.0.0 into the current host.
//!
//! MSRV: Rust 1.89.

#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn, clippy::missing_safety_doc)]
#![allow(
    non_camel_case_types,
    reason = "abi_stable names the generated types `PluginModule_Ref` and `StorageBackend_TO`"
)]
#![allow(
    non_local_definitions,
    reason = "expanded from abi_stable's sabi_trait macro"
)]

use std::fmt;

mod export;
pub mod ext;
mod guard;
pub mod secrets;

pub use abi_stable;
use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RBox, ROption, RResult, RSlice, RStr, RString};
use abi_stable::{StableAbi, declare_root_module_statics, package_version_strings, sabi_trait};

/// What kind of failure a plugin reports, which decides what the host does next.
///
/// ```
/// use audit_plugin_api::{ErrorKind, PluginError};
/// let busy = PluginError::retryable("database is locked");
/// assert_eq!(busy.kind, ErrorKind::Retryable);
/// ```
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, StableAbi)]
pub enum ErrorKind {
    /// Try again later: a network blip, a locked database, a full remote queue. The host
    /// keeps the batch and retries it with back-off.
    Retryable = 0,
    /// This backend instance is broken. The host reports it once, does not call the instance
    /// again until the process restarts, and keeps its events in the backend's local spool
    /// (delivered when a later process opens a working instance).
    Fatal = 1,
    /// The configuration is wrong. From `open`: the host refuses to start and shows the
    /// message, which should name the key. From any other call: treated like `Fatal`.
    Config = 2,
}

/// An error crossing the plugin boundary: a kind and a message for a person.
///
/// ```
/// use audit_plugin_api::{ErrorKind, PluginError};
/// let e = PluginError::config("`path` is required");
/// assert_eq!(e.kind, ErrorKind::Config);
/// assert_eq!(e.to_string(), "configuration error: `path` is required");
/// ```
#[repr(C)]
#[derive(Debug, Clone, PartialEq, Eq, StableAbi)]
pub struct PluginError {
    /// What the host should do about it.
    pub kind: ErrorKind,
    /// What went wrong, naming the key, file or server involved.
    pub message: RString,
}

impl PluginError {
    /// A retryable error.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Retryable,
            message: RString::from(message.into()),
        }
    }

    /// A fatal error.
    pub fn fatal(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Fatal,
            message: RString::from(message.into()),
        }
    }

    /// A configuration error.
    pub fn config(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Config,
            message: RString::from(message.into()),
        }
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ErrorKind::Retryable => "retryable error",
            ErrorKind::Fatal => "fatal error",
            ErrorKind::Config => "configuration error",
        };
        write!(f, "{kind}: {}", self.message)
    }
}

impl std::error::Error for PluginError {}

/// One audit event as a plugin receives it, borrowed from the host for the duration of the
/// call: the canonical JSON line (exactly the bytes the host's file backend stores, without
/// the newline) plus the fields a database would index.
///
/// ```
/// use audit_plugin_api::Record;
/// use audit_plugin_api::abi_stable::std_types::{RNone, RStr};
/// let r = Record {
///     line: RStr::from_str("{}"),
///     sequence_number: 1,
///     timestamp: RStr::from_str("2026-01-01T00:00:00.000000Z"),
///     timestamp_micros: 1_767_225_600_000_000,
///     event_id: RStr::from_str("e1"),
///     event_type: RStr::from_str("data_access"),
///     log_level: RStr::from_str("info"),
///     user_id: RNone,
/// };
/// assert_eq!(r.user_id(), None);
/// ```
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, StableAbi)]
pub struct Record<'a> {
    /// The canonical JSON line, without the trailing newline.
    pub line: RStr<'a>,
    /// Position in the chain: 1-based, contiguous, never repeated. Use it to de-duplicate
    /// re-deliveries.
    pub sequence_number: u64,
    /// RFC 3339 UTC with microseconds and `Z` (sorts as text).
    pub timestamp: RStr<'a>,
    /// The same instant in microseconds since the Unix epoch.
    pub timestamp_micros: i64,
    /// The event's id.
    pub event_id: RStr<'a>,
    /// The event type, for example `data_access`.
    pub event_type: RStr<'a>,
    /// The log level, for example `security`.
    pub log_level: RStr<'a>,
    /// The acting user, if any.
    pub user_id: ROption<RStr<'a>>,
}

impl<'a> Record<'a> {
    /// The line as `&str`.
    pub fn line(&self) -> &'a str {
        self.line.as_str()
    }

    /// The user id as `Option<&str>`.
    pub fn user_id(&self) -> Option<&'a str> {
        self.user_id.map(|u| u.as_str()).into_option()
    }
}

/// The FFI-safe storage-backend trait a loaded plugin instance implements. Plugin authors
/// implement [`Backend`] instead; [`export_backend!`] wraps it in this.
///
/// The host calls one instance from one thread at a time.
///
/// ```
/// use audit_plugin_api::{Backend, BackendBox, PluginError, Record, export_backend};
/// struct Null;
/// impl Backend for Null {
///     fn write_batch(&mut self, _: &[Record<'_>]) -> Result<(), PluginError> { Ok(()) }
///     fn flush(&mut self) -> Result<(), PluginError> { Ok(()) }
///     fn close(&mut self) -> Result<(), PluginError> { Ok(()) }
/// }
/// export_backend! { name: "null", description: "", config_help: "", open: |_: &str| Ok(Null) }
/// # fn main() {
/// let open = audit_backend_root_module().open();
/// let opened = open(audit_plugin_api::abi_stable::std_types::RStr::from_str("{}"));
/// let mut boxed: BackendBox = opened.into_result().expect("opens");
/// assert!(boxed.write_batch(Default::default()).is_ok());
/// assert!(boxed.close().is_ok());
/// # }
/// ```
#[sabi_trait]
pub trait StorageBackend: Send {
    /// Stores `records` (in sequence order) or returns an error; on a retryable error the
    /// host delivers the same records again later.
    fn write_batch(&mut self, records: RSlice<'_, Record<'_>>) -> RResult<(), PluginError>;

    /// Makes everything written so far durable.
    fn flush(&mut self) -> RResult<(), PluginError>;

    /// The line with the highest sequence number this store holds (`None` when empty), so a
    /// restarted host continues the chain instead of starting again at 1.
    fn last_line(&mut self) -> RResult<ROption<RString>, PluginError>;

    /// Flushes and releases resources; no call follows.
    #[sabi(last_prefix_field)]
    fn close(&mut self) -> RResult<(), PluginError>;
}

/// A boxed, FFI-safe backend instance, as returned by the root module's `open` (see the
/// [`StorageBackend`] example).
pub type BackendBox = StorageBackend_TO<'static, RBox<()>>;

/// The root module every plugin library exports (through [`export_backend!`]).
///
/// ```
/// use audit_plugin_api::PluginModule_Ref;
/// use audit_plugin_api::abi_stable::library::RootModule;
/// // The host finds it by this name and checks this version when loading a library.
/// assert_eq!(PluginModule_Ref::NAME, "audit_backend");
/// assert_eq!(PluginModule_Ref::VERSION_STRINGS.version, audit_plugin_api::API_VERSION);
/// ```
#[repr(C)]
#[derive(Debug, StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModule_Ref)))]
#[sabi(missing_field(panic))]
pub struct PluginModule {
    /// Short name, for example `sqlite`.
    pub name: RStr<'static>,
    /// The plugin's own version.
    pub version: RStr<'static>,
    /// One line saying what it stores where.
    pub description: RStr<'static>,
    /// The configuration keys, their types and defaults, for `audit plugin inspect`.
    pub config_help: RStr<'static>,
    /// Opens an instance with the backend's `config` table, as JSON.
    #[sabi(last_prefix_field)]
    pub open: extern "C" fn(config_json: RStr<'_>) -> RResult<BackendBox, PluginError>,
}

impl RootModule for PluginModule_Ref {
    declare_root_module_statics! {PluginModule_Ref}
    const BASE_NAME: &'static str = "audit_backend";
    const NAME: &'static str = "audit_backend";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// The version of this interface crate, as the host reports it.
///
/// ```
/// assert!(audit_plugin_api::API_VERSION.starts_with("1."));
/// ```
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A storage backend, written in plain Rust. [`export_backend!`] makes it a plugin (see the
/// crate-level example).
///
/// Return [`ErrorKind::Retryable`] for failures that may pass (timeouts, a busy database),
/// [`ErrorKind::Fatal`] when the instance cannot go on. Never swallow an error: the host
/// reports it and keeps the events.
pub trait Backend: Send + 'static {
    /// Stores `records`, in order, all or nothing (a retry delivers them again; ignore a
    /// `sequence_number` already stored).
    ///
    /// # Errors
    /// A [`PluginError`] saying whether a retry may help.
    fn write_batch(&mut self, records: &[Record<'_>]) -> Result<(), PluginError>;

    /// Makes everything written so far durable.
    ///
    /// # Errors
    /// A [`PluginError`] saying whether a retry may help.
    fn flush(&mut self) -> Result<(), PluginError>;

    /// The stored line with the highest sequence number, or `None` if the store is empty.
    ///
    /// The host calls it once, after `open`, to continue the chain where it stopped. A store
    /// that keeps data across restarts must implement it: with the default (`None`) a host
    /// whose only backends are plugins starts again at sequence 1, and the store sees
    /// sequence numbers it already holds (return an error for a stored sequence number with a
    /// different line, never drop it silently).
    ///
    /// # Errors
    /// A [`PluginError`] if the store cannot be read.
    fn last_line(&mut self) -> Result<Option<String>, PluginError> {
        Ok(None)
    }

    /// Flushes and releases resources. No call follows.
    ///
    /// # Errors
    /// A [`PluginError`].
    fn close(&mut self) -> Result<(), PluginError>;
}

/// The `health` capability ([`ext::HealthV1`]) in plain Rust: a short status of an instance,
/// which a host that knows the capability can ask for (in this release, audit-host's
/// `PluginBackend::health`). Export it with [`export_health!`] (see its example); without it
/// the backend's health is unknown.
pub trait Health: Backend {
    /// One line: what the backend is connected to, how far it got, what is wrong.
    ///
    /// # Errors
    /// A [`PluginError`] when the status cannot be determined.
    fn health(&mut self) -> Result<String, PluginError>;
}

/// The `validate` capability ([`ext::ValidateV1`]) in plain Rust: checks a `config` table (as
/// JSON) the way `open` would, without an instance. A host that knows the capability calls it
/// in `audit config check` (also with `--no-connect`) and before it opens any backend at
/// start-up. Export it with [`export_validate!`] (see its example); without it a host checks
/// the configuration by opening and closing an instance.
///
/// `validate` must not connect anywhere, open or create files or databases, or read secrets
/// from the network: it checks keys and values only (unknown keys, missing required keys,
/// types, ranges, formats). Reuse the parsing `open` does, so that the two agree. It may be
/// called many times, from any thread, with no instance open. Panics are caught, as in every
/// call.
pub trait Validate {
    /// `Ok(())` when `open` would accept these keys and values.
    ///
    /// # Errors
    /// A [`PluginError`] of kind [`ErrorKind::Config`] naming the key and what is wrong.
    fn validate(config_json: &str) -> Result<(), PluginError>;
}

/// The `read` capability ([`ext::ReadV1`]) in plain Rust: the stored lines read back in
/// sequence order, a page at a time, so that a host can verify and query the store (`audit
/// verify --config FILE --backend NAME`). Export it with [`export_read!`] (see its example);
/// without it the store cannot be read back through the host.
pub trait ReadBack: Backend {
    /// The stored lines whose `sequence_number` is `from_sequence` or higher, in sequence
    /// order, at most `limit` of them (each exactly as stored, without a newline); empty when
    /// nothing more is stored. Return what is stored, even a line that is not valid JSON:
    /// the host's verification reports it; never skip or repair one.
    ///
    /// # Errors
    /// A [`PluginError`] if the store cannot be read.
    fn read_from(&mut self, from_sequence: u64, limit: u32) -> Result<Vec<String>, PluginError>;
}

/// The `stats` capability ([`ext::StatsV1`]) in plain Rust: named counters of an instance,
/// which a host that knows the capability shows in its statistics (`audit emit --stats`).
/// Export it with [`export_stats!`] (see its example); without it the backend has no plugin
/// counters.
///
/// Names are `snake_case` and stable (dashboards key on them); each value is monotonic since
/// `open` (a count) or a gauge (a current amount). The host calls it at most every few
/// seconds and once before `close`, on the instance's thread: return values the instance
/// keeps, never query a server for them.
pub trait Stats: Backend {
    /// The counters, in a stable order: `(name, value)`.
    fn statistics(&mut self) -> Vec<(String, u64)>;
}

/// The `refuse` capability ([`ext::RefuseV1`]) in plain Rust: a backend that can tell that
/// particular records of a batch can never be stored says which, with a reason, and stores
/// the rest. A host that knows the capability calls this instead of
/// [`Backend::write_batch`] and keeps the refused records in a dead-letter file (audit-host
/// writes them, with the reason, to `dead-letter.jsonl` in the backend's spool directory).
/// Export it with [`export_refuse!`] (see its example); without it a batch is stored or
/// failed whole.
///
/// Refuse only what no retry can fix (a record too large for the store, a value the store
/// rejects): a refused record is never delivered to this backend again. For anything that
/// may pass, return an error as from `write_batch`.
pub trait Refuse: Backend {
    /// Stores `records`, in order, except those it pushes onto `refused` (each naming a
    /// `sequence_number` of `records`, with a non-empty reason). `Ok` means every record not
    /// refused is stored.
    ///
    /// # Errors
    /// A [`PluginError`], as from [`Backend::write_batch`]: then nothing of the batch counts
    /// as stored and `refused` is ignored.
    fn write_batch_refusing(
        &mut self,
        records: &[Record<'_>],
        refused: &mut Vec<ext::Refusal>,
    ) -> Result<(), PluginError>;
}

/// The `seal` capability ([`ext::SealV1`]) in plain Rust: a witness that keeps a copy of
/// every signed seal of the host's audit directories, outside the host. Export it with
/// [`export_seal!`]; without it the plugin receives no seals.
pub trait Witness: Backend {
    /// Stores `seal_line` (one seal, canonical JSON, no newline) durably and exactly as
    /// given, after the ones stored before. A host verifies the copy with `audit verify
    /// --public-key KEY --seals DIR`, so keep the lines in order, one per line.
    ///
    /// # Errors
    /// A [`PluginError`] if it cannot be stored; the host reports it and goes on.
    fn seal(&mut self, seal_line: &str) -> Result<(), PluginError>;
}

/// Support for [`export_backend!`]'s expansion. Not part of the API: no stability promise.
#[doc(hidden)]
pub mod __private {
    pub use crate::guard::{
        Guarded, health_guarded, open_guarded, panic_message, read_guarded, refuse_guarded,
        seal_guarded, stats_guarded, validate_guarded,
    };
}

// Source compatibility with 1.0.0, where these were public at the crate root.
#[doc(hidden)]
pub use guard::{Guarded, open_guarded, panic_message};
