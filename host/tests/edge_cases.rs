//! Error paths and edge cases: event parsing, recovery of damaged files, the file backend on
//! its own, configuration and builder validation, plugin adapters, verify. The `audit`
//! command's: cli/tests/edge_cases.rs.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use audit_host::config::{BackendConfig, IntegrityConfig, TrailConfig};
use audit_host::plugin::{LoadOptions, LoadedPlugin};
use audit_host::verify::VerifyError;
use audit_host::{
    AuditEvent, AuditEventType, AuditLogLevel, AuditRecord, AuditTrail, BackendOptions,
    ComplianceLevel, CompliancePolicy, Durability, Error, ErrorReport, ErrorSeverity, EventQuery,
    FileStorageBackend, Integrity, OnFull, StorageBackend, async_trait,
};
use chrono::{DateTime, TimeZone, Utc};
use common::*;
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------------------
// Helpers

/// A backend that keeps every record it is given.
#[derive(Debug, Default)]
struct Capture(Mutex<Vec<AuditRecord>>);

#[async_trait]
impl StorageBackend for Capture {
    fn name(&self) -> &str {
        "capture"
    }
    async fn write(&self, record: &AuditRecord) -> audit_host::Result<()> {
        self.0.lock().expect("lock").push(record.clone());
        Ok(())
    }
    async fn flush(&self) -> audit_host::Result<()> {
        Ok(())
    }
    async fn close(&self) -> audit_host::Result<()> {
        Ok(())
    }
}

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 12, 0, 0)
        .single()
        .expect("valid date")
}

/// Records chained by a real trail, one per timestamp, to hand to a backend directly.
async fn records_at(
    times: &[DateTime<Utc>],
) -> Result<Vec<AuditRecord>, Box<dyn std::error::Error>> {
    let capture = Arc::new(Capture::default());
    let trail = AuditTrail::builder()
        .backend(Box::new(Arc::clone(&capture)))
        .build()?;
    for (i, t) in times.iter().enumerate() {
        trail
            .log_event(AuditEventType::DataAccess, format!("record {i}"))
            .timestamp(*t)
            .await?;
    }
    trail.close().await?;
    let records = capture.0.lock().expect("lock").clone();
    Ok(records)
}

fn map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn invalid(json: &str) -> (String, String) {
    match AuditEvent::from_json(json) {
        Err(Error::InvalidEvent { key, message }) => (key, message),
        other => panic!("expected InvalidEvent for {json}, got {other:?}"),
    }
}

#[cfg(unix)]
fn write_key(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, bytes)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

fn toml_str(p: &Path) -> String {
    format!("{:?}", p.to_str().expect("utf-8 path"))
}

// ---------------------------------------------------------------------------------------
// Event parsing

#[test]
fn every_optional_key_may_be_null() -> TestResult {
    let ev = AuditEvent::from_json(
        &json!({
            "event_type": "data_access",
            "message": "m",
            "log_level": "warning",
            "compliance_level": "hipaa",
            "contains_pii": false,
            "contains_phi": true,
            "event_id": null, "timestamp": null, "component": null, "operation": null,
            "user_id": null, "session_id": null, "request_id": null, "client_ip": null,
            "user_agent": null, "container_id": null, "plugin_name": null, "hostname": null,
            "process_id": null, "error_context": null, "error_category": null,
            "error_severity": null, "data_classification": null, "regulatory_tags": null,
            "retention_category": null, "metadata": null, "sequence_number": null,
            "previous_hash": null, "checksum": null, "signature": null
        })
        .to_string(),
    )?;
    let mut want = AuditEvent::new(AuditEventType::DataAccess, "m")
        .log_level(AuditLogLevel::Warning)
        .contains_phi(true);
    want.compliance_level = ComplianceLevel::Hipaa;
    assert_eq!(ev, want);
    Ok(())
}

#[test]
fn a_wrongly_typed_value_is_named_with_what_was_expected_and_found() {
    let base = r#""event_type":"data_access","message":"m""#;
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"{"event_type":"data_access","message":5}"#,
            "message",
            "expected a string, found number 5",
        ),
        (
            r#""timestamp":1700000000"#,
            "timestamp",
            "expected an RFC 3339 timestamp string, found number 1700000000",
        ),
        (
            r#""process_id":"4242""#,
            "process_id",
            r#"expected an integer, found string "4242""#,
        ),
        (
            r#""process_id":1.5"#,
            "process_id",
            "expected an integer, found number 1.5",
        ),
        (
            r#""regulatory_tags":"sox""#,
            "regulatory_tags",
            r#"expected an array of strings, found string "sox""#,
        ),
        (
            r#""regulatory_tags":["sox",7]"#,
            "regulatory_tags",
            "expected an array of strings, found number 7",
        ),
        (
            r#""error_context":[]"#,
            "error_context",
            "expected an object, found an array",
        ),
        (
            r#""sequence_number":-1"#,
            "sequence_number",
            "expected a non-negative integer, found number -1",
        ),
        (
            r#""user_id":{}"#,
            "user_id",
            "expected a string or null, found an object",
        ),
        (
            r#""hostname":true"#,
            "hostname",
            "expected a string or null, found true",
        ),
        (
            r#""log_level":null"#,
            "log_level",
            "expected a string, found null",
        ),
        (
            r#""contains_pii":null"#,
            "contains_pii",
            "expected true or false, found null",
        ),
    ];
    for (fragment, key, message) in cases {
        let json = if fragment.starts_with('{') {
            (*fragment).to_owned()
        } else {
            format!("{{{base},{fragment}}}")
        };
        assert_eq!(
            invalid(&json),
            ((*key).to_owned(), (*message).to_owned()),
            "{json}"
        );
    }
}

#[test]
fn a_long_wrong_value_is_shortened_in_the_message_even_when_it_is_not_ascii() {
    let prefix = "expected an integer, found ";
    for filler in ["x", "é", "日本", "🦀"] {
        let long = filler.repeat(100);
        let (key, message) = invalid(
            &json!({"event_type": "data_access", "message": "m", "process_id": long}).to_string(),
        );
        assert_eq!(key, "process_id");
        let shown = message.strip_prefix(prefix).unwrap_or_default();
        assert!(
            shown.starts_with("string \"") && shown.ends_with("..."),
            "{message}"
        );
        assert!(shown.len() <= 60, "shortened to 60 bytes: {shown}");
        assert!(long.starts_with(&shown[8..shown.len() - 3]), "{shown}");
    }
}

