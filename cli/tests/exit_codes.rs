//! The exit codes every command shares (docs/operations.md, "Exit codes"): the cases not
//! covered by the topic files (a locked directory, an output file that cannot be written).

mod common;

use audit_host::AuditTrail;
use common::*;

const EVENT: &str = "{\"event_type\":\"data_access\",\"message\":\"m\"}\n";

#[tokio::test]
async fn a_directory_another_process_writes_exits_75() -> TestResult {
    let cwd = tempfile::tempdir()?;
    // This test process holds the directory's lock while `audit emit` tries to start.
    let trail = AuditTrail::new(None, Some(cwd.path().join("logs")), None)?;
    let out = audit(&["emit", "--dir", "logs"], cwd.path(), EVENT);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{err}");
    assert!(err.contains("is locked"), "{err}");
    trail.close().await?;
    // Once it is released, the same command succeeds.
    let out = audit(&["emit", "--dir", "logs"], cwd.path(), EVENT);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    Ok(())
}

#[test]
fn an_output_file_that_cannot_be_created_exits_74_before_anything_is_recorded() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let out = audit(
        &[
            "emit",
            "--dir",
            "logs",
            "--rejects",
            "no/such/dir/rejects.jsonl",
        ],
        cwd.path(),
        EVENT,
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(74), "{err}");
    assert!(err.contains("cannot open --rejects file"), "{err}");
    assert!(!cwd.path().join("logs").exists(), "nothing recorded");
    Ok(())
}
