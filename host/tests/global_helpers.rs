//! The process-wide trail and the Python module-level helpers. One test: global state.

mod common;

use audit_host::{
    AuditEventType, AuditLogLevel, AuditTrail, ErrorReport, ErrorSeverity, EventQuery,
    audit_data_access, audit_error, audit_security_event, get_audit_trail, get_audit_trail_with,
    set_audit_trail,
};
use common::*;

#[tokio::test]
async fn module_level_helpers_use_one_process_wide_trail() -> TestResult {
    let dir = tempfile::tempdir()?;
    let first = get_audit_trail_with(None, Some(dir.path().to_path_buf()))?;
    // Later calls return the same trail; arguments are ignored once it exists (as in Python).
    let again = get_audit_trail_with(None, Some(dir.path().join("elsewhere")))?;
    assert!(std::ptr::eq(first, again));
    assert!(std::ptr::eq(first, get_audit_trail()?));
    // A second trail cannot replace it.
    let other = AuditTrail::new(None, Some(dir.path().join("other")), None)?;
    let refused = set_audit_trail(other);
    assert!(refused.is_err());
    if let Err(other) = refused {
        other.close().await?;
    }

    audit_error(
        ErrorReport::new("queue stalled").severity(ErrorSeverity::Critical),
        Some("enqueue"),
        Some("worker"),
    )
    .await?;
    audit_security_event(
        AuditEventType::AuthenticationFailed,
        "bad token",
        Some("mallory"),
        Some("192.0.2.1"),
    )
    .await?;
    audit_data_access("reports/q3", "export", Some("carol")).await?;

    let events = first.get_events(&EventQuery::default()).await?;
    assert_eq!(events.len(), 3);
    assert_eq!(events[0].event_type, AuditEventType::DataExport);
    assert_eq!(events[0].user_id.as_deref(), Some("carol"));
    assert_eq!(events[1].log_level, AuditLogLevel::Security);
    assert_eq!(events[1].client_ip.as_deref(), Some("192.0.2.1"));
    assert_eq!(events[2].log_level, AuditLogLevel::Critical);
    assert_eq!(events[2].operation.as_deref(), Some("enqueue"));
    assert_eq!(events[2].component.as_deref(), Some("worker"));
    first.close().await?;
    assert_eq!(verify(dir.path()).events, 3);
    Ok(())
}
