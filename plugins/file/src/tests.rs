use super::*;
use audit_plugin_api::ErrorKind;
use audit_plugin_api::abi_stable::std_types::{RNone, RStr};

const MICROS: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z

fn record(seq: u64, line: &str) -> Record<'_> {
    Record {
        line: RStr::from_str(line),
        sequence_number: seq,
        timestamp: RStr::from_str("2026-01-01T00:00:00.000000Z"),
        timestamp_micros: MICROS,
        event_id: RStr::from_str("e"),
        event_type: RStr::from_str("data_access"),
        log_level: RStr::from_str("info"),
        user_id: RNone,
    }
}

fn config(dir: &std::path::Path) -> String {
    serde_json::json!({ "path": dir.to_string_lossy() }).to_string()
}

#[test]
fn parse_config() {
    let c = Config::parse(r#"{"path":"logs"}"#).expect("valid");
    assert_eq!(
        (c.max_file_bytes, c.retention_days),
        (audit_format::DEFAULT_MAX_FILE_BYTES, None)
    );
    let c =
        Config::parse(r#"{"path":"logs","max_file_bytes":0,"retention_days":30}"#).expect("valid");
    assert_eq!((c.max_file_bytes, c.retention_days), (0, Some(30)));
    for (json, key) in [
        (r#"{"path":"logs","colour":1}"#, "unknown field `colour`"),
        (r#"{}"#, "missing field `path`"),
        (r#"{"path":""}"#, "`path`: must not be empty"),
        (r#"{"path":"x","max_file_bytes":-1}"#, "expected u64"),
    ] {
        let err = Config::parse(json).expect_err(json);
        assert_eq!(err.kind, ErrorKind::Config);
        assert!(err.message.contains(key), "{json}: {}", err.message);
    }
}

#[test]
fn writes_lines_and_reports_the_last_one_after_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    let mut b = open(&config(&logs)).expect("open");
    assert_eq!(b.last_line().expect("last"), None);
    let lines = [
        r#"{"sequence_number":1}"#,
        r#"{"sequence_number":2}"#,
        r#"{"sequence_number":3}"#,
    ];
    let batch: Vec<_> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| record(i as u64 + 1, l))
        .collect();
    b.write_batch(&batch[..2]).expect("write");
    // A re-delivery (after a call timeout) of records already stored adds nothing.
    b.write_batch(&batch).expect("write again");
    assert_eq!(b.last_line().expect("last").as_deref(), Some(lines[2]));
    b.close().expect("close");
    drop(b);
    let file = logs.join("audit_2026-01-01.jsonl");
    let text = std::fs::read_to_string(&file).expect("read");
    assert_eq!(text, format!("{}\n{}\n{}\n", lines[0], lines[1], lines[2]));
    let mut again = open(&config(&logs)).expect("reopen");
    assert_eq!(again.last_line().expect("last").as_deref(), Some(lines[2]));
}

#[test]
fn a_locked_directory_and_a_bad_timestamp_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    let mut first = open(&config(&logs)).expect("open");
    let Err(err) = open(&config(&logs)) else {
        panic!("a second writer opened a locked directory");
    };
    assert_eq!(err.kind, ErrorKind::Config);
    assert!(err.message.contains("locked"), "{}", err.message);
    let bad = Record {
        timestamp_micros: i64::MAX,
        ..record(1, "{}")
    };
    let err = first.write_batch(&[bad]).expect_err("out of range");
    assert_eq!(err.kind, ErrorKind::Fatal);
    assert!(err.message.contains("out of range"), "{}", err.message);
    assert!(first.last_line().expect("last").is_none());
}

#[test]
fn validate_checks_keys_and_values_without_creating_the_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    let path = logs.to_str().expect("utf-8");
    assert!(FileBackend::validate(&format!(r#"{{"path":{path:?}}}"#)).is_ok());
    let err = FileBackend::validate(&format!(r#"{{"path":{path:?},"retention":3}}"#))
        .expect_err("unknown key");
    assert!(
        err.message.as_str().contains("unknown field `retention`"),
        "{err}"
    );
    assert!(!logs.exists(), "validate creates nothing");
}

#[test]
fn read_from_pages_across_rotated_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = serde_json::json!({ "path": dir.path().to_string_lossy(), "max_file_bytes": 50 })
        .to_string();
    let mut b = open(&cfg).expect("open");
    let lines: Vec<String> = (1..=10)
        .map(|s| format!(r#"{{"sequence_number":{s},"pad":"xxxxxxxxxx"}}"#))
        .collect();
    let recs: Vec<Record<'_>> = (1..=10u64)
        .map(|s| record(s, &lines[s as usize - 1]))
        .collect();
    b.write_batch(&recs).expect("write");
    let files = audit_format::names::list_log_files(dir.path()).expect("list");
    assert!(files.len() > 3, "rotated into {} files", files.len());
    // Page after page, as a host reads the whole store.
    let mut read = Vec::new();
    loop {
        let page = b.read_from(read.len() as u64 + 1, 3).expect("read");
        if page.is_empty() {
            break;
        }
        read.extend(page);
    }
    assert_eq!(read, lines);
    // Any other start: scanned from the file that holds it.
    assert_eq!(b.read_from(7, 2).expect("read"), lines[6..8]);
    assert_eq!(b.read_from(1, 1).expect("read"), lines[..1]);
    assert!(b.read_from(11, 5).expect("read").is_empty());
}
