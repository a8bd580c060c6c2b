//! Asking a lane's backend for its own status (`health`) and counters (`statistics`) for
//! `BackendStatistics`: after a flush at most every [`PROBE_INTERVAL`], and once before
//! close; never per batch.

use std::time::{Duration, Instant};

use super::Worker;
use crate::delivery::clock::LaneClock;

/// The least time between two probes of one backend.
pub(in crate::delivery) const PROBE_INTERVAL: Duration = Duration::from_secs(5);

impl<C: LaneClock> Worker<C> {
    /// After a successful flush: probes the backend when the last probe is old enough.
    pub(super) fn probe_if_due(&mut self, rt: &tokio::runtime::Runtime, now: Instant) {
        if self.probed_at.is_some_and(|t| now < t + PROBE_INTERVAL) {
            return;
        }
        self.probed_at = Some(now);
        self.probe(rt);
    }

    /// Asks the backend for its status and counters and stores them in its statistics. A
    /// failure to answer shows as `error: ...` in `health`; it is not a failed call (it does
    /// not touch delivery).
    pub(super) fn probe(&self, rt: &tokio::runtime::Runtime) {
        let health = self.call_quietly(rt, self.backend.health());
        let counters = self.call_quietly(rt, self.backend.statistics());
        let (health, counters) = match (health, counters) {
            (Ok(h), Ok(c)) => (h, Some(c)),
            (Err(e), _) | (Ok(_), Err(e)) => (
                Some(format!("error: {e}", e = audit_format::error::chain(&e))),
                None,
            ),
        };
        self.shared.update_stats(self.lane.index, &mut |s| {
            s.health.clone_from(&health);
            if let Some(c) = &counters {
                s.counters = c.iter().cloned().collect();
            }
        });
    }

    /// Runs a probe call: a panic becomes an error; while closing, not past the deadline.
    fn call_quietly<T>(
        &self,
        rt: &tokio::runtime::Runtime,
        fut: impl std::future::Future<Output = audit_format::error::Result<T>>,
    ) -> audit_format::error::Result<T> {
        let deadline = self.lane.lock().deadline;
        rt.block_on(async {
            let fut = crate::catch_panics::catch_panics(fut);
            match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(self.lane.clock.now());
                    tokio::time::timeout(left, fut).await.unwrap_or_else(|_| {
                        Err(audit_format::error::Error::backend(
                            "no answer before the shutdown timeout ran out",
                        ))
                    })
                }
                None => fut.await,
            }
        })
    }
}
