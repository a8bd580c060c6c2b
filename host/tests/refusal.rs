//! Per-record refusal (issue 12): a plugin exporting `refuse` says which records of a batch
//! it can never store; the rest are stored, the refused ones go to `dead-letter.jsonl` in the
//! backend's spool directory with the reason and are counted; with `refuse = "fail"` and
//! `required = true` a refusal fails the trail closed and the batch stays in the spool.
//! The real `faulty` fixture plugin, loaded at runtime.

mod common;

use std::path::Path;
use std::time::Duration;

use audit_host::{AuditEventType, AuditTrail, Error};
use common::*;

/// A config with a file backend in `dir/logs` and the faulty plugin (`name = "siem"`)
/// recording to `dir/record.txt`, refusing sequence 3; `extra` goes into the plugin entry.
fn config(dir: &Path, extra: &str) -> std::io::Result<std::path::PathBuf> {
    let path = dir.join("audit.toml");
    std::fs::write(
        &path,
        format!(
            r#"[trail]
storage_path = {logs}

[[backends]]
type = "file"

[[backends]]
type = "plugin"
name = "siem"
library = {lib}
{extra}
config = {{ record = {record}, refuse_sequences = [3], refuse_reason = "message too long for the SIEM" }}
"#,
            logs = toml_str(&dir.join("logs")),
            lib = toml_str(&plugin_lib("audit_backend_faulty")),
            record = toml_str(&dir.join("record.txt")),
        ),
    )?;
    Ok(path)
}

fn recorded(dir: &Path) -> Result<Vec<u64>, Box<dyn std::error::Error>> {
    Ok(std::fs::read_to_string(dir.join("record.txt"))?
        .lines()
        .map(str::parse)
        .collect::<Result<_, _>>()?)
}

#[tokio::test]
async fn a_refused_record_goes_to_the_dead_letter_file_and_the_others_are_stored() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let trail = AuditTrail::from_config_file(&config(tmp.path(), "")?)?;
    log_n(&trail, 5).await?;
    trail.flush().await?;
    let stats = trail.statistics();
    trail.close().await?;

    // The others are stored by the plugin; the file backend has all five.
    assert_eq!(recorded(tmp.path())?, [1, 2, 4, 5]);
    let logs = tmp.path().join("logs");
    assert_eq!(sequences(&logs), [1, 2, 3, 4, 5]);
    // The refused one is in the dead-letter file, with its reason and its exact line.
    let dead = std::fs::read_to_string(logs.join(".spool/siem/dead-letter.jsonl"))?;
    let entries: Vec<serde_json::Value> = dead
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(entries.len(), 1, "{dead}");
    let e = &entries[0];
    assert_eq!(e["backend"], "siem");
    assert_eq!(e["sequence_number"], 3);
    assert_eq!(e["reason"], "message too long for the SIEM");
    assert_eq!(e["line"], all_lines(&logs)[2].as_str());
    // Counted; the watermarks went past it.
    let siem = &stats.per_backend[1];
    assert_eq!((siem.refused, siem.delivered), (1, 4));
    assert_eq!(siem.delivered_sequence, 5);
    assert_eq!(stats.durable_sequence, 5);
    assert_eq!(stats.last_error, None);
    Ok(())
}

#[tokio::test]
async fn without_a_spool_the_dead_letter_file_is_still_written() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let trail = AuditTrail::from_config_file(&config(tmp.path(), "spool_max_bytes = 0")?)?;
    log_n(&trail, 4).await?;
    trail.close().await?;
    assert_eq!(recorded(tmp.path())?, [1, 2, 4]);
    let dead = std::fs::read_to_string(tmp.path().join("logs/.spool/siem/dead-letter.jsonl"))?;
    assert_eq!(dead.lines().count(), 1, "{dead}");
    assert!(dead.contains("\"sequence_number\":3"), "{dead}");
    Ok(())
}

#[tokio::test]
async fn refuse_fail_on_a_required_backend_fails_closed_and_keeps_the_batch() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let trail = AuditTrail::from_config_file(&config(tmp.path(), "refuse = \"fail\"")?)?;
    log_n(&trail, 5).await?;
    // The lane refuses on its own thread: a flush that returns before it has tried the batch
    // is fine; the next one reports the refusal.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut flushed = trail.flush().await;
    while flushed.is_ok() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        flushed = trail.flush().await;
    }
    assert!(
        matches!(&flushed, Err(Error::Storage { backend, source, .. })
            if backend == "siem" && source.to_string().contains("refused 1 record(s), first sequence 3: message too long for the SIEM (refuse = \"fail\")")),
        "{flushed:?}"
    );
    let logged = trail
        .log_event(AuditEventType::DataAccess, "after the refusal")
        .await;
    assert!(
        matches!(&logged, Err(Error::Storage { backend, .. }) if backend == "siem"),
        "{logged:?}"
    );
    // The trail refuses before the lane has moved the batch to its spool.
    wait_until(Duration::from_secs(10), "the lane to be fatal", || {
        trail.statistics().per_backend[1].state == "fatal"
    })
    .await;
    assert_eq!(trail.statistics().per_backend[1].refused, 1);
    let _ = trail.close().await;

    // Nothing lost: the file backend has all five, and the refused one waits in the spool
    // (with the rest of its batch) for the next start; nothing went to a dead-letter file.
    let logs = tmp.path().join("logs");
    assert_eq!(sequences(&logs), [1, 2, 3, 4, 5]);
    let spool = logs.join(".spool/siem");
    let spooled: String = std::fs::read_dir(&spool)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("spool-"))
        .map(|e| std::fs::read_to_string(e.path()))
        .collect::<Result<_, _>>()?;
    assert!(
        spooled.lines().any(|l| l == all_lines(&logs)[2]),
        "sequence 3 is not in the spool:\n{spooled}"
    );
    assert!(!spool.join("dead-letter.jsonl").exists());
    Ok(())
}
