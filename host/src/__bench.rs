//! TEMPORARY SEAM for the criterion benchmarks of the `audit` CLI (`cli/benches/hot_paths.rs`):
//! what they hand to a plugin is built by crate-private code. Not a stable API; it goes once
//! `Batch::new` (or a test-support feature) is public.

use crate::AuditRecord;

/// Wraps records in a [`Batch`](crate::Batch) to hand to a backend.
#[inline]
pub fn batch(records: Vec<AuditRecord>) -> crate::Batch {
    crate::Batch::new(records)
}

/// Hands records to a plugin instance the way every host call does (one `write_batch`).
///
/// # Errors
/// The plugin's error.
#[inline]
pub fn write_records(
    instance: &mut audit_plugin_api::BackendBox,
    batch: &[AuditRecord],
) -> Result<(), audit_plugin_api::PluginError> {
    crate::plugin::write_records(instance, batch)
}
