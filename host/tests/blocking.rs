//! Blocking work and runtimes: file reads that keep a current-thread runtime running.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use audit_host::{AuditEventType, AuditTrail, EventQuery};
use common::*;

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
