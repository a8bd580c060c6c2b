//! The http plugin inside `audit emit`. Kind `elasticsearch` against a real osmem-server
//! (plugins/http/tests/common/osmem.rs): `audit emit` killed with SIGKILL mid-run and
//! started again leaves the index holding each event of the file backend exactly once (by
//! `_id`, byte for byte); a server that is down while events are logged gets them all from
//! the spool once it is up; an event the mapping rejects lands in the dead-letter file with
//! the server's reason; `audit plugin test` passes. Kinds `splunk-hec` (acks delayed 2 s)
//! and `webhook` against the test servers of plugins/http/tests/common: every event once.
#![cfg(unix)]

mod common;
#[path = "../../plugins/http/tests/common/hec.rs"]
mod hec;
#[path = "../../plugins/http/tests/common/osmem.rs"]
mod osmem;
#[path = "../../plugins/http/tests/common/server.rs"]
mod server;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use osmem::{Osmem, osmem};

/// The tests run one at a time: each starts servers on "free" ports, and one keeps a port
/// closed on purpose (`Osmem::stopped`) that another test's server could otherwise take
/// (one run in two failed so before).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `audit.toml` in `dir`: the file backend and the http plugin on `o`'s index `index`; `close`
/// delivers for up to `shutdown_ms`.
fn write_config(dir: &Path, o: &Osmem, index: &str, shutdown_ms: u32) {
    let plugin = format!(
        "kind = \"elasticsearch\", url = \"{}\", index = \"{index}\"",
        o.url()
    );
    write_config_with(dir, &plugin, shutdown_ms);
}

