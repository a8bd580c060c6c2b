//! `AuditTrail`: accepts events, chains them in one critical section, and hands them in
//! batches to a writer thread that writes every backend.
//!
//! | module | job |
//! |---|---|
//! | this one | the [`AuditTrail`] handle: log, flush, close, statistics, verify, query |
//! | `builder` | `AuditTrailBuilder`, building from a `TrailConfig`, the constructors |
//! | `start` | starts a built trail: shared state, writer thread, the chain resumed |
//! | `pending` | `PendingEvent`: `log_event(..)` and its setters |
//! | `shared` | the state callers, the writer and the lanes share |
//! | `sync_wait` | sync mode: polling instead of parking, on both sides of a commit |
//! | `writer` | the writer thread, in named phases |

#[cfg(feature = "tracing-layer")]
mod blocking_accept;
pub(crate) mod builder;
pub(crate) mod pending;
mod shared;
mod start;
mod sync_wait;
mod writer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use chrono::{DateTime, Datelike, SubsecRound, Utc};

use crate::settings::{AlertHook, Clock, Durability, OnFull};
use crate::statistics::{PolicySummary, Receipt, Statistics};
use audit_format::error::{Error, Result};
use audit_format::event::{AuditEvent, AuditEventType, AuditLogLevel};
use audit_format::policy::CompliancePolicy;
use audit_format::query::{EventQuery, query_dir_counting};
use audit_format::record::{Integrity, LineEncoder, MAX_SEQUENCE};
use audit_format::verify::{VerifyReport, verify_dir};

use self::shared::Shared;
use self::sync_wait::{WaiterGuard, caller_poll, caller_spin};

thread_local! {
    /// The line encoder, reused: encoding happens outside the lock, once per event.
    static SCRATCH: std::cell::RefCell<LineEncoder> = std::cell::RefCell::new(LineEncoder::default());
}

/// A tamper-evident, append-only audit trail.
///
/// Events are sequenced, timestamped, hash-chained and serialized to one canonical JSON line
/// in one critical section, then written in batches by a worker thread to every backend
/// (by default one [`FileStorageBackend`](crate::FileStorageBackend) in `audit_logs/`).
///
/// ```no_run
/// # async fn demo() -> audit_host::Result<()> {
/// use audit_host::{AuditTrail, AuditEventType};
/// let trail = AuditTrail::new(None, None, None)?;
/// let id = trail.log_event(AuditEventType::ConfigChanged, "raised rate limit")
///     .user_id("alice")
///     .meta("limit", 500)
///     .await?;
/// trail.close().await?;
/// # let _ = id; Ok(()) }
/// ```
pub struct AuditTrail {
    shared: Arc<Shared>,
    worker: Mutex<Option<JoinHandle<()>>>,
    policy: CompliancePolicy,
    durability: Durability,
    queue_capacity: usize,
    on_full: OnFull,
    integrity: Integrity,
    clock: Option<Clock>,
    alert_hook: Option<AlertHook>,
    file_dirs: Vec<PathBuf>,
    backend_names: Vec<String>,
    hostname: String,
    pid: i64,
}

