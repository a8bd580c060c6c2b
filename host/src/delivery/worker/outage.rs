//! One stderr line when a lane's backend starts failing (retryable) and one when it has
//! recovered and caught up, instead of silence or a line per retry (docs/operations.md).

use std::time::Instant;

use super::Worker;
use crate::delivery::clock::LaneClock;
use crate::delivery::lane::LaneState;
use audit_format::error::Error;

/// A retryable outage in progress, until the backlog it left is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Outage {
    since: Instant,
    /// What the backend had flushed when it started failing.
    flushed_before: u64,
    /// Failed calls since.
    failures: u64,
    /// When it flushed again (it is catching up); `None` while it fails.
    back_at: Option<Instant>,
}

/// The outage state machine, without the printing: `failed` and `progress` return the line
/// to print, if any.
#[derive(Debug, Default)]
pub(super) struct OutageLog(Option<Outage>);

impl OutageLog {
    /// A retryable failure at `now`, the backend having flushed up to `flushed`. The first
    /// after a success starts an outage: `true` (say so). A failure while catching up
    /// continues the outage.
    pub(super) fn failed(&mut self, now: Instant, flushed: u64) -> bool {
        if let Some(o) = &mut self.0 {
            o.failures += 1;
            o.back_at = None;
            return false;
        }
        self.0 = Some(Outage {
            since: now,
            flushed_before: flushed,
            failures: 1,
            back_at: None,
        });
        true
    }

    /// After a flush at `now` (flushed up to `flushed`): `recovered` when it ended a retrying
    /// state; `drained` when nothing is left in the spool to deliver. Once both have
    /// happened, the outage ends: (seconds down, failed calls, events caught up).
    pub(super) fn progress(
        &mut self,
        now: Instant,
        recovered: bool,
        drained: bool,
        flushed: u64,
    ) -> Option<(f64, u64, u64)> {
        let o = self.0.as_mut()?;
        if recovered {
            o.back_at = Some(now);
        }
        let back_at = o.back_at.filter(|_| drained)?;
        let o = self.0.take()?;
        Some((
            back_at.saturating_duration_since(o.since).as_secs_f64(),
            o.failures,
            flushed.saturating_sub(o.flushed_before),
        ))
    }

    /// A fatal failure ends any outage (its own message says what happens next).
    pub(super) fn fatal(&mut self) {
        self.0 = None;
    }
}

impl<C: LaneClock> Worker<C> {
    /// A retryable failure: the first after a success says so, once.
    pub(super) fn outage_failure(&mut self, st: &LaneState, e: &Error) {
        if !self.outage.failed(self.lane.clock.now(), self.flushed) {
            return;
        }
        let kept = if st.spool.is_some() {
            "its events are kept in its spool"
        } else if self.lane.cfg.required {
            "its events are kept in memory, and new events are refused while it fails (required = true, no spool)"
        } else {
            "its events are kept in memory (required = false, no spool: dropped and counted once memory is full)"
        };
        tracing::warn!(
            backend = %self.lane.name,
            error = %audit_format::error::DisplayChain(&e),
            spooled = st.spool.is_some(),
            "backend `{}` is failing: {e}; {kept}; retrying until it recovers",
            self.lane.name, e = audit_format::error::chain(&e)
        );
    }

    /// After a flush: once the backend recovered and its spool is delivered, says how long
    /// it was down and how many events it caught up.
    pub(super) fn outage_progress(&mut self, recovered: bool, drained: bool) {
        let now = self.lane.clock.now();
        if let Some((down, failures, caught_up)) =
            self.outage.progress(now, recovered, drained, self.flushed)
        {
            tracing::info!(
                backend = %self.lane.name,
                down_seconds = down,
                failures,
                caught_up,
                "backend `{}` recovered after {down:.1}s down and {failures} failed call(s); it caught up {caught_up} event(s)",
                self.lane.name,
            );
        }
    }
}

#[cfg(test)]
mod test {
    use std::time::Duration;

    use super::*;

    #[test]
    fn one_outage_from_the_first_failure_until_the_backlog_is_delivered() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut log = OutageLog::default();
        assert_eq!(log.progress(at(0), false, true, 10), None, "no outage");
        assert!(log.failed(at(1), 10), "the first failure is told");
        assert!(!log.failed(at(2), 10), "a retry is not");
        assert_eq!(
            log.progress(at(3), true, false, 40),
            None,
            "back, catching up"
        );
        assert!(
            !log.failed(at(4), 40),
            "failing again while catching up: the same outage"
        );
        assert_eq!(log.progress(at(5), false, true, 40), None, "not back yet");
        assert_eq!(
            log.progress(at(6), true, true, 100),
            Some((5.0, 3, 90)),
            "down from the first failure until it flushed again; 90 events since"
        );
        assert_eq!(log.progress(at(7), true, true, 100), None, "told once");

        assert!(log.failed(at(8), 100), "a new outage");
        log.fatal();
        assert_eq!(
            log.progress(at(9), true, true, 100),
            None,
            "ended by the fatal failure"
        );
    }
}