#[test]
fn chain_fields_are_read_from_stored_lines_but_refused_from_input() -> TestResult {
    let stored = map(json!({
        "event_type": "data_access", "message": "m",
        "sequence_number": 7, "previous_hash": "ab", "checksum": "cd"
    }));
    let ev = AuditEvent::from_map(stored, true)?;
    assert_eq!(ev.sequence_number, Some(7));
    assert_eq!(ev.previous_hash.as_deref(), Some("ab"));
    assert_eq!(ev.checksum.as_deref(), Some("cd"));
    for key in ["sequence_number", "previous_hash", "checksum"] {
        let mut input = map(json!({"event_type": "data_access", "message": "m"}));
        input.insert(key.to_owned(), Value::Null);
        match AuditEvent::from_map(input, false) {
            Err(Error::InvalidEvent { key: k, message }) => {
                assert_eq!(k, key);
                assert!(message.contains("assigned by the trail"), "{message}");
            }
            other => panic!("expected {key} to be refused, got {other:?}"),
        }
    }
    Ok(())
}

#[test]
fn an_error_report_carries_its_ids_and_context_into_the_event() {
    let ev = ErrorReport::new("db down")
        .category("network")
        .severity(ErrorSeverity::High)
        .user_id("alice")
        .session_id("s-1")
        .request_id("r-9")
        .context("retries", 3)
        .into_event();
    assert_eq!(ev.event_type, AuditEventType::ErrorOccurred);
    assert_eq!(ev.message, "Error occurred: db down");
    assert_eq!(ev.log_level, AuditLogLevel::Error);
    assert_eq!(ev.user_id.as_deref(), Some("alice"));
    assert_eq!(ev.session_id.as_deref(), Some("s-1"));
    assert_eq!(ev.request_id.as_deref(), Some("r-9"));
    assert_eq!(ev.error_category.as_deref(), Some("network"));
    assert_eq!(ev.error_severity.as_deref(), Some("high"));
    assert_eq!(
        ev.error_context,
        Some(map(json!({
            "retries": 3, "message": "db down", "severity": "high", "category": "network"
        })))
    );

    let plain = ErrorReport::new("odd").into_event();
    assert_eq!(plain.log_level, AuditLogLevel::Warning, "default is medium");
    assert_eq!(plain.error_category, None);
    assert_eq!(
        plain.error_context,
        Some(map(json!({"message": "odd", "severity": "medium"})))
    );
    for (severity, level) in [
        (ErrorSeverity::Critical, AuditLogLevel::Critical),
        (ErrorSeverity::High, AuditLogLevel::Error),
        (ErrorSeverity::Medium, AuditLogLevel::Warning),
        (ErrorSeverity::Low, AuditLogLevel::Info),
        (ErrorSeverity::Info, AuditLogLevel::Info),
    ] {
        assert_eq!(
            ErrorReport::new("x")
                .severity(severity)
                .into_event()
                .log_level,
            level,
            "{severity}"
        );
    }
}

#[test]
fn debug_output_never_shows_the_hmac_key() -> TestResult {
    let key = Integrity::hmac(b"an HMAC key that is 32 bytes ok!")?;
    let shown = format!("{key:?}");
    assert_eq!(shown, "Integrity::Hmac(<key>)");
    assert_eq!(format!("{:?}", Integrity::Sha256), "Integrity::Sha256");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The file backend on its own, through the `StorageBackend` trait

#[tokio::test]
async fn the_file_backend_works_on_its_own_through_the_trait() -> TestResult {
    let records = records_at(&[at(2026, 3, 1); 5]).await?;
    assert!(format!("{:?}", records[0]).contains("sequence_number: 1"));
    let dir = tempfile::tempdir()?;
    let logs = dir.path().join("logs");
    {
        let be = FileStorageBackend::builder(&logs)
            .name(Some("primary".into()))
            .open()?;
        assert_eq!(be.name(), "primary");
        assert_eq!(be.query_dir(), Some(logs.as_path()));
        assert_eq!(be.dir(), logs);
        assert_eq!(be.resume().await?, None, "an empty directory has no chain");
        for r in &records {
            be.write(r).await?;
        }
        be.flush().await?;
        be.close().await?;
    }
    let stored: Vec<String> = records.iter().map(|r| r.line().to_owned()).collect();
    assert_eq!(all_lines(&logs), stored);

    let be = FileStorageBackend::open(&logs)?;
    assert_eq!(be.name(), format!("file:{}", logs.display()));
    let head = be.resume().await?.ok_or("the stored chain's head")?;
    assert_eq!(head.sequence_number, 5);
    assert_eq!(head.line, stored[4]);
    assert!(
        head.location.ends_with("audit_2026-03-01.jsonl:5"),
        "{}",
        head.location
    );
    be.close().await?;
    assert_eq!(verify(&logs).events, 5);
    Ok(())
}

/// A full disk (the day's file is `/dev/full`): the write fails, and until the failed write
/// can be rolled back, nothing more is written; once it can, writing continues.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_failed_write_blocks_further_writes_until_it_is_rolled_back() -> TestResult {
    let records = records_at(&[at(2026, 3, 1); 2]).await?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("audit_2026-03-01.jsonl");
    std::os::unix::fs::symlink("/dev/full", &file)?;
    let be = FileStorageBackend::open(dir.path())?;
    match be.write(&records[0]).await {
        Err(Error::Io {
            context, source, ..
        }) => {
            assert_eq!(context, "cannot write audit file");
            assert_eq!(source.kind(), std::io::ErrorKind::StorageFull);
        }
        other => panic!("expected the write to fail, got {other:?}"),
    }
    // The rollback (truncating /dev/full) failed too: it is retried before the next write.
    match be.write(&records[0]).await {
        Err(Error::Io { context, path, .. }) => {
            assert_eq!(context, "cannot roll back failed write in");
            assert_eq!(path, file);
        }
        other => panic!("expected the pending rollback to refuse the write, got {other:?}"),
    }
    // Space again: the rollback succeeds and the records are written.
    std::fs::remove_file(&file)?;
    std::fs::write(&file, "")?;
    be.write(&records[0]).await?;
    be.write(&records[1]).await?;
    be.close().await?;
    assert_eq!(verify(dir.path()).events, 2);
    Ok(())
}

