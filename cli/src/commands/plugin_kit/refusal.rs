//! The kit's `refusal` check: with the `refuse` capability, one batch of new records; every
//! refusal names a record of the batch with a reason, and the rest is stored.

use audit_host::plugin::{LoadedPlugin, PluginBackend};
use audit_host::{Batch, StorageBackend};

use super::chain::Chain;
use super::head::{differs, last_line};
use super::results::Results;

/// Records in the batch of the refusal check.
const REFUSAL_BATCH: u64 = 10;

/// The `refusal` check: with the `refuse` capability, one batch of new records; every
/// refusal names a record of the batch and gives a reason, and after a flush the plugin's
/// head is the last record it did not refuse. The kit cannot make a plugin refuse: configure
/// it to (with `--config`) for the check to see refusals.
pub(super) async fn check_refusal(
    plugin: &LoadedPlugin,
    backend: &PluginBackend,
    chain: &mut Chain,
    verbose: bool,
    r: &mut Results,
) {
    const NAME: &str = "refusal";
    if !plugin.info().capabilities.iter().any(|c| c == "refuse/1") {
        r.skip(
            NAME,
            "not exported (a batch is stored or failed whole; nothing goes to the dead-letter file)",
        );
        return;
    }
    let batch = Batch::new(chain.batch(REFUSAL_BATCH));
    let refused = match backend.write_batch_refusing(&batch).await {
        Ok(refused) => refused,
        Err(e) => {
            r.fail(
                NAME,
                format!(
                    "write_batch through `refuse` failed: {e}",
                    e = audit_format::error::chain(&e)
                ),
            );
            return;
        }
    };
    let in_batch = |seq: u64| batch.iter().any(|rec| rec.sequence_number() == seq);
    let mut problems = Vec::new();
    for f in &refused {
        if !in_batch(f.sequence_number) {
            problems.push(format!(
                "it refused sequence {}, which is not in the batch (sequences {} to {})",
                f.sequence_number,
                chain.next - REFUSAL_BATCH,
                chain.next - 1
            ));
        }
        if f.reason.trim().is_empty() {
            problems.push(format!(
                "it refused sequence {} without a reason",
                f.sequence_number
            ));
        }
    }
    if !problems.is_empty() {
        r.fail(NAME, problems.join("; "));
        return;
    }
    let summary = match refused.first() {
        None => format!(
            "none of {REFUSAL_BATCH} records refused (configure the plugin to refuse one to check more)"
        ),
        Some(first) => format!(
            "{} of {REFUSAL_BATCH} records refused (first: sequence {}, `{}`)",
            refused.len(),
            first.sequence_number,
            first.reason
        ),
    };
    let kept = batch.iter().rev().find(|rec| {
        !refused
            .iter()
            .any(|f| f.sequence_number == rec.sequence_number())
    });
    if let Err(e) = backend.flush().await {
        r.fail(
            NAME,
            format!(
                "{summary}; flush failed: {e}",
                e = audit_format::error::chain(&e)
            ),
        );
        return;
    }
    match (kept, last_line(backend).await) {
        (None, _) => r.note(NAME, format!("{summary}; nothing left to read back")),
        (Some(k), Ok(Some(got))) if got == k.line() => r.note(
            NAME,
            format!("{summary}; the rest stored (last_line is the last record not refused)"),
        ),
        (Some(k), Ok(got)) => r.fail(
            NAME,
            format!(
                "{summary}, but the records not refused were not stored: {}",
                differs(got.as_deref(), Some(k.line()), verbose)
            ),
        ),
        (Some(_), Err(e)) => r.fail(NAME, format!("{summary}; last_line failed: {e}")),
    }
}
