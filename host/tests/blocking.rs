//! Callers without an async runtime: the blocking facade (`audit_host::blocking`) from plain
//! threads, its refusal inside a runtime, and file reads that keep a current-thread runtime
//! running.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use audit_host::{
    AuditEventType, AuditTrail, CompliancePolicy, Error, ErrorReport, ErrorSeverity, EventQuery,
    blocking,
};
use common::*;

#[test]
fn the_blocking_trail_logs_reads_and_verifies_from_plain_threads() -> TestResult {
    let dir = tempfile::tempdir()?;
    let trail = AuditTrail::builder()
        .storage_path(dir.path())
        .build_blocking()?;
    let id = trail
        .log_event(AuditEventType::ConfigChanged, "raised rate limit")
        .user_id("alice")
        .meta("limit", 500)
        .record()?;
    trail
        .log_data_access("customers/42", "read")
        .user_id("bob")
        .record()?;
    trail
        .log_security_event(AuditEventType::AuthenticationFailed, "bad password")
        .client_ip("203.0.113.9")
        .record()?;
    trail
        .log_error(ErrorReport::new("db timeout").severity(ErrorSeverity::High))
        .record()?;
    // Shared by reference between threads, each blocking on its own calls.
    std::thread::scope(|s| {
        for t in 0..4 {
            let trail = &trail;
            s.spawn(move || {
                for i in 0..25 {
                    trail
                        .log_event(AuditEventType::DataAccess, format!("thread {t} event {i}"))
                        .record()
                        .expect("recorded");
                }
            });
        }
    });
    trail.flush()?;
    assert_eq!(trail.durable_sequence(), 104);
    let newest_first = trail.get_events(&EventQuery {
        limit: None,
        ..EventQuery::default()
    })?;
    assert_eq!(newest_first.len(), 104);
    let first = newest_first.last().expect("the first event");
    assert_eq!(first.event_id.as_deref(), Some(id.as_str()));
    assert_eq!(first.user_id.as_deref(), Some("alice"));
    assert_eq!(trail.verify_chain()?.events, 104);
    assert_eq!(trail.statistics().security_events, 1);
    trail.close()?;
    assert!(matches!(
        trail.log_event(AuditEventType::DataAccess, "late").record(),
        Err(Error::Closed)
    ));
    assert_eq!(verify(dir.path()).events, 104);
    Ok(())
}

#[test]
fn inside_a_runtime_a_blocking_call_is_an_error_and_does_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let trail = Arc::new(blocking::AuditTrail::new(
        None,
        Some(dir.path().to_path_buf()),
        None,
    )?);
    for flavor in [rt(), current_thread()] {
        let refused = flavor.block_on(async {
            trail
                .log_event(AuditEventType::DataAccess, "from a task")
                .record()
        });
        match refused {
            Err(Error::BlockingInRuntime { call }) => {
                assert_eq!(call, "audit_host::blocking::AuditTrail::log");
            }
            other => panic!("expected BlockingInRuntime, got {other:?}"),
        }
        let e = flavor
            .block_on(async { trail.close() })
            .expect_err("refused");
        assert!(e.to_string().contains("inside an async runtime"), "{e}");
        // spawn_blocking runs inside the runtime's context too.
        let pooled = Arc::clone(&trail);
        let in_pool = flavor
            .block_on(async move { tokio::task::spawn_blocking(move || pooled.flush()).await })?;
        assert!(matches!(in_pool, Err(Error::BlockingInRuntime { .. })));
        // The async trail underneath is the way in there.
        flavor.block_on(async {
            trail
                .as_async()
                .log_event(AuditEventType::DataAccess, "awaited")
                .await
        })?;
    }
    // Nothing the refused calls were given was recorded, and the trail still works.
    trail.close()?;
    assert_eq!(verify(dir.path()).events, 2);
    Ok(())
}

#[test]
fn the_blocking_helpers_record_on_the_process_wide_trail() -> TestResult {
    let dir = tempfile::tempdir()?;
    let global = audit_host::get_audit_trail_with(
        Some(CompliancePolicy::default()),
        Some(dir.path().to_path_buf()),
    )?;
    blocking::audit_data_access("ledger", "export", Some("carol"))?;
    blocking::audit_security_event(
        AuditEventType::AuthorizationFailed,
        "no role",
        Some("mallory"),
        Some("198.51.100.7"),
    )?;
    blocking::audit_error(ErrorReport::new("disk full"), Some("write"), Some("store"))?;
    blocking::run("close", global.close())?;
    let lines = all_lines(dir.path());
    assert_eq!(lines.len(), 3);
    assert!(
        lines[0].contains(r#""event_type":"data_export""#),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains(r#""user_id":"mallory""#), "{}", lines[1]);
    assert!(lines[2].contains(r#""operation":"write""#), "{}", lines[2]);
    assert_eq!(verify(dir.path()).events, 3);
    Ok(())
}

/// `verify_chain` and `get_events` read on the blocking pool: a task sharing a
/// current-thread runtime with the caller keeps running while the files are read.
#[test]
fn file_reads_leave_a_current_thread_runtime_running() -> TestResult {
    let dir = tempfile::tempdir()?;
    let runtime = current_thread();
    runtime.block_on(async {
        let trail = AuditTrail::builder().storage_path(dir.path()).build()?;
        for i in 0..20_000 {
            trail
                .log_event(AuditEventType::DataAccess, format!("event {i}"))
                .user_id("alice")
                .await?;
        }
        // Everything durable first: the calls below then have nothing to wait for but the
        // reads themselves.
        trail.flush().await?;
        let ticks = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = tokio::spawn({
            let (ticks, stop) = (Arc::clone(&ticks), Arc::clone(&stop));
            async move {
                while !stop.load(Ordering::Relaxed) {
                    ticks.fetch_add(1, Ordering::Relaxed);
                    tokio::task::yield_now().await;
                }
            }
        });
        tokio::task::yield_now().await;
        let before = ticks.load(Ordering::Relaxed);
        assert_eq!(trail.verify_chain().await?.events, 20_000);
        let during_verify = ticks.load(Ordering::Relaxed) - before;
        let before = ticks.load(Ordering::Relaxed);
        let found = trail
            .get_events(&EventQuery {
                user_id: Some("alice".into()),
                limit: None,
                ..EventQuery::default()
            })
            .await?;
        assert_eq!(found.len(), 20_000);
        let during_query = ticks.load(Ordering::Relaxed) - before;
        stop.store(true, Ordering::Relaxed);
        ticker.await?;
        // Read inline, the only runtime thread would have been busy reading, and the ticker
        // would have moved at most once (on the call's own yield).
        assert!(during_verify > 10, "ticker moved {during_verify} times");
        assert!(during_query > 10, "ticker moved {during_query} times");
        trail.close().await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}
