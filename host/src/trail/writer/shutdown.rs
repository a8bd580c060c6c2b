//! The writer's end: every lane delivers until the shutdown deadline (then spools what is
//! left), every backend of its own is closed, and the end is reported to the callers.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use crate::delivery::{LaneEnd, LaneObserver};
use audit_format::error::Error;

use super::{LaneSlot, Writer, block_on_caught};

/// How long `close` waits for a lane's worker past the shutdown deadline.
const LANE_GRACE: Duration = Duration::from_secs(1);

/// The first required lane that lost events, and why.
type LaneFailure = Option<(String, Arc<Error>)>;

impl Writer {
    /// Closes every lane and every backend of the writer's own, and reports the end:
    /// `abandoned` events the writer could not write, and the `durable` watermark.
    pub(super) fn finish(mut self, rt: &tokio::runtime::Runtime, abandoned: usize, durable: u64) {
        let deadline = {
            let st = self.shared.lock();
            st.closing_since.unwrap_or_else(Instant::now) + self.shutdown_timeout
        };
        // Own backends first: a file backend's close seal goes to the witnesses (plugins
        // with `seal`), whose instances must still be open. Everything is written and synced.
        self.close_own_backends(rt);
        let (lost, lane_error) = self.close_lanes(deadline);
        self.report_end(abandoned + lost, durable, lane_error);
    }

    /// Asks every lane to stop by `deadline` and waits for each. Returns the events that
    /// required lanes could neither deliver nor spool, and the first such lane's error.
    fn close_lanes(&mut self, deadline: Instant) -> (usize, LaneFailure) {
        for slot in &self.lanes {
            slot.lane.close(deadline);
        }
        let mut lost = 0;
        let mut lane_error: LaneFailure = None;
        for slot in &mut self.lanes {
            let Some(end) = lane_end(slot, deadline) else {
                continue;
            };
            if slot.lane.cfg.required && end.lost > 0 {
                lost += end.lost as usize;
                let e = end.error.unwrap_or_else(|| {
                    Arc::new(Error::backend("events could not be delivered or spooled"))
                });
                lane_error.get_or_insert((slot.lane.name.clone(), e));
            }
        }
        (lost, lane_error)
    }

    fn close_own_backends(&self, rt: &tokio::runtime::Runtime) {
        for slot in &self.backends {
            if let Err(e) = block_on_caught(rt, slot.backend.close()) {
                let name = slot.backend.name().to_owned();
                tracing::error!(backend = %name, error = %audit_format::error::DisplayChain(&e), "closing backend {name} failed: {e}", e = audit_format::error::chain(&e));
                self.set_error(&name, Arc::new(e));
            }
        }
    }

    /// Publishes the last durable watermark and marks the writer stopped: what is still
    /// pending and `lost` counts as abandoned, and is never reported as a success.
    fn report_end(&self, lost: usize, durable: u64, lane_error: LaneFailure) {
        let pending = self.shared.lock().pending.len();
        self.shared.dispatched.fetch_max(durable, Ordering::AcqRel);
        self.shared.publish_durable();
        self.shared.progress.send_modify(|p| {
            p.stopped = true;
            p.abandoned = lost + pending;
            if p.error.is_none() {
                p.error = lane_error;
            }
            if p.error.is_none() && p.abandoned > 0 {
                // Never report success with events unwritten.
                p.error = Some((
                    "audit-writer".to_owned(),
                    Arc::new(Error::backend(
                        "the writer stopped with events still queued; this is a bug in audit-host",
                    )),
                ));
            }
        });
    }
}

/// Waits for a lane's worker to end, up to the deadline and a grace period. A worker stuck
/// in a call that never returns (an in-process backend blocking its thread) cannot be
/// stopped: it is left behind. `None`: the worker never started.
fn lane_end(slot: &mut LaneSlot, deadline: Instant) -> Option<LaneEnd> {
    let (handle, ended) = slot.thread.take()?;
    let wait = deadline.saturating_duration_since(Instant::now()) + LANE_GRACE;
    Some(match ended.recv_timeout(wait) {
        Ok(end) => {
            let _ = handle.join();
            end
        }
        Err(RecvTimeoutError::Timeout) => {
            tracing::error!(
                backend = %slot.lane.name,
                "backend `{}` did not stop by the shutdown deadline (a call into it never returned); its thread is left behind",
                slot.lane.name
            );
            LaneEnd {
                lost: slot.lane.memory_events() as u64,
                error: Some(Arc::new(Error::backend(
                    "a call into the backend did not return before the shutdown deadline",
                ))),
            }
        }
        Err(RecvTimeoutError::Disconnected) => {
            tracing::error!(
                backend = %slot.lane.name,
                "the worker of backend `{}` panicked; this is a bug in audit-host",
                slot.lane.name
            );
            LaneEnd {
                lost: slot.lane.memory_events() as u64,
                ..LaneEnd::default()
            }
        }
    })
}
