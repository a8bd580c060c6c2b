//! One backend's delivery lane: its own worker thread, in-memory batches, retry with backoff
//! and jitter, and durable spool. The trail's writer offers each batch to every lane; a slow,
//! failing, hanging or panicking backend holds up only its own lane.
//!
//! Order: the worker delivers, oldest first, (1) batches it holds from memory that are not
//! yet acknowledged, (2) the spool, (3) the in-memory inbox. Whenever the writer spools, it
//! first moves the inbox into the spool, and a worker whose memory batches fail puts them in
//! front of the spool, so the backend always receives sequence order.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::backend::{Batch, StorageBackend};
use crate::error::{Error, Result};
use crate::record::{AuditRecord, Integrity};
use crate::settings::{Durability, OnFull};
use crate::spool::{Put, Spool, read_segment};
use crate::statistics::BackendStatistics;

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

/// Default first retry delay (`retry_initial_ms`).
pub const DEFAULT_RETRY_INITIAL: Duration = Duration::from_millis(100);
/// Default longest retry delay (`retry_max_ms`).
pub const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(30);
/// At most this many spool bytes are read and delivered in one call.
const SPOOL_CHUNK: u64 = 1 << 20;

/// How a backend's lane behaves.
#[derive(Debug, Clone)]
pub(crate) struct LaneConfig {
    pub(crate) required: bool,
    /// The spool directory and its bound; `None`: no spool.
    pub(crate) spool: Option<(PathBuf, u64)>,
    pub(crate) retry_initial: Duration,
    pub(crate) retry_max: Duration,
    /// Events held in memory before the writer spools (or, without a spool, waits): twice
    /// the trail's queue capacity. Written but unflushed events count too (a flush is then
    /// due).
    pub(crate) memory_limit: usize,
    pub(crate) on_full: OnFull,
    pub(crate) durability: Durability,
    pub(crate) flush_interval: Duration,
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

#[derive(Debug)]
struct LaneState {
    inbox: VecDeque<Batch>,
    inbox_events: usize,
    spool: Option<Spool>,
    /// The worker holds memory batches that are not acknowledged yet.
    holding: bool,
    /// How many events those are.
    held_events: usize,
    /// The worker's memory batches up to this sequence number were also copied to the spool
    /// (sync mode, a call that took long): 0 when none.
    held_spooled_upto: u64,
    /// Sync mode: a call has been taking longer than the flush interval; new batches go to
    /// the spool (and are fdatasync'd with it) until it returns.
    stalled: bool,
    /// Everything up to here is stored and flushed by the backend (or was before this start).
    acked: u64,
    flush_target: u64,
    deadline: Option<Instant>,
    fatal: Option<Arc<Error>>,
    failing: Option<Arc<Error>>,
    /// The trail refuses events because of this lane.
    refusing: bool,
    /// A drop episode is under way (logged once).
    dropping: bool,
    dropped: u64,
}

/// One backend's lane, shared by the trail's writer and the lane's worker.
#[derive(Debug)]
pub(crate) struct Lane {
    pub(crate) name: String,
    pub(crate) index: usize,
    pub(crate) cfg: LaneConfig,
    st: Mutex<LaneState>,
    cv: Condvar,
    durable: AtomicU64,
}

fn events(batches: &VecDeque<Batch>) -> usize {
    batches.iter().map(|b| b.len()).sum()
}

fn flatten(batches: &VecDeque<Batch>) -> Vec<AuditRecord> {
    batches.iter().flat_map(|b| b.iter().cloned()).collect()
}

impl Lane {
    /// A lane for backend `index`; opens (and recovers) its spool.
    pub(crate) fn new(name: String, index: usize, cfg: LaneConfig, start: u64) -> Result<Self> {
        let spool = match &cfg.spool {
            Some((dir, max)) => Some(Spool::open(dir.clone(), *max)?),
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
                holding: false,
                held_events: 0,
                held_spooled_upto: 0,
                stalled: false,
                acked: start,
                flush_target: 0,
                deadline: None,
                fatal: None,
                failing: None,
                refusing: false,
                dropping: false,
                dropped: 0,
            }),
            cv: Condvar::new(),
            durable: AtomicU64::new(start),
        })
    }

    fn lock(&self) -> MutexGuard<'_, LaneState> {
        self.st
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The chain head kept in the spool from an earlier run, if any.
    pub(crate) fn spool_head(&self) -> Result<Option<crate::ChainHead>> {
        match &self.lock().spool {
            Some(s) => s.last_head(),
            None => Ok(None),
        }
    }

    /// Whether the spool holds every sequence number from `from` to `to`.
    pub(crate) fn spool_covers(&self, from: u64, to: u64) -> bool {
        self.lock()
            .spool
            .as_ref()
            .is_some_and(|s| s.covers(from, to))
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

    fn refresh(&self, st: &LaneState) {
        let spooled = match &st.spool {
            Some(s) if !st.holding => s
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
        self.lock().refusing
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
    fn drop_events(&self, st: &mut LaneState, shared: &dyn LaneObserver, n: usize, why: &str) {
        st.dropped += n as u64;
        if !st.dropping {
            st.dropping = true;
            eprintln!(
                "audit: backend `{}` (required = false): {why}; events it cannot keep are dropped and counted (statistics `dropped`)",
                self.name
            );
        }
        shared.update_stats(self.index, &mut |s| s.dropped += n as u64);
    }

    /// Moves the inbox into the spool, then `batch` (if any). Under the lane lock.
    fn spool_tail(st: &mut LaneState, batch: Option<&Batch>) -> Result<Put> {
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
        let n = batch.len();
        let over = st.inbox_events + n > self.cfg.memory_limit;
        // A backlog already in the spool does not keep new batches out of memory: the
        // worker delivers the spool first, and whenever the writer spools again it moves the
        // inbox into the spool first, so order holds. (Sending everything to the spool until
        // it is empty would let one slow call push a backend onto the slower spool path for
        // good.)
        let spooling = st.fatal.is_some() || st.failing.is_some() || st.stalled || over;
        let outcome = if st.spool.is_some() && spooling {
            match Self::spool_tail(&mut st, Some(batch)) {
                Ok(Put::Stored) => {
                    st.dropping = false;
                    Ok(())
                }
                Ok(Put::Full) => Err((
                    "its spool is full",
                    Arc::new(Error::backend(format!(
                        "the spool of backend `{}` is full (spool_max_bytes = {}); raise spool_max_bytes or bring the backend back",
                        self.name,
                        self.cfg.spool.as_ref().map_or(0, |s| s.1)
                    ))),
                    self.cfg.on_full == OnFull::Fail,
                )),
                Err(e) => Err(("its spool cannot be written", Arc::new(e), true)),
            }
        } else if let Some(fatal) = st.fatal.clone() {
            Err(("it failed fatally and has no spool", fatal, true))
        } else if over {
            Err((
                "it is behind and has no spool",
                Arc::new(Error::backend(format!(
                    "backend `{}` is behind by {} events and has no spool",
                    self.name, st.inbox_events
                ))),
                st.failing.is_some(),
            ))
        } else {
            st.inbox.push_back(batch.clone());
            st.inbox_events += n;
            st.dropping = false;
            Ok(())
        };
        let result = match outcome {
            Ok(()) => Offer::Taken,
            Err((why, _, _)) if !self.cfg.required => {
                self.drop_events(&mut st, shared, n, why);
                Offer::Taken
            }
            Err((_, e, refuse)) => {
                if refuse {
                    st.refusing = true;
                }
                Offer::Later(refuse.then_some(e))
            }
        };
        self.refresh(&st);
        self.cv.notify_one();
        drop(st);
        self.update_stats(shared);
        result
    }

    fn update_stats(&self, shared: &dyn LaneObserver) {
        let st = self.lock();
        let (events, bytes) = st
            .spool
            .as_ref()
            .map_or((0, 0), |s| (s.events(), s.bytes()));
        let queued = st.inbox_events as u64;
        let state = if st.fatal.is_some() {
            "fatal"
        } else if st.failing.is_some() {
            "retrying"
        } else if st.stalled {
            "stalled"
        } else {
            "ok"
        };
        drop(st);
        shared.update_stats(self.index, &mut |s| {
            s.spooled_events = events;
            s.spooled_bytes = bytes;
            s.queued = queued;
            s.state = state.to_owned();
        });
    }

    /// Starts the worker thread.
    pub(crate) fn spawn(
        self: &Arc<Self>,
        backend: Box<dyn StorageBackend>,
        shared: Arc<dyn LaneObserver>,
        stored: u64,
        integrity: Integrity,
    ) -> Result<(JoinHandle<()>, std::sync::mpsc::Receiver<LaneEnd>)> {
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
        shared.update_stats(self.index, &mut |s| s.delivered_sequence = stored);
        let handle = std::thread::Builder::new()
            .name(format!("audit-lane-{}", self.index))
            .spawn(move || {
                let worker = Worker {
                    lane,
                    backend,
                    shared,
                    integrity,
                    stored,
                    flushed: stored,
                    dirty: false,
                    held: VecDeque::new(),
                    cursor: None,
                    chain: None,
                    backoff: Duration::ZERO,
                    retry_at: None,
                    last_flush: Instant::now(),
                    rng: seed(),
                    closing: false,
                };
                let _ = ended_tx.send(worker.run(&rt));
            })
            .map_err(|e| Error::backend(format!("cannot start a backend worker thread: {e}")))?;
        Ok((handle, ended))
    }
}

fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (t ^ u64::from(std::process::id()).rotate_left(32)) | 1
}

/// Where the worker is in the oldest spool segment.
#[derive(Debug)]
struct Cursor {
    path: PathBuf,
    offset: u64,
}

enum Job {
    Deliver,
    Park,
    Stop,
}

struct Worker {
    lane: Arc<Lane>,
    backend: Box<dyn StorageBackend>,
    shared: Arc<dyn LaneObserver>,
    integrity: Integrity,
    /// Highest sequence number written to the backend (maybe not flushed).
    stored: u64,
    /// Highest sequence number the backend flushed.
    flushed: u64,
    /// Written since the last flush.
    dirty: bool,
    /// Memory batches taken from the inbox and not yet flushed by the backend.
    held: VecDeque<Batch>,
    cursor: Option<Cursor>,
    /// The last delivered spool line's checksum, to check the spool's links.
    chain: Option<(u64, String)>,
    backoff: Duration,
    retry_at: Option<Instant>,
    last_flush: Instant,
    rng: u64,
    /// The close request was seen.
    closing: bool,
}

impl Worker {
    fn jitter(&mut self, d: Duration) -> Duration {
        // xorshift64: the retry times of many trails should not line up.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let half = d / 2;
        half + Duration::from_nanos(self.rng % (half.as_nanos() as u64).max(1))
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

    fn spool_unread(&self, st: &LaneState) -> bool {
        let Some(spool) = st.spool.as_ref() else {
            return false;
        };
        let Some(head) = spool.head() else {
            return false;
        };
        if spool.segment_count() > 1 {
            return true;
        }
        match &self.cursor {
            Some(c) if c.path == head.path => c.offset < head.len,
            _ => true,
        }
    }

    fn next_job(&mut self) -> Job {
        let lane = Arc::clone(&self.lane);
        let mut st = lane.lock();
        loop {
            let now = Instant::now();
            if st.deadline.is_some_and(|d| now >= d) {
                return Job::Stop;
            }
            if st.deadline.is_some() && !self.closing {
                // Closing: one more attempt now, whatever the back-off said.
                self.closing = true;
                self.retry_at = None;
            }
            if st.fatal.is_some() {
                let memory = !self.held.is_empty() || !st.inbox.is_empty();
                let can_park = st.spool.is_some() || !lane.cfg.required;
                if memory && can_park {
                    return Job::Park;
                }
                if st.deadline.is_some() {
                    return Job::Stop;
                }
                let left = st.deadline.map(|d| d.saturating_duration_since(now));
                st = wait(&lane.cv, st, left);
                continue;
            }
            let held_unwritten = self
                .held
                .back()
                .and_then(|b| b.last())
                .is_some_and(|r| r.sequence_number() > self.stored);
            let has_data = held_unwritten || self.spool_unread(&st) || !st.inbox.is_empty();
            let flush_due = self.dirty
                && (lane.cfg.durability == Durability::Sync
                    || st.flush_target > self.flushed
                    || st.deadline.is_some()
                    || now >= self.last_flush + lane.cfg.flush_interval);
            let retry_ok = self.retry_at.is_none_or(|t| now >= t);
            if retry_ok && (has_data || flush_due) {
                return Job::Deliver;
            }
            if st.deadline.is_some() && !has_data && !self.dirty {
                return Job::Stop;
            }
            let mut until = st.deadline;
            if let Some(t) = self.retry_at {
                until = Some(until.map_or(t, |d| d.min(t)));
            }
            if self.dirty {
                let t = self.last_flush + lane.cfg.flush_interval;
                until = Some(until.map_or(t, |d| d.min(t)));
            }
            st = wait(
                &lane.cv,
                st,
                until.map(|t| t.saturating_duration_since(now)),
            );
        }
    }

    /// After a fatal error: memory goes to the spool (or, for a non-required backend
    /// without one, is dropped and counted).
    fn park(&mut self) {
        let lane = Arc::clone(&self.lane);
        let mut st = lane.lock();
        self.spool_memory(&mut st);
        if st.spool.is_none() && !lane.cfg.required {
            let n = events(&self.held) + st.inbox_events;
            self.held.clear();
            st.holding = false;
            st.held_events = 0;
            st.inbox.clear();
            st.inbox_events = 0;
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
            drop(wait(&lane.cv, st, pause));
        }
    }

    /// Puts held memory batches in front of the spool and the inbox behind it; fdatasyncs.
    /// What does not fit stays in memory.
    fn spool_memory(&mut self, st: &mut LaneState) {
        let Some(spool) = st.spool.as_mut() else {
            return;
        };
        let mut result = Ok(Put::Stored);
        let held_last = self
            .held
            .back()
            .and_then(|b| b.last())
            .map_or(0, AuditRecord::sequence_number);
        if !self.held.is_empty() && st.held_spooled_upto >= held_last {
            // Already copied there while the call was taking long.
            self.held.clear();
            st.holding = false;
            st.held_events = 0;
            st.held_spooled_upto = 0;
        } else if !self.held.is_empty() {
            // Only what the backend has not flushed (a part copied earlier is delivered once:
            // the worker skips what the backend already stored).
            let flushed = self.flushed;
            let records: Vec<AuditRecord> = flatten(&self.held)
                .into_iter()
                .filter(|r| r.sequence_number() > flushed)
                .collect();
            result = spool.prepend(&records);
            if matches!(result, Ok(Put::Stored)) {
                self.held.clear();
                st.holding = false;
                st.held_events = 0;
            }
        }
        if matches!(result, Ok(Put::Stored)) {
            result = Lane::spool_tail(st, None);
        }
        if let Some(spool) = st.spool.as_mut()
            && let Err(e) = spool.sync()
        {
            result = Err(e);
        }
        match result {
            Ok(Put::Stored) => {}
            Ok(Put::Full) => eprintln!(
                "audit: backend `{}`: its spool is full; undelivered events stay in memory",
                self.lane.name
            ),
            Err(e) => eprintln!(
                "audit: backend `{}`: cannot spool undelivered events: {e}",
                self.lane.name
            ),
        }
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
                self.lane.lock().stalled = false;
                return result;
            }
            match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
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

    /// Copies the memory batches of a call in progress, and the inbox, to the spool and
    /// fdatasyncs it: they are durable there whatever the call does.
    fn spool_held_copy(&self) {
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
        if !matches!(Lane::spool_tail(&mut st, None), Ok(Put::Stored)) {
            return;
        }
        if let Some(spool) = st.spool.as_mut()
            && spool.sync().is_err()
        {
            return;
        }
        st.holding = false;
        st.held_events = 0;
        st.stalled = true;
        lane.refresh(&st);
        drop(st);
        lane.update_stats(&*self.shared);
        self.shared.publish_durable();
    }

    fn deliver(&mut self, rt: &tokio::runtime::Runtime) {
        let lane = Arc::clone(&self.lane);
        // What to deliver: held memory batches, else the spool, else the inbox.
        let mut from_spool: Option<(u64, u64)> = None; // (segment length seen, new offset)
        let batches: Vec<Batch> = {
            let mut st = lane.lock();
            let held_unwritten = self
                .held
                .back()
                .and_then(|b| b.last())
                .is_some_and(|r| r.sequence_number() > self.stored);
            let spool_head = if self.spool_unread(&st) {
                st.spool.as_ref().and_then(Spool::head)
            } else {
                None
            };
            if held_unwritten {
                self.held.iter().cloned().collect()
            } else if let Some(head) = spool_head {
                let (path, len) = (head.path.clone(), head.len);
                let offset = match &self.cursor {
                    Some(c) if c.path == path => c.offset,
                    _ => 0,
                };
                drop(st);
                match self.read_spool(&path, offset, len) {
                    Ok((batch, end)) => {
                        from_spool = Some((len, end));
                        self.cursor = Some(Cursor { path, offset });
                        vec![batch]
                    }
                    Err(e) => {
                        self.failed(e, true);
                        return;
                    }
                }
            } else {
                let taken = std::mem::take(&mut st.inbox);
                st.inbox_events = 0;
                let batches: Vec<Batch> = taken.into_iter().collect();
                self.held.extend(batches.iter().cloned());
                st.holding = !self.held.is_empty();
                st.held_events = events(&self.held);
                batches
            }
        };
        for batch in &batches {
            let from = batch.partition_point(|r| r.sequence_number() <= self.stored);
            if from == batch.len() {
                continue;
            }
            let part = batch.skip(from);
            let result = self.call(rt, self.backend.write_batch(&part));
            self.shared
                .record_call(lane.index, result.as_ref().err(), part.len() as u64);
            match result {
                Ok(()) => {
                    self.stored = part[part.len() - 1].sequence_number();
                    self.dirty = true;
                }
                Err(e) => return self.failed(e, false),
            }
        }
        let segment_done = from_spool.is_some_and(|(len, end)| end >= len);
        if let (Some(c), Some((_, end))) = (self.cursor.as_mut(), from_spool) {
            c.offset = end;
        }
        let now = Instant::now();
        let sync_due = {
            let st = lane.lock();
            lane.cfg.durability == Durability::Sync
                || st.flush_target > self.flushed
                || st.deadline.is_some()
                || segment_done
                || now >= self.last_flush + lane.cfg.flush_interval
                // What is written but not flushed stays in memory: keep that bounded too.
                || st.held_events >= lane.cfg.memory_limit
        };
        if !(segment_done || self.dirty && sync_due) {
            return;
        }
        if self.dirty {
            let result = self.call(rt, self.backend.flush());
            self.shared
                .record_call(lane.index, result.as_ref().err(), 0);
            if let Err(e) = result {
                return self.failed(e, false);
            }
            self.dirty = false;
            self.flushed = self.stored;
            self.last_flush = now;
        }
        let mut st = lane.lock();
        st.acked = st.acked.max(self.flushed);
        self.held.clear();
        st.held_spooled_upto = 0;
        st.holding = false;
        st.held_events = 0;
        if segment_done && let Some((len, _)) = from_spool {
            let popped = st.spool.as_mut().map(|s| s.pop_head(len));
            match popped {
                Some(Ok(true)) => self.cursor = None,
                Some(Ok(false)) | None => {}
                Some(Err(e)) => eprintln!("audit: backend `{}`: {e}", lane.name),
            }
        }
        let recovered = st.failing.take().is_some();
        let refusing = std::mem::take(&mut st.refusing);
        lane.refresh(&st);
        drop(st);
        self.backoff = Duration::ZERO;
        self.retry_at = None;
        if recovered || refusing {
            self.shared.clear_error_of(&lane.name);
        }
        lane.update_stats(&*self.shared);
        let flushed = self.flushed;
        self.shared
            .update_stats(lane.index, &mut |s| s.delivered_sequence = flushed);
        self.shared.publish_durable();
    }

    /// Reads up to `SPOOL_CHUNK` bytes of whole lines from a segment and rebuilds them,
    /// checking every checksum and link. Returns the records and the offset after them.
    fn read_spool(
        &mut self,
        path: &std::path::Path,
        offset: u64,
        len: u64,
    ) -> Result<(Batch, u64)> {
        let end = len.min(offset + SPOOL_CHUNK);
        let mut bytes = read_segment(path, offset, end)?;
        if end < len {
            let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            bytes.truncate(whole);
            if whole == 0 {
                // One line longer than a chunk: read up to the segment's end.
                bytes = read_segment(path, offset, len)?;
                let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                bytes.truncate(whole);
            }
        }
        let new_end = offset + bytes.len() as u64;
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            Error::Integrity(format!("spool segment {}: not UTF-8: {e}", path.display()))
        })?;
        let mut records = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let bad = |why: String| {
                Error::Integrity(format!(
                    "spool segment {} (line {} of this read): {why}; nothing from it is delivered. Move the segment out of the spool directory and restart (its events are also in the file backend, if one is configured)",
                    path.display(),
                    i + 1
                ))
            };
            let record = AuditRecord::from_stored(line, &self.integrity).map_err(bad)?;
            if let Some((seq, checksum)) = &self.chain
                && record.sequence_number() == seq + 1
                && record.previous_hash() != Some(checksum.as_str())
            {
                return Err(bad(format!(
                    "previous_hash does not link to sequence {seq} (a line was removed or altered)"
                )));
            }
            self.chain = Some((record.sequence_number(), record.checksum().to_owned()));
            records.push(record);
        }
        Ok((Batch::new(records), new_end))
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
        self.cursor = None;
        self.chain = None;
        let mut st = lane.lock();
        if fatal {
            if st.fatal.is_none() {
                let what = if st.spool.is_some() {
                    "its events are kept in its spool"
                } else if lane.cfg.required {
                    "it has no spool, so new events are refused (required = true)"
                } else {
                    "its events are dropped (required = false, no spool)"
                };
                eprintln!(
                    "audit: backend `{}` failed fatally and is not called again until restart: {e}; {what}",
                    lane.name
                );
            }
            st.fatal = Some(Arc::clone(&e));
            self.shared.update_stats(lane.index, &mut |s| s.fatal += 1);
        } else {
            st.failing = Some(Arc::clone(&e));
            self.backoff = if self.backoff.is_zero() {
                lane.cfg.retry_initial
            } else {
                (self.backoff * 2).min(lane.cfg.retry_max)
            };
            let delay = self.jitter(self.backoff);
            self.retry_at = Some(Instant::now() + delay);
            self.shared
                .update_stats(lane.index, &mut |s| s.retried += 1);
        }
        self.spool_memory(&mut st);
        let refuse = lane.cfg.required && st.spool.is_none();
        if refuse {
            st.refusing = true;
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
        let mut st = lane.lock();
        if st.fatal.is_none() {
            drop(st);
            if self.dirty {
                match self.call(rt, self.backend.flush()) {
                    Ok(()) => {
                        self.flushed = self.stored;
                        self.dirty = false;
                        self.held.clear();
                        let flushed = self.flushed;
                        self.shared
                            .update_stats(lane.index, &mut |s| s.delivered_sequence = flushed);
                    }
                    Err(e) => end.error = Some(Arc::new(e)),
                }
            }
            st = lane.lock();
            st.acked = st.acked.max(self.flushed);
        }
        st.holding = !self.held.is_empty();
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
            eprintln!(
                "audit: backend `{}`: {} undelivered event(s) stay in its spool {} and are delivered at the next start",
                lane.name,
                spooled,
                s.dir().display()
            );
        }
        if end.error.is_none() {
            end.error = st.fatal.clone().or_else(|| st.failing.clone());
        }
        lane.refresh(&st);
        drop(st);
        lane.update_stats(&*self.shared);
        // Release the spool (and its lock) for the next start.
        lane.lock().spool = None;
        if let Err(e) = self.call(rt, self.backend.close()) {
            eprintln!("audit: closing backend `{}` failed: {e}", lane.name);
            end.error.get_or_insert(Arc::new(e));
        }
        end
    }
}

