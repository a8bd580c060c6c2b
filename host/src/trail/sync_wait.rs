//! Sync mode: brief polling instead of parking a thread, on both sides of a commit. A lone
//! caller polls for its event to become durable; the idle writer polls for the next event.
//! Polling pauses while it does not pay (a busy machine, a slow disk).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The longest a lone sync caller polls for its commit instead of parking; beyond it (a slow
/// disk), the cost of one wake-up hardly counts.
pub(super) const CALLER_SPIN_MAX: Duration = Duration::from_millis(1);

/// A gap this long between two polls means the poller lost its CPU: it stops polling.
pub(super) const SPIN_GAP: Duration = Duration::from_micros(200);

/// How long nobody polls after a poller lost its CPU, or after polls in a row ran out of
/// budget (the first time; see [`SPIN_PAUSE_DOUBLINGS`]). On a busy machine a polling thread
/// takes CPU the writer needs to finish the commit.
pub(super) const SPIN_PAUSE: Duration = Duration::from_millis(10);

/// Each pause that follows another without a successful poll in between is twice as long,
/// up to `SPIN_PAUSE << SPIN_PAUSE_DOUBLINGS` (1.28 s).
pub(super) const SPIN_PAUSE_DOUBLINGS: u32 = 7;

/// Polls in a row that ran out of budget before polling pauses. Only polls that ran out while
/// the writer was not inside its `fdatasync` count: a slow disk is not a busy machine.
const SPIN_FAILURES: u32 = 2;

/// The longest the writer, in sync mode, polls for the next event before it sleeps.
pub(super) const WRITER_SPIN_MAX: Duration = Duration::from_micros(50);

/// When polling is paused (see [`SPIN_PAUSE`]).
#[derive(Debug)]
pub(super) struct SpinPause {
    epoch: Instant,
    /// Nanoseconds after `epoch` until which nobody polls.
    until: AtomicU64,
    /// Caller polls in a row that ran out of budget.
    failures: AtomicU32,
    /// Pauses since the last successful poll.
    pauses: AtomicU32,
}

impl SpinPause {
    pub(super) fn new() -> Self {
        Self {
            epoch: Instant::now(),
            until: AtomicU64::new(0),
            failures: AtomicU32::new(0),
            pauses: AtomicU32::new(0),
        }
    }

    /// A poll saw what it waited for: the busy spell, if any, is over.
    pub(super) fn succeeded(&self) {
        self.failures.store(0, Ordering::Relaxed);
        self.pauses.store(0, Ordering::Relaxed);
    }

    /// A caller's poll ran out of budget while the writer was not syncing.
    pub(super) fn timed_out(&self, now: Instant) {
        if self.failures.fetch_add(1, Ordering::Relaxed) + 1 >= SPIN_FAILURES {
            self.failures.store(0, Ordering::Relaxed);
            self.start(now);
        }
    }

    fn nanos(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    /// Nobody polls now.
    pub(super) fn active(&self) -> bool {
        self.nanos(Instant::now()) < self.until.load(Ordering::Relaxed)
    }

    /// Pauses polling from `now`, twice as long as the last pause if no poll succeeded since.
    pub(super) fn start(&self, now: Instant) {
        let n = self.pauses.fetch_add(1, Ordering::Relaxed);
        let pause = SPIN_PAUSE * (1 << n.min(SPIN_PAUSE_DOUBLINGS));
        self.until
            .fetch_max(self.nanos(now + pause), Ordering::Relaxed);
    }
}

/// How long a lone sync caller polls for its commit: about one and a half `fdatasync`s
/// (`sync_nanos`, the writer's moving average; before the first one, the maximum), none when
/// that is over [`CALLER_SPIN_MAX`].
pub(super) fn caller_spin(sync_nanos: u64) -> Duration {
    if sync_nanos == 0 {
        return CALLER_SPIN_MAX;
    }
    let d = Duration::from_nanos(sync_nanos.saturating_mul(3) / 2);
    if d > CALLER_SPIN_MAX {
        Duration::ZERO
    } else {
        d
    }
}

/// A caller polls until `durable` reaches `seq`, for up to `budget`, yielding to the runtime's
/// other tasks in between. `false`: it stopped first (out of budget, or it lost its CPU, when
/// polling on would only take CPU from the writer) and should park.
pub(super) async fn caller_poll(
    pause: &SpinPause,
    durable: &AtomicU64,
    writer_syncing: &AtomicBool,
    seq: u64,
    budget: Duration,
) -> bool {
    let mut last = Instant::now();
    let until = last + budget;
    loop {
        if durable.load(Ordering::Acquire) >= seq {
            pause.succeeded();
            return true;
        }
        tokio::task::yield_now().await;
        let now = Instant::now();
        if now - last > SPIN_GAP {
            pause.start(now);
            return false;
        }
        if now >= until {
            if !writer_syncing.load(Ordering::Relaxed) {
                pause.timed_out(now);
            }
            return false;
        }
        last = now;
    }
}

/// The idle writer busy-polls for up to `*budget` until `accepted` moves past `seen`. The
/// budget halves each time nothing came, and is whole again once something did.
pub(super) fn writer_poll(
    pause: &SpinPause,
    accepted: &AtomicU64,
    seen: u64,
    budget: &mut Duration,
) {
    let mut last = Instant::now();
    let until = last + *budget;
    let mut came = false;
    loop {
        if accepted.load(Ordering::Acquire) != seen {
            came = true;
            break;
        }
        std::hint::spin_loop();
        let now = Instant::now();
        if now - last > SPIN_GAP {
            pause.start(now);
            break;
        }
        if now >= until {
            break;
        }
        last = now;
    }
    *budget = if came {
        WRITER_SPIN_MAX
    } else {
        (*budget / 2).max(WRITER_SPIN_MAX / 16)
    };
}

/// Counts a sync caller for as long as it waits (also when its future is dropped).
pub(super) struct WaiterGuard<'a> {
    count: &'a AtomicUsize,
    /// No other sync caller was waiting when it started.
    pub(super) alone: bool,
}

