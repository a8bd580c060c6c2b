//! [`AuditEvent`]: the 30 fields, `new` and the chainable setters.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::kinds::{AuditEventType, AuditLogLevel, ComplianceLevel};

/// One audit event: who did what to which data, when, from where.
///
/// Build one with [`AuditEvent::new`] and the chainable setters, then hand it to
/// `AuditTrail::log` (in `audit-host`). The trail fills in `sequence_number`,
/// `previous_hash`, `checksum`, `timestamp` (unless given), `event_id` (unless given),
/// `hostname`, `process_id` and `compliance_level`.
///
/// ```
/// use audit_format::{AuditEvent, AuditEventType, AuditLogLevel};
/// let event = AuditEvent::new(AuditEventType::DataAccess, "read patient record")
///     .user_id("alice")
///     .log_level(AuditLogLevel::Info)
///     .contains_phi(true)
///     .meta("record", 42);
/// assert_eq!(event.metadata["record"], 42);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// Unique id; a random UUID v4 is assigned when `None`.
    pub event_id: Option<String>,
    /// When it happened; stamped by the trail (UTC, microseconds) when `None`.
    pub timestamp: Option<DateTime<Utc>>,
    /// What kind of event this is.
    pub event_type: AuditEventType,
    /// Severity; default [`AuditLogLevel::Info`].
    pub log_level: AuditLogLevel,
    /// A human-readable description.
    pub message: String,
    /// The component that generated the event.
    pub component: Option<String>,
    /// The operation being performed.
    pub operation: Option<String>,
    /// The acting user.
    pub user_id: Option<String>,
    /// The session.
    pub session_id: Option<String>,
    /// The request.
    pub request_id: Option<String>,
    /// The client's IP address.
    pub client_ip: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// The container the service runs in.
    pub container_id: Option<String>,
    /// The plugin involved.
    pub plugin_name: Option<String>,
    /// The host; filled in by the trail when `None`.
    pub hostname: Option<String>,
    /// The process id; filled in by the trail when `None`.
    pub process_id: Option<i64>,
    /// Structured error context (an object).
    pub error_context: Option<Map<String, Value>>,
    /// Error category.
    pub error_category: Option<String>,
    /// Error severity.
    pub error_severity: Option<String>,
    /// Data classification, for example `public`, `internal`, `confidential`, `restricted`.
    pub data_classification: Option<String>,
    /// Whether the event concerns personally identifiable information.
    pub contains_pii: bool,
    /// Whether the event concerns protected health information.
    pub contains_phi: bool,
    /// Set by the trail from its policy.
    pub compliance_level: ComplianceLevel,
    /// Regulatory tags, for example `["sox", "pci"]`.
    pub regulatory_tags: Vec<String>,
    /// Retention category.
    pub retention_category: Option<String>,
    /// Anything else, as a JSON object.
    pub metadata: Map<String, Value>,
    /// Position in the chain; assigned by the trail.
    pub sequence_number: Option<u64>,
    /// Checksum of the previous event; assigned by the trail (`None` for the first).
    pub previous_hash: Option<String>,
    /// Checksum of this event's stored line; assigned by the trail.
    pub checksum: Option<String>,
    /// Digital signature, if the caller signs events.
    pub signature: Option<String>,
}

macro_rules! setters {
    ($( $(#[$m:meta])* $field:ident : Option<String> ),* $(,)?) => {
        $(
            $(#[$m])*
            #[must_use]
            pub fn $field(mut self, value: impl Into<String>) -> Self {
                self.$field = Some(value.into());
                self
            }
        )*
    };
}

impl AuditEvent {
    /// A new event of the given type; every other field takes its default.
    pub fn new(event_type: AuditEventType, message: impl Into<String>) -> Self {
        Self {
            event_id: None,
            timestamp: None,
            event_type,
            log_level: AuditLogLevel::Info,
            message: message.into(),
            component: None,
            operation: None,
            user_id: None,
            session_id: None,
            request_id: None,
            client_ip: None,
            user_agent: None,
            container_id: None,
            plugin_name: None,
            hostname: None,
            process_id: None,
            error_context: None,
            error_category: None,
            error_severity: None,
            data_classification: None,
            contains_pii: false,
            contains_phi: false,
            compliance_level: ComplianceLevel::Basic,
            regulatory_tags: Vec::new(),
            retention_category: None,
            metadata: Map::new(),
            sequence_number: None,
            previous_hash: None,
            checksum: None,
            signature: None,
        }
    }

    setters! {
        /// Sets `event_id` (normally generated).
        event_id: Option<String>,
        /// Sets `component`.
        component: Option<String>,
        /// Sets `operation`.
        operation: Option<String>,
        /// Sets `user_id`.
        user_id: Option<String>,
        /// Sets `session_id`.
        session_id: Option<String>,
        /// Sets `request_id`.
        request_id: Option<String>,
        /// Sets `client_ip`.
        client_ip: Option<String>,
        /// Sets `user_agent`.
        user_agent: Option<String>,
        /// Sets `container_id`.
        container_id: Option<String>,
        /// Sets `plugin_name`.
        plugin_name: Option<String>,
        /// Sets `hostname` (normally filled in by the trail).
        hostname: Option<String>,
        /// Sets `error_category`.
        error_category: Option<String>,
        /// Sets `error_severity`.
        error_severity: Option<String>,
        /// Sets `data_classification`.
        data_classification: Option<String>,
        /// Sets `retention_category`.
        retention_category: Option<String>,
        /// Sets `signature`.
        signature: Option<String>,
    }

    /// Sets `log_level`.
    #[must_use]
    pub fn log_level(mut self, level: AuditLogLevel) -> Self {
        self.log_level = level;
        self
    }

    /// Sets `timestamp` (normally stamped by the trail when the event is accepted).
    #[must_use]
    pub fn timestamp(mut self, ts: DateTime<Utc>) -> Self {
        self.timestamp = Some(ts);
        self
    }

    /// Sets `contains_pii`.
    #[must_use]
    pub fn contains_pii(mut self, yes: bool) -> Self {
        self.contains_pii = yes;
        self
    }

    /// Sets `contains_phi`.
    #[must_use]
    pub fn contains_phi(mut self, yes: bool) -> Self {
        self.contains_phi = yes;
        self
    }

    /// Adds a regulatory tag.
    #[must_use]
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.regulatory_tags.push(tag.into());
        self
    }

    /// Adds one metadata entry (the Python `**metadata` keyword arguments).
    #[must_use]
    pub fn meta(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Sets `error_context`.
    #[must_use]
    pub fn error_context(mut self, context: Map<String, Value>) -> Self {
        self.error_context = Some(context);
        self
    }
}
