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
//!
//! # Versioning
//!
//! The host checks, when it loads a library: `abi_stable`'s own ABI header, then this
//! crate's version (`VERSION_STRINGS`: same major version; the plugin's minor version may be
//! lower or higher than the host's), then the full type layout of everything reachable from
//! the root module. This crate starts at 1.0.0 and grows only by appending fields after the
//! root module's `#[sabi(last_prefix_field)]` and methods after the trait's, each with a
//! default, so any 1.y plugin loads into any 1.x host: a newer host sees an older plugin's
//! missing methods as their defaults, and an older host ignores what it does not know. A
//! breaking change is a new major version, and a 1.x host refuses a 2.x plugin by name.
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
use std::panic::{AssertUnwindSafe, catch_unwind};

pub use abi_stable;
use abi_stable::library::RootModule;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RBox, RErr, ROk, ROption, RResult, RSlice, RStr, RString};
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
/// use audit_plugin_api::{Backend, BackendBox, Guarded, PluginError, Record, StorageBackend_TO};
/// use audit_plugin_api::abi_stable::sabi_trait::TD_Opaque;
/// struct Null;
/// impl Backend for Null {
///     fn write_batch(&mut self, _: &[Record<'_>]) -> Result<(), PluginError> { Ok(()) }
///     fn flush(&mut self) -> Result<(), PluginError> { Ok(()) }
///     fn close(&mut self) -> Result<(), PluginError> { Ok(()) }
/// }
/// let mut boxed: BackendBox = StorageBackend_TO::from_value(Guarded::new(Null), TD_Opaque);
/// assert!(boxed.write_batch(Default::default()).is_ok());
/// assert!(boxed.close().is_ok());
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

/// Wraps a [`Backend`]: every call runs inside `catch_unwind`, and after a panic the
/// instance is never called again.
///
/// ```
/// use audit_plugin_api::{Backend, ErrorKind, Guarded, PluginError, Record, StorageBackend};
/// struct Boom;
/// impl Backend for Boom {
///     fn write_batch(&mut self, _: &[Record<'_>]) -> Result<(), PluginError> { panic!("kaboom") }
///     fn flush(&mut self) -> Result<(), PluginError> { Ok(()) }
///     fn close(&mut self) -> Result<(), PluginError> { Ok(()) }
/// }
/// let mut g = Guarded::new(Boom);
/// let err = g.write_batch(Default::default()).unwrap_err();
/// assert_eq!(err.kind, ErrorKind::Fatal);
/// assert!(err.message.as_str().contains("kaboom"));
/// assert!(g.flush().is_err(), "a panicked instance is not called again");
/// ```
#[derive(Debug)]
pub struct Guarded<B> {
    inner: B,
    panicked: Option<String>,
}

impl<B: Backend> Guarded<B> {
    /// Wraps `inner`.
    pub fn new(inner: B) -> Self {
        Self {
            inner,
            panicked: None,
        }
    }

    fn call(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut B) -> Result<(), PluginError>,
    ) -> RResult<(), PluginError> {
        if let Some(p) = &self.panicked {
            return RErr(PluginError::fatal(format!(
                "the plugin panicked earlier ({p}); it is not called again"
            )));
        }
        match catch_unwind(AssertUnwindSafe(|| f(&mut self.inner))) {
            Ok(Ok(())) => ROk(()),
            Ok(Err(e)) => RErr(e),
            Err(payload) => {
                let msg = format!("panicked in {what}: {}", panic_message(payload.as_ref()));
                self.panicked = Some(msg.clone());
                RErr(PluginError::fatal(msg))
            }
        }
    }
}

impl<B: Backend> StorageBackend for Guarded<B> {
    fn write_batch(&mut self, records: RSlice<'_, Record<'_>>) -> RResult<(), PluginError> {
        self.call("write_batch", |b| b.write_batch(records.as_slice()))
    }

    fn flush(&mut self) -> RResult<(), PluginError> {
        self.call("flush", Backend::flush)
    }

    fn last_line(&mut self) -> RResult<ROption<RString>, PluginError> {
        let mut line = None;
        match self.call("last_line", |b| {
            line = b.last_line()?;
            Ok(())
        }) {
            ROk(()) => ROk(line.map(RString::from).into()),
            RErr(e) => RErr(e),
        }
    }

    fn close(&mut self) -> RResult<(), PluginError> {
        self.call("close", Backend::close)
    }
}

