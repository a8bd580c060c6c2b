//! The audit event model: the 30 fields of the Python audit trail, with the same names and
//! the same serialized values.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

mod serde_impl;

macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The serialized (snake_case) name.
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text,)+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> std::result::Result<Self, String> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(format!(
                        "unknown {} `{s}`; expected one of: {}",
                        stringify!($name),
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}

string_enum! {
    /// What kind of thing happened.
    AuditEventType {
        /// An error occurred.
        ErrorOccurred => "error_occurred",
        /// A component recovered from an error.
        ErrorRecovered => "error_recovered",
        /// An error was escalated.
        ErrorEscalated => "error_escalated",
        /// A login or token check failed.
        AuthenticationFailed => "authentication_failed",
        /// An access check failed.
        AuthorizationFailed => "authorization_failed",
        /// A security policy was violated.
        SecurityViolation => "security_violation",
        /// The system started.
        SystemStartup => "system_startup",
        /// The system shut down.
        SystemShutdown => "system_shutdown",
        /// A component failed.
        ComponentFailure => "component_failure",
        /// A component recovered.
        ComponentRecovery => "component_recovery",
        /// Data was read.
        DataAccess => "data_access",
        /// Data was written or updated.
        DataModification => "data_modification",
        /// Data was deleted.
        DataDeletion => "data_deletion",
        /// Data was exported.
        DataExport => "data_export",
        /// Configuration changed.
        ConfigChanged => "config_changed",
        /// A plugin was loaded.
        PluginLoaded => "plugin_loaded",
        /// A plugin was unloaded.
        PluginUnloaded => "plugin_unloaded",
        /// A compliance check ran.
        ComplianceCheck => "compliance_check",
        /// The audit log itself was accessed.
        AuditLogAccess => "audit_log_access",
        /// A retention policy was applied.
        RetentionPolicyApplied => "retention_policy_applied",
    }
}

impl AuditEventType {
    /// Authentication failures, authorization failures and security violations.
    pub const fn is_security(self) -> bool {
        matches!(
            self,
            Self::AuthenticationFailed | Self::AuthorizationFailed | Self::SecurityViolation
        )
    }
}

string_enum! {
    /// Severity of an audit event, for filtering and retention.
    AuditLogLevel {
        /// Detailed debugging information.
        Debug => "debug",
        /// General information (the default).
        Info => "info",
        /// Warning conditions.
        Warning => "warning",
        /// Error conditions.
        Error => "error",
        /// Critical conditions.
        Critical => "critical",
        /// Security-related events.
        Security => "security",
    }
}

string_enum! {
    /// The regulatory regime the trail operates under.
    ComplianceLevel {
        /// No specific requirements.
        None => "none",
        /// Basic audit logging (the default).
        Basic => "basic",
        /// Sarbanes-Oxley.
        Sox => "sox",
        /// HIPAA.
        Hipaa => "hipaa",
        /// GDPR.
        Gdpr => "gdpr",
        /// PCI-DSS.
        PciDss => "pci_dss",
        /// SOC 2.
        Soc2 => "soc2",
        /// ISO 27001.
        Iso27001 => "iso27001",
    }
}

string_enum! {
    /// Severity of an error reported with [`ErrorReport`], as in the Python trail.
    ErrorSeverity {
        /// Critical: logged at [`AuditLogLevel::Critical`].
        Critical => "critical",
        /// High: logged at [`AuditLogLevel::Error`].
        High => "high",
        /// Medium: logged at [`AuditLogLevel::Warning`].
        Medium => "medium",
        /// Low: logged at [`AuditLogLevel::Info`].
        Low => "low",
        /// Informational: logged at [`AuditLogLevel::Info`].
        Info => "info",
    }
}

impl ErrorSeverity {
    /// The log level the Python trail maps this severity to.
    pub const fn log_level(self) -> AuditLogLevel {
        match self {
            Self::Critical => AuditLogLevel::Critical,
            Self::High => AuditLogLevel::Error,
            Self::Medium => AuditLogLevel::Warning,
            Self::Low | Self::Info => AuditLogLevel::Info,
        }
    }
}

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

    /// Parses a stored line (or any JSON object with event fields) into an event.
    ///
    /// # Errors
    /// [`Error::InvalidEvent`] naming the key when the JSON is invalid, a key is unknown, a
    /// required key is missing or a value has the wrong type.
    pub fn from_json(line: &str) -> Result<Self> {
        let map: Map<String, Value> = serde_json::from_str(line)
            .map_err(|e| Error::invalid("(line)", format!("not a JSON object: {e}")))?;
        Self::from_map(map, true)
    }

    /// Builds an event from a JSON object.
    ///
    /// With `allow_chain_fields = false` (input from `audit emit`), `sequence_number`,
    /// `previous_hash` and `checksum` are refused: the trail assigns them.
    ///
    /// # Errors
    /// [`Error::InvalidEvent`] naming the first offending key.
    pub fn from_map(map: Map<String, Value>, allow_chain_fields: bool) -> Result<Self> {
        let event_type = match map.get("event_type") {
            Some(v) => parse_enum::<AuditEventType>("event_type", v)?,
            None => return Err(Error::invalid("event_type", "required key is missing")),
        };
        let message = match map.get("message") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => return Err(type_error("message", "a string", other)),
            None => return Err(Error::invalid("message", "required key is missing")),
        };
        let mut ev = Self::new(event_type, message);
        for (key, value) in map {
            let k = key.as_str();
            match k {
                "event_type" | "message" => {}
                "event_id" => ev.event_id = opt_string(k, value)?,
                "timestamp" => {
                    ev.timestamp = match value {
                        Value::Null => None,
                        Value::String(s) => Some(
                            DateTime::parse_from_rfc3339(&s)
                                .map_err(|e| {
                                    Error::invalid(k, format!("`{s}` is not an RFC 3339 timestamp ({e}); use e.g. 2026-01-31T12:00:00.000000Z"))
                                })?
                                .with_timezone(&Utc),
                        ),
                        other => return Err(type_error(k, "an RFC 3339 timestamp string", &other)),
                    }
                }
                "log_level" => ev.log_level = parse_enum(k, &value)?,
                "compliance_level" => ev.compliance_level = parse_enum(k, &value)?,
                "component" => ev.component = opt_string(k, value)?,
                "operation" => ev.operation = opt_string(k, value)?,
                "user_id" => ev.user_id = opt_string(k, value)?,
                "session_id" => ev.session_id = opt_string(k, value)?,
                "request_id" => ev.request_id = opt_string(k, value)?,
                "client_ip" => ev.client_ip = opt_string(k, value)?,
                "user_agent" => ev.user_agent = opt_string(k, value)?,
                "container_id" => ev.container_id = opt_string(k, value)?,
                "plugin_name" => ev.plugin_name = opt_string(k, value)?,
                "hostname" => ev.hostname = opt_string(k, value)?,
                "error_category" => ev.error_category = opt_string(k, value)?,
                "error_severity" => ev.error_severity = opt_string(k, value)?,
                "data_classification" => ev.data_classification = opt_string(k, value)?,
                "retention_category" => ev.retention_category = opt_string(k, value)?,
                "signature" => ev.signature = opt_string(k, value)?,
                "process_id" => {
                    ev.process_id = match value {
                        Value::Null => None,
                        Value::Number(n) if n.is_i64() => n.as_i64(),
                        other => return Err(type_error(k, "an integer", &other)),
                    }
                }
                "contains_pii" => ev.contains_pii = bool_value(k, value)?,
                "contains_phi" => ev.contains_phi = bool_value(k, value)?,
                "regulatory_tags" => {
                    ev.regulatory_tags = match value {
                        Value::Null => Vec::new(),
                        Value::Array(items) => items
                            .into_iter()
                            .map(|item| match item {
                                Value::String(s) => Ok(s),
                                other => Err(type_error(k, "an array of strings", &other)),
                            })
                            .collect::<Result<_>>()?,
                        other => return Err(type_error(k, "an array of strings", &other)),
                    }
                }
                "metadata" => {
                    ev.metadata = match value {
                        Value::Null => Map::new(),
                        Value::Object(m) => m,
                        other => return Err(type_error(k, "an object", &other)),
                    }
                }
                "error_context" => {
                    ev.error_context = match value {
                        Value::Null => None,
                        Value::Object(m) => Some(m),
                        other => return Err(type_error(k, "an object", &other)),
                    }
                }
                "sequence_number" | "previous_hash" | "checksum" if !allow_chain_fields => {
                    return Err(Error::invalid(
                        k,
                        "is assigned by the trail and may not be given; remove it from the input",
                    ));
                }
                "sequence_number" => {
                    ev.sequence_number = match value {
                        Value::Null => None,
                        Value::Number(n) if n.is_u64() => n.as_u64(),
                        other => return Err(type_error(k, "a non-negative integer", &other)),
                    }
                }
                "previous_hash" => ev.previous_hash = opt_string(k, value)?,
                "checksum" => ev.checksum = opt_string(k, value)?,
                _ => {
                    return Err(Error::invalid(
                        k,
                        "unknown key; put custom fields inside `metadata` (see docs/file-format.md for the 30 event keys)",
                    ));
                }
            }
        }
        Ok(ev)
    }
}

