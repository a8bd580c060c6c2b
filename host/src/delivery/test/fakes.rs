//! The fakes the lane tests drive a lane with.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::backend::{Batch, Refusal, StorageBackend};
use crate::delivery::clock::LaneClock;
use crate::delivery::lane::LaneObserver;
use crate::statistics::BackendStatistics;
use audit_format::error::{Error, Result};
use audit_format::record::AuditRecord;

pub(super) const MS: Duration = Duration::from_millis(1);
/// How long a test waits for the worker thread before it calls the test hung.
pub(super) const HUNG: Duration = Duration::from_secs(20);

/// A clock that moves only when the test advances it.
#[derive(Debug, Clone)]
pub(super) struct TestClock(Arc<ClockState>);

#[derive(Debug)]
struct ClockState {
    start: Instant,
    elapsed: Mutex<Duration>,
    /// When the worker's current timed wait ends.
    wake: Mutex<Option<Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl TestClock {
    pub(super) fn new() -> Self {
        Self(Arc::new(ClockState {
            start: Instant::now(),
            elapsed: Mutex::new(Duration::ZERO),
            wake: Mutex::new(None),
        }))
    }

    pub(super) fn elapsed(&self) -> Duration {
        *lock(&self.0.elapsed)
    }

    pub(super) fn advance(&self, d: Duration) {
        *lock(&self.0.elapsed) += d;
    }

    /// Waits until the worker waits for a time, and returns how far ahead that is.
    pub(super) fn next_wake(&self) -> Duration {
        let mut wake = None;
        eventually("the worker waits for a time", || {
            wake = *lock(&self.0.wake);
            wake.is_some()
        });
        wake.map_or(Duration::ZERO, |w| w.saturating_duration_since(self.now()))
    }

    /// Moves the clock to the worker's next wake time.
    pub(super) fn advance_to_wake(&self) -> Duration {
        let d = self.next_wake();
        self.advance(d);
        d
    }
}

impl LaneClock for TestClock {
    fn now(&self) -> Instant {
        self.0.start + self.elapsed()
    }

    fn wait<'a, T>(
        &self,
        cv: &Condvar,
        guard: MutexGuard<'a, T>,
        timeout: Option<Duration>,
    ) -> MutexGuard<'a, T> {
        let Some(t) = timeout else {
            *lock(&self.0.wake) = None;
            return cv.wait(guard).unwrap_or_else(PoisonError::into_inner);
        };
        *lock(&self.0.wake) = Some(self.now() + t);
        // One tick of real time, then back to the caller, which re-checks its state and this
        // clock and waits again. (Waiting here for the test clock instead could miss a
        // notification that comes as a tick ends.)
        let (guard, _) = cv
            .wait_timeout(guard, t.min(MS))
            .unwrap_or_else(PoisonError::into_inner);
        *lock(&self.0.wake) = None;
        guard
    }
}

/// Polls `cond` until it holds; panics after `HUNG`.
pub(super) fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let give_up = Instant::now() + HUNG;
    while !cond() {
        assert!(Instant::now() < give_up, "hung waiting until {what}");
        std::thread::sleep(MS);
    }
}

/// A backend that stores sequence numbers and fails on demand.
#[derive(Debug)]
pub(super) struct FakeBackend {
    clock: TestClock,
    stored: Mutex<Vec<u64>>,
    /// When each write call came, on the test clock.
    write_times: Mutex<Vec<Duration>>,
    pub(super) flushes: AtomicUsize,
    pub(super) closes: AtomicUsize,
    /// Calls of `health` (each probe asks `health` then `statistics`).
    pub(super) probes: AtomicUsize,
    /// The next this many writes fail with a retryable error.
    pub(super) failing_writes: AtomicUsize,
    /// Writes fail fatally.
    pub(super) fatal: AtomicBool,
    /// Writes do not return while set.
    pub(super) hang: AtomicBool,
    /// The next this many flushes fail with a retryable error.
    pub(super) failing_flushes: AtomicUsize,
    /// Sequence numbers `write_batch_refusing` refuses.
    refuse: Mutex<Vec<u64>>,
    /// See [`pause`](Self::pause).
    gate: Mutex<()>,
}

impl FakeBackend {
    pub(super) fn new(clock: TestClock) -> Self {
        Self {
            clock,
            stored: Mutex::new(Vec::new()),
            write_times: Mutex::new(Vec::new()),
            flushes: AtomicUsize::new(0),
            closes: AtomicUsize::new(0),
            probes: AtomicUsize::new(0),
            failing_writes: AtomicUsize::new(0),
            fatal: AtomicBool::new(false),
            hang: AtomicBool::new(false),
            failing_flushes: AtomicUsize::new(0),
            refuse: Mutex::new(Vec::new()),
            gate: Mutex::new(()),
        }
    }

