//! Failures seen through the `audit` command: a file-size limit in the middle of a batch, and
//! a directory held by a running `audit emit`.
//!
//! Moved from host/tests/failures.rs and host/tests/trail_basics.rs.

mod common;

use audit_host::{AuditTrail, Error};
use common::*;

#[cfg(target_os = "linux")]
fn emit_with_file_size_limit(
    cwd: &std::path::Path,
    events: std::ops::Range<u32>,
    limit_kib: Option<u32>,
    args: &str,
) -> std::process::Output {
    use std::io::Write;
    let input: String = events
        .map(|i| format!("{{\"event_type\":\"data_access\",\"message\":\"event {i}\"}}\n"))
        .collect();
    let limit = limit_kib.map_or_else(String::new, |k| format!("ulimit -f {k};"));
    // No `trap '' XFSZ`: `audit` ignores SIGXFSZ itself, so write() fails with EFBIG and the
    // batch is rolled back instead of the process dying with a partial line (exit 153).
    let script = format!("{limit} exec {} emit {args}", audit_bin().display());
    let mut child = std::process::Command::new("bash")
        .args(["-c", &script])
        .current_dir(cwd)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn bash");
    let mut stdin = child.stdin.take().expect("stdin");
    // The child may stop reading early; a broken pipe is expected then.
    let _ = stdin.write_all(input.as_bytes());
    drop(stdin);
    child.wait_with_output().expect("wait")
}

#[cfg(target_os = "linux")]
#[test]
fn a_file_size_limit_gives_an_error_no_partial_line_and_recovery() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let logs = cwd.path().join("logs");
    let out = emit_with_file_size_limit(cwd.path(), 0..100, None, "--dir logs");
    assert!(out.status.success());
    let before = std::fs::metadata(log_files(&logs).pop().ok_or("file")?)?.len();
    assert!(before < 128 * 1024);
    // RLIMIT_FSIZE (128 KiB) runs out in the middle of a batch.
    let out = emit_with_file_size_limit(cwd.path(), 100..5000, Some(128), "--dir logs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot write audit file") && stderr.contains("File too large"),
        "{stderr}"
    );
    let file = log_files(&logs).pop().ok_or("file")?;
    let bytes = std::fs::read(&file)?;
    assert!(bytes.len() as u64 >= before && bytes.len() <= 128 * 1024);
    assert!(bytes.ends_with(b"\n"), "partial line left behind");
    let report = verify(&logs);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert!(report.events >= 100);
    // Space returns: the next run continues the chain without a gap.
    let out = emit_with_file_size_limit(cwd.path(), 0..10, None, "--dir logs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seqs = sequences(&logs);
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    assert_eq!(verify(&logs).events, report.events + 10);
    Ok(())
}

#[cfg(target_os = "linux")]
#[test]
fn after_a_rolled_back_write_the_events_written_before_it_are_acknowledged() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let logs = cwd.path().join("logs");
    // Batched mode: the file fills up (RLIMIT_FSIZE, 1 MiB) after some batches were written,
    // and before (or long after) the last periodic fdatasync: only the rollback's fdatasync
    // makes the last of them durable. A queue of 512 events keeps every batch far below
    // 1 MiB, so the first batch is stored however slowly the writer starts (with the default
    // 16,384 the whole input could be one batch, rolled back whole).
    std::fs::write(
        cwd.path().join("audit.toml"),
        "[trail]\nstorage_path = \"logs\"\nqueue_capacity = 512\n",
    )?;
    let out = emit_with_file_size_limit(
        cwd.path(),
        0..10_000,
        Some(1024),
        "--config audit.toml --ack",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("File too large"), "{stderr}");
    let stored = sequences(&logs);
    assert!(stored.len() >= 100, "{} events stored", stored.len());
    assert_eq!(verify(&logs).events, stored.len() as u64);
    let acked: Vec<u64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split(' ').next().and_then(|s| s.parse().ok()))
        .collect::<Option<_>>()
        .ok_or("an acknowledgement is not `SEQUENCE EVENT_ID`")?;
    // Every stored event is acknowledged (they are durable), and nothing else.
    assert!(
        acked == stored,
        "{} acknowledged ({:?}..{:?}), {} stored",
        acked.len(),
        acked.first(),
        acked.last(),
        stored.len()
    );
    // `close` counts as not durable only what it could not write.
    let accepted: usize = stderr
        .split(" events were accepted before the error")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .ok_or("no `N events were accepted before the error`")?;
    let unwritten = accepted - stored.len();
    assert!(
        stderr.contains(&format!(
            "{unwritten} accepted event(s) were NOT written to it and {unwritten} were not confirmed durable"
        )),
        "{stderr}"
    );
    Ok(())
}

#[tokio::test]
async fn a_directory_held_by_another_process_names_its_pid() -> TestResult {
    let dir = tempfile::tempdir()?;
    // `audit emit` opens the trail, then waits on its (empty, open) stdin.
    let mut child = std::process::Command::new(audit_bin())
        .args(["emit", "--dir"])
        .arg(dir.path())
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let lock = dir.path().join(".audit.lock");
    let pid = child.id().to_string();
    for _ in 0..500 {
        if std::fs::read_to_string(&lock).is_ok_and(|t| t.trim() == pid) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let err = AuditTrail::new(None, Some(dir.path().to_path_buf()), None).err();
    assert!(
        matches!(&err, Some(Error::DirectoryLocked { pid: Some(p), .. }) if *p == child.id()),
        "{err:?}"
    );
    let msg = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains(&format!("process {pid} holds it")), "{msg}");
    drop(child.stdin.take());
    assert!(child.wait()?.success());
    Ok(())
}
