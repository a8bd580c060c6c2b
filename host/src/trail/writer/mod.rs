//! The writer thread: takes accepted events in batches, writes the trail's own (file)
//! backends, hands each batch to every lane, and syncs when due.
//!
//! | module | job |
//! |---|---|
//! | this one | the `Writer`, its start-up (resume every backend, start the lanes) |
//! | `serve` | the loop, as named phases over `Serve`, what it carries between rounds |
//! | `calls` | the calls into the backends: write, hand to the lanes, flush |
//! | `shutdown` | closing the lanes and the backends, and reporting the end |

mod calls;
mod serve;
mod shutdown;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::Utc;

use crate::backend::{ChainHead, StorageBackend};
use crate::catch_panics::catch_panics;
use crate::delivery::{Lane, LaneEnd, LaneObserver};
use crate::settings::Durability;
use audit_format::error::{Error, Result};
use audit_format::record::Integrity;

use super::shared::Shared;

/// The writer thread's state and settings.
pub(in crate::trail) struct Writer {
    pub(in crate::trail) shared: Arc<Shared>,
    /// The built-in file backends: written by the writer thread itself.
    pub(in crate::trail) backends: Vec<Slot>,
    /// Every other backend: handed each batch, delivered by its own worker.
    pub(in crate::trail) lanes: Vec<LaneSlot>,
    pub(in crate::trail) durability: Durability,
    /// The longest time between syncs in batched mode.
    pub(in crate::trail) interval: Duration,
    pub(in crate::trail) shutdown_timeout: Duration,
    pub(in crate::trail) integrity: Integrity,
    pub(in crate::trail) queue_capacity: usize,
}

/// A backend the writer writes itself.
pub(in crate::trail) struct Slot {
    backend: Box<dyn StorageBackend>,
    /// Highest sequence number this backend has stored.
    written: u64,
    /// Its place in the statistics.
    index: usize,
}

impl Slot {
    pub(in crate::trail) fn new(backend: Box<dyn StorageBackend>, index: usize) -> Self {
        Self {
            backend,
            written: 0,
            index,
        }
    }
}

/// A backend with a worker of its own, as the writer sees it.
pub(in crate::trail) struct LaneSlot {
    lane: Arc<Lane>,
    /// Until the worker starts.
    backend: Option<Box<dyn StorageBackend>>,
    /// Highest sequence number handed to the lane.
    handed: u64,
    thread: Option<(JoinHandle<()>, Receiver<LaneEnd>)>,
}

impl LaneSlot {
    pub(in crate::trail) fn new(lane: Arc<Lane>, backend: Box<dyn StorageBackend>) -> Self {
        Self {
            lane,
            backend: Some(backend),
            handed: 0,
            thread: None,
        }
    }
}

/// Runs a backend call to completion on the writer's runtime; a panic inside the backend
/// becomes an error instead of killing the writer thread (which would strand every caller).
fn block_on_caught<T>(
    rt: &tokio::runtime::Runtime,
    fut: impl Future<Output = Result<T>>,
) -> Result<T> {
    rt.block_on(catch_panics(fut))
}

/// Marks the writer stopped however it ends, so `close` and sync callers never wait on a
/// thread that is gone.
struct StopGuard(Arc<Shared>);

impl Drop for StopGuard {
    fn drop(&mut self) {
        self.0.lock().closing = true;
        self.0.space.notify_waiters();
        self.0.progress.send_if_modified(|p| {
            if p.stopped {
                return false;
            }
            p.stopped = true;
            p.abandoned = p.abandoned.max(1);
            if p.error.is_none() {
                p.error = Some((
                    "audit-writer".to_owned(),
                    Arc::new(Error::backend(
                        "the writer thread stopped unexpectedly; this is a bug in audit-host",
                    )),
                ));
            }
            true
        });
    }
}

/// What the writer sends back once the backends are open: the last event stored anywhere.
type HeadSender = Sender<Result<Option<ChainHead>>>;

