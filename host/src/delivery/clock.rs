//! Where a lane's worker reads the time and waits: the real clock, or a test's.

use std::sync::{Condvar, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The time source of a lane's waits (retry, flush interval, shutdown deadline). The real
/// one is [`SystemClock`]; unit tests drive a lane with a clock they advance by hand.
pub(crate) trait LaneClock: Send + Sync + std::fmt::Debug + 'static {
    fn now(&self) -> Instant;

    /// Waits on `cv` until notified or until `timeout` (`None`: no limit) has passed on this
    /// clock. May return early; callers re-check what they wait for.
    fn wait<'a, T>(
        &self,
        cv: &Condvar,
        guard: MutexGuard<'a, T>,
        timeout: Option<Duration>,
    ) -> MutexGuard<'a, T>;
}

/// The monotonic clock and the condition variable's own timeout.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SystemClock;

impl LaneClock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn wait<'a, T>(
        &self,
        cv: &Condvar,
        guard: MutexGuard<'a, T>,
        timeout: Option<Duration>,
    ) -> MutexGuard<'a, T> {
        match timeout {
            Some(t) => {
                cv.wait_timeout(guard, t)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => cv.wait(guard).unwrap_or_else(PoisonError::into_inner),
        }
    }
}
