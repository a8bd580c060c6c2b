//! The writer's loop. Each round: wait for work and take a batch, write it to the writer's
//! own backends, hand it to the lanes, ask the lanes to flush when callers want it, sync and
//! publish the durable watermark when due; after a failure, retry with a back-off; once
//! closing and drained, shut down.

use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use crate::backend::Batch;
use crate::delivery::{Backoff, Jitter, LaneObserver};
use crate::settings::Durability;
use crate::trail::shared::State;
use crate::trail::sync_wait::{WRITER_SPIN_MAX, writer_poll};
use audit_format::error::Error;
use audit_format::record::AuditRecord;

use super::Writer;

/// How long the writer waits for a batch to fill in batched mode.
const LINGER: Duration = Duration::from_millis(1);

/// How long the writer waits in sync mode for the callers of its last batch to join the next.
const SYNC_LINGER: Duration = Duration::from_micros(100);

/// The first and the longest wait before the writer retries a failed call.
const MIN_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How many waiting events make producers wake a lingering writer.
fn wake_batch(queue_capacity: usize) -> usize {
    (queue_capacity / 2).clamp(1, 512)
}

/// What the loop carries from one round to the next.
struct Serve {
    /// The batch being written: taken from the queue, not yet stored by every backend.
    inflight: Option<Batch>,
    /// Every event up to here is written by the writer's own backends and handed to every
    /// lane.
    written: u64,
    /// Every event up to here is also synced (fdatasync'd) by the writer's own backends.
    durable: u64,
    /// When the last sync finished (batched mode syncs at least every `interval`).
    last_sync: Instant,
    /// The lanes were asked to flush up to here.
    flushed_lanes_to: u64,
    retry: Retry,
    /// Waiting events at which producers wake a lingering writer (batched mode).
    wake_batch: usize,
    /// The size of the last batch taken (sync mode lingers for as many callers).
    last_batch: usize,
    /// How long the idle writer polls for the next event (sync mode).
    spin_budget: Duration,
}

impl Serve {
    /// Closing, past the shutdown deadline, and this round (which did not fail) moved neither
    /// watermark although it did not finish: nothing would change in the next round either.
    fn stuck_past_deadline(&self, before: (u64, u64)) -> bool {
        (self.written, self.durable) == before
            && self
                .retry
                .shutdown_deadline
                .is_some_and(|d| Instant::now() >= d)
    }
}

/// When to try again after a failure: an exponential back-off (no jitter), bounded by the
/// shutdown deadline once closing.
struct Retry {
    /// `Some`: a call failed; nothing is tried before this.
    at: Option<Instant>,
    backoff: Backoff,
    shutdown_deadline: Option<Instant>,
}

impl Retry {
    fn new() -> Self {
        Self {
            at: None,
            backoff: Backoff::new(MIN_BACKOFF, MAX_BACKOFF, Jitter::None),
            shutdown_deadline: None,
        }
    }

    /// Shutting down: a back-off never runs past the deadline.
    fn bound_by(&mut self, deadline: Instant) {
        self.shutdown_deadline = Some(deadline);
        self.at = self.at.map(|t| t.min(deadline));
    }

    fn ready(&self, now: Instant) -> bool {
        self.at.is_none_or(|t| now >= t)
    }

    /// Schedules the next try after a failure; `false` when shutting down has run out of
    /// time.
    fn schedule(&mut self) -> bool {
        let now = Instant::now();
        let at = now + self.backoff.next_delay();
        self.at = match self.shutdown_deadline {
            Some(d) if now >= d => None,
            Some(d) => Some(at.min(d)),
            None => Some(at),
        };
        self.at.is_some()
    }

    /// A round went through: the next failure starts the back-off over.
    fn reset(&mut self) {
        self.at = None;
        self.backoff.reset();
    }
}

/// What the callers asked for, as seen when the batch was taken.
struct Round {
    closing: bool,
    flush_target: u64,
}

