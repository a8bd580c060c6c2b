//! Daily and size rotation: one file per day (never reopening an older one) and a new file
//! when one is full, lines whole and the chain intact across them.

mod common;

use audit_host::{AuditEventType, AuditTrail};
use chrono::{TimeDelta, TimeZone, Utc};
use common::*;

#[tokio::test]
async fn daily_rotation_across_midnight() -> TestResult {
    let dir = tempfile::tempdir()?;
    let start = Utc
        .with_ymd_and_hms(2026, 3, 14, 23, 59, 59)
        .single()
        .expect("time");
    let now = ManualClock::starting_at(start);
    let trail = AuditTrail::builder()
        .storage_path(dir.path())
        .clock(now.clock())
        .build()?;
    for i in 0..10 {
        trail
            .log_event(AuditEventType::DataAccess, format!("before {i}"))
            .await?;
    }
    now.advance(TimeDelta::seconds(2)); // 00:00:01 next day
    for i in 0..10 {
        trail
            .log_event(AuditEventType::DataAccess, format!("after {i}"))
            .await?;
    }
    trail.close().await?;
    let files = log_files(dir.path());
    let names: Vec<String> = files.iter().map(|p| name_of(p)).collect();
    assert_eq!(names, ["audit_2026-03-14.jsonl", "audit_2026-03-15.jsonl"]);
    for f in &files {
        assert_eq!(std::fs::read_to_string(f)?.lines().count(), 10);
    }
    let first_of_day2 = std::fs::read_to_string(&files[1])?;
    assert!(
        first_of_day2
            .lines()
            .next()
            .is_some_and(|l| l.contains(r#""sequence_number":11"#))
    );
    assert_eq!(verify(dir.path()).events, 20);
    Ok(())
}

#[tokio::test]
async fn a_clock_going_backwards_never_reopens_an_older_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let start = Utc
        .with_ymd_and_hms(2026, 3, 15, 0, 0, 1)
        .single()
        .expect("time");
    let now = ManualClock::starting_at(start);
    let trail = AuditTrail::builder()
        .storage_path(dir.path())
        .clock(now.clock())
        .build()?;
    trail
        .log_event(AuditEventType::DataAccess, "day 15")
        .await?;
    now.advance(-TimeDelta::hours(1)); // back to the 14th
    trail
        .log_event(AuditEventType::DataAccess, "clock stepped back")
        .await?;
    trail.close().await?;
    let names: Vec<String> = log_files(dir.path()).iter().map(|p| name_of(p)).collect();
    assert_eq!(names, ["audit_2026-03-15.jsonl"]);
    assert_eq!(verify(dir.path()).events, 2);
    Ok(())
}

#[tokio::test]
async fn size_rotation_keeps_lines_whole_and_the_chain_intact() -> TestResult {
    let dir = tempfile::tempdir()?;
    let trail = AuditTrail::builder()
        .file_backend(dir.path(), 4096)
        .build()?;
    for i in 0..100 {
        trail
            .log_event(AuditEventType::DataModification, format!("change {i}"))
            .user_id("bob")
            .await?;
    }
    trail.close().await?;
    let files = log_files(dir.path());
    assert!(
        files.len() > 10,
        "expected many rotations, got {}",
        files.len()
    );
    let today = audit_host::todays_file_name();
    assert_eq!(name_of(&files[0]), today);
    assert_eq!(name_of(&files[1]), today.replace(".jsonl", ".1.jsonl"));
    for f in &files {
        let len = std::fs::metadata(f)?.len();
        assert!(len <= 4096, "{} is {len} bytes", f.display());
        assert!(std::fs::read(f)?.ends_with(b"\n"));
    }
    assert_eq!(sequences(dir.path()), (1..=100).collect::<Vec<_>>());
    assert_eq!(verify(dir.path()).events, 100);
    // A restart appends to the newest rotation and continues the sequence.
    let trail = AuditTrail::builder()
        .file_backend(dir.path(), 4096)
        .build()?;
    trail
        .log_event(AuditEventType::DataAccess, "after restart")
        .await?;
    trail.close().await?;
    assert_eq!(verify(dir.path()).events, 101);
    Ok(())
}
