//! One backend's lane: the state its worker shares with the trail's writer, and the calls the
//! writer makes. The worker's side is in `worker.rs`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use super::clock::{LaneClock, SystemClock};
use super::health::{Admission, Health};
use super::options::LaneConfig;
use super::spool::{Put, Spool};
use crate::backend::{Batch, ChainHead};
use crate::settings::OnFull;
use crate::statistics::BackendStatistics;
use audit_format::error::{Error, Result};
use audit_format::record::AuditRecord;

/// What a lane reports to the trail that owns it: its statistics, its failures and its
/// durability progress. The trail implements it; lanes never see the trail's state.
pub(crate) trait LaneObserver: Send + Sync {
    /// Updates backend `backend`'s statistics.
    fn update_stats(&self, backend: usize, f: &mut dyn FnMut(&mut BackendStatistics));
    /// Counts one backend call: `stored` events on success, the error otherwise.
    fn record_call(&self, backend: usize, error: Option<&Error>, stored: u64);
    /// New events are refused (fail closed) until `clear_error_of(backend)`.
    fn set_error(&self, backend: &str, e: Arc<Error>);
    /// Clears the failure if `backend` reported it.
    fn clear_error_of(&self, backend: &str);
    /// A lane's durable sequence moved: recompute the trail's.
    fn publish_durable(&self);
}

/// What the writer should do after offering a batch.
#[derive(Debug)]
pub(crate) enum Offer {
    /// Taken (in memory or spooled), or dropped and counted for a non-required backend.
    Taken,
    /// Not taken: offer it again later. With an error, the trail refuses new events meanwhile.
    Later(Option<Arc<Error>>),
}

/// How a lane ended.
#[derive(Debug, Default)]
pub(crate) struct LaneEnd {
    /// Accepted events this backend will never get (no spool, or it failed).
    pub(crate) lost: u64,
    pub(crate) error: Option<Arc<Error>>,
}

/// What the writer and the worker share, under the lane's lock.
#[derive(Debug)]
pub(super) struct LaneState {
    /// Batches the writer handed over that the worker has not taken yet.
    pub(super) inbox: VecDeque<Batch>,
    pub(super) inbox_events: usize,
    pub(super) spool: Option<Spool>,
    /// Events in the memory batches the worker holds, not yet flushed by the backend.
    pub(super) held_events: usize,
    /// The worker's memory batches up to this sequence number were also copied to the spool
    /// (sync mode, a call that took long): 0 when none.
    pub(super) held_spooled_upto: u64,
    /// Everything up to here is stored and flushed by the backend (or was before this start).
    pub(super) acked: u64,
    /// The writer asks for a flush up to here.
    pub(super) flush_target: u64,
    /// Closing: the worker finishes by then.
    pub(super) deadline: Option<Instant>,
    pub(super) health: Health,
    pub(super) admission: Admission,
}

impl LaneState {
    /// Empties the inbox, returning its batches.
    pub(super) fn take_inbox(&mut self) -> VecDeque<Batch> {
        self.inbox_events = 0;
        std::mem::take(&mut self.inbox)
    }
}

/// One backend's lane, shared by the trail's writer and the lane's worker. `C` is where the
/// worker reads the time and waits: the real clock except in unit tests.
#[derive(Debug)]
pub(crate) struct Lane<C: LaneClock = SystemClock> {
    pub(crate) name: String,
    pub(crate) index: usize,
    pub(crate) cfg: LaneConfig,
    st: Mutex<LaneState>,
    pub(super) cv: Condvar,
    durable: AtomicU64,
    pub(super) clock: C,
}

pub(super) fn events(batches: &VecDeque<Batch>) -> usize {
    batches.iter().map(|b| b.len()).sum()
}

pub(super) fn flatten(batches: &VecDeque<Batch>) -> Vec<AuditRecord> {
    batches.iter().flat_map(|b| b.iter().cloned()).collect()
}

impl Lane {
    /// A lane for backend `index`; opens (and recovers) its spool.
    pub(crate) fn new(name: String, index: usize, cfg: LaneConfig, start: u64) -> Result<Self> {
        Self::with_clock(name, index, cfg, start, SystemClock)
    }
}