/// What the writer does next while it waits for work (under the lock).
enum Move {
    /// Wait up to `timeout` for `target` events to be pending.
    Linger { target: usize, timeout: Duration },
    /// Go: take the batch (or act on what is urgent).
    Take,
    /// Poll briefly for the next event without sleeping (sync mode).
    Spin,
    /// Sleep until woken, or until `deadline` (a retry or a sync is due).
    Sleep { deadline: Option<Instant> },
}

impl Writer {
    pub(super) fn serve(mut self, rt: &tokio::runtime::Runtime, start: u64) {
        let mut s = Serve {
            inflight: None,
            written: start,
            durable: start,
            last_sync: Instant::now(),
            flushed_lanes_to: start,
            retry: Retry::new(),
            wake_batch: wake_batch(self.queue_capacity),
            last_batch: 1,
            spin_budget: WRITER_SPIN_MAX,
        };
        loop {
            let round = self.wait_for_work(&mut s);
            let before = (s.written, s.durable);
            if let Err(refused) = self.store_batch(rt, &mut s) {
                self.sync_what_is_written(rt, &mut s);
                if self.retry_later(&mut s, refused) {
                    continue;
                }
                let unwritten = s.inflight.as_ref().map_or(0, |b| b.len());
                return self.finish(rt, unwritten, s.durable);
            }
            self.request_lane_flush(&mut s, round.flush_target);
            if let Err((name, e)) = self.sync_if_due(rt, &mut s, &round) {
                if self.retry_later(&mut s, Some((name, Arc::new(e)))) {
                    continue;
                }
                return self.finish(rt, 0, s.durable);
            }
            s.retry.reset();
            self.clear_error();
            if round.closing
                && s.written == s.durable
                && s.inflight.is_none()
                && self.shared.lock().pending.is_empty()
            {
                return self.finish(rt, 0, s.durable);
            }
            if round.closing && s.stuck_past_deadline(before) {
                // Never keep `close` waiting on rounds that change nothing.
                self.set_error(
                    "audit-writer",
                    Arc::new(Error::backend(
                        "the writer made no progress while closing; this is a bug in audit-host",
                    )),
                );
                let unwritten = s.inflight.as_ref().map_or(0, |b| b.len());
                return self.finish(rt, unwritten, s.durable);
            }
        }
    }

    /// Phase 1: waits (lingers, polls or sleeps) until there is work, then takes the
    /// pending events as the batch.
    fn wait_for_work(&self, s: &mut Serve) -> Round {
        let mut lingered = false;
        let mut spun = false;
        let mut st = self.shared.lock();
        loop {
            let now = Instant::now();
            if let Some(since) = st.closing_since {
                s.retry.bound_by(since + self.shutdown_timeout);
            }
            match self.next_move(&st, s, now, lingered, spun) {
                Move::Linger { target, timeout } => {
                    lingered = true;
                    st = self.shared.linger(st, target, timeout);
                }
                Move::Take => break,
                Move::Spin => {
                    spun = true;
                    // Stored under the lock by every accept.
                    let seen = self.shared.accepted.load(Ordering::Acquire);
                    drop(st);
                    writer_poll(
                        &self.shared.spin_pause,
                        &self.shared.accepted,
                        seen,
                        &mut s.spin_budget,
                    );
                    st = self.shared.lock();
                }
                Move::Sleep { deadline } => st = self.sleep(st, deadline, now),
            }
        }
        take_batch(&mut st, s);
        Round {
            closing: st.closing,
            flush_target: st.flush_target,
        }
    }

