//! One stderr line when a lane's backend starts failing (retryable) and one when it has
//! recovered and caught up, instead of silence or a line per retry (docs/operations.md).

use std::time::Instant;

use super::Worker;
use crate::delivery::clock::LaneClock;
use crate::delivery::lane::LaneState;
use audit_format::error::Error;

/// A retryable outage in progress, until the backlog it left is delivered.
#[derive(Debug, Clone, Copy)]
pub(super) struct Outage {
    since: Instant,
    /// What the backend had flushed when it started failing.
    flushed_before: u64,
    /// Failed calls since.
    failures: u64,
    /// When it flushed again (it is catching up); `None` while it fails.
    back_at: Option<Instant>,
}

impl<C: LaneClock> Worker<C> {
    /// A retryable failure: the first after a success starts an outage and says so, once;
    /// a failure while catching up continues the outage.
    pub(super) fn outage_failure(&mut self, st: &LaneState, e: &Error) {
        if let Some(o) = &mut self.outage {
            o.failures += 1;
            o.back_at = None;
            return;
        }
        self.outage = Some(Outage {
            since: self.lane.clock.now(),
            flushed_before: self.flushed,
            failures: 1,
            back_at: None,
        });
        let kept = if st.spool.is_some() {
            "its events are kept in its spool"
        } else if self.lane.cfg.required {
            "its events are kept in memory, and new events are refused while it fails (required = true, no spool)"
        } else {
            "its events are kept in memory (required = false, no spool: dropped and counted once memory is full)"
        };
        eprintln!(
            "audit: backend `{}` is failing: {e}; {kept}; retrying until it recovers",
            self.lane.name
        );
    }

    /// After a flush: `recovered` when it ended a retrying state; `drained` when nothing is
    /// left in the spool to deliver. Once both have happened, says how long the backend was
    /// down and how many events it caught up. A fatal failure ends an outage without this
    /// line (it has its own).
    pub(super) fn outage_progress(&mut self, recovered: bool, drained: bool) {
        let now = self.lane.clock.now();
        let Some(o) = &mut self.outage else {
            return;
        };
        if recovered {
            o.back_at = Some(now);
        }
        let (Some(back_at), true) = (o.back_at, drained) else {
            return;
        };
        let o = *o;
        self.outage = None;
        eprintln!(
            "audit: backend `{}` recovered after {:.1}s down and {} failed call(s); it caught up {} event(s)",
            self.lane.name,
            back_at.saturating_duration_since(o.since).as_secs_f64(),
            o.failures,
            self.flushed.saturating_sub(o.flushed_before)
        );
    }

    /// A fatal failure ends any outage (its own message says what happens next).
    pub(super) fn outage_fatal(&mut self) {
        self.outage = None;
    }
}
