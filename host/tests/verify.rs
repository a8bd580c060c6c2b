//! Verifying a stored chain: where it breaks, and what verify says of a damaged retention
//! anchor or a tampered line.

mod common;

use audit_host::verify::VerifyError;
use audit_host::{AuditTrail, Error, Integrity};
use common::*;

#[tokio::test]
async fn an_unreadable_retention_anchor_is_an_error_not_a_silent_restart() -> TestResult {
    let dir = tempfile::tempdir()?;
    let trail = file_trail(dir.path())?;
    log_n(&trail, 2).await?;
    trail.close().await?;
    let anchor = dir.path().join(".audit-anchor.json");
    std::fs::write(&anchor, "{\"sequence_number\":")?;
    match audit_host::verify_dir(dir.path(), &Integrity::Sha256) {
        Err(e @ VerifyError::Io(Error::Integrity(_))) => {
            let shown = e.to_string();
            assert!(
                shown.contains(&anchor.display().to_string())
                    && shown.contains("unreadable retention anchor"),
                "{shown}"
            );
        }
        other => panic!("expected an anchor error, got {other:?}"),
    }
    std::fs::remove_file(&anchor)?;
    std::fs::create_dir(&anchor)?;
    match audit_host::verify_dir(dir.path(), &Integrity::Sha256) {
        Err(VerifyError::Io(Error::Io { context, path, .. })) => {
            assert_eq!((context, path), ("cannot read", anchor));
        }
        other => panic!("expected a read error, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn verify_chain_reports_a_tampered_line_as_an_integrity_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    let trail = AuditTrail::builder()
        .storage_path(dir.path())
        .clock(|| at(2026, 3, 1))
        .build()?;
    log_n(&trail, 3).await?;
    trail.flush().await?;
    let file = dir.path().join("audit_2026-03-01.jsonl");
    let text = std::fs::read_to_string(&file)?;
    std::fs::write(&file, text.replacen("\"e1\"", "\"E1\"", 1))?;
    match trail.verify_chain().await {
        Err(Error::Integrity(message)) => assert!(
            message.starts_with(&format!("sequence 2 at {}:2:", file.display())),
            "{message}"
        ),
        other => panic!("expected an integrity error, got {other:?}"),
    }
    trail.close().await?;
    Ok(())
}