impl<'a> WaiterGuard<'a> {
    pub(super) fn new(count: &'a AtomicUsize) -> Self {
        let alone = count.fetch_add(1, Ordering::AcqRel) == 0;
        Self { count, alone }
    }
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_sync_caller_polls_for_about_one_and_a_half_fdatasyncs() {
        // Before the first fdatasync: the most.
        assert_eq!(caller_spin(0), CALLER_SPIN_MAX);
        assert_eq!(caller_spin(200_000), Duration::from_micros(300));
        // A slow disk: one wake-up hardly counts against it, so the caller parks at once.
        assert_eq!(caller_spin(2_000_000), Duration::ZERO);
    }

    #[test]
    fn polling_pauses_after_polls_in_a_row_run_out_or_a_poller_loses_its_cpu() {
        let pause = SpinPause::new();
        let now = Instant::now();
        pause.timed_out(now);
        // One slow fdatasync is not a busy machine...
        assert!(!pause.active());
        pause.succeeded();
        pause.timed_out(now);
        assert!(!pause.active());
        // ...two in a row are.
        pause.timed_out(now);
        assert!(pause.active());
        // A lost CPU pauses at once, for SPIN_PAUSE.
        let pause = SpinPause::new();
        pause.start(Instant::now());
        assert!(pause.active());
        assert!(pause.until.load(Ordering::Relaxed) >= pause.nanos(now + SPIN_PAUSE));
    }

    #[test]
    fn pauses_in_a_row_double_until_a_poll_succeeds() {
        let pause = SpinPause::new();
        let now = Instant::now() + Duration::from_secs(10);
        let until = |p: &SpinPause| p.until.load(Ordering::Relaxed);
        pause.start(now);
        assert_eq!(until(&pause), pause.nanos(now + SPIN_PAUSE));
        pause.start(now);
        assert_eq!(until(&pause), pause.nanos(now + SPIN_PAUSE * 2));
        for _ in 0..20 {
            pause.start(now);
        }
        let longest = SPIN_PAUSE * (1 << SPIN_PAUSE_DOUBLINGS);
        assert_eq!(until(&pause), pause.nanos(now + longest));
        // A busy spell is over once a poll succeeds: the next pause is short again.
        pause.succeeded();
        let later = now + Duration::from_secs(5);
        pause.start(later);
        assert_eq!(until(&pause), pause.nanos(later + SPIN_PAUSE));
    }

    #[test]
    fn only_a_sync_caller_without_company_is_alone() {
        let count = AtomicUsize::new(0);
        let first = WaiterGuard::new(&count);
        let second = WaiterGuard::new(&count);
        assert!(first.alone);
        assert!(!second.alone);
        drop(first);
        drop(second);
        // A dropped (cancelled) wait counts itself out.
        assert_eq!(count.load(Ordering::Acquire), 0);
        assert!(WaiterGuard::new(&count).alone);
    }
}
