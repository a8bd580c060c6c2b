//! Limits of `audit emit`: the end of the sequence numbers, numbers that cannot be stored
//! exactly, and input lines longer than `--max-event-bytes`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use audit_format::record::{Integrity, LineEncoder};
use audit_host::{AuditEvent, AuditEventType, ComplianceLevel, FileStorageBackend, MAX_SEQUENCE};
use chrono::Utc;
use common::*;

/// A hang guard, not a timing assertion: far longer than any of these runs needs.
const DEADLINE: Duration = Duration::from_secs(60);

/// Writes a valid chain of `count` events ending at sequence `last` into `dir` with the
/// library (the directory's anchor records where the chain starts).
fn chain_ending_at(dir: &Path, last: u64, count: u64) -> TestResult {
    chain_of(dir, last - (count - 1)..=last)
}

/// Writes events with these sequence numbers, each linked to the one before, into `dir`.
fn chain_of(dir: &Path, seqs: impl IntoIterator<Item = u64>) -> TestResult {
    let mut enc = LineEncoder::new();
    let mut prev: Option<[u8; 64]> = None;
    let mut records = Vec::new();
    for seq in seqs {
        let ev = AuditEvent::new(AuditEventType::DataAccess, format!("event {seq}"));
        enc.encode(&ev, &format!("id-{seq}"), "host", 1, ComplianceLevel::Basic);
        let (rec, hex) = enc.assemble(&ev, seq, prev.as_ref(), Utc::now(), &Integrity::Sha256);
        prev = Some(hex);
        records.push(rec);
    }
    let backend = FileStorageBackend::open(dir)?;
    backend.write_batch_blocking(&records)?;
    backend.flush_blocking()?;
    Ok(())
}

/// Waits for `child` to exit, killing it (and failing) if it is still running at DEADLINE.
fn wait_or_kill(mut child: Child) -> Output {
    let started = Instant::now();
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "audit emit still ran after {DEADLINE:?}; stderr: {}",
                text(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn_emit(cwd: &Path, extra: &[&str]) -> Child {
    Command::new(audit_bin())
        .args(["emit", "--dir", "logs"])
        .args(extra)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn audit")
}

/// Runs `audit emit --dir logs EXTRA` with `input` on stdin, within DEADLINE.
fn emit(cwd: &Path, extra: &[&str], input: &[u8]) -> Output {
    let mut child = spawn_emit(cwd, extra);
    // The child may stop reading early (a refused line): a broken pipe is expected then.
    let _ = child.stdin.take().expect("stdin").write_all(input);
    wait_or_kill(child)
}

const EVENT: &str = "{\"event_type\":\"data_access\",\"message\":\"m\"}\n";

#[test]
fn a_chain_at_the_largest_sequence_number_is_refused_at_start() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let logs = cwd.path().join("logs");
    chain_ending_at(&logs, u64::MAX, 2)?;
    assert_eq!(verify(&logs).events, 2);
    let out = emit(cwd.path(), &[], EVENT.as_bytes());
    let err = text(&out.stderr);
    // The stored chain cannot take another event: EX_DATAERR.
    assert_eq!(out.status.code(), Some(65), "{err}");
    assert!(
        err.contains(
            "sequence numbers are used up: the chain ends at sequence 18446744073709551615"
        ) && err.contains("new, empty directory"),
        "{err}"
    );
    assert_eq!(sequences(&logs), [u64::MAX - 1, u64::MAX]);
    Ok(())
}

#[cfg(unix)]
#[test]
fn the_last_sequence_number_is_assigned_then_events_are_refused_and_sigterm_works() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let logs = cwd.path().join("logs");
    chain_ending_at(&logs, MAX_SEQUENCE - 1, 2)?;
    // One event gets the last sequence number; stdin stays open until SIGTERM.
    let mut child = spawn_emit(cwd.path(), &["--ack"]);
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(EVENT.as_bytes()).expect("write stdin");
    stdin.flush().expect("flush stdin");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let ack = rx.recv_timeout(DEADLINE).expect("acknowledgement");
    assert!(ack.starts_with(&format!("{MAX_SEQUENCE} ")), "{ack}");
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let out = wait_or_kill(child);
    drop(stdin);
    assert_eq!(out.status.code(), Some(143), "{}", text(&out.stderr));
    assert_eq!(
        sequences(&logs),
        [MAX_SEQUENCE - 2, MAX_SEQUENCE - 1, MAX_SEQUENCE]
    );
    assert_eq!(verify(&logs).events, 3);
    // Nothing can follow: the next run refuses at start, quickly.
    let out = emit(cwd.path(), &[], EVENT.as_bytes());
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(65), "{err}");
    assert!(err.contains("sequence numbers are used up"), "{err}");
    Ok(())
}

#[test]
fn the_event_after_the_last_sequence_number_is_refused() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let logs = cwd.path().join("logs");
    chain_ending_at(&logs, MAX_SEQUENCE - 1, 1)?;
    let out = emit(cwd.path(), &[], format!("{EVENT}{EVENT}").as_bytes());
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("stdin line 2: event not recorded: sequence numbers are used up"),
        "{err}"
    );
    assert_eq!(sequences(&logs), [MAX_SEQUENCE - 1, MAX_SEQUENCE]);
    assert_eq!(verify(&logs).events, 2);
    Ok(())
}

