//! The events every bench run logs. Self-contained (public `audit_host` API only, no tests):
//! the criterion benchmarks include this file too.

use audit_host::{AuditEvent, AuditEventType, AuditLogLevel, ComplianceLevel};
use serde_json::{Map, Value};

/// Realistic events: every field present, a ~60-character message, a 3-key metadata object;
/// about 900 bytes per stored line. `n` distinct events, reused round-robin.
pub(crate) fn sample_events(n: usize) -> Vec<AuditEvent> {
    let types = [
        AuditEventType::DataAccess,
        AuditEventType::DataModification,
        AuditEventType::AuthenticationFailed,
        AuditEventType::ConfigChanged,
    ];
    (0..n.max(1))
        .map(|i| {
            let mut ctx = Map::new();
            ctx.insert("retries".into(), Value::from(i % 4));
            let mut ev = AuditEvent::new(
                types[i % types.len()],
                format!(
                    "user u{:05} read customer record {:08} from the billing ledger",
                    i % 10_000,
                    i
                ),
            )
            .log_level(if i % 50 == 0 {
                AuditLogLevel::Warning
            } else {
                AuditLogLevel::Info
            })
            .component("billing-service")
            .operation("read")
            .user_id(format!("u{:05}", i % 10_000))
            .session_id(format!("s-{:08x}", i as u64 * 0x9e37_79b9 % 0xffff_ffff))
            .request_id(format!("r-{:08x}", i as u64 * 0x85eb_ca6b % 0xffff_ffff))
            .client_ip(format!("10.{}.{}.{}", i % 200, (i / 200) % 250, i % 250))
            .user_agent("billing-client/4.2")
            .container_id("c0ffee")
            .plugin_name("ledger")
            .error_category("none")
            .error_severity("low")
            .data_classification("confidential")
            .retention_category("7y")
            .signature("sig-v1")
            .contains_pii(i % 3 == 0)
            .tag("sox")
            .tag("pci")
            .meta("resource", format!("customers/{i}"))
            .meta("rows", (i % 100) as u64)
            .meta("region", "eu-west-1")
            .error_context(ctx);
            ev.compliance_level = ComplianceLevel::Sox;
            ev
        })
        .collect()
}
