//! `PendingEvent`: an event built with setters after `log_event(..)` and friends, recorded
//! when awaited (the Python `log_event(event_type, message, **kwargs)`).

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use chrono::{DateTime, Utc};

use audit_format::error::Result;
use audit_format::event::{
    AuditEvent, AuditEventType, AuditLogLevel, ErrorReport, data_access_event_type,
};

use super::AuditTrail;

impl AuditTrail {
    /// Starts an event the way the Python `log_event(event_type, message, **kwargs)` does:
    /// chain setters for the keyword arguments, then `.await` it.
    ///
    /// ```no_run
    /// # async fn demo(trail: &audit_host::AuditTrail) -> audit_host::Result<()> {
    /// use audit_host::{AuditEventType, AuditLogLevel};
    /// trail.log_event(AuditEventType::DataExport, "exported ledger")
    ///     .log_level(AuditLogLevel::Warning)
    ///     .user_id("bob")
    ///     .contains_pii(true)
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn log_event(
        &self,
        event_type: AuditEventType,
        message: impl Into<String>,
    ) -> PendingEvent<'_> {
        PendingEvent {
            trail: self,
            event: AuditEvent::new(event_type, message),
        }
    }

    /// A security event: like [`log_event`](Self::log_event) with level `security`.
    pub fn log_security_event(
        &self,
        event_type: AuditEventType,
        message: impl Into<String>,
    ) -> PendingEvent<'_> {
        self.log_event(event_type, message)
            .log_level(AuditLogLevel::Security)
    }

    /// A data access: `operation` `read` → `data_access`, `write`/`update` →
    /// `data_modification`, `delete` → `data_deletion`, `export` → `data_export`; message
    /// `Data {operation} on resource: {resource}`; `metadata.resource` set.
    pub fn log_data_access(&self, resource: &str, operation: &str) -> PendingEvent<'_> {
        self.log_event(
            data_access_event_type(operation),
            format!("Data {operation} on resource: {resource}"),
        )
        .operation(operation)
        .meta("resource", resource)
    }

    /// An error: type `error_occurred`, message `Error occurred: {message}`, level from the
    /// severity, the report's context as `error_context`.
    pub fn log_error(&self, report: ErrorReport) -> PendingEvent<'_> {
        PendingEvent {
            trail: self,
            event: report.into_event(),
        }
    }
}

/// An event being built by [`AuditTrail::log_event`] and friends; `.await` it to record it.
#[must_use = "an event is recorded only when the PendingEvent is awaited"]
#[derive(Debug)]
pub struct PendingEvent<'a> {
    trail: &'a AuditTrail,
    event: AuditEvent,
}

/// A setter that sets the field of the same name on the event.
macro_rules! forward {
    ($( $(#[$m:meta])* $name:ident ( $($arg:ident : $ty:ty),* ) ; )*) => {
        $(
            $(#[$m])*
            pub fn $name(self, $($arg: $ty),*) -> Self {
                Self { event: self.event.$name($($arg),*), ..self }
            }
        )*
    };
}

/// The setters [`PendingEvent`] and `blocking::PendingEvent` share, each setting the event's
/// field of the same name (both keep the event being built in a field `event`).
macro_rules! event_setters {
    () => {
        forward! {
            /// Sets `component`.
            component(v: impl Into<String>);
            /// Sets `operation`.
            operation(v: impl Into<String>);
            /// Sets `user_id`.
            user_id(v: impl Into<String>);
            /// Sets `session_id`.
            session_id(v: impl Into<String>);
            /// Sets `request_id`.
            request_id(v: impl Into<String>);
            /// Sets `client_ip`.
            client_ip(v: impl Into<String>);
            /// Sets `user_agent`.
            user_agent(v: impl Into<String>);
            /// Sets `container_id`.
            container_id(v: impl Into<String>);
            /// Sets `plugin_name`.
            plugin_name(v: impl Into<String>);
            /// Sets `data_classification`.
            data_classification(v: impl Into<String>);
            /// Sets `retention_category`.
            retention_category(v: impl Into<String>);
            /// Sets `signature`.
            signature(v: impl Into<String>);
            /// Sets `log_level`.
            log_level(v: AuditLogLevel);
            /// Sets `contains_pii`.
            contains_pii(v: bool);
            /// Sets `contains_phi`.
            contains_phi(v: bool);
            /// Adds a regulatory tag.
            tag(v: impl Into<String>);
            /// Adds a metadata entry.
            meta(k: impl Into<String>, v: impl Into<serde_json::Value>);
            /// Sets the timestamp (normally stamped on acceptance).
            timestamp(v: DateTime<Utc>);
            /// Sets the event id (normally generated).
            event_id(v: impl Into<String>);
        }
    };
}

pub(crate) use event_setters;
pub(crate) use forward;

impl<'a> PendingEvent<'a> {
    event_setters!();

    /// The event as built so far.
    pub fn event(&self) -> &AuditEvent {
        &self.event
    }

    /// The event built, not recorded (the blocking facade records it itself).
    pub(crate) fn into_event(self) -> AuditEvent {
        self.event
    }
}

impl<'a> IntoFuture for PendingEvent<'a> {
    type Output = Result<String>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<String>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.trail.log(self.event))
    }
}
