//! Every field survives the trip through the canonical line; edge cases of verify.

mod common;

use std::sync::{Arc, Mutex};

use audit_host::verify::VerifyError;
use audit_host::{
    AuditEvent, AuditEventType, AuditLogLevel, AuditRecord, AuditTrail, ComplianceLevel,
    CompliancePolicy, Integrity, Result, StorageBackend, async_trait, verify_dir,
};
use common::*;

#[derive(Debug, Default)]
struct Memory(Mutex<Vec<AuditRecord>>);

#[async_trait]
impl StorageBackend for Memory {
    async fn write(&self, record: &AuditRecord) -> Result<()> {
        self.0.lock().expect("lock").push(record.clone());
        Ok(())
    }
    async fn flush(&self) -> Result<()> {
        Ok(())
    }
    async fn close(&self) -> Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn every_field_round_trips() -> TestResult {
    let mem = Arc::new(Memory::default());
    let policy = CompliancePolicy {
        level: ComplianceLevel::PciDss,
        ..Default::default()
    };
    let trail = AuditTrail::new(Some(policy), None, Some(Box::new(Arc::clone(&mem))))?;
    assert_eq!(mem.name(), "custom");
    let mut ctx = serde_json::Map::new();
    ctx.insert("retries".into(), 3.into());
    ctx.insert(
        "nested".into(),
        serde_json::json!({"b": [1, "two", null], "a": "\u{1F600}"}),
    );
    let ts = chrono::DateTime::parse_from_rfc3339("2026-02-03T04:05:06.789012Z")?
        .with_timezone(&chrono::Utc);
    let event = AuditEvent::new(
        AuditEventType::DataModification,
        "changed \"limit\"\nnext line\tß",
    )
    .event_id("evt-42")
    .timestamp(ts)
    .log_level(AuditLogLevel::Warning)
    .component("gateway")
    .operation("update")
    .user_id("ü-user")
    .session_id("s-1")
    .request_id("r-1")
    .client_ip("2001:db8::1")
    .user_agent("curl/8")
    .container_id("c0ffee")
    .plugin_name("ratelimit")
    .hostname("override-host")
    .error_category("validation")
    .error_severity("low")
    .data_classification("restricted")
    .retention_category("7y")
    .signature("sig")
    .contains_pii(true)
    .contains_phi(true)
    .tag("pci")
    .tag("sox")
    .meta("old", 100)
    .meta("new", 500.5)
    .error_context(ctx.clone());
    let mut expected = event.clone();
    expected.process_id = Some(7);
    let event = AuditEvent {
        process_id: Some(7),
        ..event
    };
    assert_eq!(trail.log(event).await?, "evt-42");
    trail.close().await?;
    let records = mem.0.lock().expect("lock");
    let back = records[0].to_event()?;
    expected.compliance_level = ComplianceLevel::PciDss;
    expected.sequence_number = Some(1);
    expected.previous_hash = None;
    expected.checksum = Some(records[0].checksum().to_owned());
    assert_eq!(back, expected);
    assert_eq!(records[0].log_level(), AuditLogLevel::Warning);
    assert_eq!(records[0].timestamp(), ts);
    assert!(records[0].line().is_ascii());
    Ok(())
}

fn write_lines(dir: &std::path::Path, name: &str, lines: &[String]) {
    std::fs::write(
        dir.join(name),
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .expect("write");
}

/// `n` real lines (messages from `message`), in a directory whose audit files are removed:
/// the test writes them back as it needs them.
async fn real_lines(
    n: usize,
    message: impl Fn(usize) -> String,
) -> std::result::Result<(tempfile::TempDir, Vec<String>), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let trail = AuditTrail::new(None, Some(dir.path().to_path_buf()), None)?;
    for i in 0..n {
        trail
            .log_event(AuditEventType::DataAccess, message(i))
            .await?;
    }
    trail.close().await?;
    let lines = all_lines(dir.path());
    for f in log_files(dir.path()) {
        std::fs::remove_file(f)?;
    }
    Ok((dir, lines))
}

/// Ten real lines, split over two files.
async fn two_files()
-> std::result::Result<(tempfile::TempDir, Vec<String>), Box<dyn std::error::Error>> {
    let (dir, lines) = real_lines(10, |i| format!("e{i}")).await?;
    write_lines(dir.path(), "audit_2026-01-01.jsonl", &lines[..5]);
    write_lines(dir.path(), "audit_2026-01-02.jsonl", &lines[5..]);
    Ok((dir, lines))
}

fn broken(dir: &std::path::Path) -> (u64, String, u64, String) {
    match verify_dir(dir, &Integrity::Sha256) {
        Err(VerifyError::Broken {
            sequence,
            file,
            line,
            reason,
        }) => (
            sequence,
            file.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            line,
            reason,
        ),
        other => panic!("expected a broken chain, got {other:?}"),
    }
}

#[tokio::test]
async fn verify_numbers_lines_right_deep_into_a_file_of_several_read_chunks() -> TestResult {
    // Verify reads 1 MiB at a time and checks the parts on several threads: the line
    // numbers in its reports must still count from the start of the file.
    let padding = "x".repeat(600);
    let (dir, lines) = real_lines(6_000, |i| format!("e{i} {padding}")).await?;
    assert!(lines.iter().map(|l| l.len() + 1).sum::<usize>() > 4 << 20);
    write_lines(dir.path(), "audit_2026-01-01.jsonl", &lines);
    assert_eq!(verify(dir.path()).events, 6_000);

    // Line 5,001 (sequence 5,001) deleted: the break shows at line 5,001, several chunks in.
    let mut cut = lines.clone();
    cut.remove(5_000);
    write_lines(dir.path(), "audit_2026-01-01.jsonl", &cut);
    let (seq, file, line, reason) = broken(dir.path());
    assert_eq!(
        (seq, file.as_str(), line),
        (5_001, "audit_2026-01-01.jsonl", 5_001)
    );
    assert!(reason.contains("sequence 5001 is missing"), "{reason}");

    // An unterminated last line is a warning naming its line number.
    let mut torn = lines[..5_500].join("\n");
    torn.push('\n');
    torn.push_str(&lines[5_500][..50]);
    std::fs::write(dir.path().join("audit_2026-01-01.jsonl"), torn)?;
    let report = verify(dir.path());
    assert_eq!(report.events, 5_500);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("audit_2026-01-01.jsonl:5501: unterminated final line")),
        "{:?}",
        report.warnings
    );
    Ok(())
}

