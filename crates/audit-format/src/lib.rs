//! `audit-format`: the audit trail's line and directory contract.
//!
//! Everything that decides what is stored, and nothing that decides when: the event model
//! ([`AuditEvent`], the 30 fields of the Python audit trail), the compliance policy, canonical
//! JSON, the hash-chained line ([`AuditRecord`], [`Integrity`]) and the errors they share
//! ([`Error`]). `audit-host` (the trail services embed) and the backend plugins build on it.
//!
//! The crate has no async runtime and no plugin ABI: every function here is synchronous.
//!
//! ```
//! use audit_format::{AuditEvent, AuditEventType};
//! let event = AuditEvent::new(AuditEventType::DataAccess, "read customers/42").user_id("alice");
//! assert_eq!(event.user_id.as_deref(), Some("alice"));
//! ```
//!
//! MSRV: Rust 1.89.

#![warn(missing_docs)]
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

mod canonical;
pub mod error;
pub mod event;
pub mod ids;
pub mod policy;
pub mod record;

pub use error::{CallErrorKind, ConfigError, Error, Result};
pub use event::{
    AuditEvent, AuditEventType, AuditLogLevel, ComplianceLevel, ErrorReport, ErrorSeverity,
    data_access_event_type,
};
pub use ids::IdPool;
pub use policy::{AlertReason, CompliancePolicy};
pub use record::{AuditRecord, Integrity, LineEncoder};