    /// Decides, under the lock, whether to take a batch now or to wait, and how.
    fn next_move(&self, st: &State, s: &Serve, now: Instant, lingered: bool, spun: bool) -> Move {
        let retry_ok = s.retry.ready(now);
        let unsynced = s.written > s.durable;
        let flush_due = unsynced && now >= s.last_sync + self.interval;
        let wants_flush = st.flush_target > s.durable || st.flush_target > s.flushed_lanes_to;
        let urgent = s.inflight.is_some() || st.closing || flush_due || wants_flush;
        // Batched mode, a few events waiting and nothing urgent: give the producers LINGER
        // to fill the batch (once), instead of taking them one wake-up at a time.
        if retry_ok
            && !urgent
            && !lingered
            && self.durability == Durability::Batched
            && !st.pending.is_empty()
            && st.pending.len() < s.wake_batch
        {
            return Move::Linger {
                target: s.wake_batch,
                timeout: LINGER,
            };
        }
        // Sync mode, group commit: the callers woken by the last fdatasync are logging
        // again. When fewer are back than the last batch held, give the rest SYNC_LINGER to
        // join this batch rather than pay for the next fdatasync (a lone caller never waits:
        // its last batch was 1).
        if retry_ok
            && !lingered
            && self.durability == Durability::Sync
            && s.inflight.is_none()
            && !st.closing
            && !st.pending.is_empty()
            && st.pending.len() < s.last_batch
        {
            return Move::Linger {
                target: s.last_batch,
                timeout: SYNC_LINGER,
            };
        }
        if retry_ok && (!st.pending.is_empty() || urgent) {
            return Move::Take;
        }
        // Sync mode, idle after a commit: a caller that was polling for it logs its next
        // event within microseconds. Poll for that briefly before sleeping (a futex wake of
        // an idle CPU is costly).
        if self.durability == Durability::Sync
            && !spun
            && s.retry.at.is_none()
            && !st.closing
            && s.spin_budget > Duration::ZERO
            && !self.shared.spin_pause.active()
        {
            return Move::Spin;
        }
        let mut deadline: Option<Instant> = s.retry.at;
        if unsynced {
            let t = s.last_sync + self.interval;
            deadline = Some(deadline.map_or(t, |d| d.min(t)));
        }
        Move::Sleep { deadline }
    }