impl fmt::Debug for AuditTrail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditTrail")
            .field("backends", &self.backend_names)
            .field("durability", &self.durability)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl AuditTrail {
    fn now(&self) -> DateTime<Utc> {
        match &self.clock {
            Some(c) => c(),
            None => Utc::now(),
        }
    }

    /// Records a fully built event and returns its id once it is accepted (in `sync`
    /// durability: once it is fdatasync'd).
    ///
    /// # Errors
    /// [`Error::Closed`] after [`close`](Self::close); [`Error::QueueFull`] with
    /// `on_full = fail`; [`Error::Storage`] while a backend is failing (in batched mode a
    /// failure after an earlier call returned is reported here); in sync mode also when
    /// this event could not be made durable (it stays queued and is retried);
    /// [`Error::InvalidEvent`] for a `timestamp` outside the years 0000-9999.
    pub async fn log(&self, event: AuditEvent) -> Result<String> {
        self.log_receipt(event).await.map(|r| r.event_id)
    }

    /// Like [`log`](Self::log), also returning the sequence number the event got (0 when
    /// the policy is disabled and nothing was recorded).
    ///
    /// # Errors
    /// As [`log`](Self::log).
    pub async fn log_receipt(&self, event: AuditEvent) -> Result<Receipt> {
        self.log_ref(&event).await
    }

    /// Like [`log_receipt`](Self::log_receipt), borrowing the event: for callers that log
    /// the same event value repeatedly or keep it afterwards, no clone is needed. The event
    /// is stored with the trail's `compliance_level`, hostname and pid defaults, as
    /// [`log`](Self::log) does.
    ///
    /// # Errors
    /// As [`log`](Self::log).
    pub async fn log_ref(&self, event: &AuditEvent) -> Result<Receipt> {
        if !self.policy.enabled {
            return Ok(Receipt {
                sequence_number: 0,
                event_id: String::new(),
            });
        }
        check_timestamp(event)?;
        let event_id = self.event_id_for(event)?;
        let (seq, ts) = self.accept(event, &event_id).await?;
        self.alert(event, &event_id, seq, ts);
        if self.durability == Durability::Sync {
            self.wait_durable(seq)
                .await
                .map_err(|e| Error::NotDurable {
                    sequence: seq,
                    event_id: event_id.clone(),
                    source: Arc::new(e),
                })?;
        }
        Ok(Receipt {
            sequence_number: seq,
            event_id,
        })
    }

    /// The event's own id, or a generated one.
    fn event_id_for(&self, event: &AuditEvent) -> Result<String> {
        match &event.event_id {
            Some(id) => Ok(id.clone()),
            None => self
                .shared
                .ids
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .next_id(),
        }
    }

    /// Encodes the event and accepts it, waiting for room in the queue (`on_full = block`).
    /// Returns its sequence number and timestamp.
    async fn accept(&self, event: &AuditEvent, event_id: &str) -> Result<(u64, DateTime<Utc>)> {
        let error_kind = event.event_type == AuditEventType::ErrorOccurred
            || matches!(
                event.log_level,
                AuditLogLevel::Error | AuditLogLevel::Critical
            );
        let security_kind = event.event_type.is_security();
        loop {
            // Registered before trying, so a slot freed meanwhile is not missed.
            let notified = self.shared.space.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            let accepted = SCRATCH.with(|cell| {
                let mut prepared = cell.borrow_mut();
                prepared.encode(event, event_id, &self.hostname, self.pid, self.policy.level);
                self.try_accept(&prepared, event, error_kind, security_kind)
            })?;
            match accepted {
                Some(done) => return Ok(done),
                None if self.on_full == OnFull::Fail => {
                    return Err(Error::QueueFull {
                        capacity: self.queue_capacity,
                    });
                }
                None => notified.await,
            }
        }
    }

    /// The critical section: sequence, timestamp, previous hash, checksum, enqueue.
    /// `Ok(None)`: the queue is full.
    fn try_accept(
        &self,
        prepared: &LineEncoder,
        event: &AuditEvent,
        error_kind: bool,
        security_kind: bool,
    ) -> Result<Option<(u64, DateTime<Utc>)>> {
        let mut st = self.shared.lock();
        if st.closing {
            return Err(Error::Closed);
        }
        if let Some(refused) = self.shared.refusal(&st) {
            return Err(refused);
        }
        if st.queued >= self.queue_capacity {
            return Ok(None);
        }
        let seq = st.next_seq;
        // Checked: sequence numbers never wrap (`next_seq` stays at most `u64::MAX`).
        if seq > MAX_SEQUENCE {
            return Err(Error::SequenceExhausted { last: seq - 1 });
        }
        // The line stores microseconds: so does the record (and what the alert hook sees).
        let ts = event
            .timestamp
            .unwrap_or_else(|| self.now())
            .trunc_subsecs(6);
        let (record, checksum) =
            prepared.assemble(event, seq, st.prev.as_ref(), ts, &self.integrity);
        st.next_seq += 1;
        self.shared.accepted.store(seq, Ordering::Release);
        st.prev = Some(checksum);
        st.pending.push(record);
        st.queued += 1;
        st.counters.total += 1;
        st.counters.errors += u64::from(error_kind);
        st.counters.security += u64::from(security_kind);
        if self.durability == Durability::Sync {
            st.flush_target = seq;
        }
        // A lingering writer is woken once a batch's worth waits (or by its short timer): one
        // futex wake per batch, not per event.
        if st.worker_idle && (!st.lingering || st.pending.len() >= st.linger_target) {
            st.worker_idle = false;
            self.shared.wake.notify_one();
        }
        Ok(Some((seq, ts)))
    }

    /// Hands the event, as stored, to the alert hook when the policy's alert rules match it.
    fn alert(&self, event: &AuditEvent, event_id: &str, seq: u64, ts: DateTime<Utc>) {
        let Some(hook) = &self.alert_hook else {
            return;
        };
        let reasons = self.policy.alert_reasons(event);
        if reasons.is_empty() {
            return;
        }
        self.shared.lock().counters.alerts += 1;
        let mut event = event.clone();
        event.compliance_level = self.policy.level;
        event.event_id = Some(event_id.to_owned());
        event.hostname.get_or_insert_with(|| self.hostname.clone());
        event.process_id.get_or_insert(self.pid);
        event.sequence_number = Some(seq);
        event.timestamp = Some(ts);
        hook(&event, &reasons);
    }

    /// Every event up to this sequence number is written and fdatasync'd by every backend.
    pub fn durable_sequence(&self) -> u64 {
        self.shared.progress.borrow().durable
    }

    /// Waits until `seq` is durable, or reports why it is not.
    async fn wait_durable(&self, seq: u64) -> Result<()> {
        let waiters = WaiterGuard::new(&self.shared.sync_waiters);
        // A lone sync caller (the usual case in a request handler) polls for its commit for
        // about one and a half `fdatasync`s instead of parking its thread: a wake-up costs a
        // good part of a fast disk's `fdatasync`. Concurrent callers share a group commit and park.
        let budget = caller_spin(self.shared.sync_nanos.load(Ordering::Relaxed));
        if waiters.alone
            && !budget.is_zero()
            && !self.shared.spin_pause.active()
            && caller_poll(
                &self.shared.spin_pause,
                &self.shared.durable_now,
                &self.shared.syncing,
                seq,
                budget,
            )
            .await
        {
            return Ok(());
        }
        self.park_until_durable(seq).await
    }

    /// Parks until `seq` is durable, a backend fails, or the writer stops.
    async fn park_until_durable(&self, seq: u64) -> Result<()> {
        let mut rx = self.shared.progress.subscribe();
        let p = rx
            .wait_for(|p| p.durable >= seq || p.error.is_some() || p.stopped)
            .await
            .map_err(|_| Error::Closed)?
            .clone();
        if p.durable >= seq {
            return Ok(());
        }
        match p.error {
            Some((backend, source)) => {
                let queued = self.shared.lock().queued + self.shared.lane_memory();
                Err(Error::Storage {
                    backend,
                    queued,
                    source,
                })
            }
            None => Err(Error::Closed),
        }
    }

    /// Returns once every event accepted before the call is written and fdatasync'd by
    /// every backend.
    ///
    /// # Errors
    /// [`Error::Storage`] when a backend is failing (the events stay queued and are
    /// retried); [`Error::Closed`] if the writer stopped.
    pub async fn flush(&self) -> Result<()> {
        let target = {
            let mut st = self.shared.lock();
            let target = st.next_seq - 1;
            if let Some(refused) = self.shared.refusal(&st) {
                return Err(refused);
            }
            st.flush_target = st.flush_target.max(target);
            if st.worker_idle {
                st.worker_idle = false;
                self.shared.wake.notify_one();
            }
            target
        };
        self.wait_durable(target).await
    }

    /// Drains the queue, flushes and closes every backend. Afterwards `log_event` returns
    /// [`Error::Closed`]. Calling it again returns the first call's result.
    ///
    /// A backend that fails meanwhile is retried for up to the shutdown timeout (default 5 s).
    ///
    /// # Errors
    /// [`Error::Shutdown`] when a backend still failed when the timeout ran out: it says how
    /// many accepted events were not written to it (they are not stored there) and how many
    /// were not confirmed durable.
    pub async fn close(&self) -> Result<()> {
        self.ask_writer_to_stop();
        self.shared.space.notify_waiters();
        let mut rx = self.shared.progress.subscribe();
        let p = rx
            .wait_for(|p| p.stopped)
            .await
            .map(|p| p.clone())
            .unwrap_or_default();
        self.join_worker();
        let last = self.shared.lock().next_seq - 1;
        match p.error {
            Some((backend, source)) => Err(Error::Shutdown {
                backend,
                unwritten: p.abandoned,
                not_durable: last - p.durable.min(last),
                source,
            }),
            None => {
                tracing::debug!(last_sequence = last, "trail closed after sequence {last}");
                Ok(())
            }
        }
    }

    /// Refuses new events and wakes the writer to drain the queue and stop.
    fn ask_writer_to_stop(&self) {
        let mut st = self.shared.lock();
        st.closing = true;
        st.closing_since.get_or_insert_with(Instant::now);
        self.shared.wake.notify_one();
    }

    fn join_worker(&self) {
        let handle = self
            .worker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(h) = handle
            && h.join().is_err()
        {
            tracing::error!("the writer thread panicked; this is a bug in audit-host");
        }
    }

    /// Blocking stop used by `Drop` and failed construction.
    fn stop_worker(&self) {
        self.ask_writer_to_stop();
        self.join_worker();
    }

    /// Counters, queue depth and the current failure, if any.
    pub fn statistics(&self) -> Statistics {
        let st = self.shared.lock();
        let p = self.shared.progress.borrow();
        Statistics {
            total_events: st.counters.total,
            error_events: st.counters.errors,
            security_events: st.counters.security,
            alerts: st.counters.alerts,
            queue_size: st.queued,
            last_sequence: st.next_seq - 1,
            durable_sequence: p.durable,
            last_error: st
                .error
                .as_ref()
                .map(|(b, e)| format!("{b}: {}", audit_format::error::chain(e))),
            backends: self.backend_names.clone(),
            per_backend: self.shared.stats().clone(),
            policy: PolicySummary {
                compliance_level: self.policy.level,
                enabled: self.policy.enabled,
                retention_days: self.policy.retention_days,
                encryption_enabled: false,
            },
        }
    }

    /// The events matching `query`, newest first, read from the first file backend's
    /// directory after a flush. The files are read on tokio's blocking pool (inline outside
    /// a tokio runtime), so a current-thread runtime keeps running its other tasks. An
    /// `audit_*.jsonl` entry that is not a regular file (a symlink, a FIFO, a directory) is
    /// not searched, with a warning on stderr.
    ///
    /// # Errors
    /// [`Error::Backend`] when no backend keeps a readable directory; [`Error::Io`] for
    /// read failures; flush errors.
    pub async fn get_events(&self, query: &EventQuery) -> Result<Vec<AuditEvent>> {
        self.flush().await?;
        let dir = self.query_dir()?.to_path_buf();
        let query = query.clone();
        off_runtime(move || {
            let report = query_dir_counting(&dir, &query)?;
            // Not searched, and not silently: `audit verify` fails on them.
            for odd in &report.not_regular {
                tracing::warn!(path = %odd, "get_events: warning: {odd}; not searched");
            }
            report
                .lines
                .iter()
                .map(|line| AuditEvent::from_json(line))
                .collect()
        })
        .await
    }

    /// Verifies the stored chain in the first file backend's directory (after a flush):
    /// contiguous sequence numbers, every checksum, every link. Like
    /// [`get_events`](Self::get_events), it reads on tokio's blocking pool.
    ///
    /// # Errors
    /// [`Error::Integrity`] naming the first bad sequence number and its `file:line`;
    /// [`Error::Io`] for read failures.
    pub async fn verify_chain(&self) -> Result<VerifyReport> {
        self.flush().await?;
        let dir = self.query_dir()?.to_path_buf();
        let integrity = self.integrity.clone();
        off_runtime(move || {
            verify_dir(&dir, &integrity).map_err(|e| match e {
                audit_format::verify::VerifyError::Io(e) => e,
                bad => Error::Integrity(audit_format::error::chain(&bad)),
            })
        })
        .await
    }

    fn query_dir(&self) -> Result<&Path> {
        self.file_dirs.first().map(PathBuf::as_path).ok_or_else(|| {
            Error::backend("no file backend is configured, so there is no audit directory to read")
        })
    }

    /// The policy in force.
    pub fn policy(&self) -> &CompliancePolicy {
        &self.policy
    }

    /// The directories of the file backends, in configuration order.
    pub fn file_dirs(&self) -> &[PathBuf] {
        &self.file_dirs
    }
}

