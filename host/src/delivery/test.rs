//! Lane unit tests: a fake backend that fails on demand, a fake trail, and a clock the test
//! moves by hand, so that nothing depends on how fast the machine is.

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;
use std::time::Duration;

use super::clock::LaneClock;
use super::lane::{Lane, LaneEnd, LaneObserver, Offer};
use super::options::LaneConfig;
use super::spool::Spool;
use super::spool::test::records;
use crate::backend::Batch;
use crate::settings::{Durability, OnFull};
use audit_format::error::Error;
use audit_format::record::{AuditRecord, Integrity};

mod catch_up;
mod fakes;

use fakes::{FakeBackend, FakeTrail, HUNG, MS, TestClock, eventually};

/// A required backend without a spool, in sync mode (each delivery is flushed).
fn config() -> LaneConfig {
    LaneConfig {
        required: true,
        spool: None,
        allow_insecure_permissions: false,
        retry_initial: 100 * MS,
        retry_max: 1_000 * MS,
        memory_limit: 1_000,
        on_full: OnFull::Block,
        durability: Durability::Sync,
        // Sync mode with a spool copies a call's batches to the spool after this long (on the
        // real clock): not in these tests unless they say so.
        flush_interval: Duration::from_secs(3_600),
        backfill: crate::Backfill::All,
        on_refuse: super::OnRefuse::DeadLetter,
        // Set by `Harness::start` to its spool directory.
        dead_letter_dir: PathBuf::new(),
    }
}

/// One lane with its worker running on a test clock.
struct Harness {
    lane: Arc<Lane<TestClock>>,
    clock: TestClock,
    backend: Arc<FakeBackend>,
    trail: Arc<FakeTrail>,
    records: Vec<AuditRecord>,
    worker: Option<(JoinHandle<()>, Receiver<LaneEnd>)>,
    spool_dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Harness {
    /// Starts a lane; `spool`: its bound in bytes, if it has one.
    fn start(cfg: LaneConfig, spool: Option<u64>, prepare: impl FnOnce(&FakeBackend)) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let spool_dir = tmp.path().join("spool");
        let cfg = LaneConfig {
            spool: spool.map(|max| (spool_dir.clone(), max)),
            dead_letter_dir: spool_dir.clone(),
            ..cfg
        };
        let clock = TestClock::new();
        let lane = Lane::with_clock("fake".into(), 0, cfg, 0, clock.clone()).expect("lane");
        let lane = Arc::new(lane);
        let backend = Arc::new(FakeBackend::new(clock.clone()));
        prepare(&backend);
        let trail = Arc::new(FakeTrail::default());
        let worker = lane
            .spawn(
                Box::new(Arc::clone(&backend)),
                Arc::clone(&trail) as Arc<dyn LaneObserver>,
                0,
                Integrity::Sha256,
            )
            .expect("spawn");
        Self {
            lane,
            clock,
            backend,
            trail,
            records: records(1, 100),
            worker: Some(worker),
            spool_dir,
            _tmp: tmp,
        }
    }

    /// Offers the records with these sequence numbers, as the trail's writer does.
    fn offer(&self, seqs: RangeInclusive<u64>) -> Offer {
        let (from, to) = (*seqs.start() as usize - 1, *seqs.end() as usize);
        let batch = Batch::new(self.records[from..to].to_vec());
        let _paused = self.backend.pause();
        self.lane.offer(&batch, &*self.trail)
    }

    fn wait_stored(&self, upto: u64) {
        eventually(&format!("the backend stored {upto}"), || {
            self.backend.stored().last() == Some(&upto)
        });
    }

    /// Closes the lane with a deadline `timeout` ahead and, after `then` ran (say, to move
    /// the clock), collects how it ended.
    fn close(&mut self, timeout: Duration, then: impl FnOnce(&Self)) -> LaneEnd {
        self.lane.close(self.clock.now() + timeout);
        then(self);
        let (handle, ended) = self.worker.take().expect("running");
        let end = ended.recv_timeout(HUNG).expect("the worker ends");
        handle.join().expect("the worker thread");
        end
    }

    fn spooled(&self) -> u64 {
        self.trail.stats().spooled_events
    }

    /// Waits until the backend flushed up to `seq` and the lane acknowledged it.
    fn wait_acknowledged(&self, seq: u64) {
        eventually(&format!("{seq} acknowledged"), || {
            self.trail.stats().delivered_sequence == seq
        });
    }
}

impl Drop for Harness {
    /// Stops a worker the test left running.
    fn drop(&mut self) {
        if let Some((handle, ended)) = self.worker.take() {
            self.backend.hang.store(false, Ordering::SeqCst);
            self.lane.close(self.clock.now());
            if ended.recv_timeout(HUNG).is_ok() {
                let _ = handle.join();
            }
        }
    }
}

