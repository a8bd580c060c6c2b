//! [`ErrorReport`]: an error to record, and the event the Python trail builds from it.

use serde_json::{Map, Value};

use super::kinds::{AuditEventType, ErrorSeverity};
use super::model::AuditEvent;

/// An error to record with `AuditTrail::log_error` (in `audit-host`): the
/// Rust counterpart of the Python `FapilogError` and its context.
///
/// ```
/// use audit_format::{ErrorReport, ErrorSeverity};
/// let report = ErrorReport::new("database unreachable")
///     .category("network")
///     .severity(ErrorSeverity::High)
///     .user_id("alice")
///     .context("retries", 3);
/// assert_eq!(report.severity, ErrorSeverity::High);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorReport {
    /// What went wrong.
    pub message: String,
    /// Error category, for example `network`, `validation`.
    pub category: Option<String>,
    /// Severity; decides the event's log level.
    pub severity: ErrorSeverity,
    /// The user affected.
    pub user_id: Option<String>,
    /// The session affected.
    pub session_id: Option<String>,
    /// The request affected.
    pub request_id: Option<String>,
    /// Anything else about the error; stored as `error_context`.
    pub context: Map<String, Value>,
}

impl ErrorReport {
    /// A report with severity [`ErrorSeverity::Medium`].
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            category: None,
            severity: ErrorSeverity::Medium,
            user_id: None,
            session_id: None,
            request_id: None,
            context: Map::new(),
        }
    }

    /// Sets the category.
    #[must_use]
    pub fn category(mut self, category: impl Into<String>) -> Self {
        self.category = Some(category.into());
        self
    }

    /// Sets the severity.
    #[must_use]
    pub fn severity(mut self, severity: ErrorSeverity) -> Self {
        self.severity = severity;
        self
    }

    /// Sets the user.
    #[must_use]
    pub fn user_id(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    /// Sets the session.
    #[must_use]
    pub fn session_id(mut self, session_id: impl Into<String>) -> Self {
        self.session_id = Some(session_id.into());
        self
    }

    /// Sets the request.
    #[must_use]
    pub fn request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    /// Adds one entry to the error context.
    #[must_use]
    pub fn context(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.context.insert(key.into(), value.into());
        self
    }

    /// The event the Python trail's `log_error` builds from this report.
    pub fn into_event(self) -> AuditEvent {
        let mut ctx = self.context;
        ctx.insert("message".into(), Value::String(self.message.clone()));
        ctx.insert(
            "severity".into(),
            Value::String(self.severity.as_str().into()),
        );
        if let Some(c) = &self.category {
            ctx.insert("category".into(), Value::String(c.clone()));
        }
        let mut ev = AuditEvent::new(
            AuditEventType::ErrorOccurred,
            format!("Error occurred: {}", self.message),
        )
        .log_level(self.severity.log_level())
        .error_context(ctx);
        ev.error_category = self.category;
        ev.error_severity = Some(self.severity.as_str().to_owned());
        ev.user_id = self.user_id;
        ev.session_id = self.session_id;
        ev.request_id = self.request_id;
        ev
    }
}
