//! The compliance policy: what the trail records, how long it keeps it, when it alerts.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::event::{AuditEvent, AuditLogLevel, ComplianceLevel};

/// Compliance settings, with the Python trail's field names and defaults.
///
/// Fields the Python trail accepts but never acts on (`encrypt_audit_logs`,
/// `gdpr_data_subject_rights`, `hipaa_minimum_necessary`, `sox_change_control`, turning
/// `require_integrity_check` off, changing `archive_after_days`) are refused by
/// [`validate`](Self::validate) instead of being silently ignored.
///
/// ```
/// use audit_format::{CompliancePolicy, ComplianceLevel};
/// let policy = CompliancePolicy { level: ComplianceLevel::Hipaa, retention_days: 2190, ..Default::default() };
/// assert!(policy.validate().is_ok());
/// let bad = CompliancePolicy { encrypt_audit_logs: true, ..Default::default() };
/// assert!(bad.validate().is_err());
/// ```
///
/// It serializes and deserializes with the `[trail.policy]` keys of the configuration file
/// (a missing key takes its default, an unknown key is an error):
///
/// ```
/// use audit_format::{CompliancePolicy, ComplianceLevel};
/// let policy: CompliancePolicy = serde_json::from_str(r#"{"level":"gdpr","retention_days":30}"#)?;
/// assert_eq!((policy.level, policy.retention_days, policy.enabled), (ComplianceLevel::Gdpr, 30, true));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompliancePolicy {
    /// The regulatory regime; stamped on every event as `compliance_level`. Default `basic`.
    pub level: ComplianceLevel,
    /// When `false`, the trail records nothing (as in the Python trail). Default `true`.
    pub enabled: bool,
    /// Files dated more than this many days before the newest event are deleted. Default 365.
    pub retention_days: u32,
    /// Retention may also delete files the trail did not write (found in the directory when
    /// it first opened it, such as the Python trail's; see [`Origin`](crate::Origin)).
    /// Default `false`: retention that would delete one deletes nothing and says so. Not a
    /// Python field.
    pub retention_applies_to_imported: bool,
    /// Must stay 90: archiving is not implemented, and a changed value would be ignored.
    pub archive_after_days: u32,
    /// Must stay `false`: encryption at rest is not implemented (the Python trail silently
    /// ignores it). Use an encrypted file system.
    pub encrypt_audit_logs: bool,
    /// Must stay `true`: every event is hash-chained; this cannot be turned off.
    pub require_integrity_check: bool,
    /// Must stay `false`: not implemented.
    pub gdpr_data_subject_rights: bool,
    /// Must stay `false`: not implemented.
    pub hipaa_minimum_necessary: bool,
    /// Must stay `false`: not implemented.
    pub sox_change_control: bool,
    /// Evaluate alert rules and call the alert hook. Default `true`.
    pub real_time_alerts: bool,
    /// Alert on events logged at `critical`. Default `true`.
    pub alert_on_critical_errors: bool,
    /// Alert on security events (level `security`, or an authentication/authorization
    /// failure or security violation). Default `true`.
    pub alert_on_security_events: bool,
}

impl Default for CompliancePolicy {
    fn default() -> Self {
        Self {
            level: ComplianceLevel::Basic,
            enabled: true,
            retention_days: 365,
            retention_applies_to_imported: false,
            archive_after_days: 90,
            encrypt_audit_logs: false,
            require_integrity_check: true,
            gdpr_data_subject_rights: false,
            hipaa_minimum_necessary: false,
            sox_change_control: false,
            real_time_alerts: true,
            alert_on_critical_errors: true,
            alert_on_security_events: true,
        }
    }
}

/// Why an event triggered an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertReason {
    /// Logged at `critical` with `alert_on_critical_errors`.
    CriticalError,
    /// A security event with `alert_on_security_events`.
    SecurityEvent,
    /// Contains PII under a GDPR policy.
    PiiUnderGdpr,
    /// Contains PHI under a HIPAA policy.
    PhiUnderHipaa,
}

