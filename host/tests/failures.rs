//! Storage failures, back-pressure, durability modes, shutdown.

mod common;

use std::sync::Arc;
use std::time::Duration;

use audit_host::{
    AuditEventType, AuditTrail, AuditTrailBuilder, BackendOptions, Durability, Error, OnFull,
    StorageBackend,
};
use common::*;

/// A required backend without a spool: when it fails, the trail fails closed.
fn no_spool() -> BackendOptions {
    BackendOptions::default()
        .spool_max_bytes(0)
        .retry(Duration::from_millis(10), Duration::from_secs(5))
}

/// A trail whose storage path (and so any spool) is in `dir`, with `be` as its backend.
fn trail_in(
    dir: &tempfile::TempDir,
    be: Box<dyn StorageBackend>,
    options: BackendOptions,
) -> AuditTrailBuilder {
    AuditTrail::builder()
        .storage_path(dir.path())
        .backend_with(be, options)
}

#[tokio::test]
async fn a_batched_failure_surfaces_on_the_next_call_and_nothing_is_dropped() -> TestResult {
    let be = Arc::new(MemoryBackend::named("flaky"));
    be.fail_next_writes(3);
    let dir = tempfile::tempdir()?;
    let trail = trail_in(&dir, Box::new(Arc::clone(&be)), no_spool()).build()?;
    // Accepted: the failure happens later, on the worker.
    trail.log_event(AuditEventType::DataAccess, "one").await?;
    wait_until(
        Duration::from_secs(10),
        "the failure to be reported",
        || trail.statistics().last_error.is_some(),
    )
    .await;
    let err = trail
        .log_event(AuditEventType::DataAccess, "refused while failing")
        .await;
    match err {
        Err(Error::Storage {
            backend, source, ..
        }) => {
            assert_eq!(backend, "flaky");
            assert_eq!(source.to_string(), "disk on fire");
        }
        other => panic!("expected a storage error, got {other:?}"),
    }
    // Retried with back-off until it succeeds; then new events are accepted again.
    wait_until(Duration::from_secs(10), "recovery", || {
        trail.statistics().last_error.is_none()
    })
    .await;
    for i in 0..10 {
        trail
            .log_event(AuditEventType::DataAccess, format!("after {i}"))
            .await?;
    }
    trail.close().await?;
    assert_eq!(
        be.sequences(),
        (1..=11).collect::<Vec<_>>(),
        "no gap, no duplicate"
    );
    assert!(be.write_calls() >= 4);
    Ok(())
}

#[tokio::test]
async fn a_panicking_backend_without_spool_is_an_error_not_a_dead_writer() -> TestResult {
    let be = Arc::new(MemoryBackend::named("panicky"));
    be.panic_next_writes(2);
    let dir = tempfile::tempdir()?;
    let trail = trail_in(&dir, Box::new(Arc::clone(&be)), no_spool())
        .durability(Durability::Sync)
        .build()?;
    let err = trail.log_event(AuditEventType::DataAccess, "first").await;
    // Sync mode: accepted as sequence 1, but not confirmed durable, because the backend
    // panicked; a panic is fatal, and without a spool a required backend fails closed.
    let Err(Error::NotDurable {
        sequence: 1,
        source,
        ..
    }) = err
    else {
        panic!("expected NotDurable, got {err:?}");
    };
    match &*source {
        Error::Storage {
            backend, source, ..
        } => {
            assert_eq!(backend, "panicky");
            assert!(
                source
                    .to_string()
                    .contains("the backend panicked: index out of bounds"),
                "{source}"
            );
        }
        other => panic!("expected a storage error, got {other:?}"),
    }
    // The process and the writer survived; the backend is not called again.
    let refused = trail.log_event(AuditEventType::DataAccess, "second").await;
    assert!(matches!(refused, Err(Error::Storage { .. })), "{refused:?}");
    let stats = trail.statistics();
    assert_eq!(stats.per_backend[0].state, "fatal");
    assert_eq!(stats.per_backend[0].fatal, 1);
    assert_eq!(be.write_calls(), 1);
    assert!(matches!(
        trail.close().await,
        Err(Error::Shutdown { unwritten: 1, .. })
    ));
    Ok(())
}

