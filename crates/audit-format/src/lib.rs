//! `audit-format`: the audit trail's line and directory contract.
//!
//! Everything that decides what is stored, and nothing that decides when:
//!
//! - the event model ([`AuditEvent`], the 30 fields of the Python audit trail), the
//!   compliance policy and generated event ids;
//! - the line: canonical JSON, hash-chained ([`AuditRecord`], [`LineEncoder`],
//!   [`Integrity`]), and lines the Python trail stored;
//! - the directory: file names ([`names`]), the lock ([`lock::lock_dir`]), the chain [`Anchor`], private-mode
//!   file helpers ([`fs`]) and the synchronous [`FileStore`] that appends, rotates, applies
//!   retention and recovers a torn tail;
//! - reading it back: [`verify_dir`], [`verify::StreamVerifier`] (lines read back one by
//!   one), [`query_dir`] and [`read::DirReader`] (a page of lines from a sequence number on);
//! - the errors all of them share ([`Error`]).
//!
//! `audit-host` (the trail services embed) and the backend plugins build on it. The crate has
//! no async runtime and no plugin ABI: every function here is synchronous.
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

pub mod anchor;
mod canonical;
pub mod error;
pub mod event;
pub mod fs;
pub mod ids;
pub mod lock;
pub mod names;
pub mod numbers;
pub mod origin;
pub mod policy;
pub mod query;
pub mod read;
pub mod record;
pub mod recover;
pub mod rev_lines;
pub mod seal;
pub mod store;
pub mod verify;

pub use anchor::{Anchor, AnchorAuth, Removed};
pub use error::{CallErrorKind, ConfigError, Error, Result};
pub use event::{
    AuditEvent, AuditEventType, AuditLogLevel, ComplianceLevel, ErrorReport, ErrorSeverity,
    data_access_event_type,
};
pub use ids::IdPool;
pub use names::todays_file_name;
pub use origin::{Imported, ORIGIN_FILE, Origin};
pub use policy::{AlertReason, CompliancePolicy};
pub use query::{
    EventQuery, QueryReport, QueryScan, query_dir, query_dir_counting, query_dir_each,
};
pub use record::{AuditRecord, Integrity, LineEncoder, MAX_SEQUENCE};
pub use recover::{ChainHead, find_line};
pub use store::{DEFAULT_MAX_FILE_BYTES, FileStore, Storable};
pub use verify::{VerifyReport, verify_dir};