/// A failed fdatasync may have lost data: the backend refuses everything afterwards.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_failed_fdatasync_poisons_the_backend() -> TestResult {
    let records = records_at(&[at(2026, 3, 1); 2]).await?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("audit_2026-03-01.jsonl");
    // fdatasync on /dev/null fails with EINVAL.
    std::os::unix::fs::symlink("/dev/null", &file)?;
    let be = FileStorageBackend::open(dir.path())?;
    be.write(&records[0]).await?;
    match be.flush().await {
        Err(Error::Io { context, path, .. }) => {
            assert_eq!(context, "fdatasync failed on");
            assert_eq!(path, file);
        }
        other => panic!("expected the flush to fail, got {other:?}"),
    }
    for result in [
        be.write(&records[1]).await,
        be.flush().await,
        be.close().await,
    ] {
        match result {
            Err(Error::Backend { message }) => assert!(
                message.contains("fdatasync of") && message.contains("Restart the process"),
                "{message}"
            ),
            other => panic!("expected the poisoned backend to refuse, got {other:?}"),
        }
    }
    Ok(())
}

/// Leaving a day's file fdatasyncs it; when that fails, the backend is poisoned too.
#[cfg(target_os = "linux")]
#[test]
fn a_failed_fdatasync_when_leaving_a_day_poisons_the_backend() -> TestResult {
    let rt = rt();
    let records = rt.block_on(records_at(&[at(2026, 3, 1), at(2026, 3, 2)]))?;
    let dir = tempfile::tempdir()?;
    let day1 = dir.path().join("audit_2026-03-01.jsonl");
    std::os::unix::fs::symlink("/dev/null", &day1)?;
    let be = FileStorageBackend::open(dir.path())?;
    be.write_batch_blocking(&records[..1])?;
    match be.write_batch_blocking(&records[1..]) {
        Err(Error::Io { context, path, .. }) => {
            assert_eq!(context, "fdatasync failed on");
            assert_eq!(path, day1);
        }
        other => panic!("expected the day switch to fail, got {other:?}"),
    }
    assert!(!dir.path().join("audit_2026-03-02.jsonl").exists());
    assert!(matches!(
        be.write_batch_blocking(&records[1..]),
        Err(Error::Backend { .. })
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Recovering the end of the chain from damaged or unusual files

async fn log_n(trail: &AuditTrail, n: usize) -> audit_host::Result<()> {
    for i in 0..n {
        trail
            .log_event(AuditEventType::DataAccess, format!("e{i}"))
            .await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_last_line_longer_than_the_tail_chunk_is_recovered() -> TestResult {
    let big = "x".repeat(200 * 1024);
    // Short lines, then a long last line: the tail read grows until it holds a line start.
    // Then a directory whose only line is long: the whole file is read.
    for short_lines in [50, 0] {
        let dir = tempfile::tempdir()?;
        let trail = AuditTrail::new(None, Some(dir.path().to_path_buf()), None)?;
        log_n(&trail, short_lines).await?;
        trail
            .log_event(AuditEventType::DataExport, "big")
            .meta("blob", big.as_str())
            .await?;
        trail.close().await?;

        let trail = AuditTrail::new(None, Some(dir.path().to_path_buf()), None)?;
        log_n(&trail, 1).await?;
        trail.close().await?;
        let n = short_lines as u64 + 2;
        assert_eq!(sequences(dir.path()), (1..=n).collect::<Vec<_>>());
        assert_eq!(verify(dir.path()).events, n);
    }
    Ok(())
}

#[tokio::test]
async fn a_long_last_line_followed_by_a_torn_tail_is_recovered() -> TestResult {
    let dir = tempfile::tempdir()?;
    let trail = AuditTrail::new(None, Some(dir.path().to_path_buf()), None)?;
    log_n(&trail, 3).await?;
    trail
        .log_event(AuditEventType::DataExport, "big")
        .meta("blob", "y".repeat(100 * 1024))
        .await?;
    trail.close().await?;
    let file = log_files(dir.path()).pop().ok_or("a file")?;
    let good = std::fs::read(&file)?;
    let long_torn = vec![b'q'; 70 * 1024];
    for tail in [&b"{\"checksum\":\"ab"[..], b"not json\n", &long_torn] {
        let mut damaged = good.clone();
        damaged.extend_from_slice(tail);
        std::fs::write(&file, &damaged)?;

        let trail = AuditTrail::new(None, Some(dir.path().to_path_buf()), None)?;
        trail.close().await?;
        assert_eq!(std::fs::read(&file)?, good, "the torn tail is cut off");
        let torn = std::fs::read(file.with_extension("jsonl.torn"))?;
        assert!(torn.ends_with(&[tail, b"\n"].concat()), "moved aside");
    }
    let trail = AuditTrail::new(None, Some(dir.path().to_path_buf()), None)?;
    log_n(&trail, 1).await?;
    trail.close().await?;
    assert_eq!(sequences(dir.path()), vec![1, 2, 3, 4, 5]);
    assert_eq!(verify(dir.path()).events, 5);
    Ok(())
}

#[tokio::test]
async fn an_empty_newest_file_falls_back_to_the_previous_one() -> TestResult {
    let dir = tempfile::tempdir()?;
    let trail = AuditTrail::builder()
        .storage_path(dir.path())
        .clock(|| at(2026, 3, 1))
        .build()?;
    log_n(&trail, 3).await?;
    trail.close().await?;
    let day2 = dir.path().join("audit_2026-03-02.jsonl");
    std::fs::write(&day2, "")?;

    let trail = AuditTrail::builder()
        .storage_path(dir.path())
        .clock(|| at(2026, 3, 2))
        .build()?;
    log_n(&trail, 2).await?;
    trail.close().await?;
    assert_eq!(sequences(dir.path()), vec![1, 2, 3, 4, 5]);
    assert_eq!(std::fs::read_to_string(&day2)?.lines().count(), 2);
    assert_eq!(verify(dir.path()).events, 5);
    Ok(())
}

#[tokio::test]
async fn a_newest_file_that_is_all_garbage_is_moved_aside_and_the_previous_file_continues()
-> TestResult {
    let dir = tempfile::tempdir()?;
    let trail = AuditTrail::builder()
        .storage_path(dir.path())
        .clock(|| at(2026, 3, 1))
        .build()?;
    log_n(&trail, 3).await?;
    trail.close().await?;
    let day2 = dir.path().join("audit_2026-03-02.jsonl");
    for garbage in [&b"\0\0\0\0"[..], b"not json\n\0\0"] {
        std::fs::write(&day2, garbage)?;
        let trail = AuditTrail::new(None, Some(dir.path().to_path_buf()), None)?;
        trail.close().await?;
        assert_eq!(std::fs::read(&day2)?, b"", "the garbage is cut off");
        let torn = std::fs::read(day2.with_extension("jsonl.torn"))?;
        assert!(torn.ends_with(&[garbage, b"\n"].concat()), "moved aside");
    }
    let trail = AuditTrail::builder()
        .storage_path(dir.path())
        .clock(|| at(2026, 3, 2))
        .build()?;
    log_n(&trail, 1).await?;
    trail.close().await?;
    assert_eq!(sequences(dir.path()), vec![1, 2, 3, 4]);
    assert_eq!(verify(dir.path()).events, 4);
    Ok(())
}

#[test]
fn a_last_line_that_is_json_but_not_an_event_is_refused_naming_the_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("audit_2026-03-01.jsonl");
    let foreign = "{\"hello\":\"world\"}\n";
    std::fs::write(&file, foreign)?;
    for result in [
        FileStorageBackend::open(dir.path()).map(drop),
        AuditTrail::new(None, Some(dir.path().to_path_buf()), None).map(drop),
    ] {
        match result {
            Err(Error::Integrity(message)) => assert!(
                message.contains(&file.display().to_string())
                    && message.contains("JSON but not an audit event"),
                "{message}"
            ),
            other => panic!("expected an integrity error, got {other:?}"),
        }
    }
    assert_eq!(std::fs::read_to_string(&file)?, foreign, "left untouched");
    Ok(())
}

#[tokio::test]
async fn retention_after_a_long_pause_anchors_the_chain_at_the_deleted_files_end() -> TestResult {
    let dir = tempfile::tempdir()?;
    let now = Arc::new(Mutex::new(at(2026, 3, 1)));
    let clock = {
        let now = Arc::clone(&now);
        move || *now.lock().expect("lock")
    };
    let policy = CompliancePolicy {
        retention_days: 2,
        ..Default::default()
    };
    let trail = AuditTrail::builder()
        .storage_path(dir.path())
        .policy(policy)
        .clock(clock)
        .build()?;
    log_n(&trail, 3).await?;
    // Idle for longer than the retention: every earlier file expires at once.
    *now.lock().expect("lock") = at(2026, 3, 20);
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
    let now = Arc::new(Mutex::new(at(2026, 3, 1)));
    let clock = {
        let now = Arc::clone(&now);
        move || *now.lock().expect("lock")
    };
    let trail = AuditTrail::builder()
        .storage_path(dir.path())
        .policy(policy.clone())
        .clock(clock)
        .build()?;
    log_n(&trail, 3).await?;
    *now.lock().expect("lock") = at(2026, 3, 3);
    trail
        .log_event(AuditEventType::DataExport, "big")
        .meta("blob", big.as_str())
        .await?;
    *now.lock().expect("lock") = at(2026, 3, 4);
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
    *now.lock().expect("lock") = at(2026, 3, 1);
    let clock = {
        let now = Arc::clone(&now);
        move || *now.lock().expect("lock")
    };
    let trail = AuditTrail::builder()
        .storage_path(dir.path())
        .policy(policy)
        .clock(clock)
        .build()?;
    log_n(&trail, 2).await?;
    trail
        .log_event(AuditEventType::DataExport, "big")
        .meta("blob", big.as_str())
        .await?;
    *now.lock().expect("lock") = at(2026, 3, 20);
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

/// A year outside 0000-9999 has no RFC 3339 form and no daily file name: such an event
/// would be stored where verify, query and recovery never look (and its date would expire
/// every real file). It is refused; the stored chain is untouched.
#[tokio::test]
async fn an_event_dated_outside_years_0000_to_9999_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let trail = AuditTrail::builder()
        .storage_path(dir.path())
        .clock(|| at(2026, 3, 1))
        .build()?;
    log_n(&trail, 2).await?;
    let far = Utc
        .with_ymd_and_hms(10_000, 1, 1, 0, 0, 0)
        .single()
        .ok_or("time")?;
    let before = Utc
        .with_ymd_and_hms(-1, 12, 31, 0, 0, 0)
        .single()
        .ok_or("time")?;
    for ts in [far, before] {
        match trail
            .log_event(AuditEventType::DataAccess, "when?")
            .timestamp(ts)
            .await
        {
            Err(Error::InvalidEvent { key, message }) => {
                assert_eq!(key, "timestamp");
                assert!(message.contains("outside the years 0000-9999"), "{message}");
            }
            other => panic!("expected {ts} to be refused, got {other:?}"),
        }
    }
    // Year 0 is representable (and, older than the newest file, goes into it).
    let edge = Utc
        .with_ymd_and_hms(0, 1, 1, 0, 0, 0)
        .single()
        .ok_or("time")?;
    trail
        .log_event(AuditEventType::DataAccess, "first representable year")
        .timestamp(edge)
        .await?;
    log_n(&trail, 1).await?;
    let events = trail.get_events(&EventQuery::default()).await?;
    assert_eq!(events.len(), 4);
    assert_eq!(events[1].timestamp, Some(edge));
    trail.close().await?;
    assert_eq!(
        log_files(dir.path()),
        [dir.path().join("audit_2026-03-01.jsonl")]
    );
    assert_eq!(verify(dir.path()).events, 4);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Builder validation and trail accessors

#[test]
fn zero_flush_interval_or_queue_capacity_is_refused_before_touching_the_disk() -> TestResult {
    let dir = tempfile::tempdir()?;
    let logs = dir.path().join("logs");
    let builder = AuditTrail::builder()
        .storage_path(&logs)
        .queue_capacity(7)
        .flush_interval(Duration::ZERO);
    let shown = format!("{builder:?}");
    assert!(
        shown.starts_with("AuditTrailBuilder") && shown.contains("queue_capacity: 7"),
        "{shown}"
    );
    match builder.build() {
        Err(Error::Config(e)) => {
            assert_eq!(e.key, "trail.flush_interval_ms");
            assert_eq!(
                e.to_string(),
                "trail.flush_interval_ms: must be at least 1 ms"
            );
        }
        other => panic!("expected a config error, got {other:?}"),
    }
    match AuditTrail::builder()
        .storage_path(&logs)
        .queue_capacity(0)
        .build()
    {
        Err(Error::Config(e)) => {
            assert_eq!(e.key, "trail.queue_capacity");
            assert_eq!(e.to_string(), "trail.queue_capacity: must be at least 1");
        }
        other => panic!("expected a config error, got {other:?}"),
    }
    assert!(!logs.exists(), "nothing was created");
    Ok(())
}

#[cfg(unix)]
#[tokio::test]
async fn hmac_key_files_are_checked_and_the_key_chains_the_events() -> TestResult {
    let dir = tempfile::tempdir()?;
    let key = [7u8; 32];
    let refused = |path: &Path| match AuditTrail::builder().hmac_key_file(path) {
        Err(Error::Config(e)) => {
            assert_eq!(e.key, "trail.integrity.hmac_key_file");
            e.message
        }
        other => panic!(
            "expected a config error for {}, got {other:?}",
            path.display()
        ),
    };
    let missing = dir.path().join("missing.key");
    assert!(refused(&missing).contains("cannot read key file"));
    let short = dir.path().join("short.key");
    write_key(&short, &key[..16], 0o600)?;
    assert!(refused(&short).contains("16 bytes; at least 32"));
    let open = dir.path().join("open.key");
    write_key(&open, &key, 0o640)?;
    assert!(refused(&open).contains("chmod 600"));
    match AuditTrail::builder().hmac_key(&key[..31]) {
        Err(Error::Config(e)) => assert!(e.message.contains("31 bytes"), "{e}"),
        other => panic!("expected a config error, got {other:?}"),
    }

    let good = dir.path().join("good.key");
    write_key(&good, &key, 0o600)?;
    let logs = dir.path().join("logs");
    let trail = AuditTrail::builder()
        .storage_path(&logs)
        .hmac_key_file(&good)?
        .build()?;
    log_n(&trail, 2).await?;
    assert_eq!(trail.verify_chain().await?.events, 2);
    trail.close().await?;
    assert_eq!(
        audit_host::verify_dir(&logs, &Integrity::hmac(&key)?)?.events,
        2
    );
    assert!(matches!(
        audit_host::verify_dir(&logs, &Integrity::Sha256),
        Err(VerifyError::Broken { sequence: 1, .. })
    ));
    // The same key given as an `Integrity` continues the chain.
    let trail = AuditTrail::builder()
        .storage_path(&logs)
        .integrity(Integrity::hmac(&key)?)
        .build()?;
    log_n(&trail, 1).await?;
    trail.close().await?;
    assert_eq!(
        audit_host::verify_dir(&logs, &Integrity::hmac(&key)?)?.events,
        3
    );
    Ok(())
}

#[tokio::test]
async fn statistics_and_accessors_describe_the_running_trail() -> TestResult {
    let dir = tempfile::tempdir()?;
    let logs = dir.path().join("logs");
    let policy = CompliancePolicy {
        level: ComplianceLevel::Sox,
        retention_days: 30,
        ..Default::default()
    };
    let alerts = Arc::new(Mutex::new(0u32));
    let seen = Arc::clone(&alerts);
    let trail = AuditTrail::builder()
        .policy(policy.clone())
        .named_file_backend("primary", &logs, 0)
        .alert_hook(move |_, _| *seen.lock().expect("lock") += 1)
        .build()?;
    assert_eq!(trail.policy(), &policy);
    assert_eq!(trail.file_dirs(), std::slice::from_ref(&logs));
    let shown = format!("{trail:?}");
    assert!(
        shown.starts_with("AuditTrail") && shown.contains("\"primary\""),
        "{shown}"
    );
    trail
        .log_error(
            ErrorReport::new("db down")
                .severity(ErrorSeverity::Critical)
                .session_id("s-1")
                .request_id("r-1"),
        )
        .await?;
    trail
        .log_security_event(AuditEventType::AuthenticationFailed, "bad password")
        .await?;
    trail.log_data_access("ledger", "read").await?;
    trail.flush().await?;
    let stats = trail.statistics();
    assert_eq!(
        (
            stats.total_events,
            stats.error_events,
            stats.security_events,
            stats.alerts
        ),
        (3, 1, 1, 2)
    );
    assert_eq!(
        (
            stats.queue_size,
            stats.last_sequence,
            stats.durable_sequence
        ),
        (0, 3, 3)
    );
    assert_eq!(stats.last_error, None);
    assert_eq!(stats.backends, ["primary"]);
    assert_eq!(stats.policy.compliance_level, ComplianceLevel::Sox);
    assert_eq!(stats.policy.retention_days, 30);
    assert!(stats.policy.enabled && !stats.policy.encryption_enabled);
    assert_eq!(*alerts.lock().expect("lock"), 2);

    let events = trail.get_events(&EventQuery::default()).await?;
    assert_eq!(events.len(), 3);
    let error = &events[2];
    assert_eq!(error.session_id.as_deref(), Some("s-1"));
    assert_eq!(error.request_id.as_deref(), Some("r-1"));
    assert_eq!(error.compliance_level, ComplianceLevel::Sox);
    let none = trail
        .get_events(&EventQuery {
            limit: Some(0),
            ..Default::default()
        })
        .await?;
    assert!(none.is_empty());
    trail.close().await?;
    Ok(())
}

#[tokio::test]
async fn reading_back_needs_a_file_backend() -> TestResult {
    let trail = AuditTrail::builder()
        .backend(Box::new(Capture::default()))
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

// ---------------------------------------------------------------------------------------
// Configuration

fn parse(text: &str) -> audit_host::Result<TrailConfig> {
    TrailConfig::parse(text, Path::new("/etc/audit/audit.toml"))
}

fn config_error(text: &str) -> audit_host::ConfigError {
    match parse(text) {
        Err(Error::Config(e)) => e,
        other => panic!("expected a config error for {text:?}, got {other:?}"),
    }
}

#[test]
fn plugin_backend_entries_are_validated_key_by_key() {
    let plugin = "[[backends]]\ntype = \"plugin\"\nlibrary = \"/opt/libx.so\"\n";
    let cases: &[(String, Option<usize>, &str, &str)] = &[
        (
            "[trail]\n\n[[backends]]\ntype = 1\n".into(),
            Some(3),
            "backends.type",
            "must be a string",
        ),
        (
            format!("{plugin}colour = \"red\"\n"),
            Some(1),
            "backends",
            "unknown field `colour`",
        ),
        (
            format!("{plugin}sha256 = \"abc\"\n"),
            Some(1),
            "backends.sha256",
            "`abc` is not a SHA-256 (64 hex digits)",
        ),
        (
            format!("{plugin}sha256 = \"{}\"\n", "g".repeat(64)),
            Some(1),
            "backends.sha256",
            "is not a SHA-256",
        ),
        (
            format!("{plugin}name = \"copy\"\n\n{plugin}name = \"copy\"\n"),
            Some(6),
            "backends.name",
            "`copy` is already the name of the backend at line 1",
        ),
        (
            format!("{plugin}retry_initial_ms = 0\n"),
            Some(1),
            "backends.retry_initial_ms",
            "must be at least 1",
        ),
        (
            format!("{plugin}retry_initial_ms = 500\nretry_max_ms = 100\n"),
            Some(1),
            "backends.retry_max_ms",
            "100 is less than retry_initial_ms (500)",
        ),
        (
            format!("{plugin}call_timeout_ms = 0\n"),
            Some(1),
            "backends.call_timeout_ms",
            "must be at least 1",
        ),
        (
            format!("{plugin}spool_max_bytes = -1\n"),
            Some(1),
            "backends",
            "integer `-1`, expected u64",
        ),
        (
            "[[backends]]\ntype = \"plugin\"\nlibrary = \"audit_backend_x\"\n".into(),
            Some(1),
            "backends.library",
            "set [trail] plugin_dir to the directory holding libaudit_backend_x.so",
        ),
        (
            "[[backends]]\ntype = \"file\"\nlibrary = \"x\"\n".into(),
            Some(1),
            "backends",
            "(in the [[backends]] entry with type = \"file\")",
        ),
    ];
    for (toml, line, key, message) in cases {
        let e = config_error(toml);
        assert_eq!((e.line, e.key.as_str()), (*line, *key), "{toml}");
        assert!(e.message.contains(message), "{toml}: {e}");
    }
}

#[test]
fn a_valid_plugin_entry_resolves_its_library_and_config() -> TestResult {
    let pin = "AB".repeat(32);
    let c = parse(&format!(
        "[trail]\nplugin_dir = \"plugins\"\n[[backends]]\ntype = \"plugin\"\nname = \"copy\"\nlibrary = \"audit_backend_x\"\nrequired = true\nsha256 = \"{pin}\"\nconfig = {{ path = \"a.db\", retries = 3 }}\n[[backends]]\ntype = \"plugin\"\nlibrary = \"lib/liby.so\"\nallow_insecure_permissions = true\n"
    ))?;
    assert_eq!(
        c.backends,
        [
            BackendConfig::Plugin {
                name: Some("copy".into()),
                library: PathBuf::from("/etc/audit/plugins/libaudit_backend_x.so"),
                sha256: Some(pin.clone()),
                allow_insecure_permissions: false,
                config_json: r#"{"path":"a.db","retries":3}"#.into(),
                call_timeout_ms: 30_000,
                options: BackendOptions::default(),
                line: Some(3),
            },
            BackendConfig::Plugin {
                name: None,
                library: PathBuf::from("/etc/audit/lib/liby.so"),
                sha256: None,
                allow_insecure_permissions: true,
                config_json: "{}".into(),
                call_timeout_ms: 30_000,
                options: BackendOptions::default(),
                line: Some(10),
            },
        ]
    );
    assert!(matches!(
        c.load_plugin(&BackendConfig::File {
            name: "file".into(),
            path: "/x".into(),
            max_file_bytes: 0
        }),
        Err(Error::Backend { message }) if message == "not a plugin backend"
    ));
    Ok(())
}

#[test]
fn config_errors_name_the_key_wherever_it_is_written() {
    // A top-level key, and an error on a table header line.
    let e = config_error("colour = 1\n");
    assert_eq!((e.line, e.key.as_str()), (Some(1), "colour"));
    let e = config_error("[trail]\ndurability = \"sync\"\n[trail.bogus]\nx = 1\n");
    assert_eq!(e.line, Some(3));
    assert_eq!(e.key, "trail");
    assert!(e.message.contains("unknown field `bogus`"), "{e}");
    // A policy given as an inline table: no `[trail.policy]` line to point at.
    let e = config_error("[trail]\npolicy = { encrypt_audit_logs = true }\n");
    assert_eq!(
        (e.line, e.key.as_str()),
        (None, "trail.policy.encrypt_audit_logs")
    );
    assert!(
        e.to_string()
            .starts_with("/etc/audit/audit.toml: trail.policy.encrypt_audit_logs: "),
        "{e}"
    );
}

#[test]
fn a_missing_configuration_file_is_a_config_error() {
    let path = Path::new("/nonexistent/audit.toml");
    match TrailConfig::load(path) {
        Err(Error::Config(e)) => {
            assert_eq!((e.line, e.key.as_str()), (None, "(file)"));
            assert!(
                e.message.starts_with("cannot read the configuration file"),
                "{e}"
            );
            assert_eq!(e.file, path);
        }
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[cfg(unix)]
#[test]
fn a_key_file_that_disappears_after_parsing_is_reported_against_the_config() -> TestResult {
    let dir = tempfile::tempdir()?;
    write_key(&dir.path().join("k.key"), &[3u8; 32], 0o600)?;
    let source = dir.path().join("audit.toml");
    let c = TrailConfig::parse("[trail.integrity]\nhmac_key_file = \"k.key\"\n", &source)?;
    assert_eq!(
        c.integrity,
        IntegrityConfig::HmacKeyFile(dir.path().join("k.key"))
    );
    assert!(matches!(c.integrity(), Ok(Integrity::Hmac(_))));
    std::fs::remove_file(dir.path().join("k.key"))?;
    for result in [c.integrity().map(drop), c.builder().map(drop)] {
        match result {
            Err(Error::Config(e)) => {
                assert_eq!(e.file, source);
                assert_eq!(e.key, "trail.integrity.hmac_key_file");
                assert!(e.message.contains("cannot read key file"), "{e}");
            }
            other => panic!("expected a config error, got {other:?}"),
        }
    }
    Ok(())
}

#[cfg(unix)]
#[test]
fn describe_lists_every_setting_and_backend() -> TestResult {
    let dir = tempfile::tempdir()?;
    write_key(&dir.path().join("k.key"), &[3u8; 32], 0o600)?;
    let pin = "0".repeat(64);
    let c = TrailConfig::parse(
        &format!(
            "[trail]\nstorage_path = \"/var/audit\"\ndurability = \"sync\"\non_full = \"fail\"\nqueue_capacity = 10\nflush_interval_ms = 50\nshutdown_timeout_ms = 900\n[trail.policy]\nlevel = \"gdpr\"\nretention_days = 7\n[trail.integrity]\nhmac_key_file = \"k.key\"\n[[backends]]\ntype = \"file\"\nmax_file_bytes = 1024\n[[backends]]\ntype = \"plugin\"\nname = \"copy\"\nlibrary = \"/opt/libcopy.so\"\nsha256 = \"{pin}\"\n[[backends]]\ntype = \"plugin\"\nlibrary = \"/opt/liby.so\"\nallow_insecure_permissions = true\nrequired = false\nspool_max_bytes = 0\nretry_initial_ms = 20\nretry_max_ms = 40\n"
        ),
        &dir.path().join("audit.toml"),
    )?;
    assert_eq!(c.durability, Durability::Sync);
    assert_eq!(c.on_full, OnFull::Fail);
    let want = format!(
        "trail: storage_path=/var/audit durability=sync flush_interval_ms=50 queue_capacity=10 on_full=fail shutdown_timeout_ms=900\n\
         policy: level=gdpr enabled=true retention_days=7\n\
         integrity: hmac-sha256 key_file={}\n\
         backend 1: type=file name=file path=/var/audit max_file_bytes=1024\n\
         backend 2: type=plugin name=copy library=/opt/libcopy.so sha256={pin} allow_insecure_permissions=false call_timeout_ms=30000 required=true spool_max_bytes=1073741824 spool_dir=(STORAGE_PATH/.spool/NAME) retry_initial_ms=100 retry_max_ms=30000\n\
         backend 3: type=plugin name=(the plugin's name) library=/opt/liby.so sha256=(not pinned) allow_insecure_permissions=true call_timeout_ms=30000 required=false spool_max_bytes=0 spool_dir=(none) retry_initial_ms=20 retry_max_ms=40\n",
        dir.path().join("k.key").display()
    );
    assert_eq!(c.describe(), want);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Plugin adapters

#[tokio::test]
async fn a_plugin_backend_used_directly_refuses_calls_after_close() -> TestResult {
    let dir = tempfile::tempdir()?;
    let plugin = LoadedPlugin::load(
        &plugin_lib("audit_backend_example"),
        &LoadOptions::default(),
    )?;
    let shown = format!("{plugin:?}");
    assert!(
        shown.starts_with("LoadedPlugin") && shown.contains("example-line-file"),
        "{shown}"
    );
    let copy = dir.path().join("copy.jsonl");
    let be = plugin.open("copy", &json!({"path": copy}).to_string())?;
    assert_eq!(be.name(), "copy");
    assert_eq!(be.resume().await?, None);
    let records = records_at(&[at(2026, 3, 1); 2]).await?;
    for r in &records {
        be.write(r).await?;
    }
    be.flush().await?;
    let head = be.resume().await?.ok_or("a head")?;
    assert_eq!(head.sequence_number, 2);
    assert_eq!(head.line, records[1].line());
    be.close().await?;
    assert_eq!(
        std::fs::read_to_string(&copy)?,
        format!("{}\n{}\n", records[0].line(), records[1].line())
    );
    for result in [be.write(&records[0]).await, be.flush().await] {
        assert!(
            matches!(&result, Err(Error::Backend { message }) if message == "plugin backend `copy` is closed"),
            "{result:?}"
        );
    }
    Ok(())
}

#[test]
fn a_plugin_store_holding_foreign_data_is_not_continued() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = dir.path().join("copy.jsonl");
    std::fs::write(&store, "{\"hello\":\"world\"}\n")?;
    let config = dir.path().join("audit.toml");
    std::fs::write(
        &config,
        format!(
            "[[backends]]\ntype = \"plugin\"\nname = \"copy\"\nlibrary = {}\nconfig = {{ path = {} }}\n",
            toml_str(&plugin_lib("audit_backend_example")),
            toml_str(&store)
        ),
    )?;
    match AuditTrail::from_config_file(&config) {
        Err(Error::Backend { message }) => assert!(
            message.contains("plugin backend `copy`: its last stored line is not an audit event"),
            "{message}"
        ),
        other => panic!("expected the foreign store to be refused, got {other:?}"),
    }
    assert_eq!(std::fs::read_to_string(&store)?, "{\"hello\":\"world\"}\n");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// verify

#[tokio::test]
async fn an_unreadable_retention_anchor_is_an_error_not_a_silent_restart() -> TestResult {
    let dir = tempfile::tempdir()?;
    let trail = AuditTrail::new(None, Some(dir.path().to_path_buf()), None)?;
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

// ---------------------------------------------------------------------------------------
// More failure paths: atomic batches, conservative retention, locks, policy, the global trail

/// A batch spanning two days is all or nothing: when the second day's write fails, the file
/// the batch created for the first day is removed again.
#[cfg(target_os = "linux")]
#[test]
fn a_batch_failing_on_its_second_day_removes_the_file_it_created() -> TestResult {
    let records = rt().block_on(records_at(&[at(2026, 3, 1), at(2026, 3, 2)]))?;
    let dir = tempfile::tempdir()?;
    let day1 = dir.path().join("audit_2026-03-01.jsonl");
    let day2 = dir.path().join("audit_2026-03-02.jsonl");
    std::os::unix::fs::symlink("/dev/full", &day2)?;
    let be = FileStorageBackend::open(dir.path())?;
    match be.write_batch_blocking(&records) {
        Err(Error::Io { context, path, .. }) => {
            assert_eq!(context, "cannot write audit file");
            assert_eq!(path, day2);
        }
        other => panic!("expected the second day's write to fail, got {other:?}"),
    }
    assert!(!day1.exists(), "the first day's new file was removed");
    // The full "disk" cannot be truncated back: nothing is written until it can be.
    assert!(matches!(
        be.write_batch_blocking(&records),
        Err(Error::Io {
            context: "cannot roll back failed write in",
            ..
        })
    ));
    assert!(!day1.exists());
    std::fs::remove_file(&day2)?;
    std::fs::write(&day2, "")?;
    be.write_batch_blocking(&records)?;
    be.flush_blocking()?;
    assert_eq!(verify(dir.path()).events, 2);
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
        let now = Arc::new(Mutex::new(at(2026, 3, 1)));
        let clock = {
            let now = Arc::clone(&now);
            move || *now.lock().expect("lock")
        };
        let trail = AuditTrail::builder()
            .storage_path(dir.path())
            .policy(policy.clone())
            .clock(clock)
            .build()?;
        log_n(&trail, 2).await?;
        *now.lock().expect("lock") = at(2026, 3, 3);
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
        *now.lock().expect("lock") = at(2026, 3, 4);
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
    let now = Arc::new(Mutex::new(at(2026, 3, 1)));
    let clock = {
        let now = Arc::clone(&now);
        move || *now.lock().expect("lock")
    };
    let trail = AuditTrail::builder()
        .storage_path(dir.path())
        .policy(CompliancePolicy {
            retention_days: u32::MAX,
            ..Default::default()
        })
        .clock(clock)
        .build()?;
    log_n(&trail, 1).await?;
    *now.lock().expect("lock") = at(2030, 1, 1);
    log_n(&trail, 1).await?;
    trail.close().await?;
    assert_eq!(log_files(dir.path()).len(), 2);
    assert_eq!(verify(dir.path()).events, 2);
    Ok(())
}

/// A lock recorded for this process, held by another descriptor a little longer (as by a
/// child process another thread is starting, until it runs its program), is waited for; one
/// that stays held is reported after the wait.
#[test]
fn a_lock_briefly_held_by_this_process_is_waited_for() -> TestResult {
    use std::io::Write as _;
    let dir = tempfile::tempdir()?;
    let hold = |for_ms: u64| -> Result<std::thread::JoinHandle<()>, Box<dyn std::error::Error>> {
        let mut lock = std::fs::File::create(dir.path().join(".audit.lock"))?;
        lock.try_lock()?;
        writeln!(lock, "{}", std::process::id())?;
        Ok(std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(for_ms));
            drop(lock);
        }))
    };
    let holder = hold(100)?;
    let started = Instant::now();
    let be = FileStorageBackend::open(dir.path())?;
    assert!(started.elapsed() >= Duration::from_millis(90));
    holder.join().map_err(|_| "holder thread panicked")?;
    drop(be);

    let holder = hold(1_000)?;
    let started = Instant::now();
    match FileStorageBackend::open(dir.path()) {
        Err(Error::DirectoryLocked { pid: Some(p), .. }) => assert_eq!(p, std::process::id()),
        other => panic!("expected the directory to be locked, got {other:?}"),
    }
    // Not at once: the same process could be a child about to run its program.
    assert!(started.elapsed() >= Duration::from_millis(450));
    holder.join().map_err(|_| "holder thread panicked")?;
    Ok(())
}

#[test]
fn a_lock_held_without_a_pid_is_still_reported() -> TestResult {
    let dir = tempfile::tempdir()?;
    let lock = std::fs::File::create(dir.path().join(".audit.lock"))?;
    lock.try_lock()?;
    match FileStorageBackend::open(dir.path()) {
        Err(e @ Error::DirectoryLocked { pid: None, .. }) => {
            assert!(e.to_string().contains("another process holds it"), "{e}");
        }
        other => panic!("expected the directory to be locked, got {other:?}"),
    }
    lock.unlock()?;
    FileStorageBackend::open(dir.path())?;
    Ok(())
}

#[test]
fn policy_settings_that_are_not_implemented_are_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let logs = dir.path().join("logs");
    let refused: [(CompliancePolicy, &str); 3] = [
        (
            CompliancePolicy {
                gdpr_data_subject_rights: true,
                ..Default::default()
            },
            "gdpr_data_subject_rights",
        ),
        (
            CompliancePolicy {
                hipaa_minimum_necessary: true,
                ..Default::default()
            },
            "hipaa_minimum_necessary",
        ),
        (
            CompliancePolicy {
                retention_days: 0,
                ..Default::default()
            },
            "retention_days",
        ),
    ];
    for (policy, field) in refused {
        match AuditTrail::builder()
            .storage_path(&logs)
            .policy(policy)
            .build()
        {
            Err(Error::Unsupported { setting, .. }) => assert_eq!(setting, field),
            other => panic!("expected {field} to be refused, got {other:?}"),
        }
    }
    assert!(!logs.exists());
    Ok(())
}

/// The only test in this file that touches the process-wide trail.
#[tokio::test]
async fn an_installed_trail_is_the_process_wide_trail() -> TestResult {
    let dir = tempfile::tempdir()?;
    let trail = AuditTrail::builder()
        .storage_path(dir.path().join("global"))
        .build()?;
    let installed = audit_host::set_audit_trail(trail)
        .map_err(|_| "a process-wide trail was already installed")?;
    assert!(std::ptr::eq(installed, audit_host::get_audit_trail()?));
    let second = AuditTrail::builder()
        .storage_path(dir.path().join("second"))
        .build()?;
    match audit_host::set_audit_trail(second) {
        Err(back) => back.close().await?,
        Ok(_) => panic!("a second trail replaced the installed one"),
    }
    audit_host::audit_data_access("ledger", "delete", Some("dana")).await?;
    let events = installed.get_events(&EventQuery::default()).await?;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, AuditEventType::DataDeletion);
    installed.close().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Trail failure reporting

/// Refuses every write.
#[derive(Debug)]
struct Broken;

#[async_trait]
impl StorageBackend for Broken {
    fn name(&self) -> &str {
        "broken"
    }
    async fn write(&self, _record: &AuditRecord) -> audit_host::Result<()> {
        Err(Error::backend("disk on fire"))
    }
    async fn flush(&self) -> audit_host::Result<()> {
        Ok(())
    }
    async fn close(&self) -> audit_host::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn flush_and_close_report_a_backend_that_never_recovers() -> TestResult {
    // Without a spool, a required backend that fails makes the trail fail closed.
    let dir = tempfile::tempdir()?;
    let trail = AuditTrail::builder()
        .storage_path(dir.path())
        .backend_with(
            Box::new(Broken),
            BackendOptions::default().spool_max_bytes(0),
        )
        .shutdown_timeout(Duration::from_millis(50))
        .build()?;
    let pending = trail
        .log_event(AuditEventType::DataAccess, "never stored")
        .user_id("erin");
    assert_eq!(pending.event().user_id.as_deref(), Some("erin"));
    pending.await?;
    // Wait for the worker to meet the failure.
    for _ in 0..2000 {
        if trail.statistics().last_error.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        trail.statistics().last_error.as_deref(),
        Some("broken: disk on fire")
    );
    match trail.flush().await {
        Err(Error::Storage {
            backend, queued, ..
        }) => assert_eq!((backend.as_str(), queued), ("broken", 1)),
        other => panic!("expected a storage error, got {other:?}"),
    }
    match trail.close().await {
        Err(Error::Shutdown {
            backend,
            unwritten,
            not_durable,
            ..
        }) => assert_eq!((backend.as_str(), unwritten, not_durable), ("broken", 1, 1)),
        other => panic!("expected a shutdown error, got {other:?}"),
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

#[tokio::test]
async fn a_leap_second_timestamp_is_stored_and_read_back() -> TestResult {
    let dir = tempfile::tempdir()?;
    let leap = DateTime::parse_from_rfc3339("2016-12-31T23:59:60.5Z")?.with_timezone(&Utc);
    let trail = AuditTrail::new(None, Some(dir.path().to_path_buf()), None)?;
    trail
        .log_event(AuditEventType::SystemStartup, "at a leap second")
        .timestamp(leap)
        .await?;
    let events = trail.get_events(&EventQuery::default()).await?;
    assert_eq!(events[0].timestamp, Some(leap));
    trail.close().await?;
    assert!(
        all_lines(dir.path())[0].contains("\"timestamp\":\"2016-12-31T23:59:60.500000Z\""),
        "{:?}",
        all_lines(dir.path())
    );
    assert_eq!(verify(dir.path()).events, 1);
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