#[tokio::test]
async fn a_panicking_backend_with_a_spool_keeps_its_events_for_the_next_start() -> TestResult {
    let be = Arc::new(MemoryBackend::named("panicky"));
    be.panic_next_writes(2);
    let dir = tempfile::tempdir()?;
    let trail = trail_in(&dir, Box::new(Arc::clone(&be)), BackendOptions::default())
        .durability(Durability::Sync)
        .build()?;
    // Sync mode: each event is durable in the spool, so the callers are not failed.
    log_n(&trail, 5).await?;
    let stats = trail.statistics();
    let b = &stats.per_backend[0];
    assert_eq!((b.state.as_str(), b.fatal), ("fatal", 1), "{b:?}");
    assert!(
        b.last_error
            .as_deref()
            .is_some_and(|e| e.contains("panicked"))
    );
    assert_eq!(stats.durable_sequence, 5);
    assert_eq!(be.write_calls(), 1, "not called after the panic");
    trail.close().await?;
    assert_eq!(trail.statistics().per_backend[0].spooled_events, 5);

    // The next start, with a healthy backend of the same name: the backlog arrives first,
    // in order, then the new events.
    let healthy = Arc::new(MemoryBackend::named("panicky"));
    let trail = AuditTrail::builder()
        .storage_path(dir.path())
        .backend(Box::new(Arc::clone(&healthy)))
        .build()?;
    trail.log_event(AuditEventType::DataAccess, "after").await?;
    trail.close().await?;
    assert_eq!(healthy.sequences(), (1..=6).collect::<Vec<_>>());
    assert!(
        !dir.path()
            .join(".spool/panicky")
            .read_dir()?
            .any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("spool-")))
    );
    Ok(())
}

