//! Opening a directory recovers the end of the chain from damaged or unusual files: torn or
//! long last lines, empty or garbage newest files; a file that is not an audit trail is
//! refused.

mod common;

use audit_host::{AuditEventType, AuditTrail, Error, FileStorageBackend};
use common::*;

#[tokio::test]
async fn a_last_line_longer_than_the_tail_chunk_is_recovered() -> TestResult {
    let big = "x".repeat(200 * 1024);
    // Short lines, then a long last line: the tail read grows until it holds a line start.
    // Then a directory whose only line is long: the whole file is read.
    for short_lines in [50, 0] {
        let dir = tempfile::tempdir()?;
        let trail = file_trail(dir.path())?;
        log_n(&trail, short_lines).await?;
        trail
            .log_event(AuditEventType::DataExport, "big")
            .meta("blob", big.as_str())
            .await?;
        trail.close().await?;

        let trail = file_trail(dir.path())?;
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
    let trail = file_trail(dir.path())?;
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

        let trail = file_trail(dir.path())?;
        trail.close().await?;
        assert_eq!(std::fs::read(&file)?, good, "the torn tail is cut off");
        let torn = std::fs::read(file.with_extension("jsonl.torn"))?;
        assert!(torn.ends_with(&[tail, b"\n"].concat()), "moved aside");
    }
    let trail = file_trail(dir.path())?;
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
        let trail = file_trail(dir.path())?;
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
        file_trail(dir.path()).map(drop),
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
async fn torn_final_line_is_moved_aside_and_the_chain_continues() -> TestResult {
    let dir = tempfile::tempdir()?;
    let trail = file_trail(dir.path())?;
    log_n(&trail, 20).await?;
    trail.close().await?;
    let file = log_files(dir.path()).pop().expect("a file");
    let good = std::fs::read(&file)?;
    // A crash mid-write: half a line, no newline.
    let lines: Vec<&[u8]> = good.split(|&b| b == b'\n').collect();
    let torn = &lines[5][..100];
    let mut damaged = good.clone();
    damaged.extend_from_slice(torn);
    std::fs::write(&file, &damaged)?;
    // verify warns but passes.
    let report = verify(dir.path());
    assert_eq!(report.events, 20);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("unterminated final line")),
        "{:?}",
        report.warnings
    );
    // The next open moves the torn bytes aside and continues at 21.
    let trail = file_trail(dir.path())?;
    trail
        .log_event(AuditEventType::DataAccess, "after crash")
        .await?;
    trail.close().await?;
    let torn_file = file.with_extension("jsonl.torn");
    assert_eq!(std::fs::read(&torn_file)?, [torn, b"\n"].concat());
    assert_eq!(sequences(dir.path()), (1..=21).collect::<Vec<_>>());
    let report = verify(dir.path());
    assert_eq!(report.events, 21);
    assert!(report.warnings.is_empty());
    Ok(())
}

#[tokio::test]
async fn trailing_garbage_lines_are_recovered_too() -> TestResult {
    let dir = tempfile::tempdir()?;
    let trail = file_trail(dir.path())?;
    log_n(&trail, 3).await?;
    trail.close().await?;
    let file = log_files(dir.path()).pop().expect("a file");
    let mut bytes = std::fs::read(&file)?;
    bytes.extend_from_slice(b"\0\0\0\0\n{\"checksum\":\"ab");
    std::fs::write(&file, &bytes)?;
    let trail = file_trail(dir.path())?;
    trail.log_event(AuditEventType::DataAccess, "next").await?;
    trail.close().await?;
    assert_eq!(sequences(dir.path()), vec![1, 2, 3, 4]);
    assert_eq!(verify(dir.path()).events, 4);
    Ok(())
}
