//! A lane's worker thread. It delivers, oldest first, (0) what it catches up from the file
//! backend at start, (1) the memory batches it holds that the backend has not flushed, (2)
//! the spool, (3) the inbox; retries with back-off; and spools what it cannot deliver.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;
use std::time::Instant;

use super::backoff::{Backoff, Jitter};
use super::catch_up::CatchUp;
use super::clock::LaneClock;
use super::dead_letter::DeadLetter;
use super::health::is_fatal;
use super::lane::{Lane, LaneEnd, LaneObserver, LaneState, events};
use super::spool::{Spool, SpoolReader};
use crate::backend::{Batch, StorageBackend};
use crate::settings::Durability;
use audit_format::error::{Error, Result};
use audit_format::record::Integrity;

mod catch_up;
mod outage;
mod probe;
mod refusal;
#[cfg(test)]
pub(super) use probe::PROBE_INTERVAL;
mod spill;

impl<C: LaneClock> Lane<C> {
    /// Starts the worker thread.
    #[cfg(test)]
    pub(crate) fn spawn(
        self: &Arc<Self>,
        backend: Box<dyn StorageBackend>,
        shared: Arc<dyn LaneObserver>,
        stored: u64,
        integrity: Integrity,
    ) -> Result<(JoinHandle<()>, Receiver<LaneEnd>)> {
        self.spawn_catching_up(backend, shared, stored, integrity, None)
    }

    /// Starts the worker thread, which first delivers `catch_up` (if any) from the file
    /// backend.
    pub(crate) fn spawn_catching_up(
        self: &Arc<Self>,
        backend: Box<dyn StorageBackend>,
        shared: Arc<dyn LaneObserver>,
        stored: u64,
        integrity: Integrity,
        catch_up: Option<CatchUp>,
    ) -> Result<(JoinHandle<()>, Receiver<LaneEnd>)> {
        let lane = Arc::clone(self);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| {
                Error::backend(format!(
                    "cannot start the worker runtime of backend `{}`: {e}",
                    self.name
                ))
            })?;
        let (ended_tx, ended) = std::sync::mpsc::channel();
        let catching_up_to = catch_up.as_ref().map_or(0, |c| c.to);
        shared.update_stats(self.index, &mut |s| {
            s.delivered_sequence = stored;
            s.catching_up_to = catching_up_to;
        });
        let handle = std::thread::Builder::new()
            .name(format!("audit-lane-{}", self.index))
            .spawn(move || {
                let mut worker = Worker::new(lane, backend, shared, stored, integrity);
                worker.catch_up = catch_up;
                let _ = ended_tx.send(worker.run(&rt));
            })
            .map_err(|e| Error::backend(format!("cannot start a backend worker thread: {e}")))?;
        Ok((handle, ended))
    }
}

enum Job {
    Deliver,
    Park,
    Stop,
}

/// What the worker does next, or until when it waits (`None`: until notified).
enum Plan {
    Run(Job),
    Wait(Option<Instant>),
}

/// What one delivery writes.
struct Work {
    batches: Vec<Batch>,
    /// From the spool: (the oldest segment's length as seen, the offset after this read).
    from_spool: Option<(u64, u64)>,
}

struct Worker<C: LaneClock> {
    lane: Arc<Lane<C>>,
    backend: Box<dyn StorageBackend>,
    shared: Arc<dyn LaneObserver>,
    /// Highest sequence number written to the backend (maybe not flushed).
    stored: u64,
    /// Highest sequence number the backend flushed.
    flushed: u64,
    /// Written since the last flush.
    dirty: bool,
    /// Memory batches taken from the inbox and not yet flushed by the backend.
    held: VecDeque<Batch>,
    reader: SpoolReader,
    backoff: Backoff,
    retry_at: Option<Instant>,
    last_flush: Instant,
    /// The close request was seen.
    closing: bool,
    /// Lines to deliver from the file backend before anything else.
    catch_up: Option<CatchUp>,
    /// A retryable outage in progress (`outage.rs`).
    outage: outage::OutageLog,
    /// When the backend's status and counters were last asked for (`probe.rs`).
    probed_at: Option<Instant>,
    /// Where refused records go (`refusal.rs`).
    dead_letter: DeadLetter,
    /// The first refusal was reported on stderr.
    refusal_reported: bool,
}