fn wait<'a>(
    cv: &Condvar,
    st: MutexGuard<'a, LaneState>,
    timeout: Option<Duration>,
) -> MutexGuard<'a, LaneState> {
    match timeout {
        Some(t) => {
            cv.wait_timeout(st, t)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0
        }
        None => cv
            .wait(st)
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    }
}

/// Fatal: a plugin's `Fatal` or `Config` error, or a panic.
pub(crate) fn is_fatal(e: &Error) -> bool {
    match e {
        Error::PluginCall { kind, .. } => !matches!(kind, audit_plugin_api::ErrorKind::Retryable),
        Error::Fatal { .. } => true,
        _ => false,
    }
}

/// How the trail treats one in-process or plugin backend; see
/// [`AuditTrailBuilder::backend_with`](crate::AuditTrailBuilder::backend_with).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackendOptions {
    /// `true` (default): when the trail can no longer keep events for this backend (its
    /// spool is full, or it failed and has no spool), `log_event` returns an error.
    /// `false`: the backend only ever degrades itself; what it cannot keep is dropped and
    /// counted in its statistics.
    pub required: bool,
    /// Bound on the backend's durable spool in bytes; 0 disables the spool.
    pub spool_max_bytes: u64,
    /// The spool directory; default `STORAGE_PATH/.spool/NAME`.
    pub spool_dir: Option<PathBuf>,
    /// First retry delay after a retryable failure; doubles (with jitter) up to `retry_max`.
    pub retry_initial: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
}

