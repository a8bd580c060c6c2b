//! The state that callers, the writer thread and the lanes share: the chain head and the
//! queue under one lock, the progress callers wait on, and the watermarks read without it.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::{Notify, watch};

use crate::delivery::{Lane, LaneObserver};
use crate::statistics::BackendStatistics;
use audit_format::error::Error;
use audit_format::ids::IdPool;
use audit_format::record::AuditRecord;

use super::sync_wait::SpinPause;

/// What [`Statistics`](crate::Statistics) counts of the accepted events.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Counters {
    pub(super) total: u64,
    pub(super) errors: u64,
    pub(super) security: u64,
    pub(super) alerts: u64,
}

/// Everything under the trail's lock.
pub(super) struct State {
    /// The sequence number the next accepted event gets.
    pub(super) next_seq: u64,
    /// The checksum of the last accepted event (the next one's `previous_hash`).
    pub(super) prev: Option<[u8; 64]>,
    /// Accepted events the writer has not taken yet.
    pub(super) pending: Vec<AuditRecord>,
    /// Accepted events not yet written by every backend (pending + in the writer's hands).
    pub(super) queued: usize,
    pub(super) closing: bool,
    /// When `close` (or drop) asked the writer to stop: the shutdown timeout counts from here.
    pub(super) closing_since: Option<Instant>,
    /// Callers want everything up to here durable (`flush`, every sync-mode event).
    pub(super) flush_target: u64,
    /// The failure that makes the trail refuse events, and the backend that reported it.
    pub(super) error: Option<(String, Arc<Error>)>,
    /// The writer waits on `wake`: a producer must notify it.
    pub(super) worker_idle: bool,
    /// The idle writer is lingering for more events to fill its batch (batched mode):
    /// producers wake it only once `linger_target` events wait.
    pub(super) lingering: bool,
    /// Waiting events at which producers wake a lingering writer.
    pub(super) linger_target: usize,
    pub(super) counters: Counters,
}

/// What callers wait for, published by the writer (and the lanes) through a watch channel.
#[derive(Debug, Clone, Default)]
pub(super) struct Progress {
    /// Every event up to this sequence is written and fdatasync'd by every backend.
    pub(super) durable: u64,
    /// The current storage failure, if any.
    pub(super) error: Option<(String, Arc<Error>)>,
    /// The writer has stopped (after close).
    pub(super) stopped: bool,
    /// Events lost because the writer had to stop with them unwritten.
    pub(super) abandoned: usize,
}

pub(super) struct Shared {
    state: Mutex<State>,
    /// The idle writer sleeps on it (with the lock of `state`).
    pub(super) wake: Condvar,
    /// Callers blocked on a full queue wait for it.
    pub(super) space: Notify,
    pub(super) progress: watch::Sender<Progress>,
    /// Per backend, in configuration order; updated after each call.
    backend_stats: Mutex<Vec<BackendStatistics>>,
    /// The backends with a worker of their own.
    pub(super) lanes: Vec<Arc<Lane>>,
    /// Written (and, when due, fdatasync'd) by the writer's own backends and handed to
    /// every lane up to here.
    pub(super) dispatched: AtomicU64,
    /// `progress.durable`, readable without the watch channel's lock (for polling callers).
    pub(super) durable_now: AtomicU64,
    /// The sequence number of the last accepted event (for the polling writer).
    pub(super) accepted: AtomicU64,
    /// Sync callers waiting for their commit.
    pub(super) sync_waiters: AtomicUsize,
    /// The writer's recent `fdatasync` time in nanoseconds (moving average), sync mode.
    pub(super) sync_nanos: AtomicU64,
    /// The writer is inside its backends' `flush` (their `fdatasync`).
    pub(super) syncing: AtomicBool,
    /// Random bytes for generated `event_id`s.
    pub(super) ids: Mutex<IdPool>,
    /// When polling (sync mode) is off: a poller lost its CPU, or polls ran out of budget.
    pub(super) spin_pause: SpinPause,
}