impl<C: LaneClock> Lane<C> {
    /// [`Lane::new`] with the worker on `clock`.
    pub(crate) fn with_clock(
        name: String,
        index: usize,
        cfg: LaneConfig,
        start: u64,
        clock: C,
    ) -> Result<Self> {
        let spool = match &cfg.spool {
            Some((dir, max)) => Some(Spool::open(
                dir.clone(),
                *max,
                cfg.allow_insecure_permissions,
            )?),
            None => None,
        };
        Ok(Self {
            name,
            index,
            cfg,
            st: Mutex::new(LaneState {
                inbox: VecDeque::new(),
                inbox_events: 0,
                spool,
                held_events: 0,
                held_spooled_upto: 0,
                acked: start,
                flush_target: 0,
                deadline: None,
                health: Health::Ok,
                admission: Admission::Open,
            }),
            cv: Condvar::new(),
            durable: AtomicU64::new(start),
            clock,
        })
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, LaneState> {
        self.st
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The chain head kept in the spool from an earlier run, if any.
    pub(crate) fn spool_head(&self) -> Result<Option<ChainHead>> {
        match &self.lock().spool {
            Some(s) => s.last_head(),
            None => Ok(None),
        }
    }

    /// The first sequence number the spool holds, if it holds any.
    pub(crate) fn spool_first(&self) -> Option<u64> {
        self.lock()
            .spool
            .as_ref()
            .and_then(|s| s.head().map(|h| h.first))
    }

    /// Whether the spool holds every sequence number from `from` to `to`.
    pub(crate) fn spool_covers(&self, from: u64, to: u64) -> bool {
        self.lock()
            .spool
            .as_ref()
            .is_some_and(|s| s.covers(from, to))
    }

    /// The trail refused this backend's stored chain at start (ahead of the trail's head,
    /// a different line at the same sequence, or a line that does not verify): it is fatal
    /// before its first call, as after a fatal failure: never called until restart, its events
    /// spooled. Reported on stderr and in its statistics.
    pub(crate) fn fail_at_start(&self, e: Arc<Error>, shared: &dyn LaneObserver) {
        let mut st = self.lock();
        st.health.fail(Arc::clone(&e));
        let what = self.fatal_consequence(&st);
        drop(st);
        tracing::error!(
            backend = %self.name,
            error = %audit_format::error::DisplayChain(&e),
            "backend `{}` is not called until restart: {e}; {what}",
            self.name, e = audit_format::error::chain(&e)
        );
        shared.update_stats(self.index, &mut |s| {
            s.fatal += 1;
            s.last_error = Some(audit_format::error::chain(&e));
            s.last_error_at =
                Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
        });
        self.update_stats(shared);
    }

    /// What becomes of a fatal backend's events, for messages.
    pub(super) fn fatal_consequence(&self, st: &LaneState) -> &'static str {
        if st.spool.is_some() {
            "its events are kept in its spool"
        } else if self.cfg.required {
            "it has no spool, so new events are refused (required = true)"
        } else {
            "its events are dropped (required = false, no spool)"
        }
    }

    /// The backend failed fatally (it is not called again until restart).
    pub(crate) fn is_fatal(&self) -> bool {
        self.lock().health.is_fatal()
    }

    /// Sets where the chain starts (after the trail read every backend's head).
    pub(crate) fn set_start(&self, start: u64) {
        let mut st = self.lock();
        st.acked = start;
        self.refresh(&st);
    }

    /// Everything up to here is flushed by the backend or fdatasync'd in its spool.
    pub(crate) fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Recomputes `durable`: what the backend acked, or the spool's fdatasync'd end when the
    /// spool continues right after it and the worker holds no memory batch.
    pub(super) fn refresh(&self, st: &LaneState) {
        let spooled = match &st.spool {
            Some(s) if st.held_events == 0 => s
                .head()
                .filter(|h| h.first <= st.acked + 1)
                .map_or(0, |_| s.synced()),
            _ => 0,
        };
        self.durable.store(st.acked.max(spooled), Ordering::Release);
    }

    /// Events held in memory: the inbox and the worker's unacknowledged batches.
    pub(crate) fn memory_events(&self) -> usize {
        let st = self.lock();
        st.inbox_events + st.held_events
    }

    /// The trail refuses events because of this lane.
    pub(crate) fn refusing(&self) -> bool {
        self.lock().admission == Admission::Refusing
    }

    /// Asks the worker to flush up to `seq`.
    pub(crate) fn request_flush(&self, seq: u64) {
        let mut st = self.lock();
        if seq > st.flush_target {
            st.flush_target = seq;
            self.cv.notify_one();
        }
    }

    /// Tells the worker to finish by `deadline`.
    pub(crate) fn close(&self, deadline: Instant) {
        let mut st = self.lock();
        st.deadline = Some(deadline);
        self.cv.notify_one();
    }

    /// fdatasyncs what the writer spooled.
    pub(crate) fn sync_spool(&self, shared: &dyn LaneObserver) -> Result<()> {
        let mut st = self.lock();
        if let Some(s) = &mut st.spool {
            s.sync()?;
        }
        self.refresh(&st);
        drop(st);
        shared.publish_durable();
        Ok(())
    }

    /// Counts events dropped for a non-required backend; logs once per episode.
    pub(super) fn drop_events(
        &self,
        st: &mut LaneState,
        shared: &dyn LaneObserver,
        n: usize,
        why: &str,
    ) {
        if st.admission.start_dropping() {
            tracing::warn!(
                backend = %self.name,
                dropped = n,
                "backend `{}` (required = false): {why}; events it cannot keep are dropped and counted (statistics `dropped`)",
                self.name
            );
        }
        shared.update_stats(self.index, &mut |s| s.dropped += n as u64);
    }

    /// Moves the inbox into the spool, then `batch` (if any). Under the lane lock.
    pub(super) fn spool_tail(st: &mut LaneState, batch: Option<&Batch>) -> Result<Put> {
        let Some(spool) = st.spool.as_mut() else {
            return Ok(Put::Full);
        };
        if !st.inbox.is_empty() {
            match spool.append(&flatten(&st.inbox))? {
                Put::Full => return Ok(Put::Full),
                Put::Stored => {
                    st.inbox.clear();
                    st.inbox_events = 0;
                }
            }
        }
        match batch {
            Some(b) => spool.append(b),
            None => Ok(Put::Stored),
        }
    }

    /// Hands a batch (records the lane has not had) to the lane. Called by the trail's writer.
    pub(crate) fn offer(&self, batch: &Batch, shared: &dyn LaneObserver) -> Offer {
        let mut st = self.lock();
        let result = match self.keep(&mut st, batch) {
            Ok(()) => Offer::Taken,
            Err(refused) if !self.cfg.required => {
                self.drop_events(&mut st, shared, batch.len(), refused.why);
                Offer::Taken
            }
            Err(refused) => {
                if refused.refuse {
                    st.admission.refuse();
                }
                Offer::Later(refused.refuse.then_some(refused.error))
            }
        };
        self.refresh(&st);
        self.cv.notify_one();
        drop(st);
        self.update_stats(shared);
        result
    }

    /// Puts `batch` in memory or, when the backend is not healthy or memory is over its
    /// limit, in the spool.
    fn keep(&self, st: &mut LaneState, batch: &Batch) -> Result<(), Refused> {
        let over = st.inbox_events + batch.len() > self.cfg.memory_limit;
        // A backlog already in the spool does not keep new batches out of memory: the worker
        // delivers the spool first, and the writer moves the inbox into the spool before it
        // spools again, so order holds.
        let spooling = st.health.spools() || over;
        if st.spool.is_some() && spooling {
            return match Self::spool_tail(st, Some(batch)) {
                Ok(Put::Stored) => {
                    st.admission.kept();
                    Ok(())
                }
                Ok(Put::Full) => Err(Refused {
                    why: "its spool is full",
                    error: Arc::new(Error::backend(format!(
                        "the spool of backend `{}` is full (spool_max_bytes = {}); raise spool_max_bytes or bring the backend back",
                        self.name,
                        self.cfg.spool.as_ref().map_or(0, |s| s.1)
                    ))),
                    refuse: self.cfg.on_full == OnFull::Fail,
                }),
                Err(e) => Err(Refused {
                    why: "its spool cannot be written",
                    error: Arc::new(e),
                    refuse: true,
                }),
            };
        }
        if let Health::Fatal(fatal) = &st.health {
            return Err(Refused {
                why: "it failed fatally and has no spool",
                error: Arc::clone(fatal),
                refuse: true,
            });
        }
        if over {
            return Err(Refused {
                why: "it is behind and has no spool",
                error: Arc::new(Error::backend(format!(
                    "backend `{}` is behind by {} events and has no spool",
                    self.name, st.inbox_events
                ))),
                refuse: st.health.is_retrying(),
            });
        }
        st.inbox.push_back(batch.clone());
        st.inbox_events += batch.len();
        st.admission.kept();
        Ok(())
    }

    /// Copies the lane's state into its statistics.
    pub(super) fn update_stats(&self, shared: &dyn LaneObserver) {
        let st = self.lock();
        let (events, bytes) = st
            .spool
            .as_ref()
            .map_or((0, 0), |s| (s.events(), s.bytes()));
        let queued = st.inbox_events as u64;
        let state = st.health.state();
        drop(st);
        shared.update_stats(self.index, &mut |s| {
            s.spooled_events = events;
            s.spooled_bytes = bytes;
            s.queued = queued;
            s.state = state;
        });
    }
}

/// Why `offer` could not keep a batch.
struct Refused {
    /// For the drop message of a non-required backend.
    why: &'static str,
    error: Arc<Error>,
    /// A required backend makes the trail refuse events (rather than offer again later).
    refuse: bool,
}