/// `audit.toml` in `dir`: the file backend and the http plugin (named `es`) with `plugin` as
/// its config table's keys.
fn write_config_with(dir: &Path, plugin: &str, shutdown_ms: u32) {
    let lib = plugin_lib("audit_backend_http");
    std::fs::write(
        dir.join("audit.toml"),
        format!(
            "[trail]\nstorage_path = \"logs\"\nshutdown_timeout_ms = {shutdown_ms}\n\n[[backends]]\ntype = \"file\"\n\n[[backends]]\ntype = \"plugin\"\nname = \"es\"\nlibrary = {:?}\nretry_initial_ms = 20\nretry_max_ms = 200\nconfig = {{ {plugin} }}\n",
            lib.display().to_string(),
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
    let _serial = serial();
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
    // Bursts of 20,000 events, stdin kept open: emit runs until it is killed. A look soon
    // after a burst finds the index behind the files (the plugin delivers as fast as emit
    // writes a slow trickle, so with a trickle the index caught up at every look).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        stdin.write_all(event_lines(20_000).as_bytes())?;
        std::thread::sleep(Duration::from_millis(100));
        // Kill once the index has some of the events and the files have more: mid-delivery.
        let indexed = o.documents("crash").len();
        let written = all_lines(&logs).len();
        if indexed >= 2_000 && written > indexed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "emit does not progress: {indexed} indexed, {written} in the files"
        );
        // Each look reads the index back (refresh and a paged search): looking every 20 ms
        // took osmem-server's CPU from the writes it waits for, under CI load.
        std::thread::sleep(Duration::from_millis(400));
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
    let _serial = serial();
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
    let _serial = serial();
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

#[test]
fn an_event_the_mapping_rejects_is_dead_lettered_with_the_servers_reason() -> TestResult {
    let _serial = serial();
    let Some(o) = osmem() else { return Ok(()) };
    let cwd = tempfile::tempdir()?;
    write_config(cwd.path(), &o, "mapping", 120_000);
    // `metadata.k` is text in the first event and an object in the third.
    let input = [
        r#"{"event_type":"data_access","message":"a","metadata":{"k":"text"}}"#,
        r#"{"event_type":"data_access","message":"b","metadata":{"k":"more"}}"#,
        r#"{"event_type":"data_access","message":"c","metadata":{"k":{"nested":1}}}"#,
        r#"{"event_type":"data_access","message":"d","metadata":{"k":"last"}}"#,
    ]
    .join("\n");
    let out = audit(
        &["emit", "--config", "audit.toml"],
        cwd.path(),
        input + "\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let logs = cwd.path().join("logs");
    let files = file_events(&logs);
    assert_eq!(files.len(), 4);
    let docs: Vec<String> = o.documents("mapping").into_iter().map(|d| d.1).collect();
    let want: Vec<String> = [0, 1, 3].iter().map(|&i| files[i].2.clone()).collect();
    assert_eq!(docs, want, "the other three stored");
    let dead = std::fs::read_to_string(logs.join(".spool/es/dead-letter.jsonl"))?;
    let entries: Vec<serde_json::Value> = dead
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(entries.len(), 1, "{dead}");
    assert_eq!(entries[0]["sequence_number"], 3);
    assert_eq!(entries[0]["line"], files[2].2.as_str());
    let reason = entries[0]["reason"].as_str().ok_or("reason")?;
    assert!(reason.contains("mapper_parsing_exception"), "{reason}");
    Ok(())
}

#[test]
fn splunk_hec_with_delayed_acks_gets_every_event_once() -> TestResult {
    let _serial = serial();
    let collector = hec::Hec::start(hec::Knobs {
        ack_delay: Duration::from_secs(2),
        ..hec::Knobs::default()
    });
    let cwd = tempfile::tempdir()?;
    let token = cwd.path().join("token");
    std::fs::write(&token, "hec-t0ken\n")?;
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    write_config_with(
        cwd.path(),
        &format!(
            "kind = \"splunk-hec\", url = \"{}\", token_file = {:?}",
            collector.url(),
            token.display().to_string()
        ),
        120_000,
    );
    let out = audit(
        &["emit", "--config", "audit.toml"],
        cwd.path(),
        event_lines(3_000),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let files = file_events(&cwd.path().join("logs"));
    let got: Vec<String> = collector
        .events()
        .iter()
        .map(|e| e["event"].to_string())
        .collect();
    let want: Vec<String> = files.iter().map(|f| f.2.clone()).collect();
    assert_eq!(got.len(), 3_000);
    assert_eq!(got, want, "each event once, in order");
    Ok(())
}

#[test]
fn a_webhook_gets_every_event_once() -> TestResult {
    let _serial = serial();
    let hook = server::Server::start(|_: &server::Request| server::Reply::new(202, ""));
    let cwd = tempfile::tempdir()?;
    write_config_with(
        cwd.path(),
        &format!(
            "kind = \"webhook\", url = \"{}\", body = \"ndjson\"",
            hook.url("/in")
        ),
        120_000,
    );
    let out = audit(
        &["emit", "--config", "audit.toml"],
        cwd.path(),
        event_lines(3_000),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let files = file_events(&cwd.path().join("logs"));
    let got: Vec<String> = hook
        .requests()
        .iter()
        .flat_map(|r| r.text().lines().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    let want: Vec<String> = files.iter().map(|f| f.2.clone()).collect();
    assert_eq!(got, want, "each event once, in order, byte for byte");
    Ok(())
}

/// `audit bench` against the http plugin (kind elasticsearch) and osmem-server runs and
/// reports its baseline and ratio (no timing asserted). Built with `http-bench`, the baseline
/// is the plugin crate's own `_bulk` sender sending as many requests as the trail did, and
/// both scratch indices are deleted; without it, stderr says how to get that baseline.
#[test]
fn bench_reports_a_baseline_and_a_ratio_against_osmem() -> TestResult {
    let _serial = serial();
    let Some(o) = osmem() else { return Ok(()) };
    let tmp = tempfile::tempdir()?;
    let lib = plugin_lib("audit_backend_http");
    let backend = format!("plugin:{}", lib.to_str().ok_or("utf-8")?);
    let config = format!(
        r#"{{"kind":"elasticsearch","url":"{}","index":"audit"}}"#,
        o.url()
    );
    let bench_dir = tmp.path().join("bench");
    let out = audit(
        &[
            "bench",
            "--events",
            "2000",
            "--rounds",
            "2",
            "--json",
            "--dir",
            bench_dir.to_str().ok_or("utf-8")?,
            "--backend",
            &backend,
            "--plugin-config",
            &config,
        ],
        tmp.path(),
        "",
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let r: serde_json::Value = serde_json::from_str(text(&out.stdout).trim())?;
    assert_eq!(r["events"], 2000, "{r}");
    for key in ["events_per_s", "baseline_events_per_s", "ratio_to_baseline"] {
        assert!(r[key].as_f64().is_some_and(|v| v > 0.0), "{key}: {r}");
    }
    if cfg!(feature = "http-bench") {
        assert_eq!(
            err.matches("the baseline sends as many").count(),
            2,
            "{err}"
        );
        assert!(
            r["bytes_per_event"].as_f64().is_some_and(|b| b > 200.0),
            "{r}"
        );
        assert!(
            o.documents("audit-bench-*").is_empty(),
            "scratch indices deleted"
        );
    } else {
        assert!(err.contains("--features http-bench"), "{err}");
        // Two trail runs of 1,000 events each, into the configured index.
        assert_eq!(o.documents("audit").len(), 2_000, "every event stored");
    }
    Ok(())
}
