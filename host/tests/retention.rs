//! Retention deletes expired daily files, anchors the kept chain where the deleted files
//! ended, and deletes nothing when it cannot do that safely.

mod common;

use std::path::PathBuf;

use audit_host::{AuditEventType, AuditTrail, CompliancePolicy};
use common::*;

#[tokio::test]
async fn retention_after_a_long_pause_anchors_the_chain_at_the_deleted_files_end() -> TestResult {
    let dir = tempfile::tempdir()?;
    let now = ManualClock::starting_at(at(2026, 3, 1));
    let policy = CompliancePolicy {
        retention_days: 2,
        ..Default::default()
    };
    let trail = AuditTrail::builder()
        .storage_path(dir.path())
        .policy(policy)
        .clock(now.clock())
        .build()?;
    log_n(&trail, 3).await?;
    // Idle for longer than the retention: every earlier file expires at once.
    now.set(at(2026, 3, 20));
    log_n(&trail, 2).await?;
    trail.close().await?;
    let names: Vec<PathBuf> = log_files(dir.path());
    assert_eq!(names, [dir.path().join("audit_2026-03-20.jsonl")]);
    let report = verify(dir.path());
    assert_eq!(
        (report.events, report.first_sequence, report.last_sequence),
        (2, Some(4), Some(5))
    );
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("starts at sequence 4")),
        "{:?}",
        report.warnings
    );
    Ok(())
}

/// Retention reads where the kept chain starts from a file's first or last line; a line
/// longer than the 64 KiB read at once must not stop it.
#[tokio::test]
async fn retention_is_not_stopped_by_a_long_line_at_the_chain_boundary() -> TestResult {
    let big = "z".repeat(100 * 1024);
    let policy = CompliancePolicy {
        retention_days: 2,
        ..Default::default()
    };
    // The oldest kept file starts with a long line.
    let dir = tempfile::tempdir()?;
    let now = ManualClock::starting_at(at(2026, 3, 1));
    let trail = AuditTrail::builder()
        .storage_path(dir.path())
        .policy(policy.clone())
        .clock(now.clock())
        .build()?;
    log_n(&trail, 3).await?;
    now.set(at(2026, 3, 3));
    trail
        .log_event(AuditEventType::DataExport, "big")
        .meta("blob", big.as_str())
        .await?;
    now.set(at(2026, 3, 4));
    log_n(&trail, 1).await?;
    trail.close().await?;
    assert_eq!(
        log_files(dir.path()),
        [
            dir.path().join("audit_2026-03-03.jsonl"),
            dir.path().join("audit_2026-03-04.jsonl")
        ]
    );
    let report = verify(dir.path());
    assert_eq!((report.events, report.first_sequence), (2, Some(4)));

    // Every file expires and the newest expired one ends with a long line.
    let dir = tempfile::tempdir()?;
    now.set(at(2026, 3, 1));
    let trail = AuditTrail::builder()
        .storage_path(dir.path())
        .policy(policy)
        .clock(now.clock())
        .build()?;
    log_n(&trail, 2).await?;
    trail
        .log_event(AuditEventType::DataExport, "big")
        .meta("blob", big.as_str())
        .await?;
    now.set(at(2026, 3, 20));
    log_n(&trail, 1).await?;
    trail.close().await?;
    assert_eq!(
        log_files(dir.path()),
        [dir.path().join("audit_2026-03-20.jsonl")]
    );
    let report = verify(dir.path());
    assert_eq!((report.events, report.first_sequence), (1, Some(4)));
    Ok(())
}

/// Retention deletes nothing when it cannot record where the kept chain starts.
#[tokio::test]
async fn retention_deletes_nothing_when_it_cannot_anchor_the_kept_chain() -> TestResult {
    let policy = CompliancePolicy {
        retention_days: 2,
        ..Default::default()
    };
    for damage in ["unreadable first line", "anchor cannot be written"] {
        let dir = tempfile::tempdir()?;
        let now = ManualClock::starting_at(at(2026, 3, 1));
        let trail = AuditTrail::builder()
            .storage_path(dir.path())
            .policy(policy.clone())
            .clock(now.clock())
            .build()?;
        log_n(&trail, 2).await?;
        now.set(at(2026, 3, 3));
        log_n(&trail, 2).await?;
        trail.flush().await?;
        let day3 = dir.path().join("audit_2026-03-03.jsonl");
        if damage == "unreadable first line" {
            let text = std::fs::read_to_string(&day3)?;
            std::fs::write(&day3, format!("#{text}"))?;
        } else {
            std::fs::create_dir(dir.path().join(".audit-anchor.tmp"))?;
        }
        // Starting 2026-03-04 expires 2026-03-01.
        now.set(at(2026, 3, 4));
        log_n(&trail, 1).await?;
        trail.close().await?;
        assert_eq!(log_files(dir.path()).len(), 3, "{damage}: nothing deleted");
        assert!(
            dir.path().join("audit_2026-03-01.jsonl").exists(),
            "{damage}"
        );
        assert!(!dir.path().join(".audit-anchor.json").exists(), "{damage}");
    }
    Ok(())
}

#[tokio::test]
async fn a_retention_longer_than_the_calendar_deletes_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let now = ManualClock::starting_at(at(2026, 3, 1));
    let trail = AuditTrail::builder()
        .storage_path(dir.path())
        .policy(CompliancePolicy {
            retention_days: u32::MAX,
            ..Default::default()
        })
        .clock(now.clock())
        .build()?;
    log_n(&trail, 1).await?;
    now.set(at(2030, 1, 1));
    log_n(&trail, 1).await?;
    trail.close().await?;
    assert_eq!(log_files(dir.path()).len(), 2);
    assert_eq!(verify(dir.path()).events, 2);
    Ok(())
}