/// Runs `read` (file reads) on tokio's blocking pool when called inside a tokio runtime, so
/// the runtime's threads (the only one, on a current-thread runtime) stay free; inline
/// otherwise (another executor).
async fn off_runtime<T: Send + 'static>(
    read: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => match handle.spawn_blocking(read).await {
            Ok(result) => result,
            // A panic in the read is the caller's to see, as it would be inline.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(Error::backend(
                "the tokio runtime shut down before the audit files were read",
            )),
        },
        Err(_) => read(),
    }
}

/// Refuses a date that has no RFC 3339 form and no `audit_YYYY-MM-DD.jsonl` file name: the
/// event would land in a file that verify, query and recovery never see.
fn check_timestamp(event: &AuditEvent) -> Result<()> {
    if let Some(ts) = event.timestamp
        && !(0..=9999).contains(&ts.year())
    {
        return Err(Error::invalid(
            "timestamp",
            format!("{ts} is outside the years 0000-9999 that RFC 3339 can express"),
        ));
    }
    Ok(())
}

impl Drop for AuditTrail {
    fn drop(&mut self) {
        let running = self.worker.get_mut().map(|w| w.is_some()).unwrap_or(false);
        if !running {
            return;
        }
        let pending = self.shared.lock().queued;
        self.stop_worker();
        let p = self.shared.progress.borrow().clone();
        match p.error {
            Some((backend, e)) if p.abandoned > 0 => tracing::error!(
                backend = %backend,
                error = %audit_format::error::DisplayChain(&e),
                lost = p.abandoned,
                "AuditTrail dropped without close(): {} event(s) could NOT be written ({backend}: {e})",
                p.abandoned, e = audit_format::error::chain(&e)
            ),
            _ => tracing::warn!(
                flushed = pending,
                "AuditTrail dropped without close(): flushed {pending} pending event(s); call close().await before dropping"
            ),
        }
    }
}
