//! What the worker does with the records a backend refused
//! ([`StorageBackend::write_batch_refusing`](crate::StorageBackend::write_batch_refusing)):
//! with `refuse = "dead-letter"` they go to the lane's dead-letter file (fdatasync'd before
//! the batch counts as delivered), are counted (`refused`) and reported once per backend;
//! with `refuse = "fail"` the refusal is a fatal failure and a required backend holds the
//! trail closed.

use std::sync::Arc;

use super::Worker;
use crate::backend::Refusal;
use crate::delivery::clock::LaneClock;
use crate::delivery::dead_letter::match_refusals;
use crate::delivery::options::OnRefuse;
use audit_format::error::{Error, Result};
use audit_format::record::AuditRecord;

impl<C: LaneClock> Worker<C> {
    /// Keeps the records the backend refused of `part`, which it has just written; returns
    /// how many it refused. An error fails the write: a record that cannot be kept in the
    /// dead-letter file (retryable: the batch is delivered again), a refusal of a record
    /// not in `part`, or any refusal with `refuse = "fail"` (both fatal).
    pub(super) fn keep_refused(
        &mut self,
        part: &[AuditRecord],
        refusals: Vec<Refusal>,
    ) -> Result<u64> {
        if refusals.is_empty() {
            return Ok(0);
        }
        let lane = Arc::clone(&self.lane);
        let refused = match_refusals(&lane.name, part, refusals)?;
        let Some((first, why)) = refused.first() else {
            return Ok(0);
        };
        let first = (first.sequence_number(), why.clone());
        let n = refused.len() as u64;
        if lane.cfg.on_refuse == OnRefuse::Fail {
            let message = format!(
                "refused {n} record(s), first sequence {}: {} (refuse = \"fail\")",
                first.0, first.1
            );
            self.shared
                .update_stats(lane.index, &mut |s| s.refused += n);
            if lane.cfg.required {
                // Refusing, so that the writer's next good round does not clear the error;
                // set before the batch is spooled, so that no caller sees it durable while
                // the trail is still open.
                lane.lock().admission.refuse();
                let closed = Error::Fatal {
                    message: format!("backend `{}` {message}", lane.name),
                };
                self.shared.set_error(&lane.name, Arc::new(closed));
            }
            return Err(Error::Fatal {
                message: format!("it {message}"),
            });
        }
        let added = self
            .dead_letter
            .append(&lane.name, &refused)
            .map_err(|e| {
                Error::backend(format!(
                    "it refused {n} record(s), which cannot be kept in its dead-letter file ({e}); the batch is delivered again", e = audit_format::error::chain(&e)
                ))
            })? as u64;
        self.shared
            .update_stats(lane.index, &mut |s| s.refused += added);
        if added > 0 && !self.refusal_reported {
            self.refusal_reported = true;
            tracing::warn!(
                backend = %lane.name,
                refused = added,
                path = %self.dead_letter.path().display(),
                sequence = first.0,
                "backend `{}` refused {added} record(s); they are in {} with the reasons (statistics `refused`; later refusals are counted, not reported); first: sequence {}: {}",
                lane.name,
                self.dead_letter.path().display(),
                first.0,
                first.1
            );
        }
        Ok(n)
    }
}