fn all(r: RangeInclusive<u64>) -> Vec<u64> {
    r.collect()
}

#[test]
fn offered_batches_are_delivered_in_order_flushed_and_acknowledged() {
    let mut h = Harness::start(config(), None, |_| {});
    for seqs in [1..=3, 4..=4, 5..=9] {
        assert!(matches!(h.offer(seqs), Offer::Taken));
    }
    h.wait_acknowledged(9);
    assert_eq!(h.backend.stored(), all(1..=9));
    assert_eq!(h.lane.memory_events(), 0);
    let stats = h.trail.stats();
    assert_eq!((stats.delivered, stats.delivered_sequence), (9, 9));
    assert_eq!((stats.state.as_str(), stats.failed_calls), ("ok", 0));

    let end = h.close(Duration::from_secs(5), |_| {});
    assert!(
        matches!(
            end,
            LaneEnd {
                lost: 0,
                error: None
            }
        ),
        "{end:?}"
    );
    assert_eq!(h.backend.closes.load(Ordering::SeqCst), 1);
    assert_eq!(h.trail.states(), ["ok"]);
}

#[test]
fn health_and_counters_are_asked_for_after_a_flush_at_most_every_5_s_and_before_close() {
    let mut h = Harness::start(config(), None, |_| {});
    let probes = |h: &Harness| h.backend.probes.load(Ordering::SeqCst);
    h.offer(1..=3);
    h.wait_acknowledged(3);
    eventually("the first flush is followed by a probe", || probes(&h) == 1);
    let stats = h.trail.stats();
    assert_eq!(stats.health.as_deref(), Some("ok: probe 1, 3 stored"));
    assert_eq!(stats.counters.get("stored"), Some(&3));
    // The delivery of 5 comes after whatever followed the flush of 4: no probe there.
    for seq in 4..=5 {
        h.offer(seq..=seq);
        h.wait_acknowledged(seq);
    }
    assert_eq!(probes(&h), 1, "not on every flush");
    h.clock.advance(super::worker::PROBE_INTERVAL);
    for seq in 6..=7 {
        h.offer(seq..=seq);
        h.wait_acknowledged(seq);
    }
    assert_eq!(probes(&h), 2, "once the interval has passed");
    h.close(Duration::from_secs(5), |_| {});
    assert_eq!(probes(&h), 3, "once more before close");
    let stats = h.trail.stats();
    assert_eq!(stats.health.as_deref(), Some("ok: probe 3, 7 stored"));
    assert_eq!(stats.counters.get("stored"), Some(&7));
}

#[test]
fn written_events_are_flushed_when_the_interval_passes_or_a_flush_is_asked_for() {
    let cfg = LaneConfig {
        durability: Durability::Batched,
        flush_interval: 200 * MS,
        ..config()
    };
    let mut h = Harness::start(cfg, None, |_| {});
    h.offer(1..=2);
    h.wait_stored(2);
    assert_eq!(h.clock.next_wake(), 200 * MS, "the flush interval");
    assert_eq!(
        (h.backend.flushes.load(Ordering::SeqCst), h.lane.durable()),
        (0, 0)
    );
    h.clock.advance(200 * MS);
    h.wait_acknowledged(2);
    assert_eq!(h.lane.durable(), 2);
    assert_eq!(h.backend.flushes.load(Ordering::SeqCst), 1);

    h.offer(3..=3);
    h.wait_stored(3);
    h.lane.request_flush(3);
    h.wait_acknowledged(3);
    assert_eq!(
        h.clock.elapsed(),
        200 * MS,
        "without waiting for the interval"
    );
    let end = h.close(Duration::from_secs(5), |_| {});
    assert!(end.error.is_none() && end.lost == 0, "{end:?}");
}

#[test]
fn a_retryable_failure_is_retried_after_a_jittered_back_off_then_delivered() {
    let h = Harness::start(config(), None, |b| {
        b.failing_writes.store(2, Ordering::SeqCst);
    });
    h.offer(1..=3);
    eventually("the first attempt", || h.backend.writes() == 1);
    // Equal jitter: each delay is between half the step and the step.
    let first = h.clock.advance_to_wake();
    assert!(first >= 50 * MS && first < 100 * MS, "{first:?}");
    assert_eq!(h.trail.stats().state, "retrying");
    assert!(h.lane.refusing(), "no spool: the trail refuses meanwhile");
    let refused = h.trail.error().expect("the trail refuses");
    assert!(refused.contains("the store is busy"), "{refused}");
    assert!(h.backend.stored().is_empty());

    eventually("the second attempt", || h.backend.writes() == 2);
    let second = h.clock.advance_to_wake();
    assert!(
        second >= 100 * MS && second < 200 * MS,
        "doubled: {second:?}"
    );
    h.wait_acknowledged(3);
    assert_eq!(h.lane.durable(), 3);

    let times = h.backend.write_times();
    assert_eq!(times, [Duration::ZERO, first, first + second]);
    assert_eq!(h.backend.stored(), all(1..=3), "delivered once, in order");
    let stats = h.trail.stats();
    assert_eq!((stats.retried, stats.failed_calls, stats.fatal), (2, 2, 0));
    assert_eq!(h.trail.states(), ["ok", "retrying", "ok"]);
    assert!(h.trail.error().is_none() && !h.lane.refusing(), "recovered");
}