impl<C: LaneClock> Worker<C> {
    fn new(
        lane: Arc<Lane<C>>,
        backend: Box<dyn StorageBackend>,
        shared: Arc<dyn LaneObserver>,
        stored: u64,
        integrity: Integrity,
    ) -> Self {
        // Jittered, so that the retries of many trails do not line up.
        let backoff = Backoff::new(lane.cfg.retry_initial, lane.cfg.retry_max, Jitter::Equal);
        let last_flush = lane.clock.now();
        let dead_letter = DeadLetter::new(lane.cfg.dead_letter_dir.clone());
        Self {
            lane,
            backend,
            shared,
            stored,
            flushed: stored,
            dirty: false,
            held: VecDeque::new(),
            reader: SpoolReader::new(integrity),
            backoff,
            retry_at: None,
            last_flush,
            closing: false,
            catch_up: None,
            outage: outage::OutageLog::default(),
            probed_at: None,
            dead_letter,
            refusal_reported: false,
        }
    }

    fn run(mut self, rt: &tokio::runtime::Runtime) -> LaneEnd {
        loop {
            match self.next_job() {
                Job::Stop => return self.stop(rt),
                Job::Park => self.park(),
                Job::Deliver => self.deliver(rt),
            }
        }
    }

    /// Held memory batches hold records not written to the backend yet (after a failure).
    fn held_unwritten(&self) -> bool {
        self.held
            .back()
            .and_then(|b| b.last())
            .is_some_and(|r| r.sequence_number() > self.stored)
    }

    fn spool_unread(&self, st: &LaneState) -> bool {
        let Some(spool) = st.spool.as_ref() else {
            return false;
        };
        let Some(head) = spool.head() else {
            return false;
        };
        spool.segment_count() > 1 || self.reader.unread(&head.path, head.len)
    }

    /// A flush is due (when something is written and not flushed).
    fn flush_due(&self, st: &LaneState, now: Instant) -> bool {
        self.lane.cfg.durability == Durability::Sync
            || st.flush_target > self.flushed
            || st.deadline.is_some()
            || now >= self.last_flush + self.lane.cfg.flush_interval
    }

    fn next_job(&mut self) -> Job {
        let lane = Arc::clone(&self.lane);
        let mut st = lane.lock();
        loop {
            let now = lane.clock.now();
            if st.deadline.is_some_and(|d| now >= d) {
                return Job::Stop;
            }
            if st.deadline.is_some() && !self.closing {
                // Closing: one more attempt now, whatever the back-off said.
                self.closing = true;
                self.retry_at = None;
            }
            let plan = if st.health.is_fatal() {
                self.plan_fatal(&st)
            } else {
                self.plan(&st, now)
            };
            match plan {
                Plan::Run(job) => return job,
                Plan::Wait(until) => {
                    let timeout = until.map(|t| t.saturating_duration_since(now));
                    st = lane.clock.wait(&lane.cv, st, timeout);
                }
            }
        }
    }

    /// After a fatal failure: park what is in memory; stop once closing.
    fn plan_fatal(&self, st: &LaneState) -> Plan {
        let memory = !self.held.is_empty() || !st.inbox.is_empty();
        let can_park = st.spool.is_some() || !self.lane.cfg.required;
        if memory && can_park {
            Plan::Run(Job::Park)
        } else if st.deadline.is_some() {
            Plan::Run(Job::Stop)
        } else {
            Plan::Wait(None)
        }
    }

