//! Daily and size rotation, retention, torn-line recovery.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use audit_host::{AuditEventType, AuditTrail, CompliancePolicy};
use chrono::{DateTime, TimeZone, Utc};
use common::*;

/// A clock the test moves by hand (microseconds since the epoch).
fn manual_clock(
    start: DateTime<Utc>,
) -> (
    Arc<AtomicI64>,
    impl Fn() -> DateTime<Utc> + Send + Sync + 'static,
) {
    let now = Arc::new(AtomicI64::new(start.timestamp_micros()));
    let handle = Arc::clone(&now);
    (handle, move || {
        DateTime::from_timestamp_micros(now.load(Ordering::SeqCst)).expect("valid time")
    })
}

fn name_of(p: &std::path::Path) -> String {
    p.file_name().expect("name").to_string_lossy().into_owned()
}

#[tokio::test]
async fn daily_rotation_across_midnight() -> TestResult {
    let dir = tempfile::tempdir()?;
    let start = Utc
        .with_ymd_and_hms(2026, 3, 14, 23, 59, 59)
        .single()
        .expect("time");
    let (now, clock) = manual_clock(start);
    let trail = AuditTrail::builder()
        .storage_path(dir.path())
        .clock(clock)
        .build()?;
    for i in 0..10 {
        trail
            .log_event(AuditEventType::DataAccess, format!("before {i}"))
            .await?;
    }
    now.fetch_add(2_000_000, Ordering::SeqCst); // 00:00:01 next day
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
    let (now, clock) = manual_clock(start);
    let trail = AuditTrail::builder()
        .storage_path(dir.path())
        .clock(clock)
        .build()?;
    trail
        .log_event(AuditEventType::DataAccess, "day 15")
        .await?;
    now.fetch_sub(3_600_000_000, Ordering::SeqCst); // back to the 14th
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

#[tokio::test]
async fn retention_deletes_old_days_and_verify_still_passes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let start = Utc
        .with_ymd_and_hms(2026, 1, 1, 12, 0, 0)
        .single()
        .expect("time");
    let (now, clock) = manual_clock(start);
    let policy = CompliancePolicy {
        retention_days: 2,
        ..Default::default()
    };
    let trail = AuditTrail::builder()
        .storage_path(dir.path())
        .policy(policy)
        .clock(clock)
        .build()?;
    for _day in 0..5 {
        for i in 0..3 {
            trail
                .log_event(AuditEventType::DataAccess, format!("event {i}"))
                .await?;
        }
        now.fetch_add(86_400_000_000, Ordering::SeqCst);
    }
    trail.close().await?;
    let names: Vec<String> = log_files(dir.path()).iter().map(|p| name_of(p)).collect();
    // On 2026-01-05, files dated before 2026-01-03 were deleted.
    assert_eq!(
        names,
        [
            "audit_2026-01-03.jsonl",
            "audit_2026-01-04.jsonl",
            "audit_2026-01-05.jsonl"
        ]
    );
    let report = verify(dir.path());
    assert_eq!(
        (report.first_sequence, report.last_sequence),
        (Some(7), Some(15))
    );
    // Removing a retained file's first line is still caught.
    let first = &log_files(dir.path())[0];
    let text = std::fs::read_to_string(first)?;
    std::fs::write(first, text.split_once('\n').expect("lines").1)?;
    assert!(audit_host::verify_dir(dir.path(), &audit_host::Integrity::Sha256).is_err());
    Ok(())
}

