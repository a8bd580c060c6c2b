//! Unit tests of the event model: names, parsing errors, the Python mappings.

use super::*;
use crate::error::Error;

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
    let input =
        |json: &str| AuditEvent::from_map(serde_json::from_str(json).unwrap_or_default(), false);
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
