//! The audit event model: the 30 fields of the Python audit trail, with the same names and
//! the same serialized values.
//!
//! [`AuditEvent`] and its setters live in `model.rs`, the closed vocabularies (event type,
//! levels, severity) in `kinds.rs`, reading an event from JSON in `parse.rs`,
//! [`ErrorReport`] in `error_report.rs`.

mod error_report;
mod kinds;
mod model;
mod parse;
mod serde_impl;
#[cfg(test)]
mod test;

pub use error_report::ErrorReport;
pub use kinds::{
    AuditEventType, AuditLogLevel, ComplianceLevel, ErrorSeverity, data_access_event_type,
};
pub use model::AuditEvent;
