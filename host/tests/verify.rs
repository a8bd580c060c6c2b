//! Verifying a stored chain: where it breaks, and what verify says of a damaged retention
//! anchor or a tampered line.

mod common;

use audit_host::verify::VerifyError;
use audit_host::{AuditEventType, AuditTrail, Error, Integrity, verify_dir};
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
    let trail = file_trail(dir.path())?;
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

/// The directory verifier and the stream verifier (lines read back one by one) share the
/// chain rules: on the same damaged lines they name the same sequence and the same reason.
#[tokio::test]
async fn the_stream_verifier_breaks_where_verify_dir_does() -> TestResult {
    use audit_host::verify::StreamVerifier;
    let dir = tempfile::tempdir()?;
    let trail = AuditTrail::builder()
        .storage_path(dir.path())
        .clock(|| at(2026, 3, 1))
        .build()?;
    log_n(&trail, 20).await?;
    trail.close().await?;
    let file = dir.path().join("audit_2026-03-01.jsonl");
    let intact = all_lines(dir.path());
    type Tamper = Box<dyn Fn(&mut Vec<String>)>;
    let tamperings: Vec<(&str, Tamper)> = vec![
        (
            "altered",
            Box::new(|l| l[6] = l[6].replacen("\"e6\"", "\"E6\"", 1)),
        ),
        ("deleted", Box::new(|l| drop(l.remove(9)))),
        ("swapped", Box::new(|l| l.swap(3, 4))),
        ("duplicated", Box::new(|l| l.insert(5, l[4].clone()))),
        ("not json", Box::new(|l| l[11] = "{not json".into())),
        ("first missing", Box::new(|l| drop(l.remove(0)))),
    ];
    for (what, tamper) in tamperings {
        let mut lines = intact.clone();
        tamper(&mut lines);
        std::fs::write(
            &file,
            lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
        )?;
        let Err(VerifyError::Broken {
            sequence, reason, ..
        }) = verify_dir(dir.path(), &Integrity::Sha256)
        else {
            panic!("{what}: verify_dir passed");
        };
        let mut stream = StreamVerifier::new(&Integrity::Sha256, "test");
        let err = lines
            .iter()
            .find_map(|l| stream.push(l).err())
            .unwrap_or_else(|| panic!("{what}: the stream verifier passed"));
        let VerifyError::BrokenRecord {
            sequence: s,
            reason: r,
            ..
        } = err
        else {
            panic!("{what}: {err}");
        };
        assert_eq!((s, r.as_str()), (sequence, reason.as_str()), "{what}");
    }
    let mut stream = StreamVerifier::new(&Integrity::Sha256, "test");
    for l in &intact {
        stream.push(l)?;
    }
    assert_eq!(stream.finish().events, 20);
    Ok(())
}

/// An anchor authenticated with the key still has to agree with itself: a removal it records
/// inside the retention it names fails.
#[tokio::test]
async fn an_anchor_recording_a_removal_inside_its_retention_fails() -> TestResult {
    let dir = tempfile::tempdir()?;
    let key = Integrity::hmac(&[9u8; 32])?;
    let now = ManualClock::starting_at(at(2026, 3, 1));
    let trail = AuditTrail::builder()
        .storage_path(dir.path())
        .integrity(key.clone())
        .policy(audit_host::CompliancePolicy {
            retention_days: 2,
            ..Default::default()
        })
        .clock(now.clock())
        .build()?;
    log_n(&trail, 2).await?;
    now.set(at(2026, 3, 2));
    log_n(&trail, 2).await?;
    now.set(at(2026, 3, 5));
    log_n(&trail, 1).await?;
    trail.close().await?;
    let report = verify_dir(dir.path(), &key)?;
    assert_eq!((report.events, report.first_sequence), (1, Some(5)));

    let mut anchor = audit_format::Anchor::read(dir.path())?.ok_or("anchor")?;
    let removed = anchor.removed.as_mut().ok_or("removed")?;
    assert_eq!((removed.first_sequence, removed.last_sequence), (1, 4));
    removed.retention_days = 30;
    anchor.write(dir.path(), &key)?;
    assert!(matches!(
        verify_dir(dir.path(), &key),
        Err(VerifyError::Directory { reason, .. })
            if reason.contains("removed on 2026-03-05, inside their retention of 30 days")
    ));
    Ok(())
}
