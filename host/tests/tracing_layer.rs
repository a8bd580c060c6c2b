//! `AuditLayer` (feature `tracing-layer`): `tracing` events with target `audit` are recorded
//! in the trail with their fields mapped to the event model (docs/tracing.md), the chain
//! verifies, other targets are left alone, and an event the trail refuses is counted.

use std::sync::Arc;

use audit_host::{AuditLayer, AuditTrail, Integrity, verify_dir};
use serde_json::Value;
use tracing_subscriber::prelude::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn stored(dir: &std::path::Path) -> Result<Vec<Value>, Box<dyn std::error::Error>> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("audit_") && name.ends_with(".jsonl") {
            for line in std::fs::read_to_string(&path)?.lines() {
                lines.push(serde_json::from_str::<Value>(line)?);
            }
        }
    }
    lines.sort_by_key(|l| l["sequence_number"].as_u64());
    Ok(lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_target_events_are_recorded_with_their_fields_and_the_chain_verifies() -> TestResult {
    let dir = tempfile::tempdir()?;
    let trail = Arc::new(AuditTrail::builder().storage_path(dir.path()).build()?);
    let layer = AuditLayer::new(Arc::clone(&trail));
    let stats = layer.stats();
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        tracing::warn!(
            target: "audit",
            event_type = "authentication_failed",
            user_id = "mallory",
            client_ip = "203.0.113.9",
            attempts = 3u64,
            "bad password"
        );
        // No event_type: from the action, as `log_data_access` does.
        tracing::info!(target: "audit::billing", user_id = "alice", resource = "invoices/7",
            action = "delete", contains_pii = true, regulatory_tags = "sox, pci",
            amount = 42.5, "invoice deleted");
        // Not an audit target: left to the application's other layers.
        tracing::info!(target: "my_app", user_id = "bob", "not audited");
        tracing::error!(target: "audit", event_type = "no_such_type", "kept all the same");
    });
    trail.close().await?;
    assert_eq!((stats.recorded(), stats.failed()), (3, 0));

    let report = verify_dir(dir.path(), &Integrity::Sha256)?;
    assert_eq!(report.events, 3);
    let lines = stored(dir.path())?;
    assert_eq!(lines.len(), 3);

    let first = &lines[0];
    assert_eq!(first["event_type"], "authentication_failed");
    assert_eq!(first["message"], "bad password");
    assert_eq!(first["log_level"], "warning");
    assert_eq!(first["user_id"], "mallory");
    assert_eq!(first["client_ip"], "203.0.113.9");
    assert_eq!(first["metadata"]["attempts"], 3);

    let second = &lines[1];
    assert_eq!(second["event_type"], "data_deletion");
    assert_eq!(second["operation"], "delete");
    assert_eq!(second["log_level"], "info");
    assert_eq!(second["metadata"]["resource"], "invoices/7");
    assert_eq!(second["metadata"]["amount"], 42.5);
    assert_eq!(second["contains_pii"], true);
    assert_eq!(second["regulatory_tags"], serde_json::json!(["sox", "pci"]));

    let third = &lines[2];
    assert_eq!(third["event_type"], "data_access");
    assert_eq!(third["log_level"], "error");
    assert_eq!(third["metadata"]["tracing_event_type"], "no_such_type");
    assert!(
        lines.iter().all(|l| l["message"] != "not audited"),
        "{lines:?}"
    );
    Ok(())
}

#[tokio::test]
async fn an_event_the_trail_does_not_accept_is_counted_with_its_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    let trail = Arc::new(AuditTrail::builder().storage_path(dir.path()).build()?);
    let layer = AuditLayer::new(Arc::clone(&trail));
    let stats = layer.stats();
    trail.close().await?;
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(target: "audit", user_id = "alice", "after close");
    });
    assert_eq!((stats.recorded(), stats.failed()), (0, 1));
    let error = stats.last_error().ok_or("no error kept")?;
    assert!(error.contains("closed"), "{error}");
    assert_eq!(verify_dir(dir.path(), &Integrity::Sha256)?.events, 0);
    Ok(())
}
