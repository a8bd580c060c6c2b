//! Checked-in files: the canonical form, and the Python (fapilog) trail's own storage form.

mod common;

use std::path::{Path, PathBuf};

use audit_host::verify::VerifyError;
use audit_host::{AuditEvent, AuditEventType, Integrity, verify_dir};
use common::*;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/python_canonical")
}

fn fapilog_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/python_fapilog")
}

#[test]
fn python_written_files_verify() {
    let report = verify_dir(&fixture_dir(), &Integrity::Sha256).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((report.events, report.files), (3, 1));
}

#[test]
fn python_written_lines_parse_into_events() -> TestResult {
    let text = std::fs::read_to_string(fixture_dir().join("audit_2025-06-01.jsonl"))?;
    let events: Vec<AuditEvent> = text
        .lines()
        .map(AuditEvent::from_json)
        .collect::<Result<_, _>>()?;
    assert_eq!(events[1].event_type, AuditEventType::DataAccess);
    assert_eq!(
        events[1].message,
        "Data read on resource: patients/7 — café"
    );
    assert_eq!(events[2].message, "bad password for 😀");
    assert_eq!(
        events[0].previous_hash.as_deref(),
        Some("0".repeat(64).as_str())
    );
    assert_eq!(
        events[2].timestamp.map(|t| t.to_rfc3339()),
        Some("2025-06-01T12:00:03+00:00".into())
    );
    Ok(())
}

#[test]
fn a_tampered_copy_of_the_fixture_fails_at_the_right_line() -> TestResult {
    let dir = tempfile::tempdir()?;
    let text = std::fs::read_to_string(fixture_dir().join("audit_2025-06-01.jsonl"))?;
    std::fs::write(
        dir.path().join("audit_2025-06-01.jsonl"),
        text.replace("\"attempt\":3", "\"attempt\":1"),
    )?;
    match verify_dir(dir.path(), &Integrity::Sha256) {
        Err(VerifyError::Broken {
            sequence: 3,
            line: 3,
            reason,
            ..
        }) => assert!(reason.contains("checksum mismatch")),
        other => panic!("expected a failure at sequence 3, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn the_trail_continues_a_python_written_chain() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::copy(
        fixture_dir().join("audit_2025-06-01.jsonl"),
        dir.path().join("audit_2025-06-01.jsonl"),
    )?;
    // A long retention: the fixture is dated 2025 and would otherwise be expired.
    let policy = audit_host::CompliancePolicy {
        retention_days: 36_500,
        ..Default::default()
    };
    let trail = audit_host::AuditTrail::new(Some(policy), Some(dir.path().to_path_buf()), None)?;
    trail
        .log_event(AuditEventType::SystemStartup, "migrated to Rust")
        .await?;
    trail.close().await?;
    assert_eq!(sequences(dir.path()), vec![1, 2, 3, 4]);
    assert_eq!(verify(dir.path()).events, 4);
    Ok(())
}

#[test]
fn files_written_by_the_python_trail_itself_verify() {
    let report = verify_dir(&fapilog_dir(), &Integrity::Sha256).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.events, 3);
}

#[test]
fn tampering_with_a_python_written_file_is_caught() -> TestResult {
    let dir = tempfile::tempdir()?;
    let text = std::fs::read_to_string(fapilog_dir().join("audit_2025-06-01.jsonl"))?;
    assert!(text.contains("\"ratio\":0.25"));
    std::fs::write(
        dir.path().join("audit_2025-06-01.jsonl"),
        text.replace("\"ratio\":0.25", "\"ratio\":0.5"),
    )?;
    match verify_dir(dir.path(), &Integrity::Sha256) {
        Err(VerifyError::Broken {
            sequence: 2,
            line: 2,
            reason,
            ..
        }) => assert!(reason.contains("checksum mismatch")),
        other => panic!("expected a failure at sequence 2, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn the_trail_continues_the_python_trails_own_chain() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::copy(
        fapilog_dir().join("audit_2025-06-01.jsonl"),
        dir.path().join("audit_2025-06-01.jsonl"),
    )?;
    let policy = audit_host::CompliancePolicy {
        retention_days: 36_500,
        ..Default::default()
    };
    let trail = audit_host::AuditTrail::new(Some(policy), Some(dir.path().to_path_buf()), None)?;
    trail
        .log_event(AuditEventType::SystemStartup, "migrated to Rust")
        .await?;
    trail.close().await?;
    assert_eq!(sequences(dir.path()), vec![1, 2, 3, 4]);
    assert_eq!(verify(dir.path()).events, 4);
    Ok(())
}

#[tokio::test]
async fn a_file_backend_added_later_verifies_on_its_own() -> TestResult {
    let first = tempfile::tempdir()?;
    let second = tempfile::tempdir()?;
    let trail = audit_host::AuditTrail::new(None, Some(first.path().to_path_buf()), None)?;
    trail
        .log_event(AuditEventType::DataAccess, "before")
        .await?;
    trail.close().await?;
    let trail = audit_host::AuditTrail::builder()
        .file_backend(first.path(), audit_host::DEFAULT_MAX_FILE_BYTES)
        .file_backend(second.path(), audit_host::DEFAULT_MAX_FILE_BYTES)
        .build()?;
    trail.log_event(AuditEventType::DataAccess, "after").await?;
    trail.close().await?;
    assert_eq!(verify(first.path()).events, 2);
    let report = verify(second.path());
    assert_eq!((report.events, report.first_sequence), (1, Some(2)));
    Ok(())
}

#[test]
fn python_restarts_and_nested_datetimes_verify_with_a_warning() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/python_fapilog_restarts");
    let report = verify_dir(&dir, &Integrity::Sha256).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.events, 4);
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(
        report.warnings[0].contains(":3: a new chain starts at sequence 1"),
        "{:?}",
        report.warnings
    );
}

#[tokio::test]
async fn a_canonical_line_restarting_at_one_is_still_a_failure() -> TestResult {
    // Only lines the trail did not write get the restart allowance: in a directory the trail
    // wrote from its first line (its `.audit-origin.json` records no imported line), a chain
    // that restarts (for example after lines were swapped in) must fail.
    let dir = tempfile::tempdir()?;
    let trail = audit_host::AuditTrail::new(None, Some(dir.path().to_path_buf()), None)?;
    trail.log_event(AuditEventType::DataAccess, "a1").await?;
    trail.close().await?;
    let file = log_files(dir.path()).remove(0);
    let first = std::fs::read_to_string(&file)?;
    std::fs::write(&file, format!("{first}{first}"))?;
    match verify_dir(dir.path(), &Integrity::Sha256) {
        Err(VerifyError::Broken {
            sequence: 2,
            line: 2,
            ..
        }) => {}
        other => panic!("expected a failure at sequence 2, got {other:?}"),
    }
    Ok(())
}
