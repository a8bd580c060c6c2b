//! Retention deletes expired daily files, anchors the kept chain where the deleted files
//! ended, and deletes nothing when it cannot do that safely.

mod common;

use std::path::PathBuf;

use audit_host::{AuditEventType, AuditRecord, AuditTrail, CompliancePolicy};
use chrono::{TimeDelta, TimeZone, Utc};
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

#[tokio::test]
async fn retention_deletes_old_days_and_verify_still_passes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let start = Utc
        .with_ymd_and_hms(2026, 1, 1, 12, 0, 0)
        .single()
        .expect("time");
    let now = ManualClock::starting_at(start);
    let policy = CompliancePolicy {
        retention_days: 2,
        ..Default::default()
    };
    let trail = AuditTrail::builder()
        .storage_path(dir.path())
        .policy(policy)
        .clock(now.clock())
        .build()?;
    for _day in 0..5 {
        for i in 0..3 {
            trail
                .log_event(AuditEventType::DataAccess, format!("event {i}"))
                .await?;
        }
        now.advance(TimeDelta::days(1));
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

/// What an older version left when every file had expired and the new day's first write
/// failed (or the process died before it): only `.audit-anchor.json`. The next start
/// continues the chain from the anchor instead of restarting it at sequence 1.
#[tokio::test]
async fn a_directory_holding_only_the_anchor_continues_its_chain() -> TestResult {
    let dir = tempfile::tempdir()?;
    let now = ManualClock::starting_at(at(2026, 3, 1));
    let policy = CompliancePolicy {
        retention_days: 2,
        ..Default::default()
    };
    let trail = AuditTrail::builder()
        .storage_path(dir.path())
        .policy(policy.clone())
        .clock(now.clock())
        .build()?;
    log_n(&trail, 3).await?;
    trail.close().await?;
    let last: serde_json::Value =
        serde_json::from_str(all_lines(dir.path()).last().ok_or("no line")?)?;
    std::fs::write(
        dir.path().join(".audit-anchor.json"),
        serde_json::json!({"previous_hash": last["checksum"], "sequence_number": 4}).to_string(),
    )?;
    std::fs::remove_file(dir.path().join("audit_2026-03-01.jsonl"))?;

    now.set(at(2026, 3, 20));
    let trail = AuditTrail::builder()
        .storage_path(dir.path())
        .policy(policy)
        .clock(now.clock())
        .build()?;
    log_n(&trail, 2).await?;
    trail.close().await?;
    assert_eq!(sequences(dir.path()), [4, 5]);
    let report = verify(dir.path());
    assert_eq!((report.events, report.first_sequence), (2, Some(4)));
    Ok(())
}

/// A record whose date the store cannot tell when `dated` is false: the batch fails.
struct MaybeDated<'a>(&'a AuditRecord, bool);

impl audit_format::Storable for MaybeDated<'_> {
    fn line(&self) -> &str {
        self.0.line()
    }
    fn sequence_number(&self) -> u64 {
        self.0.sequence_number()
    }
    fn date(&self) -> audit_format::Result<chrono::NaiveDate> {
        if self.1 {
            Ok(self.0.timestamp().date_naive())
        } else {
            Err(audit_format::Error::backend(
                "no date (the test's failing write)",
            ))
        }
    }
}

/// Retention deletes expired files only once the new day's first batch is durable: a first
/// write of the new day that fails (disk full) leaves every old file, and no anchor, behind.
#[tokio::test]
async fn retention_waits_until_the_new_days_first_batch_is_durable() -> TestResult {
    let records = records_at(&[at(2026, 3, 1), at(2026, 3, 1), at(2026, 3, 20)]).await?;
    let dir = tempfile::tempdir()?;
    let day1 = dir.path().join("audit_2026-03-01.jsonl");
    let anchor = dir.path().join(".audit-anchor.json");
    let mut store = audit_format::FileStore::open(dir.path(), 0, Some(2))?;
    store.append(&records[..2])?;
    store.flush()?;

    let failing = [
        MaybeDated(&records[2], true),
        MaybeDated(&records[2], false),
    ];
    assert!(store.append(failing).is_err());
    assert_eq!(log_files(dir.path()), std::slice::from_ref(&day1));
    assert!(!anchor.exists(), "no anchor for a day that holds nothing");

    store.append(&records[2..])?;
    assert!(
        day1.exists(),
        "the new day's first batch is not durable yet"
    );
    assert!(!anchor.exists());
    store.flush()?;
    assert!(
        !day1.exists(),
        "expired once the new file's first batch is durable"
    );
    assert!(anchor.exists());
    drop(store);
    let report = verify(dir.path());
    assert_eq!((report.events, report.first_sequence), (1, Some(3)));
    Ok(())
}

/// Under an HMAC key the chain continues from an anchor-only directory only when the key
/// authenticates the anchor, as it continues after a last line only when that verifies.
#[tokio::test]
async fn an_anchor_only_directory_under_hmac_needs_an_anchor_the_key_authenticates() -> TestResult {
    let key = audit_host::Integrity::hmac(&[5u8; 32])?;
    let other = audit_host::Integrity::hmac(&[6u8; 32])?;
    for (written_with, continues) in [(&key, true), (&other, false)] {
        let dir = tempfile::tempdir()?;
        let open = || {
            AuditTrail::builder()
                .storage_path(dir.path())
                .integrity(key.clone())
                .clock(|| at(2026, 3, 20))
                .build()
        };
        let trail = open()?;
        log_n(&trail, 3).await?;
        trail.close().await?;
        let last: serde_json::Value =
            serde_json::from_str(all_lines(dir.path()).last().ok_or("no line")?)?;
        let anchor = audit_format::Anchor {
            previous_hash: last["checksum"].as_str().map(str::to_owned),
            removed: None,
            sequence_number: 4,
        };
        anchor.write(dir.path(), written_with)?;
        std::fs::remove_file(dir.path().join("audit_2026-03-20.jsonl"))?;
        match open() {
            Ok(trail) => {
                assert!(continues);
                log_n(&trail, 1).await?;
                trail.close().await?;
                assert_eq!(sequences(dir.path()), [4]);
                assert_eq!(
                    audit_host::verify_dir(dir.path(), &key)?.first_sequence,
                    Some(4)
                );
            }
            Err(e) => {
                assert!(!continues, "{e}");
                assert!(e.to_string().contains("does not authenticate"), "{e}");
            }
        }
    }
    Ok(())
}
