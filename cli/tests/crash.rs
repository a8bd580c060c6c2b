//! Crash safety: `audit emit --ack` in sync mode killed with SIGKILL at random moments; every
//! acknowledged event is on disk, the directory verifies after the next open, and the chain
//! goes on. Also: SIGTERM closes cleanly.
#![cfg(unix)]

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// Starts `audit emit` writing into `logs`, feeding it events until the pipe breaks, and
/// collecting its acknowledgements. Returns (child, ack reader thread).
fn spawn_emit(
    cwd: &Path,
    extra: &[&str],
) -> (
    std::process::Child,
    std::thread::JoinHandle<Vec<(u64, String)>>,
) {
    spawn_emit_with(cwd, &["--dir", "logs"], extra)
}

/// As [`spawn_emit`], with `target` choosing the storage (`--dir DIR` or `--config FILE`).
fn spawn_emit_with(
    cwd: &Path,
    target: &[&str],
    extra: &[&str],
) -> (
    std::process::Child,
    std::thread::JoinHandle<Vec<(u64, String)>>,
) {
    let mut child = Command::new(audit_bin())
        .arg("emit")
        .args(target)
        .arg("--ack")
        .args(extra)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn audit emit");
    let mut stdin = child.stdin.take().expect("stdin");
    std::thread::spawn(move || {
        for i in 0.. {
            let line = format!(
                "{{\"event_type\":\"data_modification\",\"message\":\"change {i}\",\"user_id\":\"u{}\"}}\n",
                i % 5
            );
            if stdin.write_all(line.as_bytes()).is_err() {
                break; // the child is gone
            }
        }
    });
    let stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .map(|l| {
                let (seq, id) = l.split_once(' ').expect("SEQUENCE EVENT_ID");
                (seq.parse().expect("sequence"), id.to_owned())
            })
            .collect()
    });
    (child, reader)
}

/// Opens the directory once (recovering a torn tail) by running an empty `emit`.
fn reopen(cwd: &Path) {
    let out = Command::new(audit_bin())
        .args(["emit", "--dir", "logs"])
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .expect("reopen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn stored(dir: &Path) -> Vec<(u64, String)> {
    all_lines(dir)
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            (
                v["sequence_number"].as_u64().expect("seq"),
                v["event_id"].as_str().expect("id").to_owned(),
            )
        })
        .collect()
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_event() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let logs = cwd.path().join("logs");
    // A small deterministic generator: the moments differ per round, the run is repeatable.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut acked_total = BTreeSet::new();
    let mut last_max = 0;
    for round in 0..20 {
        let (mut child, reader) = spawn_emit(cwd.path(), &["--durability", "sync"]);
        std::thread::sleep(Duration::from_millis(30 + next() % 250));
        child.kill()?; // SIGKILL
        child.wait()?;
        let acked = reader.join().expect("reader");
        reopen(cwd.path());
        let report = verify(&logs);
        let on_disk: std::collections::BTreeMap<u64, String> = stored(&logs).into_iter().collect();
        for (seq, id) in &acked {
            assert_eq!(
                on_disk.get(seq),
                Some(id),
                "round {round}: acknowledged sequence {seq} is not on disk"
            );
        }
        // The chain continued from where the last round ended, without a gap.
        let max = report.last_sequence.unwrap_or(0);
        assert!(max >= last_max, "round {round}");
        if let Some((first, _)) = acked.first() {
            assert_eq!(
                *first,
                last_max + 1,
                "round {round}: the chain continues at the next sequence"
            );
        }
        last_max = max;
        acked_total.extend(acked.into_iter().map(|(s, _)| s));
    }
    assert!(
        acked_total.len() > 20,
        "the rounds acknowledged events ({})",
        acked_total.len()
    );
    assert_eq!(verify(&logs).events, last_max);
    Ok(())
}

#[test]
fn sigkill_with_a_plugin_that_comes_and_goes_loses_no_acknowledged_event() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let flag = cwd.path().join("outage");
    let record = cwd.path().join("received.txt");
    let quoted = |p: &Path| format!("{:?}", p.display().to_string());
    std::fs::write(
        cwd.path().join("audit.toml"),
        format!(
            "[trail]\nstorage_path = \"logs\"\n\n[[backends]]\ntype = \"file\"\n\n[[backends]]\ntype = \"plugin\"\nlibrary = {}\nretry_initial_ms = 5\nretry_max_ms = 20\nconfig = {{ fail_while_exists = {}, record = {} }}\n",
            quoted(&plugin_lib("audit_backend_faulty")),
            quoted(&flag),
            quoted(&record)
        ),
    )?;
    let mut acked_total = BTreeSet::new();
    for round in 0..8u64 {
        // Every other round the plugin is down: its events go to its spool.
        if round % 2 == 1 {
            std::fs::write(&flag, "down")?;
        } else if flag.exists() {
            std::fs::remove_file(&flag)?;
        }
        let (mut child, reader) = spawn_emit_with(
            cwd.path(),
            &["--config", "audit.toml"],
            &["--durability", "sync"],
        );
        std::thread::sleep(Duration::from_millis(150 + round * 37 % 200));
        child.kill()?; // SIGKILL
        child.wait()?;
        acked_total.extend(reader.join().expect("reader").into_iter().map(|(s, _)| s));
    }
    // The next start with the plugin healthy delivers its spool: every event acknowledged in
    // sync mode, in any round, reaches the plugin.
    if flag.exists() {
        std::fs::remove_file(&flag)?;
    }
    let out = Command::new(audit_bin())
        .args(["emit", "--config", "audit.toml"])
        .current_dir(cwd.path())
        .stdin(Stdio::null())
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let received: BTreeSet<u64> = std::fs::read_to_string(&record)?
        .lines()
        .map(|l| l.parse().expect("sequence"))
        .collect();
    let missing: Vec<&u64> = acked_total.difference(&received).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but never delivered: {missing:?}"
    );
    assert!(acked_total.len() > 8, "the rounds acknowledged events");
    assert!(
        cwd.path().join("logs/.spool/faulty").is_dir(),
        "the down rounds went through the spool"
    );
    verify(&cwd.path().join("logs"));
    Ok(())
}

