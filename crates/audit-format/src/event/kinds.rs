//! The event's closed vocabularies: [`AuditEventType`], [`AuditLogLevel`],
//! [`ComplianceLevel`] and [`ErrorSeverity`], each with its snake_case names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

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
    /// Severity of an error reported with [`ErrorReport`](super::ErrorReport), as in the Python trail.
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