/// The text of a panic payload.
///
/// ```
/// let payload = std::panic::catch_unwind(|| panic!("disk {} gone", 3)).unwrap_err();
/// assert_eq!(audit_plugin_api::panic_message(payload.as_ref()), "disk 3 gone");
/// ```
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".to_owned())
}

/// Runs a plugin's `open` inside `catch_unwind` and boxes the result for the boundary. Used
/// by [`export_backend!`].
///
/// ```
/// use audit_plugin_api::{open_guarded, Backend, ErrorKind, PluginError, Record};
/// use audit_plugin_api::abi_stable::std_types::RStr;
/// struct Null;
/// impl Backend for Null {
///     fn write_batch(&mut self, _: &[Record<'_>]) -> Result<(), PluginError> { Ok(()) }
///     fn flush(&mut self) -> Result<(), PluginError> { Ok(()) }
///     fn close(&mut self) -> Result<(), PluginError> { Ok(()) }
/// }
/// fn open(_: &str) -> Result<Null, PluginError> { panic!("no config file") }
/// let Err(err) = open_guarded(RStr::from_str("{}"), open).into_result() else { panic!("opened") };
/// assert_eq!(err.kind, ErrorKind::Fatal);
/// assert!(err.message.as_str().contains("panicked in open: no config file"));
/// ```
///
/// # Errors
/// The plugin's own error, or a fatal error carrying the panic message.
pub fn open_guarded<B: Backend>(
    config_json: RStr<'_>,
    open: fn(&str) -> Result<B, PluginError>,
) -> RResult<BackendBox, PluginError> {
    match catch_unwind(AssertUnwindSafe(|| open(config_json.as_str()))) {
        Ok(Ok(backend)) => ROk(StorageBackend_TO::from_value(
            Guarded::new(backend),
            TD_Opaque,
        )),
        Ok(Err(e)) => RErr(e),
        Err(payload) => RErr(PluginError::fatal(format!(
            "panicked in open: {}",
            panic_message(payload.as_ref())
        ))),
    }
}

/// Exports a [`Backend`] as a plugin library's root module.
///
/// `open` is a `fn(&str) -> Result<B, PluginError>` receiving the backend's `config` table
/// as JSON. Every call is guarded against panics (see [`Guarded`]). The plugin's version is
/// its crate's `CARGO_PKG_VERSION`.
///
/// ```
/// use audit_plugin_api::{Backend, PluginError, Record, export_backend};
/// struct Null;
/// impl Backend for Null {
///     fn write_batch(&mut self, _: &[Record<'_>]) -> Result<(), PluginError> { Ok(()) }
///     fn flush(&mut self) -> Result<(), PluginError> { Ok(()) }
///     fn close(&mut self) -> Result<(), PluginError> { Ok(()) }
/// }
/// export_backend! {
///     name: "null",
///     description: "Discards everything (an example)",
///     config_help: "No keys.",
///     open: |_config: &str| Ok(Null),
/// }
/// # fn main() {
/// // What the host sees after loading the library:
/// let module = audit_backend_root_module();
/// assert_eq!(module.name().as_str(), "null");
/// let opened = (module.open())(audit_plugin_api::abi_stable::std_types::RStr::from_str("{}"));
/// assert!(opened.is_ok());
/// # }
/// ```
#[macro_export]
macro_rules! export_backend {
    (
        name: $name:expr,
        description: $description:expr,
        config_help: $config_help:expr,
        open: $open:expr $(,)?
    ) => {
        /// The plugin's root module, found by the host when it loads the library.
        #[::abi_stable::export_root_module]
        pub fn audit_backend_root_module() -> $crate::PluginModule_Ref {
            use ::abi_stable::prefix_type::PrefixTypeTrait;
            $crate::PluginModule {
                name: ::abi_stable::std_types::RStr::from_str($name),
                version: ::abi_stable::std_types::RStr::from_str(env!("CARGO_PKG_VERSION")),
                description: ::abi_stable::std_types::RStr::from_str($description),
                config_help: ::abi_stable::std_types::RStr::from_str($config_help),
                open: audit_backend_open,
            }
            .leak_into_prefix()
        }

        /// Opens an instance; panics are caught and returned as fatal errors.
        #[::abi_stable::sabi_extern_fn]
        pub fn audit_backend_open(
            config_json: ::abi_stable::std_types::RStr<'_>,
        ) -> ::abi_stable::std_types::RResult<$crate::BackendBox, $crate::PluginError> {
            $crate::open_guarded(config_json, $open)
        }
    };
}