    /// Deliver when there is data or a flush is due and no back-off runs; stop once closing
    /// with nothing left; else wait for the deadline, the retry or the next flush.
    fn plan(&self, st: &LaneState, now: Instant) -> Plan {
        let has_data = self.catching_up()
            || self.held_unwritten()
            || self.spool_unread(st)
            || !st.inbox.is_empty();
        let flush_due = self.dirty && self.flush_due(st, now);
        let retry_ok = self.retry_at.is_none_or(|t| now >= t);
        if retry_ok && (has_data || flush_due) {
            return Plan::Run(Job::Deliver);
        }
        if st.deadline.is_some() && !has_data && !self.dirty {
            return Plan::Run(Job::Stop);
        }
        let next_flush = self
            .dirty
            .then(|| self.last_flush + self.lane.cfg.flush_interval);
        let until = [st.deadline, self.retry_at, next_flush]
            .into_iter()
            .flatten()
            .min();
        Plan::Wait(until)
    }

    /// Runs a backend call: a panic becomes an error; while closing, the call may not run
    /// past the deadline.
    fn call<T>(
        &self,
        rt: &tokio::runtime::Runtime,
        fut: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let deadline = self.lane.lock().deadline;
        // Sync mode: callers wait for this backend. A call that takes longer than the flush
        // interval gets what the worker holds copied to the spool, so they wait for the
        // spool's fdatasync instead of the call (or its call timeout).
        let soft = (self.lane.cfg.durability == Durability::Sync
            && self.lane.cfg.spool.is_some()
            && deadline.is_none())
        .then_some(self.lane.cfg.flush_interval);
        rt.block_on(async {
            let mut fut = std::pin::pin!(crate::catch_panics::catch_panics(fut));
            if let Some(soft) = soft {
                match tokio::time::timeout(soft, fut.as_mut()).await {
                    Ok(result) => return result,
                    Err(_) => self.spool_held_copy(),
                }
                let result = fut.await;
                self.lane.lock().health.call_returned();
                return result;
            }
            match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(self.lane.clock.now());
                    tokio::time::timeout(left, fut).await.unwrap_or_else(|_| {
                        Err(Error::backend(
                            "no answer before the shutdown timeout ran out",
                        ))
                    })
                }
                None => fut.await,
            }
        })
    }

    fn deliver(&mut self, rt: &tokio::runtime::Runtime) {
        let Some(work) = self.take_work() else {
            return;
        };
        for batch in &work.batches {
            if !self.write(rt, batch) {
                return;
            }
        }
        let segment_done = work.from_spool.is_some_and(|(len, end)| end >= len);
        if let Some((_, end)) = work.from_spool {
            self.reader.delivered(end);
        }
        let now = self.lane.clock.now();
        let flush_due = {
            let st = self.lane.lock();
            self.flush_due(&st, now)
                // What is written but not flushed stays in memory: keep that bounded too.
                || st.held_events >= self.lane.cfg.memory_limit
        };
        if !(segment_done || self.dirty && flush_due) {
            return;
        }
        let flushing = self.dirty;
        if flushing {
            let result = self.call(rt, self.backend.flush());
            self.shared
                .record_call(self.lane.index, result.as_ref().err(), 0);
            if let Err(e) = result {
                return self.failed(e, false);
            }
            self.dirty = false;
            self.flushed = self.stored;
            self.last_flush = now;
        }
        let delivered_segment = work.from_spool.filter(|_| segment_done).map(|(len, _)| len);
        self.acknowledge(delivered_segment);
        if flushing {
            self.probe_if_due(rt, now);
        }
    }

    /// What to deliver: lines caught up from the file backend, else held memory batches not
    /// yet written, else the next chunk of the spool, else the inbox. `None` when the spool
    /// could not be read (the lane is fatal).
    fn take_work(&mut self) -> Option<Work> {
        if let Some(work) = self.take_catch_up() {
            return Some(work);
        }
        let lane = Arc::clone(&self.lane);
        let mut st = lane.lock();
        if self.held_unwritten() {
            let batches = self.held.iter().cloned().collect();
            return Some(Work {
                batches,
                from_spool: None,
            });
        }
        let head = if self.spool_unread(&st) {
            st.spool.as_ref().and_then(Spool::head)
        } else {
            None
        };
        if let Some((path, len)) = head.map(|h| (h.path.clone(), h.len)) {
            drop(st);
            return match self.reader.read(&path, len) {
                Ok((batch, end)) => Some(Work {
                    batches: vec![batch],
                    from_spool: Some((len, end)),
                }),
                Err(e) => {
                    self.failed(e, true);
                    None
                }
            };
        }
        let taken = st.take_inbox();
        self.held.extend(taken.iter().cloned());
        st.held_events = events(&self.held);
        Some(Work {
            batches: taken.into(),
            from_spool: None,
        })
    }

    /// Writes the part of `batch` the backend has not stored. `false`: it failed.
    fn write(&mut self, rt: &tokio::runtime::Runtime, batch: &Batch) -> bool {
        let from = batch.partition_point(|r| r.sequence_number() <= self.stored);
        if from == batch.len() {
            return true;
        }
        let part = batch.skip(from);
        // Refused records are kept in the dead-letter file before the batch counts as written.
        let result = self
            .call(rt, self.backend.write_batch_refusing(&part))
            .and_then(|refused| self.keep_refused(&part, refused));
        let stored = part.len() as u64 - result.as_ref().map_or(0, |refused| *refused);
        self.shared
            .record_call(self.lane.index, result.as_ref().err(), stored);
        match result {
            Ok(_) => {
                self.stored = part[part.len() - 1].sequence_number();
                self.dirty = true;
                true
            }
            Err(e) => {
                self.failed(e, false);
                false
            }
        }
    }

    /// The backend flushed everything written: memory batches are let go, a delivered
    /// spool segment (of length `segment`) is removed, a failure or refusal ends.
    fn acknowledge(&mut self, segment: Option<u64>) {
        let lane = Arc::clone(&self.lane);
        let mut st = lane.lock();
        st.acked = st.acked.max(self.flushed);
        self.held.clear();
        st.held_spooled_upto = 0;
        st.held_events = 0;
        if let Some(len) = segment {
            match st.spool.as_mut().map(|s| s.pop_head(len)) {
                Some(Ok(true)) => self.reader.segment_removed(),
                Some(Ok(false)) | None => {}
                Some(Err(e)) => {
                    tracing::error!(backend = %lane.name, error = %audit_format::error::DisplayChain(&e), "backend `{}`: {e}", lane.name, e = audit_format::error::chain(&e));
                }
            }
        }
        let recovered = st.health.recover();
        let refusing = st.admission.delivered();
        let drained = !self.spool_unread(&st);
        lane.refresh(&st);
        drop(st);
        self.backoff.reset();
        self.retry_at = None;
        if recovered || refusing {
            self.shared.clear_error_of(&lane.name);
        }
        self.outage_progress(recovered, drained);
        lane.update_stats(&*self.shared);
        let flushed = self.flushed;
        self.shared
            .update_stats(lane.index, &mut |s| s.delivered_sequence = flushed);
        self.shared.publish_durable();
    }

    /// A call failed: fatal errors stop calls; retryable ones are retried after a jittered,
    /// doubling delay. Memory batches go to the spool; without one, a required backend makes
    /// the trail refuse new events.
    fn failed(&mut self, e: Error, spool_read: bool) {
        let lane = Arc::clone(&self.lane);
        let fatal = spool_read || is_fatal(&e);
        if spool_read {
            // Write and flush failures were counted by the call; this one is the spool's.
            self.shared.record_call(lane.index, Some(&e), 0);
        }
        let e = Arc::new(e);
        self.stored = self.flushed;
        self.dirty = false;
        self.reader.restart();
        let mut st = lane.lock();
        if fatal {
            if st.health.fail(Arc::clone(&e)) {
                let what = lane.fatal_consequence(&st);
                tracing::error!(
                    backend = %lane.name,
                    error = %audit_format::error::DisplayChain(&e),
                    "backend `{}` failed fatally and is not called again until restart: {e}; {what}",
                    lane.name, e = audit_format::error::chain(&e)
                );
            }
            self.shared.update_stats(lane.index, &mut |s| s.fatal += 1);
            self.outage.fatal();
        } else {
            st.health.retry(Arc::clone(&e));
            self.outage_failure(&st, &e);
            self.retry_at = Some(lane.clock.now() + self.backoff.next_delay());
            self.shared
                .update_stats(lane.index, &mut |s| s.retried += 1);
        }
        self.spool_memory(&mut st);
        let refuse = lane.cfg.required && st.spool.is_none();
        if refuse {
            st.admission.refuse();
        }
        lane.refresh(&st);
        drop(st);
        lane.update_stats(&*self.shared);
        if refuse {
            self.shared.set_error(&lane.name, Arc::clone(&e));
        }
        self.shared.publish_durable();
    }

    /// Finishes: flush if possible, spool what is left in memory, close the backend.
    fn stop(mut self, rt: &tokio::runtime::Runtime) -> LaneEnd {
        let lane = Arc::clone(&self.lane);
        let mut end = LaneEnd::default();
        let fatal = lane.lock().health.is_fatal();
        if !fatal && let Err(e) = self.final_flush(rt) {
            end.error = Some(Arc::new(e));
        }
        if !fatal {
            self.catch_up_unfinished();
        }
        // The last status and counters, for the statistics shown after close; only from a
        // backend that answers (a failing one could hold the close up).
        if end.error.is_none() && !lane.lock().health.spools() {
            self.probe(rt);
        }
        let mut st = lane.lock();
        if !fatal {
            st.acked = st.acked.max(self.flushed);
        }
        st.held_events = events(&self.held);
        self.spool_memory(&mut st);
        let memory = events(&self.held) as u64 + st.inbox_events as u64;
        if memory > 0 {
            end.lost = memory;
            if !lane.cfg.required {
                lane.drop_events(&mut st, &*self.shared, memory as usize, "the trail closed");
            }
        }
        let spooled = st.spool.as_ref().map_or(0, Spool::events);
        if spooled > 0
            && let Some(s) = &st.spool
        {
            tracing::warn!(
                backend = %lane.name,
                events = spooled,
                path = %s.dir().display(),
                "backend `{}`: {} undelivered event(s) stay in its spool {} and are delivered at the next start",
                lane.name,
                spooled,
                s.dir().display()
            );
        }
        if end.error.is_none() {
            end.error = st.health.error().cloned();
        }
        lane.refresh(&st);
        drop(st);
        lane.update_stats(&*self.shared);
        // Release the spool (and its lock) for the next start.
        lane.lock().spool = None;
        if let Err(e) = self.call(rt, self.backend.close()) {
            // After a fatal failure (a panic included) the backend was reported once already,
            // and a plugin that panicked refuses `close` as well: nothing new to say.
            if !fatal {
                tracing::error!(backend = %lane.name, error = %audit_format::error::DisplayChain(&e), "closing backend `{}` failed: {e}", lane.name, e = audit_format::error::chain(&e));
            }
            end.error.get_or_insert(Arc::new(e));
        }
        end
    }

    /// Before stopping: flushes what was written since the last flush.
    fn final_flush(&mut self, rt: &tokio::runtime::Runtime) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        self.call(rt, self.backend.flush())?;
        self.flushed = self.stored;
        self.dirty = false;
        self.held.clear();
        let flushed = self.flushed;
        self.shared
            .update_stats(self.lane.index, &mut |s| s.delivered_sequence = flushed);
        Ok(())
    }
}