impl Writer {
    /// Starts the writer thread; it sends the chain head through `head_tx` once the backends
    /// answered, then serves until the trail closes.
    pub(in crate::trail) fn spawn(self, head_tx: HeadSender) -> Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || self.run(head_tx))
            .map_err(|e| Error::backend(format!("cannot start the audit writer thread: {e}")))
    }

    fn run(mut self, head_tx: HeadSender) {
        let _guard = StopGuard(Arc::clone(&self.shared));
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = head_tx.send(Err(Error::backend(format!(
                    "cannot start the writer runtime: {e}"
                ))));
                return;
            }
        };
        let head = rt.block_on(self.resume_all());
        let start = match &head {
            Ok(h) => h.as_ref().map_or(0, |h| h.sequence_number),
            Err(_) => 0,
        };
        for slot in &mut self.backends {
            slot.written = start;
        }
        self.shared.dispatched.store(start, Ordering::Release);
        if head.is_ok() {
            for slot in &mut self.lanes {
                slot.lane.set_start(start);
            }
        }
        let head = head.and_then(|h| self.start_lanes().map(|()| h));
        let failed = head.is_err();
        let _ = head_tx.send(head);
        if failed {
            // Nothing was accepted: close what was opened and stop.
            return self.finish(&rt, 0, start);
        }
        self.serve(&rt, start);
    }

    /// Reads every backend's chain head (and each spool's): the trail continues after the
    /// highest. A lane's backend that cannot answer is tolerated when the writer has a
    /// backend of its own that knows the head; its worker then delivers from its spool.
    async fn resume_all(&mut self) -> Result<Option<ChainHead>> {
        let mut best: Option<ChainHead> = None;
        let mut consider = |h: Option<ChainHead>| {
            if let Some(h) = h
                && best
                    .as_ref()
                    .is_none_or(|b| h.sequence_number > b.sequence_number)
            {
                best = Some(h);
            }
        };
        for slot in &self.backends {
            consider(catch_panics(slot.backend.resume()).await?);
        }
        let has_own = !self.backends.is_empty();
        for slot in &mut self.lanes {
            consider(slot.lane.spool_head()?);
            let Some(backend) = &slot.backend else {
                continue;
            };
            match catch_panics(backend.resume()).await {
                Ok(h) => {
                    slot.handed = h.as_ref().map_or(0, |h| h.sequence_number);
                    consider(h);
                }
                Err(e) if has_own => {
                    eprintln!(
                        "audit: backend `{}` cannot say where its stored chain ends ({e}); starting anyway, it gets its spool and new events when it answers",
                        slot.lane.name
                    );
                    slot.handed = 0;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(best)
    }

    /// Starts every lane's worker. `handed` holds each backend's own head on entry.
    fn start_lanes(&mut self) -> Result<()> {
        for slot in &mut self.lanes {
            let Some(backend) = slot.backend.take() else {
                continue;
            };
            let start = slot.lane.durable();
            let stored = std::mem::replace(&mut slot.handed, start);
            // A backend that stored part of the chain but is behind it, with no spool to catch
            // up from, has a gap: say so rather than let it pass unnoticed.
            if stored > 0 && stored < start && !slot.lane.spool_covers(stored + 1, start) {
                let message = format!(
                    "this backend's store ends at sequence {stored} but the trail is at {start}: sequences {}..={start} are neither in its store nor in its spool and will not reach it (the file backend has them; see docs/operations.md, known limits)",
                    stored + 1
                );
                eprintln!("audit: backend `{}`: {message}", slot.lane.name);
                self.shared.update_stats(slot.lane.index, |s| {
                    s.last_error = Some(message);
                    s.last_error_at =
                        Some(Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
                });
            }
            slot.thread = Some(slot.lane.spawn(
                backend,
                Arc::clone(&self.shared) as Arc<dyn LaneObserver>,
                stored,
                self.integrity.clone(),
            )?);
        }
        Ok(())
    }

    fn set_error(&self, backend: &str, e: Arc<Error>) {
        self.shared.set_error(backend, e);
    }

    /// Clears a failure the writer reported (a lane clears its own).
    fn clear_error(&self) {
        let mut st = self.shared.lock();
        let ours = st.error.as_ref().is_some_and(|(b, _)| {
            !self
                .lanes
                .iter()
                .any(|l| l.lane.name == *b && l.lane.refusing())
        });
        if ours {
            st.error = None;
            drop(st);
            self.shared.progress.send_modify(|p| p.error = None);
        }
    }
}