impl Default for BackendOptions {
    fn default() -> Self {
        Self {
            required: true,
            spool_max_bytes: crate::spool::DEFAULT_SPOOL_MAX_BYTES,
            spool_dir: None,
            retry_initial: DEFAULT_RETRY_INITIAL,
            retry_max: DEFAULT_RETRY_MAX,
        }
    }
}

impl BackendOptions {
    /// Sets `required`.
    #[must_use]
    pub fn required(self, required: bool) -> Self {
        Self { required, ..self }
    }
    /// Sets `spool_max_bytes` (0: no spool).
    #[must_use]
    pub fn spool_max_bytes(self, spool_max_bytes: u64) -> Self {
        Self {
            spool_max_bytes,
            ..self
        }
    }
    /// Sets the spool directory.
    #[must_use]
    pub fn spool_dir(self, dir: impl Into<PathBuf>) -> Self {
        Self {
            spool_dir: Some(dir.into()),
            ..self
        }
    }
    /// Sets the retry delays.
    #[must_use]
    pub fn retry(self, initial: Duration, max: Duration) -> Self {
        Self {
            retry_initial: initial,
            retry_max: max.max(initial),
            ..self
        }
    }
}

/// The spool directory name for a backend name: letters, digits, `.`, `_` and `-` kept,
/// anything else replaced by `_`.
pub(crate) fn spool_dir_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("_{s}")
    } else {
        s
    }
}
