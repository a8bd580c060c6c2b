//! The writer's calls into the backends: write a batch to its own, hand it to every lane,
//! flush. Each keeps the backend's statistics.

use std::sync::Arc;

use crate::backend::Batch;
use crate::delivery::{LaneObserver, Offer};
use crate::statistics::BackendState;
use audit_format::error::Error;

use super::{Writer, block_on_caught};

impl Writer {
    /// Hands the batch to every backend of the writer's own that has not stored it yet. A
    /// failing backend does not keep the others from storing it; the first failure is
    /// returned.
    pub(super) fn write_all(
        &mut self,
        rt: &tokio::runtime::Runtime,
        batch: &Batch,
    ) -> Result<(), (String, Error)> {
        let mut first_error = None;
        for slot in &mut self.backends {
            // A backend that already stored part of this batch (another backend failed
            // after it) gets only what it has not seen.
            let from = batch.partition_point(|r| r.sequence_number() <= slot.written);
            if from == batch.len() {
                continue;
            }
            let result = block_on_caught(rt, slot.backend.write_batch(&batch.skip(from)));
            self.shared.record_call(
                slot.index,
                result.as_ref().err(),
                (batch.len() - from) as u64,
            );
            match result {
                Ok(()) => slot.written = batch[batch.len() - 1].sequence_number(),
                Err(e) => {
                    self.shared.update_stats(slot.index, |s| {
                        s.state = BackendState::Retrying;
                        s.retried += 1;
                    });
                    if first_error.is_none() {
                        first_error = Some((slot.backend.name().to_owned(), e));
                    }
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Hands the batch to every lane that has not had it. `Err(Some(..))`: a required lane
    /// cannot keep it and the trail must refuse events; `Err(None)`: offer it again later.
    pub(super) fn offer_all(&mut self, batch: &Batch) -> Result<(), Option<(String, Arc<Error>)>> {
        let mut outcome = Ok(());
        for slot in &mut self.lanes {
            let from = batch.partition_point(|r| r.sequence_number() <= slot.handed);
            if from == batch.len() {
                continue;
            }
            match slot.lane.offer(&batch.skip(from), &*self.shared) {
                Offer::Taken => slot.handed = batch[batch.len() - 1].sequence_number(),
                Offer::Later(e) => {
                    if outcome.is_ok() || matches!(outcome, Err(None)) {
                        outcome = Err(e.map(|e| (slot.lane.name.clone(), e)));
                    }
                }
            }
        }
        outcome
    }

    /// Flushes (fdatasyncs) every backend of the writer's own, then syncs every lane's spool.
    /// Stops at the first own backend that fails; a spool fails the flush only for a required
    /// lane.
    pub(super) fn flush_all(
        &mut self,
        rt: &tokio::runtime::Runtime,
    ) -> Result<(), (String, Error)> {
        for slot in &self.backends {
            let result = block_on_caught(rt, slot.backend.flush());
            self.shared
                .record_call(slot.index, result.as_ref().err(), 0);
            if result.is_err() {
                self.shared.update_stats(slot.index, |s| {
                    s.state = BackendState::Retrying;
                    s.retried += 1;
                });
            }
            result.map_err(|e| (slot.backend.name().to_owned(), e))?;
            let written = slot.written;
            self.shared.update_stats(slot.index, |s| {
                s.delivered_sequence = written;
                s.state = BackendState::Ok;
            });
        }
        for slot in &self.lanes {
            if let Err(e) = slot.lane.sync_spool(&*self.shared) {
                self.shared.record_call(slot.lane.index, Some(&e), 0);
                // Only a required backend's spool holds the trail back.
                if slot.lane.cfg.required {
                    return Err((slot.lane.name.clone(), e));
                }
            }
        }
        Ok(())
    }
}