#[tokio::test]
async fn verify_follows_the_chain_across_files_and_reports_where_it_breaks() -> TestResult {
    let (dir, lines) = two_files().await?;
    assert_eq!(verify(dir.path()).events, 10);
    assert_eq!(verify(dir.path()).files, 2);

    // A missing first line.
    write_lines(dir.path(), "audit_2026-01-01.jsonl", &lines[1..5]);
    let (seq, file, line, reason) = broken(dir.path());
    assert_eq!((seq, file.as_str(), line), (1, "audit_2026-01-01.jsonl", 1));
    assert!(reason.contains("events 1..1 are missing"), "{reason}");

    // A duplicated line at a file boundary.
    write_lines(dir.path(), "audit_2026-01-01.jsonl", &lines[..5]);
    write_lines(dir.path(), "audit_2026-01-02.jsonl", &lines[4..]);
    let (seq, file, line, reason) = broken(dir.path());
    assert_eq!((seq, file.as_str(), line), (6, "audit_2026-01-02.jsonl", 1));
    assert!(reason.contains("duplicated or reordered"), "{reason}");

    // A torn line in a file that is not the newest is a failure, not a warning.
    let mut torn = lines[..5].to_vec();
    torn[4].truncate(40);
    std::fs::write(dir.path().join("audit_2026-01-01.jsonl"), torn.join("\n"))?;
    write_lines(dir.path(), "audit_2026-01-02.jsonl", &lines[5..]);
    let (seq, _, line, reason) = broken(dir.path());
    assert_eq!((seq, line), (5, 5));
    assert!(reason.contains("unterminated line"), "{reason}");

    // Not JSON at all.
    let mut garbage = lines[..5].to_vec();
    garbage[2] = "hello".into();
    write_lines(dir.path(), "audit_2026-01-01.jsonl", &garbage);
    let (seq, _, _, reason) = broken(dir.path());
    assert_eq!(seq, 3);
    assert!(reason.contains("not a valid audit event"), "{reason}");

    // A JSON line without a checksum.
    let mut bare = lines[..5].to_vec();
    bare[0] = r#"{"sequence_number":1,"previous_hash":null}"#.into();
    write_lines(dir.path(), "audit_2026-01-01.jsonl", &bare);
    let (seq, _, _, reason) = broken(dir.path());
    assert_eq!(seq, 1);
    assert!(reason.contains("no `checksum` key"), "{reason}");
    Ok(())
}

#[tokio::test]
async fn an_empty_directory_verifies_as_zero_events() -> TestResult {
    let dir = tempfile::tempdir()?;
    let report = verify(dir.path());
    assert_eq!(
        (report.events, report.files, report.first_sequence),
        (0, 0, None)
    );
    assert!(matches!(
        verify_dir(&dir.path().join("missing"), &Integrity::Sha256),
        Err(VerifyError::Io(_))
    ));
    Ok(())
}
