//! Catching a lane backend up from the file backend at start: a store that is behind gets
//! the lines it lacks, in order, before new events; an empty store gets what `backfill` says
//! ("all", "none" or a sequence); lines retention removed are reported once; a line that
//! does not verify stops the catch-up for that backend and is never delivered. The store is
//! the real SQLite plugin.

mod common;

use std::path::{Path, PathBuf};

use audit_host::AuditTrail;
use common::*;

/// `audit.toml` in `dir`: a file backend in `logs` (rotated at `max_file_bytes`), then one
/// SQLite plugin backend per `(name, extra keys)`, each with its database `NAME.db`.
fn config(dir: &Path, max_file_bytes: u64, sqlite: &[(&str, &str)]) -> PathBuf {
    let mut text = format!(
        "[trail]\nstorage_path = \"logs\"\n[[backends]]\ntype = \"file\"\nmax_file_bytes = {max_file_bytes}\n"
    );
    for (name, keys) in sqlite {
        text.push_str(&format!(
            "[[backends]]\ntype = \"plugin\"\nname = \"{name}\"\nlibrary = {}\n{keys}\nconfig = {{ path = {} }}\n",
            toml_str(&plugin_lib("audit_backend_sqlite")),
            toml_str(&dir.join(format!("{name}.db")))
        ));
    }
    // The file backend alone has a file of its own, so both can be used in turn.
    let path = dir.join(if sqlite.is_empty() {
        "file.toml"
    } else {
        "audit.toml"
    });
    std::fs::write(&path, text).expect("write config");
    path
}

/// The (sequence number, line) pairs a SQLite store holds, in order.
fn stored(dir: &Path, name: &str) -> Vec<(u64, String)> {
    let conn = rusqlite::Connection::open(dir.join(format!("{name}.db"))).expect("open db");
    let mut q = conn
        .prepare("SELECT sequence_number, line FROM audit_events ORDER BY sequence_number")
        .expect("prepare");
    q.query_map([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

/// The sequence numbers a SQLite store holds, in order.
fn seqs(dir: &Path, name: &str) -> Vec<u64> {
    stored(dir, name).into_iter().map(|(s, _)| s).collect()
}

/// The (sequence number, line) pairs of the file backend's lines, in order.
fn file_lines(logs: &Path) -> Vec<(u64, String)> {
    all_lines(logs)
        .into_iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(&l).expect("json");
            (v["sequence_number"].as_u64().expect("seq"), l)
        })
        .collect()
}

/// Runs one trail from `cfg`, logs `n` events and closes it; returns its statistics.
async fn run(cfg: &Path, n: usize) -> Result<audit_host::Statistics, Box<dyn std::error::Error>> {
    let trail = AuditTrail::from_config_file(cfg)?;
    log_n(&trail, n).await?;
    trail.close().await?;
    Ok(trail.statistics())
}

/// Logs `n` events with the file backend alone (the plugin misses them).
async fn file_only(dir: &Path, n: usize) -> TestResult {
    let cfg = config(dir, 0, &[]);
    run(&cfg, n).await?;
    Ok(())
}

#[tokio::test]
async fn a_store_behind_gets_the_file_lines_it_lacks_before_new_events() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cfg = config(dir.path(), 0, &[("sqlite", "")]);
    run(&cfg, 10).await?;
    file_only(dir.path(), 25).await?;
    assert_eq!(seqs(dir.path(), "sqlite"), (1..=10).collect::<Vec<_>>());

    let cfg = config(dir.path(), 0, &[("sqlite", "")]);
    let stats = run(&cfg, 3).await?;
    let sqlite = &stats.per_backend[1];
    assert_eq!((sqlite.caught_up, sqlite.catching_up_to), (25, 0));
    assert_eq!(sqlite.delivered_sequence, 38);
    assert_eq!(sqlite.last_error, None);
    // Every line, byte for byte, no gap, no duplicate.
    assert_eq!(
        stored(dir.path(), "sqlite"),
        file_lines(&dir.path().join("logs"))
    );
    assert_eq!(verify(&dir.path().join("logs")).events, 38);
    Ok(())
}

