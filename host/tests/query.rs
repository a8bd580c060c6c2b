//! Reading events back: a query needs a file backend and skips lines it cannot read.

mod common;

use audit_host::{AuditTrail, Error, EventQuery};
use common::*;

#[tokio::test]
async fn reading_back_needs_a_file_backend() -> TestResult {
    let trail = AuditTrail::builder()
        .backend(Box::new(MemoryBackend::named("capture")))
        .build()?;
    log_n(&trail, 1).await?;
    assert!(trail.file_dirs().is_empty());
    assert!(matches!(
        trail.get_events(&EventQuery::default()).await,
        Err(Error::Backend { message }) if message.contains("no file backend is configured")
    ));
    assert!(matches!(
        trail.verify_chain().await,
        Err(Error::Backend { message }) if message.contains("no file backend is configured")
    ));
    trail.close().await?;
    Ok(())
}

#[tokio::test]
async fn a_time_filtered_query_skips_lines_it_cannot_read() -> TestResult {
    let dir = tempfile::tempdir()?;
    let trail = AuditTrail::builder()
        .storage_path(dir.path())
        .clock(|| at(2026, 3, 1))
        .build()?;
    log_n(&trail, 2).await?;
    trail.close().await?;
    let file = dir.path().join("audit_2026-03-01.jsonl");
    let mut text = std::fs::read_to_string(&file)?;
    text.push_str("{\"event_type\":\"data_access\",\"timestamp\":\"soon\"}\n{\"torn");
    std::fs::write(&file, text)?;
    let query = EventQuery {
        start_time: Some(at(2026, 2, 1)),
        ..Default::default()
    };
    let lines = audit_host::query_dir(dir.path(), &query)?;
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l.contains("\"sequence_number\":")));
    Ok(())
}

/// `get_events` searches the regular files only: a symlink under an audit file name is not
/// followed (its target's lines are not returned), and `verify_chain` fails on it.
#[cfg(unix)]
#[tokio::test]
async fn get_events_does_not_follow_a_symlinked_audit_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let elsewhere = tempfile::tempdir()?;
    let other = AuditTrail::builder()
        .storage_path(elsewhere.path())
        .clock(|| at(2026, 1, 1))
        .build()?;
    log_n(&other, 3).await?;
    other.close().await?;
    let trail = AuditTrail::builder()
        .storage_path(dir.path())
        .clock(|| at(2026, 3, 1))
        .build()?;
    log_n(&trail, 2).await?;
    trail.flush().await?;
    std::os::unix::fs::symlink(
        elsewhere.path().join("audit_2026-01-01.jsonl"),
        dir.path().join("audit_2026-01-01.jsonl"),
    )?;
    let all = EventQuery {
        limit: None,
        ..Default::default()
    };
    assert_eq!(trail.get_events(&all).await?.len(), 2);
    assert!(matches!(
        trail.verify_chain().await,
        Err(Error::Integrity(m)) if m.contains("is a symlink, not a regular file")
    ));
    trail.close().await?;
    Ok(())
}