impl Shared {
    /// A trail with nothing accepted yet.
    pub(super) fn new(lanes: Vec<Arc<Lane>>, stats: Vec<BackendStatistics>) -> Self {
        let (progress, _) = watch::channel(Progress::default());
        Self {
            state: Mutex::new(State {
                next_seq: 1,
                prev: None,
                pending: Vec::new(),
                queued: 0,
                closing: false,
                closing_since: None,
                flush_target: 0,
                error: None,
                worker_idle: false,
                lingering: false,
                linger_target: 1,
                counters: Counters::default(),
            }),
            wake: Condvar::new(),
            space: Notify::new(),
            progress,
            backend_stats: Mutex::new(stats),
            lanes,
            dispatched: AtomicU64::new(0),
            durable_now: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            sync_waiters: AtomicUsize::new(0),
            sync_nanos: AtomicU64::new(0),
            syncing: AtomicBool::new(false),
            ids: Mutex::default(),
            spin_pause: SpinPause::new(),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // No code path panics while holding this lock except through a bug; keep going with
        // the state as it is rather than poisoning every caller.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Updates one backend's statistics.
    pub(super) fn update_stats(&self, backend: usize, f: impl FnOnce(&mut BackendStatistics)) {
        let mut stats = self.stats();
        if let Some(s) = stats.get_mut(backend) {
            f(s);
        }
    }

    /// Every backend's statistics, in configuration order.
    pub(super) fn stats(&self) -> MutexGuard<'_, Vec<BackendStatistics>> {
        self.backend_stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The writer waits up to `timeout` for `target` events to be pending; producers wake it
    /// once that many wait.
    pub(super) fn linger<'a>(
        &self,
        mut st: MutexGuard<'a, State>,
        target: usize,
        timeout: Duration,
    ) -> MutexGuard<'a, State> {
        st.worker_idle = true;
        st.lingering = true;
        st.linger_target = target;
        let mut st = self
            .wake
            .wait_timeout(st, timeout)
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0;
        st.worker_idle = false;
        st.lingering = false;
        st
    }

    /// Accepted events the lanes hold in memory (not stored by their backend, not spooled).
    pub(super) fn lane_memory(&self) -> usize {
        self.lanes.iter().map(|l| l.memory_events()).sum()
    }

    /// The error that refuses new events while a backend is failing, if one is.
    pub(super) fn refusal(&self, st: &State) -> Option<Error> {
        let (backend, source) = st.error.as_ref()?;
        Some(Error::Storage {
            backend: backend.clone(),
            queued: st.queued + self.lane_memory(),
            source: Arc::clone(source),
        })
    }
}

impl LaneObserver for Shared {
    fn update_stats(&self, backend: usize, f: &mut dyn FnMut(&mut BackendStatistics)) {
        Shared::update_stats(self, backend, f);
    }

    /// New events are refused (fail closed) while this lasts. Callers blocked on a full queue
    /// (`on_full = block`) are woken to get the refusal rather than wait for space that does
    /// not come while the failure lasts.
    fn set_error(&self, backend: &str, e: Arc<Error>) {
        let err = (backend.to_owned(), e);
        self.lock().error = Some(err.clone());
        self.progress.send_modify(|p| p.error = Some(err));
        self.space.notify_waiters();
    }

    /// Clears the failure if `backend` reported it.
    fn clear_error_of(&self, backend: &str) {
        let mut st = self.lock();
        if st.error.as_ref().is_some_and(|(b, _)| b == backend) {
            st.error = None;
            drop(st);
            self.progress.send_modify(|p| p.error = None);
        }
    }

    /// Publishes the durable sequence: what the writer's backends made durable, bounded by
    /// every required lane.
    fn publish_durable(&self) {
        let mut durable = self.dispatched.load(Ordering::Acquire);
        for lane in &self.lanes {
            if lane.cfg.required {
                durable = durable.min(lane.durable());
            }
        }
        self.progress.send_if_modified(|p| {
            if durable > p.durable {
                p.durable = durable;
                self.durable_now.fetch_max(durable, Ordering::Release);
                true
            } else {
                false
            }
        });
    }

    /// Counts one backend call: `stored` events on success, the error otherwise.
    fn record_call(&self, backend: usize, error: Option<&Error>, stored: u64) {
        let mut stats = self.stats();
        let Some(s) = stats.get_mut(backend) else {
            return;
        };
        match error {
            None => s.delivered += stored,
            Some(e) => {
                s.failed_calls += 1;
                s.last_error = Some(audit_format::error::chain(e));
                s.last_error_at =
                    Some(Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
            }
        }
    }
}
