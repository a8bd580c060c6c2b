//! The plugin baselines' shared loop: the records the host would hand a plugin (UUID,
//! timestamp, canonical line, SHA-256 chain, as the file baseline makes them), collected
//! into equal batches and handed to a writer doing what the plugin does with a batch.

use std::time::Instant;

use audit_format::{ComplianceLevel, IdPool, LineEncoder};
use audit_host::{AuditEvent, AuditRecord, Integrity, Result};
use audit_plugin_api::Record;
use chrono::Utc;

/// `events` events from `pool` in `batches` equal batches, each handed to `write`: the
/// seconds it took.
pub(crate) fn client_loop(
    pool: &[AuditEvent],
    events: usize,
    batches: usize,
    mut write: impl FnMut(&[Record<'_>]) -> Result<()>,
) -> Result<f64> {
    let batches = batches.clamp(1, events.max(1));
    let integrity = Integrity::Sha256;
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let pid = i64::from(std::process::id());
    let mut encoder = LineEncoder::new();
    let mut ids = IdPool::default();
    let mut prev: Option<[u8; 64]> = None;
    let mut batch: Vec<AuditRecord> = Vec::with_capacity(events / batches + 1);
    let mut written = 0;
    let started = Instant::now();
    for i in 0..events {
        let ev = &pool[i % pool.len()];
        let id = ids.next_id()?;
        encoder.encode(ev, &id, &host, pid, ComplianceLevel::Basic);
        let (record, hex) =
            encoder.assemble(ev, i as u64 + 1, prev.as_ref(), Utc::now(), &integrity);
        prev = Some(hex);
        batch.push(record);
        // Batch `written` ends at event events * (written + 1) / batches.
        if (i + 1) * batches >= events * (written + 1) {
            hand_over(&batch, &mut write)?;
            batch.clear();
            written += 1;
        }
    }
    if !batch.is_empty() {
        hand_over(&batch, &mut write)?;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// One batch, handed over as the host hands records to a plugin.
fn hand_over(
    batch: &[AuditRecord],
    write: &mut impl FnMut(&[Record<'_>]) -> Result<()>,
) -> Result<()> {
    audit_host::plugin::with_plugin_records(batch, |records| write(records))
}
