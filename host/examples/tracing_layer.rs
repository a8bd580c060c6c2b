//! Recording a service's own `tracing` events in the audit trail with `AuditLayer`.
//!
//! ```text
//! cargo run -p audit-host --example tracing_layer --features tracing-layer
//! audit verify audit_logs
//! ```
//!
//! Events with target `audit` become audit events in `./audit_logs` (fields mapped as
//! docs/tracing.md says); other events go only to the application's other layers (here:
//! none). The library's own reports (target `audit_host::...`) are not recorded.

use std::sync::Arc;

use audit_host::{AuditLayer, AuditTrail};
use tracing_subscriber::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let trail = Arc::new(AuditTrail::builder().storage_path("audit_logs").build()?);
    let layer = AuditLayer::new(Arc::clone(&trail));
    let stats = layer.stats();
    tracing_subscriber::registry().with(layer).init();

    tracing::info!(target: "audit", event_type = "system_startup", component = "example",
        "tracing_layer example started");
    tracing::info!(target: "audit", user_id = "alice", resource = "customers/42",
        action = "read", contains_pii = true, "customer record read");
    tracing::warn!(target: "audit", event_type = "authentication_failed", user_id = "mallory",
        client_ip = "203.0.113.9", attempts = 3, "bad password");
    tracing::info!(target: "app", "not an audit event: not recorded");

    // `close` drains the queue and fdatasyncs; it is async, so run it on a small runtime.
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    runtime.block_on(trail.close())?;
    println!(
        "recorded {} events in audit_logs ({} not recorded); check them with: audit verify audit_logs",
        stats.recorded(),
        stats.failed()
    );
    Ok(())
}
