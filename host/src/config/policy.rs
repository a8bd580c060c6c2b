//! `[trail.policy]`: the compliance policy, with defaults for keys not written.

use serde::Deserialize;
use toml::Spanned;

use super::Cx;
use super::locate::{line_of, line_of_key};
use audit_format::error::{Error, Result};
use audit_format::event::ComplianceLevel;
use audit_format::policy::CompliancePolicy;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    level: Option<ComplianceLevel>,
    enabled: Option<bool>,
    retention_days: Option<u32>,
    retention_applies_to_imported: Option<bool>,
    archive_after_days: Option<Spanned<u32>>,
    encrypt_audit_logs: Option<bool>,
    require_integrity_check: Option<bool>,
    gdpr_data_subject_rights: Option<bool>,
    hipaa_minimum_necessary: Option<bool>,
    sox_change_control: Option<bool>,
    real_time_alerts: Option<bool>,
    alert_on_critical_errors: Option<bool>,
    alert_on_security_events: Option<bool>,
}

/// The policy `p` sets, checked ([`CompliancePolicy::validate`]).
pub(super) fn parse(p: RawPolicy, cx: &Cx<'_>) -> Result<CompliancePolicy> {
    let d = CompliancePolicy::default();
    if let Some(a) = p
        .archive_after_days
        .as_ref()
        .filter(|a| *a.get_ref() != d.archive_after_days)
    {
        return Err(cx.err(
            Some(line_of(cx.text, a.span().start)),
            "trail.policy.archive_after_days",
            "archiving is not implemented; files stay in place until retention_days removes them. Remove this key (only the default, 90, is accepted)".into(),
        ));
    }
    let policy = CompliancePolicy {
        level: p.level.unwrap_or(d.level),
        enabled: p.enabled.unwrap_or(d.enabled),
        retention_days: p.retention_days.unwrap_or(d.retention_days),
        retention_applies_to_imported: p
            .retention_applies_to_imported
            .unwrap_or(d.retention_applies_to_imported),
        archive_after_days: d.archive_after_days,
        encrypt_audit_logs: p.encrypt_audit_logs.unwrap_or(d.encrypt_audit_logs),
        require_integrity_check: p
            .require_integrity_check
            .unwrap_or(d.require_integrity_check),
        gdpr_data_subject_rights: p
            .gdpr_data_subject_rights
            .unwrap_or(d.gdpr_data_subject_rights),
        hipaa_minimum_necessary: p
            .hipaa_minimum_necessary
            .unwrap_or(d.hipaa_minimum_necessary),
        sox_change_control: p.sox_change_control.unwrap_or(d.sox_change_control),
        real_time_alerts: p.real_time_alerts.unwrap_or(d.real_time_alerts),
        alert_on_critical_errors: p
            .alert_on_critical_errors
            .unwrap_or(d.alert_on_critical_errors),
        alert_on_security_events: p
            .alert_on_security_events
            .unwrap_or(d.alert_on_security_events),
    };
    if let Err(Error::Unsupported { setting, reason }) = policy.validate() {
        return Err(cx.err(
            line_of_key(cx.text, "trail.policy", setting),
            &format!("trail.policy.{setting}"),
            reason.to_owned(),
        ));
    }
    Ok(policy)
}
