//! A lane's catch-up from the file backend: it goes before new events, and after a failed
//! call it is read again from what the backend flushed, still before the held batches.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::fakes::{FakeBackend, FakeTrail, HUNG, MS, TestClock, eventually};
use super::{all, config};
use crate::backend::Batch;
use crate::delivery::catch_up::{Decision, decide};
use crate::delivery::clock::LaneClock;
use crate::delivery::spool::test::records;
use crate::delivery::{Lane, LaneConfig, LaneObserver};
use crate::settings::Durability;
use audit_format::record::{AuditRecord, Integrity};

/// A file backend's directory holding `records`, one file.
fn file_dir(dir: &Path, records: &[AuditRecord]) {
    let text: String = records.iter().map(|r| format!("{}\n", r.line())).collect();
    std::fs::write(dir.join("audit_2026-01-01.jsonl"), text).expect("write");
}

#[test]
fn the_catch_up_goes_first_and_is_read_again_after_a_failed_call() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let recs = records(1, 40);
    file_dir(tmp.path(), &recs[..30]);
    // Batched, flushed only when asked: a failure rewinds to the last flush.
    let cfg = LaneConfig {
        durability: Durability::Batched,
        flush_interval: Duration::from_secs(3_600),
        ..config()
    };
    let clock = TestClock::new();
    let lane = Arc::new(Lane::with_clock("fake".into(), 0, cfg, 30, clock.clone()).expect("lane"));
    // The store ends at 10; the trail's head is 30.
    let Decision::CatchUp(cu) = decide(&*lane, Some(10), 30, Some(tmp.path()), &Integrity::Sha256)
    else {
        panic!("a catch-up from 11 to 30");
    };
    assert_eq!((cu.from, cu.to), (11, 30));
    let backend = Arc::new(FakeBackend::new(clock.clone()));
    let trail = Arc::new(FakeTrail::default());
    let (handle, ended) = lane
        .spawn_catching_up(
            Box::new(Arc::clone(&backend)),
            Arc::clone(&trail) as Arc<dyn LaneObserver>,
            10,
            Integrity::Sha256,
            Some(cu),
        )
        .expect("spawn");
    eventually("the catch-up is written", || {
        backend.stored() == all(11..=30)
    });
    assert_eq!(
        lane.durable(),
        30,
        "the caught-up lines were durable already"
    );

    // A new batch whose write fails: the worker falls back to what the backend flushed (10).
    backend.failing_writes.store(1, Ordering::SeqCst);
    {
        let _paused = backend.pause();
        lane.offer(&Batch::new(recs[30..35].to_vec()), &*trail);
    }
    eventually("the write failed", || backend.writes() == 2);
    clock.advance_to_wake();
    eventually("delivered again", || backend.stored().len() == 45);
    let mut want = all(11..=30);
    want.extend(11..=35);
    assert_eq!(
        backend.stored(),
        want,
        "the catch-up again, then the new batch"
    );
    lane.request_flush(35);
    eventually("acknowledged", || trail.stats().delivered_sequence == 35);
    assert_eq!(
        (trail.stats().caught_up, trail.stats().catching_up_to),
        (20, 0)
    );

    lane.close(clock.now() + 5 * MS);
    let end = ended.recv_timeout(HUNG).expect("the worker ends");
    handle.join().expect("the worker thread");
    assert!(end.error.is_none() && end.lost == 0, "{end:?}");
}

#[test]
fn a_spool_holding_the_rest_shortens_the_catch_up_and_an_empty_store_follows_backfill() {
    let tmp = tempfile::tempdir().expect("tempdir");
    file_dir(tmp.path(), &records(1, 30));
    let spool_dir = tmp.path().join("spool");
    let cfg = LaneConfig {
        spool: Some((spool_dir, 1 << 20)),
        ..config()
    };
    let lane = Lane::with_clock("fake".into(), 0, cfg.clone(), 30, TestClock::new()).expect("lane");
    // The spool holds 21..=30 from an earlier run.
    {
        let mut st = lane.lock();
        let spool = st.spool.as_mut().expect("spool");
        spool.append(&records(21, 10)).expect("append");
        spool.sync().expect("sync");
    }
    let dir = Some(tmp.path());
    let i = Integrity::Sha256;
    assert!(matches!(
        decide(&lane, Some(10), 30, dir, &i),
        Decision::CatchUp(c) if (c.from, c.to) == (11, 20)
    ));
    assert!(matches!(
        decide(&lane, Some(20), 30, dir, &i),
        Decision::Nothing
    ));
    assert!(matches!(
        decide(&lane, None, 30, dir, &i),
        Decision::Nothing
    ));
    // Without a file backend the part the spool lacks cannot be caught up: reported.
    assert!(matches!(
        decide(&lane, Some(10), 30, None, &i),
        Decision::Gap(_)
    ));
    assert!(matches!(
        decide(&lane, Some(20), 30, None, &i),
        Decision::Nothing
    ));
    drop(lane);

    let backfill = |b: crate::Backfill| {
        let cfg = LaneConfig {
            backfill: b,
            ..config()
        };
        let lane = Lane::with_clock("fake".into(), 0, cfg, 30, TestClock::new()).expect("lane");
        match decide(&lane, Some(0), 30, dir, &i) {
            Decision::CatchUp(c) => Some((c.from, c.to, c.report_gap)),
            Decision::Nothing => None,
            Decision::Gap(m) => panic!("{m}"),
        }
    };
    assert_eq!(backfill(crate::Backfill::All), Some((1, 30, false)));
    assert_eq!(backfill(crate::Backfill::None), None);
    assert_eq!(backfill(crate::Backfill::From(25)), Some((25, 30, true)));
    assert_eq!(backfill(crate::Backfill::From(31)), None);

    // Without a file backend, a store behind with no spool is a reported gap.
    let lane = Lane::with_clock("fake".into(), 0, config(), 30, TestClock::new()).expect("lane");
    assert!(matches!(
        decide(&lane, Some(10), 30, None, &i),
        Decision::Gap(m) if m.contains("sequences 11..=30 are neither in its store nor in its spool")
    ));
}