    /// `write_batch_refusing` refuses these sequence numbers ("too big").
    pub(super) fn refuse(&self, seqs: &[u64]) {
        *lock(&self.refuse) = seqs.to_vec();
    }

    pub(super) fn stored(&self) -> Vec<u64> {
        lock(&self.stored).clone()
    }

    /// Holds the backend's writes and flushes back while the guard lives. The tests offer
    /// under it, so that the worker's answer to a batch comes after the statistics the offer
    /// publishes (the two would otherwise race).
    pub(super) fn pause(&self) -> MutexGuard<'_, ()> {
        lock(&self.gate)
    }

    pub(super) fn writes(&self) -> usize {
        lock(&self.write_times).len()
    }

    pub(super) fn write_times(&self) -> Vec<Duration> {
        lock(&self.write_times).clone()
    }
}

#[async_trait::async_trait]
impl StorageBackend for FakeBackend {
    fn name(&self) -> &str {
        "fake"
    }

    async fn write(&self, _record: &AuditRecord) -> Result<()> {
        unreachable!("the lane writes batches")
    }

    async fn write_batch(&self, batch: &Batch) -> Result<()> {
        drop(lock(&self.gate));
        lock(&self.write_times).push(self.clock.elapsed());
        while self.hang.load(Ordering::SeqCst) {
            tokio::time::sleep(MS).await;
        }
        if self.fatal.load(Ordering::SeqCst) {
            return Err(Error::Fatal {
                message: "the store is gone".into(),
            });
        }
        let failing = self.failing_writes.load(Ordering::SeqCst);
        if failing > 0 {
            self.failing_writes.store(failing - 1, Ordering::SeqCst);
            return Err(Error::backend("the store is busy"));
        }
        lock(&self.stored).extend(batch.iter().map(AuditRecord::sequence_number));
        Ok(())
    }

    async fn write_batch_refusing(&self, batch: &Batch) -> Result<Vec<Refusal>> {
        let refuse = lock(&self.refuse).clone();
        let (refused, kept): (Vec<AuditRecord>, Vec<AuditRecord>) = batch
            .iter()
            .cloned()
            .partition(|r| refuse.contains(&r.sequence_number()));
        self.write_batch(&Batch::new(kept)).await?;
        Ok(refused
            .iter()
            .map(|r| Refusal {
                sequence_number: r.sequence_number(),
                reason: "too big".into(),
            })
            .collect())
    }

    async fn flush(&self) -> Result<()> {
        drop(lock(&self.gate));
        self.flushes.fetch_add(1, Ordering::SeqCst);
        let failing = self.failing_flushes.load(Ordering::SeqCst);
        if failing > 0 {
            self.failing_flushes.store(failing - 1, Ordering::SeqCst);
            return Err(Error::backend("the store cannot sync"));
        }
        Ok(())
    }

    async fn close(&self) -> Result<()> {
        self.closes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn health(&self) -> Result<Option<String>> {
        let n = self.probes.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(Some(format!(
            "ok: probe {n}, {} stored",
            lock(&self.stored).len()
        )))
    }

    async fn statistics(&self) -> Result<Vec<(String, u64)>> {
        Ok(vec![("stored".to_owned(), lock(&self.stored).len() as u64)])
    }
}

/// The trail as a lane sees it: statistics, the error that makes it refuse events, and the
/// states the lane went through.
#[derive(Debug, Default)]
pub(super) struct FakeTrail {
    stats: Mutex<BackendStatistics>,
    error: Mutex<Option<String>>,
    states: Mutex<Vec<String>>,
}

impl FakeTrail {
    pub(super) fn stats(&self) -> BackendStatistics {
        lock(&self.stats).clone()
    }

    pub(super) fn error(&self) -> Option<String> {
        lock(&self.error).clone()
    }

    pub(super) fn states(&self) -> Vec<String> {
        lock(&self.states).clone()
    }
}

impl LaneObserver for FakeTrail {
    fn update_stats(&self, backend: usize, f: &mut dyn FnMut(&mut BackendStatistics)) {
        assert_eq!(backend, 0);
        let mut stats = lock(&self.stats);
        f(&mut stats);
        let mut states = lock(&self.states);
        let state = stats.state.as_str();
        if states.last().map(String::as_str) != Some(state) {
            states.push(state.to_owned());
        }
    }

    fn record_call(&self, _backend: usize, error: Option<&Error>, stored: u64) {
        let mut stats = lock(&self.stats);
        match error {
            Some(_) => stats.failed_calls += 1,
            None => stats.delivered += stored,
        }
    }

    fn set_error(&self, _backend: &str, e: Arc<Error>) {
        *lock(&self.error) = Some(audit_format::error::chain(&e));
    }

    fn clear_error_of(&self, _backend: &str) {
        *lock(&self.error) = None;
    }

    fn publish_durable(&self) {}
}
