//! The http plugin (kind `elasticsearch`) inside `audit emit`, against a real osmem-server
//! (plugins/http/tests/common/osmem.rs): `audit emit` killed with SIGKILL mid-run and
//! started again leaves the index holding each event of the file backend exactly once (by
//! `_id`, byte for byte); a server that is down while events are logged gets them all from
//! the spool once it is up; `audit plugin test` passes.
#![cfg(unix)]

mod common;
#[path = "../../plugins/http/tests/common/osmem.rs"]
mod osmem;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use osmem::{Osmem, osmem};

/// `audit.toml` in `dir`: the file backend and the http plugin on `o`'s index `index`; `close`
/// delivers for up to `shutdown_ms`.
fn write_config(dir: &Path, o: &Osmem, index: &str, shutdown_ms: u32) {
    let lib = plugin_lib("audit_backend_http");
    std::fs::write(
        dir.join("audit.toml"),
        format!(
            "[trail]\nstorage_path = \"logs\"\nshutdown_timeout_ms = {shutdown_ms}\n\n[[backends]]\ntype = \"file\"\n\n[[backends]]\ntype = \"plugin\"\nname = \"es\"\nlibrary = {:?}\nretry_initial_ms = 20\nretry_max_ms = 200\nconfig = {{ kind = \"elasticsearch\", url = \"{}\", index = \"{index}\" }}\n",
            lib.display().to_string(),
            o.url()
        ),
    )
    .expect("config");
}

/// (sequence, event id, line) of the file backend, in order.
fn file_events(logs: &Path) -> Vec<(u64, String, String)> {
    all_lines(logs)
        .into_iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(&l).expect("json");
            (
                v["sequence_number"].as_u64().expect("seq"),
                v["event_id"].as_str().expect("id").to_owned(),
                l,
            )
        })
        .collect()
}

/// Asserts that `index` holds each line of the file backend once, byte for byte.
fn assert_index_matches_files(o: &Osmem, index: &str, logs: &Path) {
    let files = file_events(logs);
    let docs = o.documents(index);
    assert_eq!(docs.len(), files.len(), "documents vs file lines");
    for ((id, line), (seq, fid, fline)) in docs.iter().zip(&files) {
        assert_eq!(id, fid, "sequence {seq}: _id is the event id");
        assert_eq!(line, fline, "sequence {seq}: the line byte for byte");
    }
}

fn event_lines(n: usize) -> String {
    "{\"event_type\":\"data_access\",\"message\":\"m\"}\n".repeat(n)
}

#[test]
fn sigkill_mid_run_and_a_restart_leave_each_event_once_in_the_index() -> TestResult {
    let Some(o) = osmem() else { return Ok(()) };
    let cwd = tempfile::tempdir()?;
    write_config(cwd.path(), &o, "crash", 120_000);
    let logs = cwd.path().join("logs");
    let mut child = Command::new(audit_bin())
        .args(["emit", "--config", "audit.toml"])
        .current_dir(cwd.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdin = child.stdin.take().ok_or("stdin")?;
    // 20,000 events, then stdin stays open: emit runs until it is killed.
    stdin.write_all(event_lines(20_000).as_bytes())?;
    // Kill once the index has some of the events and the files have more: mid-delivery.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let indexed = o.documents("crash").len();
        if indexed >= 2_000 && all_lines(&logs).len() > indexed {
            break;
        }
        assert!(Instant::now() < deadline, "emit does not progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill()?; // SIGKILL
    child.wait()?;
    drop(stdin);
    // The restart delivers what the index lacks (spool and catch-up) before 3 new events.
    let out = audit(
        &["emit", "--config", "audit.toml"],
        cwd.path(),
        event_lines(3),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = verify(&logs);
    assert_eq!(report.events as usize, all_lines(&logs).len());
    assert_index_matches_files(&o, "crash", &logs);
    Ok(())
}

#[test]
fn a_server_down_while_logging_gets_every_event_from_the_spool_once_up() -> TestResult {
    let Some(mut o) = Osmem::stopped() else {
        return Ok(());
    };
    let cwd = tempfile::tempdir()?;
    write_config(cwd.path(), &o, "late", 1_000);
    let out = audit(
        &["emit", "--config", "audit.toml"],
        cwd.path(),
        event_lines(3_000),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("stay in its spool"), "{err}");
    o.start();
    write_config(cwd.path(), &o, "late", 120_000);
    let out = audit(&["emit", "--config", "audit.toml"], cwd.path(), "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_index_matches_files(&o, "late", &cwd.path().join("logs"));
    assert_eq!(file_events(&cwd.path().join("logs")).len(), 3_000);
    Ok(())
}

#[test]
fn the_conformance_kit_passes_against_osmem() -> TestResult {
    let Some(o) = osmem() else { return Ok(()) };
    let cwd = tempfile::tempdir()?;
    let lib = plugin_lib("audit_backend_http");
    let config = format!(
        r#"{{"kind":"elasticsearch","url":"{}","index":"kit"}}"#,
        o.url()
    );
    let out = audit(
        &[
            "plugin",
            "test",
            lib.to_str().ok_or("utf-8")?,
            "--config",
            &config,
        ],
        cwd.path(),
        "",
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    Ok(())
}