#[test]
fn a_fatal_failure_spools_everything_and_the_backend_gets_nothing_more() {
    let mut h = Harness::start(config(), Some(1 << 20), |b| {
        b.fatal.store(true, Ordering::SeqCst);
    });
    h.offer(1..=3);
    eventually("fatal", || h.trail.stats().state == "fatal");
    eventually("its memory is spooled", || h.spooled() == 3);
    assert!(
        matches!(h.offer(4..=6), Offer::Taken),
        "a spool takes what follows"
    );
    h.lane.sync_spool(&*h.trail).expect("fdatasync");
    assert_eq!(
        (h.spooled(), h.lane.durable()),
        (6, 6),
        "durable in the spool"
    );
    assert!(!h.lane.refusing() && h.trail.error().is_none());

    let end = h.close(Duration::from_secs(5), |_| {});
    assert_eq!(end.lost, 0);
    assert!(
        matches!(&end.error, Some(e) if matches!(**e, Error::Fatal { .. })),
        "{end:?}"
    );
    assert_eq!(h.backend.writes(), 1, "not called again");
    assert_eq!(h.backend.flushes.load(Ordering::SeqCst), 0);
    assert_eq!(h.trail.stats().fatal, 1);
    assert_eq!(h.trail.states(), ["ok", "fatal"]);
    let spool = Spool::open(h.spool_dir.clone(), 1 << 20, false).expect("reopen");
    assert!(
        spool.events() == 6 && spool.covers(1, 6),
        "kept for the next start"
    );
}

/// A lane whose backend keeps failing, with a spool that holds one batch.
fn busy_with_a_full_spool(cfg: LaneConfig) -> Harness {
    let h = Harness::start(cfg, Some(1), |b| {
        b.failing_writes.store(usize::MAX, Ordering::SeqCst);
    });
    h.offer(1..=3);
    eventually("its memory is spooled", || h.spooled() == 3);
    h
}

#[test]
fn a_full_spool_refuses_for_a_required_backend_with_on_full_fail() {
    let cfg = LaneConfig {
        on_full: OnFull::Fail,
        ..config()
    };
    let mut h = busy_with_a_full_spool(cfg);
    let offer = h.offer(4..=6);
    let Offer::Later(Some(e)) = offer else {
        panic!("refused with an error: {offer:?}");
    };
    assert_eq!(
        audit_format::error::chain(&e),
        "the spool of backend `fake` is full (spool_max_bytes = 1); raise spool_max_bytes or bring the backend back"
    );
    assert!(h.lane.refusing());
    assert_eq!((h.spooled(), h.trail.stats().dropped), (3, 0));

    // Back up: the spool is delivered, and the refusal ends.
    h.backend.failing_writes.store(0, Ordering::SeqCst);
    h.clock.advance_to_wake();
    h.wait_acknowledged(3);
    assert!(!h.lane.refusing(), "delivered: the refusal ends");
    assert!(matches!(h.offer(4..=6), Offer::Taken));
    h.wait_stored(6);
    let end = h.close(Duration::from_secs(5), |_| {});
    assert!(end.error.is_none() && end.lost == 0, "{end:?}");
    assert_eq!(h.backend.stored(), all(1..=6));
}

#[test]
fn a_full_spool_with_on_full_block_holds_the_batch_back_without_refusing() {
    let h = busy_with_a_full_spool(config());
    assert!(matches!(h.offer(4..=6), Offer::Later(None)));
    assert!(!h.lane.refusing());
}