#[tokio::test]
async fn close_gives_up_after_the_shutdown_timeout_and_says_how_many() -> TestResult {
    let be = Arc::new(MemoryBackend::named("flaky"));
    let dir = tempfile::tempdir()?;
    let trail = trail_in(&dir, Box::new(Arc::clone(&be)), no_spool())
        .shutdown_timeout(Duration::from_millis(150))
        .build()?;
    // Accept three events while the backend is stalled, then make it fail for good.
    be.stall(true);
    log_n(&trail, 3).await?;
    be.fail_writes_forever();
    be.stall(false);
    let started = std::time::Instant::now();
    match trail.close().await {
        Err(
            e @ Error::Shutdown {
                unwritten: 3,
                not_durable: 3,
                ..
            },
        ) => {
            assert!(
                e.to_string()
                    .contains("3 accepted event(s) were NOT written"),
                "{e}"
            );
        }
        other => panic!("expected a shutdown error, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "close gave up at the timeout"
    );
    assert!(be.write_calls() >= 2, "close retried before giving up");
    Ok(())
}

#[tokio::test]
async fn close_retries_a_backend_that_recovers_within_the_timeout() -> TestResult {
    let be = Arc::new(MemoryBackend::named("flaky"));
    let dir = tempfile::tempdir()?;
    // Spooled on the first failure, delivered from the spool once it recovers.
    let options =
        BackendOptions::default().retry(Duration::from_millis(10), Duration::from_secs(1));
    let trail = trail_in(&dir, Box::new(Arc::clone(&be)), options).build()?;
    be.fail_next_writes(3);
    trail.log_event(AuditEventType::DataAccess, "x").await?;
    trail.close().await?;
    assert_eq!(be.sequences(), vec![1]);
    Ok(())
}

#[tokio::test]
async fn flush_reports_a_failing_fsync() -> TestResult {
    let be = Arc::new(MemoryBackend::named("flaky"));
    let dir = tempfile::tempdir()?;
    let trail = trail_in(&dir, Box::new(Arc::clone(&be)), no_spool()).build()?;
    // The first fdatasync (requested by flush, or the periodic one) fails.
    be.fail_next_flushes(1);
    trail.log_event(AuditEventType::DataAccess, "x").await?;
    assert!(matches!(trail.flush().await, Err(Error::Storage { .. })));
    wait_until(Duration::from_secs(10), "recovery", || {
        trail.statistics().last_error.is_none()
    })
    .await;
    trail.flush().await?;
    assert_eq!(trail.statistics().durable_sequence, 1);
    trail.close().await?;
    Ok(())
}

#[tokio::test]
async fn a_full_queue_fails_fast_with_on_full_fail() -> TestResult {
    let be = Arc::new(MemoryBackend::named("flaky"));
    be.stall(true);
    let dir = tempfile::tempdir()?;
    let trail = trail_in(&dir, Box::new(Arc::clone(&be)), no_spool())
        .queue_capacity(8)
        .on_full(OnFull::Fail)
        .build()?;
    let (accepted, full) = log_until_refused(&trail, 100, None).await;
    assert!(
        matches!(full, Some(Error::QueueFull { capacity: 8 })),
        "{full:?}"
    );
    // The trail's queue (8), the lane's memory (2 x queue_capacity = 16) and the batch its
    // stalled worker holds (at most 8; how much of it is taken before the stall depends on
    // timing): bounded, whatever the number of attempts (100).
    assert!(accepted <= 32, "{accepted}");
    be.stall(false);
    trail.close().await?;
    assert_eq!(
        be.sequences().len() as u64,
        accepted,
        "every accepted event stored"
    );
    Ok(())
}

#[test]
fn a_full_queue_blocks_with_on_full_block_and_loses_nothing() -> TestResult {
    let be = Arc::new(MemoryBackend::named("flaky"));
    be.stall(true);
    let dir = tempfile::tempdir()?;
    let trail = Arc::new(
        trail_in(&dir, Box::new(Arc::clone(&be)), no_spool())
            .queue_capacity(4)
            .build()?,
    );
    let rt = rt();
    let producer = {
        let trail = Arc::clone(&trail);
        rt.spawn(async move {
            log_n(&trail, 50).await?;
            Ok::<_, Error>(())
        })
    };
    // 50 events do not fit in the queue, the backend's memory and the stalled batch.
    wait_until_blocking(Duration::from_secs(10), "the queue to fill", || {
        trail.statistics().queue_size == 4
    });
    assert!(
        !producer.is_finished(),
        "the producer must be blocked by the full queue"
    );
    assert!(trail.statistics().queue_size <= 4);
    be.stall(false);
    rt.block_on(producer)??;
    rt.block_on(trail.close())?;
    assert_eq!(be.sequences(), (1..=50).collect::<Vec<_>>());
    Ok(())
}

/// A caller waiting for room in a full queue is told when the backend starts failing: the
/// room would not come until the backend recovers (found when `audit emit` under a file-size
/// limit hung instead of exiting).
#[test]
fn a_caller_blocked_on_a_full_queue_gets_the_failure() -> TestResult {
    let be = Arc::new(MemoryBackend::named("flaky"));
    be.stall(true);
    let dir = tempfile::tempdir()?;
    let trail = Arc::new(
        trail_in(&dir, Box::new(Arc::clone(&be)), no_spool())
            .queue_capacity(4)
            .shutdown_timeout(Duration::from_millis(100))
            .build()?,
    );
    let rt = rt();
    let producer = {
        let trail = Arc::clone(&trail);
        rt.spawn(async move { log_n(&trail, 50).await })
    };
    wait_until_blocking(Duration::from_secs(10), "the queue to fill", || {
        trail.statistics().queue_size == 4
    });
    assert!(!producer.is_finished(), "the producer must be blocked");
    be.fail_writes_forever();
    be.stall(false);
    let woken =
        rt.block_on(async { tokio::time::timeout(Duration::from_secs(30), producer).await });
    match woken.map_err(|_| "the producer is still blocked 30 s after the failure")?? {
        Err(Error::Storage { backend, .. }) => assert_eq!(backend, "flaky"),
        other => panic!("expected the storage failure, got {other:?}"),
    }
    Ok(())
}

#[test]
fn sync_durability_returns_after_fsync_and_shares_it() -> TestResult {
    let be = Arc::new(MemoryBackend::named("flaky"));
    let dir = tempfile::tempdir()?;
    let trail = Arc::new(
        trail_in(&dir, Box::new(Arc::clone(&be)), BackendOptions::default())
            .durability(Durability::Sync)
            .build()?,
    );
    let rt = rt();
    // One caller: each event is durable when log returns.
    rt.block_on(async {
        for i in 0..20 {
            trail
                .log_event(AuditEventType::DataAccess, format!("e{i}"))
                .await?;
            let stats = trail.statistics();
            assert_eq!(stats.durable_sequence, stats.last_sequence);
        }
        Ok::<_, Error>(())
    })?;
    // 64 concurrent callers share fdatasyncs (group commit).
    let before = be.flushes();
    rt.block_on(log_concurrently(&trail, 64, 50))?;
    let flushes = be.flushes() - before;
    assert!(
        flushes < 3200,
        "3200 sync events took {flushes} flushes: no group commit"
    );
    rt.block_on(trail.close())?;
    assert_eq!(be.sequences().len(), 3220);
    Ok(())
}

#[tokio::test]
async fn a_sync_caller_is_told_when_its_event_is_not_durable() -> TestResult {
    let be = Arc::new(MemoryBackend::named("flaky"));
    let dir = tempfile::tempdir()?;
    let trail = trail_in(&dir, Box::new(Arc::clone(&be)), no_spool())
        .durability(Durability::Sync)
        .build()?;
    be.fail_next_writes(2);
    let r = trail.log_event(AuditEventType::DataAccess, "x").await;
    assert!(
        matches!(&r, Err(Error::NotDurable { sequence: 1, source, .. }) if matches!(**source, Error::Storage { .. })),
        "{r:?}"
    );
    // It stays queued and is retried: once the backend recovers it is stored, once.
    wait_until(Duration::from_secs(10), "retry", || {
        be.sequences().len() == 1
    })
    .await;
    trail.close().await?;
    assert_eq!(be.sequences(), vec![1]);
    Ok(())
}

#[test]
fn close_after_a_million_quick_events_loses_none() -> TestResult {
    let dir = tempfile::tempdir()?;
    let trail = AuditTrail::new(None, Some(dir.path().to_path_buf()), None)?;
    let rt = rt();
    rt.block_on(async {
        for i in 0..1_000_000u32 {
            trail
                .log_event(AuditEventType::DataAccess, "bulk read")
                .meta("i", i)
                .await?;
        }
        trail.close().await
    })?;
    let mut count = 0u64;
    for f in log_files(dir.path()) {
        count += std::fs::read(&f)?.iter().filter(|&&b| b == b'\n').count() as u64;
    }
    assert_eq!(count, 1_000_000);
    assert_eq!(verify(dir.path()).events, 1_000_000);
    Ok(())
}

#[test]
fn dropping_without_close_flushes() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let trail = AuditTrail::new(None, Some(dir.path().to_path_buf()), None)?;
        rt().block_on(async {
            log_n(&trail, 500).await?;
            Ok::<_, Error>(())
        })?;
    }
    assert_eq!(sequences(dir.path()).len(), 500);
    Ok(())
}

