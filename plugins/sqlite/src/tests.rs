use super::*;
use audit_plugin_api::ErrorKind;
use audit_plugin_api::abi_stable::std_types::{RNone, RSome, RStr};

fn record<'a>(seq: u64, line: &'a str) -> Record<'a> {
    Record {
        line: RStr::from_str(line),
        sequence_number: seq,
        timestamp: RStr::from_str("2026-01-01T00:00:00.000000Z"),
        timestamp_micros: 1_767_225_600_000_000,
        event_id: RStr::from_str("e"),
        event_type: RStr::from_str("data_access"),
        log_level: RStr::from_str("info"),
        user_id: if seq.is_multiple_of(2) {
            RSome(RStr::from_str("alice"))
        } else {
            RNone
        },
    }
}

#[test]
fn parse_config() {
    let c = Config::parse(r#"{"path":"a.db"}"#).expect("valid");
    assert_eq!(
        (c.table.as_str(), c.synchronous, c.busy_timeout_ms),
        ("audit_events", Synchronous::Full, 5000)
    );
    let c = Config::parse(
        r#"{"path":"a.db","table":"t_1","synchronous":"normal","busy_timeout_ms":10}"#,
    )
    .expect("valid");
    assert_eq!(
        (c.table.as_str(), c.synchronous, c.busy_timeout_ms),
        ("t_1", Synchronous::Normal, 10)
    );
    for (json, key) in [
        (r#"{"path":"a.db","colour":1}"#, "unknown field `colour`"),
        (r#"{}"#, "missing field `path`"),
        (
            r#"{"path":"a.db","table":"x; DROP TABLE y"}"#,
            "config `table`",
        ),
        (
            r#"{"path":"a.db","synchronous":"off"}"#,
            "unknown variant `off`",
        ),
    ] {
        let e = Config::parse(json).expect_err(json);
        assert_eq!(e.kind, ErrorKind::Config);
        assert!(e.message.as_str().contains(key), "{json}: {e}");
    }
}

#[test]
fn writes_once_per_sequence_and_indexes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("a.db");
    let cfg = format!(r#"{{"path":{:?}}}"#, db.to_str().expect("utf-8"));
    let mut b = open(&cfg).expect("open");
    let lines: Vec<String> = (1..=10).map(|i| format!("{{\"n\":{i}}}")).collect();
    let batch: Vec<Record<'_>> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| record(i as u64 + 1, l))
        .collect();
    b.write_batch(&batch).expect("write");
    b.write_batch(&batch[5..]).expect("re-delivery is a no-op");
    assert_eq!(
        b.last_line().expect("last line").as_deref(),
        Some(lines[9].as_str())
    );
    let counted = Counters {
        rows_written: 10,
        duplicates_skipped: 5,
        batches_written: 2,
    };
    assert_eq!(b.counters(), counted);
    assert_eq!(
        b.health().expect("health"),
        format!("ok: last sequence 10, db {}", db.display())
    );
    let other = "{\"n\":\"different\"}".to_owned();
    let e = b
        .write_batch(&[record(3, &other)])
        .expect_err("a conflicting line");
    assert_eq!(e.kind, ErrorKind::Fatal);
    assert!(
        e.message
            .as_str()
            .contains("sequence 3 is already stored with a different line"),
        "{e}"
    );
    assert_eq!(b.counters(), counted, "a batch rolled back counts nothing");
    b.close().expect("close");
    let conn = Connection::open(&db).expect("reopen");
    let (count, min, max): (i64, i64, i64) = conn
        .query_row(
            "SELECT count(*), min(sequence_number), max(sequence_number) FROM audit_events",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("query");
    assert_eq!((count, min, max), (10, 1, 10));
    let alice: i64 = conn
        .query_row(
            "SELECT count(*) FROM audit_events WHERE user_id = 'alice'",
            [],
            |r| r.get(0),
        )
        .expect("query");
    assert_eq!(alice, 5);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("pragma");
    assert_eq!(mode, "wal");
    let indexes: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_events'",
            [],
            |r| r.get(0),
        )
        .expect("query");
    assert_eq!(indexes, 3);
}

#[test]
fn an_empty_database_has_no_last_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = format!(
        r#"{{"path":{:?}}}"#,
        dir.path().join("e.db").to_str().expect("utf-8")
    );
    let mut b = open(&cfg).expect("open");
    assert_eq!(b.last_line().expect("query"), None);
    assert!(b.health().expect("health").starts_with("ok: empty, db "));
}

#[test]
fn a_file_that_is_not_a_database_is_a_config_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bogus = dir.path().join("not.db");
    std::fs::write(&bogus, vec![b'x'; 4096]).expect("write");
    let e = open(&format!(
        r#"{{"path":{:?}}}"#,
        bogus.to_str().expect("utf-8")
    ))
    .expect_err("not a db");
    assert_eq!(e.kind, ErrorKind::Config, "{e}");
    let e = open(r#"{"path":"/nonexistent-dir/a.db"}"#).expect_err("no dir");
    assert_eq!(e.kind, ErrorKind::Config, "{e}");
    assert!(e.message.as_str().contains("config `path`"), "{e}");
}

#[test]
fn a_locked_database_is_retryable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("a.db");
    let cfg = format!(
        r#"{{"path":{:?},"busy_timeout_ms":50}}"#,
        db.to_str().expect("utf-8")
    );
    let mut b = open(&cfg).expect("open");
    let other = Connection::open(&db).expect("second connection");
    other.execute_batch("BEGIN EXCLUSIVE").expect("lock");
    let line = "{}".to_owned();
    let e = b.write_batch(&[record(1, &line)]).expect_err("locked");
    assert_eq!(e.kind, ErrorKind::Retryable, "{e}");
    other.execute_batch("COMMIT").expect("unlock");
    b.write_batch(&[record(1, &line)]).expect("after unlock");
}

#[test]
fn validate_checks_keys_and_values_without_creating_the_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("v.db");
    let path = db.to_str().expect("utf-8");
    assert!(SqliteBackend::validate(&format!(r#"{{"path":{path:?}}}"#)).is_ok());
    let err = SqliteBackend::validate(&format!(r#"{{"path":{path:?},"colour":1}}"#))
        .expect_err("unknown key");
    assert_eq!(err.kind, ErrorKind::Config);
    assert!(
        err.message.as_str().contains("unknown field `colour`"),
        "{err}"
    );
    let err = SqliteBackend::validate(r#"{"path":""}"#).expect_err("empty path");
    assert!(err.message.as_str().contains("config `path`"), "{err}");
    assert!(!db.exists(), "validate creates nothing");
}

#[test]
fn read_from_pages_in_sequence_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("a.db");
    let cfg = format!(r#"{{"path":{:?}}}"#, db.to_str().expect("utf-8"));
    let mut b = open(&cfg).expect("open");
    let lines: Vec<String> = (1..=5)
        .map(|s| format!(r#"{{"sequence_number":{s}}}"#))
        .collect();
    // Stored out of order: read back in sequence order all the same.
    let recs: Vec<Record<'_>> = [3u64, 1, 2, 5, 4]
        .iter()
        .map(|&s| record(s, &lines[s as usize - 1]))
        .collect();
    b.write_batch(&recs).expect("write");
    assert_eq!(b.read_from(1, 2).expect("read"), lines[..2]);
    assert_eq!(b.read_from(3, 10).expect("read"), lines[2..]);
    assert!(b.read_from(6, 10).expect("read").is_empty());
    assert!(b.read_from(u64::MAX, 10).expect("read").is_empty());
    assert!(b.read_from(1, 0).expect("read").is_empty());
}