#[test]
fn a_full_spool_drops_and_counts_for_a_backend_that_is_not_required() {
    let cfg = LaneConfig {
        required: false,
        on_full: OnFull::Fail,
        ..config()
    };
    let mut h = busy_with_a_full_spool(cfg);
    assert!(matches!(h.offer(4..=6), Offer::Taken), "taken, and dropped");
    assert!(matches!(h.offer(7..=8), Offer::Taken));
    assert_eq!(h.trail.stats().dropped, 5);
    assert!(
        !h.lane.refusing() && h.trail.error().is_none(),
        "it only degrades itself"
    );

    h.backend.failing_writes.store(0, Ordering::SeqCst);
    h.clock.advance_to_wake();
    h.wait_stored(3);
    let end = h.close(Duration::from_secs(5), |_| {});
    assert!(end.error.is_none() && end.lost == 0, "{end:?}");
    assert_eq!(
        h.backend.stored(),
        all(1..=3),
        "what was dropped is not delivered"
    );
}

#[test]
fn close_delivers_what_is_in_memory() {
    let mut h = Harness::start(config(), None, |b| b.hang.store(true, Ordering::SeqCst));
    h.offer(1..=2);
    eventually("a call is under way", || h.backend.writes() == 1);
    h.offer(3..=5);
    let end = h.close(Duration::from_secs(5), |h| {
        h.backend.hang.store(false, Ordering::SeqCst);
    });
    assert!(
        matches!(
            end,
            LaneEnd {
                lost: 0,
                error: None
            }
        ),
        "{end:?}"
    );
    assert_eq!(h.backend.stored(), all(1..=5));
    assert_eq!(h.lane.durable(), 5);
}

#[test]
fn close_reports_exactly_what_a_failing_backend_without_a_spool_lost() {
    let mut h = Harness::start(config(), None, |b| {
        b.failing_writes.store(usize::MAX, Ordering::SeqCst);
    });
    h.offer(1..=3);
    eventually("the first attempt", || h.backend.writes() == 1);
    h.offer(4..=5);
    let end = h.close(Duration::from_secs(1), |h| {
        eventually("one more attempt when closing", || h.backend.writes() == 2);
        h.clock.advance(Duration::from_secs(1));
    });
    assert_eq!(end.lost, 5, "held and queued");
    let error = end.error.expect("the failure");
    assert_eq!(
        audit_format::error::chain(&error),
        audit_format::error::chain(&Error::backend("the store is busy"))
    );
    assert!(h.backend.stored().is_empty());
    assert_eq!(h.backend.closes.load(Ordering::SeqCst), 1);
}

#[test]
fn a_sync_call_that_outlasts_the_flush_interval_stalls_the_lane_until_it_returns() {
    let cfg = LaneConfig {
        flush_interval: MS,
        ..config()
    };
    let mut h = Harness::start(cfg, Some(1 << 20), |b| b.hang.store(true, Ordering::SeqCst));
    h.offer(1..=3);
    eventually("stalled", || h.trail.stats().state == "stalled");
    assert_eq!(h.lane.durable(), 3, "copied to the spool and fdatasync'd");
    assert!(matches!(h.offer(4..=5), Offer::Taken));
    assert_eq!(
        (h.spooled(), h.lane.memory_events()),
        (5, 0),
        "spooled meanwhile"
    );

    h.backend.hang.store(false, Ordering::SeqCst);
    h.wait_stored(5);
    h.wait_acknowledged(5);
    eventually("the spool is delivered", || h.spooled() == 0);
    assert_eq!(h.trail.stats().state, "ok");
    assert_eq!(
        h.backend.stored(),
        all(1..=5),
        "the copy is not delivered twice"
    );
    let end = h.close(Duration::from_secs(5), |_| {});
    assert!(end.error.is_none() && end.lost == 0, "{end:?}");
    assert_eq!(h.trail.states(), ["ok", "stalled", "ok"]);
}

#[test]
fn a_refused_record_is_dead_lettered_once_though_its_batch_is_delivered_again() {
    let h = Harness::start(config(), None, |b| {
        b.refuse(&[2]);
        b.failing_flushes.store(1, Ordering::SeqCst);
    });
    assert!(matches!(h.offer(1..=3), Offer::Taken));
    // The flush fails: after the back-off the batch is delivered again and 2 refused again.
    h.clock.advance_to_wake();
    h.wait_acknowledged(3);
    assert_eq!(h.backend.stored(), [1, 3, 1, 3]);
    let stats = h.trail.stats();
    assert_eq!(
        (stats.refused, stats.delivered, stats.failed_calls),
        (1, 4, 1)
    );
    assert_eq!(
        h.lane.durable(),
        3,
        "the watermark goes past the refused record"
    );
    let dead = std::fs::read_to_string(h.spool_dir.join("dead-letter.jsonl")).expect("written");
    assert_eq!(dead.lines().count(), 1, "{dead}");
    assert!(
        dead.contains("\"reason\":\"too big\",") && dead.contains("\"sequence_number\":2}"),
        "{dead}"
    );
}
