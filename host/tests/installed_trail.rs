//! Installing a trail as the process-wide one. One test: global state.

mod common;

use audit_host::{AuditEventType, AuditTrail, EventQuery};
use common::*;

/// The only test in this file that touches the process-wide trail.
#[tokio::test]
async fn an_installed_trail_is_the_process_wide_trail() -> TestResult {
    let dir = tempfile::tempdir()?;
    let trail = AuditTrail::builder()
        .storage_path(dir.path().join("global"))
        .build()?;
    let installed = audit_host::set_audit_trail(trail)
        .map_err(|_| "a process-wide trail was already installed")?;
    assert!(std::ptr::eq(installed, audit_host::get_audit_trail()?));
    let second = AuditTrail::builder()
        .storage_path(dir.path().join("second"))
        .build()?;
    match audit_host::set_audit_trail(second) {
        Err(back) => back.close().await?,
        Ok(_) => panic!("a second trail replaced the installed one"),
    }
    audit_host::audit_data_access("ledger", "delete", Some("dana")).await?;
    let events = installed.get_events(&EventQuery::default()).await?;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, AuditEventType::DataDeletion);
    installed.close().await?;
    Ok(())
}