#[tokio::test]
async fn close_keeps_to_the_shutdown_timeout_even_during_a_long_back_off() -> TestResult {
    let be = Arc::new(MemoryBackend::named("flaky"));
    be.fail_writes_forever();
    let dir = tempfile::tempdir()?;
    let trail = trail_in(&dir, Box::new(Arc::clone(&be)), no_spool())
        .shutdown_timeout(Duration::from_millis(300))
        .build()?;
    trail
        .log_event(AuditEventType::DataAccess, "never stored")
        .await?;
    // Let the back-off grow past a second (10 ms doubling): after the 10th failure it is 5 s
    // (2.5 s to 5 s with jitter), longer than close may take below.
    wait_until(Duration::from_secs(30), "the 10th failure", || {
        trail.statistics().per_backend[0].retried >= 10
    })
    .await;
    let started = std::time::Instant::now();
    assert!(matches!(
        trail.close().await,
        Err(Error::Shutdown { unwritten: 1, .. })
    ));
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(1500),
        "close took {took:?} with a 300 ms shutdown timeout"
    );
    Ok(())
}

#[tokio::test]
async fn close_does_not_wait_forever_for_a_backend_stuck_in_a_call() -> TestResult {
    let be = Arc::new(MemoryBackend::named("flaky"));
    let dir = tempfile::tempdir()?;
    let trail = trail_in(&dir, Box::new(Arc::clone(&be)), BackendOptions::default())
        .shutdown_timeout(Duration::from_millis(200))
        .build()?;
    // The backend blocks its thread inside write_batch and never returns.
    be.stall(true);
    trail.log_event(AuditEventType::DataAccess, "stuck").await?;
    wait_until(Duration::from_secs(10), "the call to start", || {
        be.write_calls() == 1
    })
    .await;
    let started = std::time::Instant::now();
    let closed = trail.close().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "close took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(&closed, Err(Error::Shutdown { backend, unwritten: 1, .. }) if backend == "flaky"),
        "{closed:?}"
    );
    Ok(())
}

#[tokio::test]
async fn flush_and_close_report_a_backend_that_never_recovers() -> TestResult {
    // Without a spool, a required backend that fails makes the trail fail closed.
    let be = MemoryBackend::named("broken");
    be.fail_writes_forever();
    let dir = tempfile::tempdir()?;
    let trail = AuditTrail::builder()
        .storage_path(dir.path())
        .backend_with(Box::new(be), BackendOptions::default().spool_max_bytes(0))
        .shutdown_timeout(Duration::from_millis(50))
        .build()?;
    let pending = trail
        .log_event(AuditEventType::DataAccess, "never stored")
        .user_id("erin");
    assert_eq!(pending.event().user_id.as_deref(), Some("erin"));
    pending.await?;
    wait_until(
        Duration::from_secs(10),
        "the worker to meet the failure",
        || trail.statistics().last_error.is_some(),
    )
    .await;
    assert_eq!(
        trail.statistics().last_error.as_deref(),
        Some("broken: disk on fire")
    );
    match trail.flush().await {
        Err(Error::Storage {
            backend, queued, ..
        }) => assert_eq!((backend.as_str(), queued), ("broken", 1)),
        other => panic!("expected a storage error, got {other:?}"),
    }
    match trail.close().await {
        Err(Error::Shutdown {
            backend,
            unwritten,
            not_durable,
            ..
        }) => assert_eq!((backend.as_str(), unwritten, not_durable), ("broken", 1, 1)),
        other => panic!("expected a shutdown error, got {other:?}"),
    }
    Ok(())
}