#[test]
fn verify_refuses_a_line_after_the_largest_sequence_number() -> TestResult {
    let dir = tempfile::tempdir()?;
    chain_of(dir.path(), [u64::MAX - 1, u64::MAX, 0])?;
    let err = audit_host::verify_dir(dir.path(), &Integrity::Sha256)
        .err()
        .ok_or("a sequence number after u64::MAX verified")?;
    assert!(
        err.to_string()
            .contains("sequence 0 follows sequence 18446744073709551615, the largest"),
        "{err}"
    );
    Ok(())
}

/// An event line whose message makes it `len` bytes long.
fn event_of_len(len: usize) -> String {
    let head = "{\"event_type\":\"data_access\",\"message\":\"";
    let tail = "\"}";
    format!("{head}{}{tail}", "x".repeat(len - head.len() - tail.len()))
}

#[test]
fn a_line_over_max_event_bytes_is_refused_naming_it_after_the_lines_before() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let logs = cwd.path().join("logs");
    let input = format!("{EVENT}{EVENT}{}\n{EVENT}", event_of_len(2 << 20));
    let out = emit(cwd.path(), &[], input.as_bytes());
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(65), "{err}");
    assert!(
        err.contains("stdin line 3: longer than --max-event-bytes (1048576 bytes); not read further, not recorded"),
        "{err}"
    );
    assert!(
        err.contains("emitted 2 events before the error (all written and flushed)"),
        "{err}"
    );
    assert_eq!(verify(&logs).events, 2);
    // A line of exactly the limit is accepted; one byte more is not.
    let out = emit(
        cwd.path(),
        &["--max-event-bytes", "200"],
        format!("{}\n{}\n", event_of_len(200), event_of_len(201)).as_bytes(),
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(65), "{err}");
    assert!(
        err.contains("stdin line 2: longer than --max-event-bytes (200 bytes)"),
        "{err}"
    );
    assert_eq!(verify(&logs).events, 3);
    let out = emit(cwd.path(), &["--max-event-bytes", "0"], EVENT.as_bytes());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    Ok(())
}

#[test]
fn a_line_over_max_event_bytes_is_not_read_whole() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let mut child = spawn_emit(cwd.path(), &[]);
    let mut stdin = child.stdin.take().expect("stdin");
    // A valid event of 16 MiB: read whole, it would be stored. `emit` stops reading after the
    // first 1 MiB and exits, so the writer meets a closed pipe long before its end.
    let writer = std::thread::spawn(move || {
        let line = format!("{EVENT}{}\n", event_of_len(16 << 20));
        stdin.write_all(line.as_bytes())
    });
    let out = wait_or_kill(child);
    let written = writer.join().expect("writer thread");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(65), "{err}");
    assert!(
        err.contains("stdin line 2: longer than --max-event-bytes"),
        "{err}"
    );
    assert!(
        matches!(&written, Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe),
        "the whole line was read: {written:?}"
    );
    assert_eq!(verify(&cwd.path().join("logs")).events, 1);
    Ok(())
}

#[test]
fn numbers_are_stored_as_the_same_number_or_the_line_is_refused() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let logs = cwd.path().join("logs");
    let kept = r#"{"event_type":"data_access","message":"m","metadata":{"big":18446744073709551615,"neg":-9223372036854775808,"one":1,"onef":1.0,"zero":-0,"exp":1e+30,"tenth":0.1}}"#;
    for (big, stored) in [
        ("1267650600228229401496703205376", "1.2676506002282293e+30"),
        ("18446744073709551616", "1.8446744073709552e+19"),
        (
            "-1267650600228229401496703205376",
            "-1.2676506002282293e+30",
        ),
    ] {
        let input = format!(
            "{kept}\n{{\"event_type\":\"data_access\",\"message\":\"m\",\"metadata\":{{\"n\":{big}}}}}\n{EVENT}"
        );
        let out = emit(cwd.path(), &[], input.as_bytes());
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(65), "{err}");
        assert!(
            err.contains(&format!(
                "stdin line 2: number {big} would be stored as {stored}, a different number"
            )) && err.contains(&format!("Send it as a string (\"{big}\")")),
            "{err}"
        );
        assert!(err.contains("emitted 1 event before the error"), "{err}");
    }
    let lines = all_lines(&logs);
    assert_eq!(lines.len(), 3);
    for line in &lines {
        assert!(
            line.contains(r#""metadata":{"big":18446744073709551615,"exp":1e+30,"neg":-9223372036854775808,"one":1,"onef":1.0,"tenth":0.1,"zero":-0.0}"#),
            "{line}"
        );
    }
    assert_eq!(verify(&logs).events, 3);
    Ok(())
}

#[test]
fn the_library_refuses_to_start_on_a_used_up_chain_with_a_typed_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    chain_ending_at(dir.path(), MAX_SEQUENCE, 1)?;
    let built = audit_host::AuditTrail::builder()
        .storage_path(dir.path())
        .build();
    assert!(
        matches!(
            built,
            Err(audit_host::Error::SequenceExhausted { last: MAX_SEQUENCE })
        ),
        "{:?}",
        built.err()
    );
    Ok(())
}