#[tokio::test]
async fn backfill_chooses_the_history_of_a_backend_added_to_an_existing_directory() -> TestResult {
    let dir = tempfile::tempdir()?;
    file_only(dir.path(), 20).await?;
    let cfg = config(
        dir.path(),
        0,
        &[
            ("default", ""),
            ("all", "backfill = \"all\""),
            ("none", "backfill = \"none\""),
            ("from15", "backfill = 15"),
        ],
    );
    let stats = run(&cfg, 2).await?;
    assert_eq!(seqs(dir.path(), "default"), (1..=22).collect::<Vec<_>>());
    assert_eq!(seqs(dir.path(), "all"), (1..=22).collect::<Vec<_>>());
    assert_eq!(seqs(dir.path(), "none"), vec![21, 22]);
    assert_eq!(seqs(dir.path(), "from15"), (15..=22).collect::<Vec<_>>());
    let caught: Vec<u64> = stats.per_backend[1..].iter().map(|b| b.caught_up).collect();
    assert_eq!(caught, vec![20, 20, 0, 6]);
    assert!(stats.per_backend.iter().all(|b| b.last_error.is_none()));

    // The next start: every store is at the head, nothing is delivered twice.
    let stats = run(&cfg, 1).await?;
    assert!(stats.per_backend[1..].iter().all(|b| b.caught_up == 0));
    assert_eq!(seqs(dir.path(), "none"), vec![21, 22, 23]);
    assert_eq!(seqs(dir.path(), "from15"), (15..=23).collect::<Vec<_>>());
    Ok(())
}

#[tokio::test]
async fn lines_retention_removed_are_reported_once_and_the_rest_is_caught_up() -> TestResult {
    let dir = tempfile::tempdir()?;
    let logs = dir.path().join("logs");
    // Small files: about four events each.
    let cfg = config(dir.path(), 4_000, &[("sqlite", "")]);
    run(&cfg, 10).await?;
    let file_cfg = config(dir.path(), 4_000, &[]);
    run(&file_cfg, 40).await?;
    // Retention: the oldest files, up to one holding sequence 30, are gone.
    let mut first_kept = 0;
    for f in log_files(&logs) {
        let seqs = sequences_in(&f);
        if seqs.last().is_some_and(|&last| last < 30) {
            std::fs::remove_file(&f)?;
        } else if first_kept == 0 {
            first_kept = seqs[0];
        }
    }
    assert!(first_kept > 11 && first_kept <= 30, "{first_kept}");

    let stats = run(&cfg, 2).await?;
    let sqlite = &stats.per_backend[1];
    let expect = format!(
        "sequences 11..={} are no longer in the file backend {} (retention removed them) and cannot be caught up",
        first_kept - 1,
        logs.display()
    );
    assert!(
        sqlite
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains(&expect)),
        "{sqlite:?}"
    );
    let mut want: Vec<u64> = (1..=10).collect();
    want.extend(first_kept..=52);
    assert_eq!(seqs(dir.path(), "sqlite"), want);
    assert_eq!(sqlite.caught_up, 50 - first_kept + 1);
    Ok(())
}

/// The sequence numbers of one file's lines.
fn sequences_in(file: &Path) -> Vec<u64> {
    std::fs::read_to_string(file)
        .expect("read")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            v["sequence_number"].as_u64().expect("seq")
        })
        .collect()
}

#[tokio::test]
async fn an_altered_file_line_stops_the_catch_up_and_is_never_delivered() -> TestResult {
    let dir = tempfile::tempdir()?;
    let logs = dir.path().join("logs");
    let cfg = config(dir.path(), 0, &[("sqlite", "")]);
    run(&cfg, 10).await?;
    file_only(dir.path(), 10).await?;
    // Sequence 15's message is altered; its checksum no longer matches.
    let file = log_files(&logs).pop().ok_or("no file")?;
    let text = std::fs::read_to_string(&file)?;
    let altered: Vec<String> = text
        .lines()
        .map(|l| {
            if l.contains("\"sequence_number\":15,") {
                l.replacen("\"message\":\"e4\"", "\"message\":\"e9\"", 1)
            } else {
                l.to_owned()
            }
        })
        .collect();
    assert_ne!(altered.join("\n") + "\n", text, "the line was altered");
    std::fs::write(&file, altered.join("\n") + "\n")?;

    let stats = run(&cfg, 1).await?;
    let sqlite = &stats.per_backend[1];
    let error = sqlite.last_error.clone().unwrap_or_default();
    assert!(
        error.contains("catching up from the file backend stopped at sequence 11")
            && error.contains(&format!("{}:15: ", file.display()))
            && error.contains("checksum"),
        "{error}"
    );
    // Nothing from the page holding the altered line reached the store; new events do.
    let mut want: Vec<u64> = (1..=10).collect();
    want.push(21);
    assert_eq!(seqs(dir.path(), "sqlite"), want);
    assert_eq!((sqlite.caught_up, sqlite.catching_up_to), (0, 0));
    // The trail itself goes on.
    assert_eq!(stats.last_sequence, 21);
    Ok(())
}