impl CompliancePolicy {
    /// Refuses settings the trail cannot honour.
    ///
    /// # Errors
    /// [`Error::Unsupported`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let refuse = |setting, reason| Err(Error::Unsupported { setting, reason });
        if self.encrypt_audit_logs {
            return refuse(
                "encrypt_audit_logs",
                "encryption at rest is not implemented (the Python trail ignored this flag); keep the audit directory on an encrypted file system and set it to false",
            );
        }
        if !self.require_integrity_check {
            return refuse(
                "require_integrity_check",
                "every event is hash-chained; integrity checking cannot be turned off",
            );
        }
        if self.archive_after_days != 90 {
            return refuse(
                "archive_after_days",
                "archiving is not implemented; files stay in place until retention_days removes them. Remove the setting",
            );
        }
        if self.gdpr_data_subject_rights {
            return refuse(
                "gdpr_data_subject_rights",
                "not implemented; set it to false",
            );
        }
        if self.hipaa_minimum_necessary {
            return refuse(
                "hipaa_minimum_necessary",
                "not implemented; set it to false",
            );
        }
        if self.sox_change_control {
            return refuse("sox_change_control", "not implemented; set it to false");
        }
        if self.retention_days == 0 {
            return refuse(
                "retention_days",
                "0 would delete every earlier day's file; use a positive number of days",
            );
        }
        Ok(())
    }

    /// The alert rules of the Python trail, applied to one event.
    pub fn alert_reasons(&self, ev: &AuditEvent) -> Vec<AlertReason> {
        let mut out = Vec::new();
        if !self.real_time_alerts {
            return out;
        }
        if self.alert_on_critical_errors && ev.log_level == AuditLogLevel::Critical {
            out.push(AlertReason::CriticalError);
        }
        if self.alert_on_security_events
            && (ev.log_level == AuditLogLevel::Security || ev.event_type.is_security())
        {
            out.push(AlertReason::SecurityEvent);
        }
        if self.level == ComplianceLevel::Gdpr && ev.contains_pii {
            out.push(AlertReason::PiiUnderGdpr);
        }
        if self.level == ComplianceLevel::Hipaa && ev.contains_phi {
            out.push(AlertReason::PhiUnderHipaa);
        }
        out
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::event::AuditEventType;

    #[test]
    fn alert_rules() {
        let p = CompliancePolicy {
            level: ComplianceLevel::Gdpr,
            ..Default::default()
        };
        let ev = AuditEvent::new(AuditEventType::DataAccess, "m").contains_pii(true);
        assert_eq!(p.alert_reasons(&ev), vec![AlertReason::PiiUnderGdpr]);
        let ev = AuditEvent::new(AuditEventType::AuthenticationFailed, "m")
            .log_level(AuditLogLevel::Critical);
        assert_eq!(
            p.alert_reasons(&ev),
            vec![AlertReason::CriticalError, AlertReason::SecurityEvent]
        );
        let quiet = CompliancePolicy {
            real_time_alerts: false,
            ..p
        };
        assert!(quiet.alert_reasons(&ev).is_empty());
        let h = CompliancePolicy {
            level: ComplianceLevel::Hipaa,
            ..Default::default()
        };
        assert_eq!(
            h.alert_reasons(&AuditEvent::new(AuditEventType::DataAccess, "m").contains_phi(true)),
            vec![AlertReason::PhiUnderHipaa]
        );
    }

    #[test]
    fn unsupported_settings_refused() {
        for bad in [
            CompliancePolicy {
                encrypt_audit_logs: true,
                ..Default::default()
            },
            CompliancePolicy {
                require_integrity_check: false,
                ..Default::default()
            },
            CompliancePolicy {
                archive_after_days: 30,
                ..Default::default()
            },
            CompliancePolicy {
                sox_change_control: true,
                ..Default::default()
            },
            CompliancePolicy {
                retention_days: 0,
                ..Default::default()
            },
        ] {
            assert!(
                matches!(bad.validate(), Err(Error::Unsupported { .. })),
                "{bad:?}"
            );
        }
    }
}
