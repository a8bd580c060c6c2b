//! `audit-host`: a tamper-evident, append-only audit trail with pluggable storage.
//!
//! A service records audit events (who did what to which data, security failures,
//! configuration changes) through an [`AuditTrail`]. Each event is sequenced, timestamped,
//! hash-chained (SHA-256, or HMAC-SHA256 with a key) and serialized once, in one critical
//! section, to a canonical JSON line; a worker thread writes the lines in batches to every
//! storage backend. With no configuration at all the backend is a
//! [`FileStorageBackend`] writing `audit_logs/audit_YYYY-MM-DD.jsonl`.
//!
//! ```no_run
//! use audit_host::{AuditTrail, AuditEventType, ErrorReport, ErrorSeverity};
//!
//! # async fn demo() -> audit_host::Result<()> {
//! let trail = AuditTrail::builder()                          // SHA-256 chain, default policy
//!     .storage_path("audit_logs")
//!     .build()?;
//! trail.log_data_access("customers/42", "read").user_id("alice").contains_pii(true).await?;
//! trail.log_security_event(AuditEventType::AuthenticationFailed, "bad password")
//!     .user_id("mallory")
//!     .client_ip("203.0.113.9")
//!     .await?;
//! trail.log_error(ErrorReport::new("db timeout").severity(ErrorSeverity::High)).component("billing").await?;
//! let report = trail.verify_chain().await?;
//! assert_eq!(report.events, 3);
//! trail.close().await?;                                     // drains, fdatasyncs, closes
//! # Ok(()) }
//! ```
//!
//! - Guarantees: `log_event` returns once the event is accepted (in `sync` durability, once
//!   it is fdatasync'd); `flush` returns once everything accepted is durable; `close` writes
//!   and syncs everything accepted, retrying a failing backend for up to the shutdown timeout,
//!   and otherwise says exactly how many events that backend did not get. A storage failure
//!   is returned to the caller, never swallowed.
//! - Without an async runtime: [`blocking::AuditTrail`] (from
//!   [`AuditTrailBuilder::build_blocking`]) has the same methods, returning when the async
//!   ones would complete; inside a runtime its calls return [`Error::BlockingInRuntime`].
//! - Custom stores: implement [`StorageBackend`] and pass it to [`AuditTrail::new`] or
//!   [`AuditTrailBuilder::backend`].
//! - Signals: the library changes no signal disposition. Ignore SIGXFSZ in a process that
//!   may run under a file-size limit (`ulimit -f`), as `audit` does, so that a write past it
//!   fails with `File too large` and is rolled back instead of killing the process.
//! - Operators use the `audit` command (`emit`, `verify`, `query`, `config check`) and a TOML
//!   file ([`AuditTrail::from_config_file`]); see `docs/configuration.md`.
//!
//! MSRV: Rust 1.89 (uses `File::try_lock`).

#![deny(missing_docs)]
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

mod backend;
pub mod blocking;
mod catch_panics;
pub mod config;
mod delivery;
mod file;
mod global;
pub mod plugin;
pub mod preflight;
pub mod readback;
pub mod sealing;
mod settings;
mod statistics;
#[cfg(feature = "tracing-layer")]
mod tracing_layer;
mod trail;

pub use async_trait::async_trait;
pub use audit_format::error;
pub use audit_format::verify;
pub use audit_format::{
    AlertReason, AuditEvent, AuditEventType, AuditLogLevel, AuditRecord, CallErrorKind,
    ComplianceLevel, CompliancePolicy, ConfigError, Error, ErrorReport, ErrorSeverity, EventQuery,
    Integrity, MAX_SEQUENCE, QueryReport, QueryScan, Result, VerifyReport, data_access_event_type,
    query_dir, query_dir_counting, query_dir_each, verify_dir,
};
pub use backend::{Batch, ChainHead, Refusal, StorageBackend};
pub use delivery::spool::DEFAULT_SPOOL_MAX_BYTES;
pub use delivery::{BackendOptions, Backfill, DEFAULT_RETRY_INITIAL, DEFAULT_RETRY_MAX, OnRefuse};
pub use file::{DEFAULT_MAX_FILE_BYTES, FileBackendBuilder, FileStorageBackend, todays_file_name};
pub use global::{
    audit_data_access, audit_error, audit_security_event, get_audit_trail, get_audit_trail_with,
    set_audit_trail,
};
pub use settings::{
    AlertHook, Clock, DEFAULT_FLUSH_INTERVAL_MS, DEFAULT_QUEUE_CAPACITY,
    DEFAULT_SHUTDOWN_TIMEOUT_MS, Durability, OnFull,
};
pub use statistics::{BackendState, BackendStatistics, PolicySummary, Receipt, Statistics};
#[cfg(feature = "tracing-layer")]
pub use tracing_layer::{AUDIT_TARGET, AuditLayer, AuditLayerStats, is_audit_target};
pub use trail::AuditTrail;
pub use trail::builder::AuditTrailBuilder;
pub use trail::pending::PendingEvent;

/// The README's Rust examples, compiled by `cargo test --doc -p audit-host`.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
