//! Moving what a worker holds in memory to the spool: after a fatal failure, when it stops,
//! and (sync mode) while a call takes long.

use std::sync::Arc;

use super::Worker;
use crate::delivery::clock::LaneClock;
use crate::delivery::lane::{Lane, LaneState, events, flatten};
use crate::delivery::spool::Put;
use audit_format::error::Result;
use audit_format::record::AuditRecord;

impl<C: LaneClock> Worker<C> {
    /// After a fatal error: memory goes to the spool (or, for a non-required backend
    /// without one, is dropped and counted).
    pub(super) fn park(&mut self) {
        let lane = Arc::clone(&self.lane);
        let mut st = lane.lock();
        self.spool_memory(&mut st);
        if st.spool.is_none() && !lane.cfg.required {
            let n = events(&self.held) + st.inbox_events;
            self.held.clear();
            st.held_events = 0;
            st.take_inbox();
            lane.drop_events(&mut st, &*self.shared, n, "it failed fatally");
        }
        lane.refresh(&st);
        drop(st);
        lane.update_stats(&*self.shared);
        self.shared.publish_durable();
        // Wait for more (or the deadline) without spinning; retry a full spool now and then.
        let st = lane.lock();
        if st.deadline.is_none() {
            let pause =
                (!self.held.is_empty() || !st.inbox.is_empty()).then_some(lane.cfg.retry_max);
            drop(lane.clock.wait(&lane.cv, st, pause));
        }
    }

    /// Puts held memory batches in front of the spool and the inbox behind it; fdatasyncs.
    /// What does not fit stays in memory.
    pub(super) fn spool_memory(&mut self, st: &mut LaneState) {
        if st.spool.is_none() {
            return;
        }
        let mut result = self.spool_held(st);
        if matches!(result, Ok(Put::Stored)) {
            result = Lane::<C>::spool_tail(st, None);
        }
        if let Some(spool) = st.spool.as_mut()
            && let Err(e) = spool.sync()
        {
            result = Err(e);
        }
        match result {
            Ok(Put::Stored) => {}
            Ok(Put::Full) => tracing::warn!(
                backend = %self.lane.name,
                "backend `{}`: its spool is full; undelivered events stay in memory",
                self.lane.name
            ),
            Err(e) => tracing::error!(
                backend = %self.lane.name,
                error = %audit_format::error::DisplayChain(&e),
                "backend `{}`: cannot spool undelivered events: {e}",
                self.lane.name, e = audit_format::error::chain(&e)
            ),
        }
    }

    /// Moves the held memory batches to the front of the spool (only what the backend has
    /// not flushed) and lets go of them. Not fdatasync'd yet.
    pub(super) fn spool_held(&mut self, st: &mut LaneState) -> Result<Put> {
        let Some(held_last) = self
            .held
            .back()
            .and_then(|b| b.last())
            .map(AuditRecord::sequence_number)
        else {
            return Ok(Put::Stored);
        };
        if st.held_spooled_upto >= held_last {
            // Already copied there while the call was taking long.
            st.held_spooled_upto = 0;
        } else {
            // A part copied earlier is delivered once: the worker skips what the backend
            // already stored.
            let flushed = self.flushed;
            let records: Vec<AuditRecord> = flatten(&self.held)
                .into_iter()
                .filter(|r| r.sequence_number() > flushed)
                .collect();
            let Some(spool) = st.spool.as_mut() else {
                return Ok(Put::Full);
            };
            let put = spool.prepend(&records)?;
            if !matches!(put, Put::Stored) {
                return Ok(put);
            }
        }
        self.held.clear();
        st.held_events = 0;
        Ok(Put::Stored)
    }

    /// Copies the memory batches of a call in progress, and the inbox, to the spool and
    /// fdatasyncs it: they are durable there whatever the call does.
    pub(super) fn spool_held_copy(&self) {
        let lane = &self.lane;
        let mut st = lane.lock();
        let from = self.flushed.max(st.held_spooled_upto);
        let records: Vec<AuditRecord> = flatten(&self.held)
            .into_iter()
            .filter(|r| r.sequence_number() > from)
            .collect();
        let Some(spool) = st.spool.as_mut() else {
            return;
        };
        if let Some(last) = records.last().map(AuditRecord::sequence_number) {
            match spool.prepend(&records) {
                Ok(Put::Stored) => st.held_spooled_upto = last,
                Ok(Put::Full) | Err(_) => return,
            }
        }
        if !matches!(Lane::<C>::spool_tail(&mut st, None), Ok(Put::Stored)) {
            return;
        }
        if let Some(spool) = st.spool.as_mut()
            && spool.sync().is_err()
        {
            return;
        }
        st.held_events = 0;
        st.health.stall();
        lane.refresh(&st);
        drop(st);
        lane.update_stats(&*self.shared);
        self.shared.publish_durable();
    }
}