#[test]
fn sigterm_closes_and_acknowledges_everything_accepted() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let (child, reader) = spawn_emit(cwd.path(), &[]);
    std::thread::sleep(Duration::from_millis(300));
    // SIGTERM, sent with the `kill` command.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    assert!(status.success());
    let out = child.wait_with_output()?;
    assert_eq!(out.status.code(), Some(143), "exit 128 + SIGTERM");
    let acked = reader.join().expect("reader");
    let on_disk = stored(&cwd.path().join("logs"));
    assert!(!acked.is_empty());
    // Everything accepted was written, synced and acknowledged before exit.
    assert_eq!(acked, on_disk);
    assert_eq!(
        verify(&cwd.path().join("logs")).events,
        on_disk.len() as u64
    );
    Ok(())
}

/// Lines in the audit files of `dir` (a line being written counts once it ends).
fn lines_on_disk(dir: &Path) -> usize {
    log_files(dir)
        .iter()
        .map(|f| {
            std::fs::read(f)
                .unwrap_or_default()
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
        })
        .sum()
}

/// (sequence number, line) of every row of a SQLite plugin store.
fn sqlite_lines(db: &Path) -> Vec<(u64, String)> {
    let conn = rusqlite::Connection::open(db).expect("open db");
    let mut q = conn
        .prepare("SELECT sequence_number, line FROM audit_events ORDER BY sequence_number")
        .expect("prepare");
    q.query_map([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

/// Waits until the files in `dir` hold at least `n` lines (a bound, not a measurement).
fn wait_for_lines(dir: &Path, n: usize) {
    let give_up = std::time::Instant::now() + Duration::from_secs(120);
    while lines_on_disk(dir) < n {
        assert!(
            std::time::Instant::now() < give_up,
            "audit emit never wrote {n} lines"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigkill_while_a_plugin_lane_is_behind_is_caught_up_at_the_next_start() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let logs = cwd.path().join("logs");
    let db = cwd.path().join("store.db");
    let quoted = |p: &Path| format!("{:?}", p.display().to_string());
    // Batched mode; the SQLite lane has no spool and may drop (required = false): what it has
    // not stored when the process dies exists only in the file backend.
    std::fs::write(
        cwd.path().join("audit.toml"),
        format!(
            "[trail]\nstorage_path = \"logs\"\n\n[[backends]]\ntype = \"file\"\n\n[[backends]]\ntype = \"plugin\"\nname = \"sqlite\"\nlibrary = {}\nrequired = false\nspool_max_bytes = 0\nretry_initial_ms = 5\nretry_max_ms = 20\nconfig = {{ path = {}, busy_timeout_ms = 1 }}\n",
            quoted(&plugin_lib("audit_backend_sqlite")),
            quoted(&db)
        ),
    )?;
    let event = "{\"event_type\":\"data_access\",\"message\":\"m\"}\n";
    let out = audit(
        &["emit", "--config", "audit.toml"],
        cwd.path(),
        event.repeat(10),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(sqlite_lines(&db).len(), 10);

    let (mut child, reader) = spawn_emit_with(cwd.path(), &["--config", "audit.toml"], &[]);
    wait_for_lines(&logs, 200);
    // Another writer holds the database: the plugin's writes fail (busy) and its lane falls
    // behind while the file backend goes on.
    let lock = rusqlite::Connection::open(&db)?;
    lock.busy_timeout(Duration::from_secs(10))?;
    lock.execute_batch("BEGIN IMMEDIATE")?;
    let locked_at = lines_on_disk(&logs);
    wait_for_lines(&logs, locked_at + 5_000);
    child.kill()?; // SIGKILL
    child.wait()?;
    drop(reader.join());
    lock.execute_batch("ROLLBACK")?;
    drop(lock);
    let stored = sqlite_lines(&db).last().map_or(0, |(s, _)| *s);
    assert!(
        (stored as usize) < locked_at + 5_000,
        "the plugin's store ({stored}) is behind the file backend"
    );

    // The next start catches the store up before its new events.
    let out = audit(
        &["emit", "--config", "audit.toml"],
        cwd.path(),
        event.repeat(3),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "audit: backend `sqlite`: catching up sequences {}..=",
            stored + 1
        )),
        "{err}"
    );
    assert!(
        err.contains("audit: backend `sqlite`: caught up to sequence "),
        "{err}"
    );
    let report = verify(&logs);
    let file: Vec<(u64, String)> = stored_lines(&logs);
    assert_eq!(file.len() as u64, report.events);
    // Exactly the file backend's lines: no gap, no duplicate, byte for byte.
    assert_eq!(sqlite_lines(&db), file);
    Ok(())
}

/// (sequence number, line) of every line in the audit files of `dir`.
fn stored_lines(dir: &Path) -> Vec<(u64, String)> {
    all_lines(dir)
        .into_iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(&l).expect("json");
            (v["sequence_number"].as_u64().expect("seq"), l)
        })
        .collect()
}