#[tokio::test]
async fn torn_final_line_is_moved_aside_and_the_chain_continues() -> TestResult {
    let dir = tempfile::tempdir()?;
    let trail = AuditTrail::new(None, Some(dir.path().to_path_buf()), None)?;
    for i in 0..20 {
        trail
            .log_event(AuditEventType::DataAccess, format!("e{i}"))
            .await?;
    }
    trail.close().await?;
    let file = log_files(dir.path()).pop().expect("a file");
    let good = std::fs::read(&file)?;
    // A crash mid-write: half a line, no newline.
    let lines: Vec<&[u8]> = good.split(|&b| b == b'\n').collect();
    let torn = &lines[5][..100];
    let mut damaged = good.clone();
    damaged.extend_from_slice(torn);
    std::fs::write(&file, &damaged)?;
    // verify warns but passes.
    let report = verify(dir.path());
    assert_eq!(report.events, 20);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("unterminated final line")),
        "{:?}",
        report.warnings
    );
    // The next open moves the torn bytes aside and continues at 21.
    let trail = AuditTrail::new(None, Some(dir.path().to_path_buf()), None)?;
    trail
        .log_event(AuditEventType::DataAccess, "after crash")
        .await?;
    trail.close().await?;
    let torn_file = file.with_extension("jsonl.torn");
    assert_eq!(std::fs::read(&torn_file)?, [torn, b"\n"].concat());
    assert_eq!(sequences(dir.path()), (1..=21).collect::<Vec<_>>());
    let report = verify(dir.path());
    assert_eq!(report.events, 21);
    assert!(report.warnings.is_empty());
    Ok(())
}

#[tokio::test]
async fn trailing_garbage_lines_are_recovered_too() -> TestResult {
    let dir = tempfile::tempdir()?;
    let trail = AuditTrail::new(None, Some(dir.path().to_path_buf()), None)?;
    for i in 0..3 {
        trail
            .log_event(AuditEventType::DataAccess, format!("e{i}"))
            .await?;
    }
    trail.close().await?;
    let file = log_files(dir.path()).pop().expect("a file");
    let mut bytes = std::fs::read(&file)?;
    bytes.extend_from_slice(b"\0\0\0\0\n{\"checksum\":\"ab");
    std::fs::write(&file, &bytes)?;
    let trail = AuditTrail::new(None, Some(dir.path().to_path_buf()), None)?;
    trail.log_event(AuditEventType::DataAccess, "next").await?;
    trail.close().await?;
    assert_eq!(sequences(dir.path()), vec![1, 2, 3, 4]);
    assert_eq!(verify(dir.path()).events, 4);
    Ok(())
}

#[tokio::test]
async fn a_different_key_cannot_continue_a_chain() -> TestResult {
    let dir = tempfile::tempdir()?;
    let trail = AuditTrail::new(None, Some(dir.path().to_path_buf()), None)?;
    trail
        .log_event(AuditEventType::DataAccess, "sha256")
        .await?;
    trail.close().await?;
    let err = AuditTrail::builder()
        .storage_path(dir.path())
        .hmac_key(&[9u8; 32])?
        .build()
        .err();
    let msg = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        msg.contains("does not verify with this trail's integrity settings"),
        "{msg}"
    );
    Ok(())
}

#[tokio::test]
async fn a_future_dated_import_does_not_expire_present_files() -> TestResult {
    let dir = tempfile::tempdir()?;
    let policy = CompliancePolicy {
        retention_days: 30,
        ..Default::default()
    };
    let trail = AuditTrail::builder()
        .storage_path(dir.path())
        .policy(policy.clone())
        .build()?;
    trail.log_event(AuditEventType::DataAccess, "today").await?;
    let far = Utc
        .with_ymd_and_hms(2099, 1, 1, 0, 0, 0)
        .single()
        .expect("time");
    trail
        .log(
            audit_host::AuditEvent::new(AuditEventType::DataExport, "imported from the future")
                .timestamp(far),
        )
        .await?;
    trail.close().await?;
    let names: Vec<String> = log_files(dir.path()).iter().map(|p| name_of(p)).collect();
    assert_eq!(
        names,
        [
            audit_host::todays_file_name(),
            "audit_2099-01-01.jsonl".to_owned()
        ]
    );
    assert_eq!(verify(dir.path()).events, 2);
    Ok(())
}