fn describe(v: &Value) -> String {
    let mut s = match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    };
    if s.len() > 60 {
        // Cut on a character boundary: the value may be any UTF-8 text.
        let mut end = 57;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    s
}

fn type_error(key: &str, expected: &str, found: &Value) -> Error {
    Error::invalid(
        key,
        format!("expected {expected}, found {}", describe(found)),
    )
}

fn opt_string(key: &str, v: Value) -> Result<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        other => Err(type_error(key, "a string or null", &other)),
    }
}

fn bool_value(key: &str, v: Value) -> Result<bool> {
    match v {
        Value::Bool(b) => Ok(b),
        other => Err(type_error(key, "true or false", &other)),
    }
}

fn parse_enum<T: FromStr<Err = String>>(key: &str, v: &Value) -> Result<T> {
    match v {
        Value::String(s) => s.parse().map_err(|e: String| Error::invalid(key, e)),
        other => Err(type_error(key, "a string", other)),
    }
}

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

/// The event type the Python `log_data_access` maps an operation name to: `read` →
/// `data_access`, `write`/`update` → `data_modification`, `delete` → `data_deletion`,
/// `export` → `data_export`, anything else → `data_access` (case-insensitive).
pub fn data_access_event_type(operation: &str) -> AuditEventType {
    match operation.to_ascii_lowercase().as_str() {
        "write" | "update" => AuditEventType::DataModification,
        "delete" => AuditEventType::DataDeletion,
        "export" => AuditEventType::DataExport,
        _ => AuditEventType::DataAccess,
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn enum_names_are_snake_case() {
        assert_eq!(AuditEventType::ALL.len(), 20);
        assert_eq!(
            AuditEventType::RetentionPolicyApplied.as_str(),
            "retention_policy_applied"
        );
        assert_eq!(
            "pci_dss".parse::<ComplianceLevel>(),
            Ok(ComplianceLevel::PciDss)
        );
        assert_eq!(
            serde_json::to_string(&AuditLogLevel::Security)
                .ok()
                .as_deref(),
            Some("\"security\"")
        );
        let err = "loud".parse::<AuditLogLevel>().err().unwrap_or_default();
        assert!(err.contains("expected one of: debug, info"), "{err}");
    }

    #[test]
    fn from_map_names_the_bad_key() {
        let bad = |json: &str| match AuditEvent::from_json(json) {
            Err(Error::InvalidEvent { key, message }) => format!("{key}: {message}"),
            other => panic!("expected InvalidEvent, got {other:?}"),
        };
        assert!(bad(r#"{"message":"m"}"#).starts_with("event_type: required"));
        assert!(bad(r#"{"event_type":"nope","message":"m"}"#).starts_with("event_type: unknown"));
        assert!(
            bad(r#"{"event_type":"data_access","message":"m","contains_pii":"yes"}"#)
                .starts_with("contains_pii: expected true or false")
        );
        assert!(
            bad(r#"{"event_type":"data_access","message":"m","colour":1}"#)
                .starts_with("colour: unknown key")
        );
        assert!(
            bad(r#"{"event_type":"data_access","message":"m","metadata":[1]}"#)
                .starts_with("metadata: expected an object")
        );
        let input = |json: &str| {
            AuditEvent::from_map(serde_json::from_str(json).unwrap_or_default(), false)
        };
        assert!(matches!(
            input(r#"{"event_type":"data_access","message":"m","checksum":"x"}"#),
            Err(Error::InvalidEvent { key, .. }) if key == "checksum"
        ));
    }

    #[test]
    fn data_access_mapping() {
        assert_eq!(data_access_event_type("READ"), AuditEventType::DataAccess);
        assert_eq!(
            data_access_event_type("update"),
            AuditEventType::DataModification
        );
        assert_eq!(
            data_access_event_type("write"),
            AuditEventType::DataModification
        );
        assert_eq!(
            data_access_event_type("delete"),
            AuditEventType::DataDeletion
        );
        assert_eq!(data_access_event_type("export"), AuditEventType::DataExport);
        assert_eq!(data_access_event_type("list"), AuditEventType::DataAccess);
    }

    #[test]
    fn error_report_maps_severity() {
        let ev = ErrorReport::new("boom")
            .severity(ErrorSeverity::Critical)
            .category("db")
            .into_event();
        assert_eq!(ev.log_level, AuditLogLevel::Critical);
        assert_eq!(ev.message, "Error occurred: boom");
        assert_eq!(ev.error_category.as_deref(), Some("db"));
        assert_eq!(ev.error_severity.as_deref(), Some("critical"));
    }
}