    /// Sleeps until a producer, `flush` or `close` wakes the writer, or until `deadline`.
    fn sleep<'a>(
        &self,
        mut st: MutexGuard<'a, State>,
        deadline: Option<Instant>,
        now: Instant,
    ) -> MutexGuard<'a, State> {
        st.worker_idle = true;
        st = match deadline {
            Some(d) => {
                self.shared
                    .wake
                    .wait_timeout(st, d.saturating_duration_since(now))
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0
            }
            None => self
                .shared
                .wake
                .wait(st)
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        };
        st.worker_idle = false;
        st
    }

    /// Phases 2 and 3: writes the batch in flight to the writer's own backends first (a lane
    /// never holds an event that the local record does not: after a restart the chain
    /// continues from it), then hands it to every lane. Once all have it, frees its room in
    /// the queue. `Err`: the batch stays in flight, with the failure to report, if any.
    fn store_batch(
        &mut self,
        rt: &tokio::runtime::Runtime,
        s: &mut Serve,
    ) -> Result<(), Option<(String, Arc<Error>)>> {
        let Some(batch) = &s.inflight else {
            return Ok(());
        };
        match self.write_all(rt, batch) {
            Err((name, e)) => return Err(Some((name, Arc::new(e)))),
            Ok(()) => self.offer_all(batch)?,
        }
        s.written = batch.last().map_or(s.written, AuditRecord::sequence_number);
        let n = batch.len();
        s.inflight = None;
        self.shared.lock().queued -= n;
        self.shared.space.notify_waiters();
        Ok(())
    }

    /// Phase 4: passes a new flush target (`flush`, a sync-mode event) on to every lane.
    fn request_lane_flush(&self, s: &mut Serve, flush_target: u64) {
        if flush_target > s.flushed_lanes_to {
            for slot in &self.lanes {
                slot.lane.request_flush(flush_target);
            }
            s.flushed_lanes_to = flush_target;
        }
    }

    /// Phase 5: syncs the writer's own backends and the lanes' spools when due (sync mode,
    /// a flush asked for, closing, or the flush interval over), then publishes the durable
    /// watermark.
    fn sync_if_due(
        &mut self,
        rt: &tokio::runtime::Runtime,
        s: &mut Serve,
        round: &Round,
    ) -> Result<(), (String, Error)> {
        let now = Instant::now();
        let must_sync = s.written > s.durable
            && (self.durability == Durability::Sync
                || round.flush_target > s.durable
                || round.closing
                || now >= s.last_sync + self.interval);
        if !must_sync {
            return Ok(());
        }
        let started = Instant::now();
        self.shared.syncing.store(true, Ordering::Relaxed);
        let flushed = self.flush_all(rt);
        self.shared.syncing.store(false, Ordering::Relaxed);
        if self.durability == Durability::Sync {
            self.record_sync_time(started);
        }
        flushed?;
        s.durable = s.written;
        s.last_sync = now;
        self.publish_durable(s.durable);
        Ok(())
    }

    /// After a failed round: syncs what earlier rounds wrote, so that it counts as durable
    /// (`--ack`, `close`'s `not_durable`) although the failed batch keeps the writer from
    /// syncing in its usual place. After the file backend rolled a failed batch back (a
    /// truncation it fdatasyncs), this costs nothing. A failure here is not reported: the
    /// round's own failure is, and a backend that failed to sync fails its next call too.
    fn sync_what_is_written(&mut self, rt: &tokio::runtime::Runtime, s: &mut Serve) {
        if s.written > s.durable && self.flush_all(rt).is_ok() {
            s.durable = s.written;
            s.last_sync = Instant::now();
            self.publish_durable(s.durable);
        }
    }

    /// Keeps `sync_nanos`, the moving average of an fdatasync over about 8 syncs, which sets
    /// how long a lone sync caller polls.
    fn record_sync_time(&self, started: Instant) {
        let took = started.elapsed().as_nanos() as u64;
        let avg = self.shared.sync_nanos.load(Ordering::Relaxed);
        let avg = if avg == 0 {
            took
        } else {
            avg - avg / 8 + took / 8
        };
        self.shared.sync_nanos.store(avg, Ordering::Relaxed);
    }

    /// Phase 6: what the writer's own backends made durable, bounded by every required lane,
    /// becomes the trail's durable watermark; sync callers wake.
    fn publish_durable(&self, durable: u64) {
        self.shared.dispatched.store(durable, Ordering::Release);
        self.shared.publish_durable();
    }

    /// Phase 7: after a failure, reports it (fail closed) and schedules a retry. `false`:
    /// shutting down has run out of time; the writer must stop.
    fn retry_later(&self, s: &mut Serve, failure: Option<(String, Arc<Error>)>) -> bool {
        if let Some((name, e)) = failure {
            self.set_error(&name, e);
        }
        s.retry.schedule()
    }
}

/// Takes the pending events as the batch. While retrying, what was accepted meanwhile joins
/// the batch in flight, so the backends that work (the local files when a lane is refusing)
/// store it now rather than only after the failing one recovers, or never when the trail is
/// closed first. Each backend skips what it already has.
fn take_batch(st: &mut State, s: &mut Serve) {
    if s.inflight.is_none() && !st.pending.is_empty() {
        let cap = st.pending.len();
        s.last_batch = cap;
        s.inflight = Some(Batch::new(std::mem::replace(
            &mut st.pending,
            Vec::with_capacity(cap),
        )));
    } else if let Some(batch) = s.inflight.as_ref().filter(|_| s.retry.at.is_some())
        && !st.pending.is_empty()
    {
        let mut records = batch.to_vec();
        records.append(&mut st.pending);
        s.inflight = Some(Batch::new(records));
    }
}
