//! Edge cases of the `audit` commands: bad input, usage errors, warnings, exit codes, output
//! into a closed pipe.
//!
//! Moved from host/tests/edge_cases.rs.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use audit_host::{AuditEventType, AuditTrail};
use common::*;
use serde_json::{Value, json};

fn toml_str(p: &Path) -> String {
    format!("{:?}", p.to_str().expect("utf-8 path"))
}

#[cfg(unix)]
fn write_key(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, bytes)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

async fn log_n(trail: &AuditTrail, n: usize) -> audit_host::Result<()> {
    for i in 0..n {
        trail
            .log_event(AuditEventType::DataAccess, format!("e{i}"))
            .await?;
    }
    Ok(())
}

#[cfg(unix)]
#[test]
fn verify_with_a_missing_key_file_exits_66_and_a_bad_one_78() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("logs"))?;
    write_key(&dir.path().join("short.key"), &[1u8; 8], 0o600)?;
    write_key(&dir.path().join("open.key"), &[1u8; 32], 0o644)?;
    write_key(&dir.path().join("gw.key"), &[1u8; 32], 0o620)?;
    write_key(&dir.path().join("ow.key"), &[1u8; 32], 0o602)?;
    write_key(&dir.path().join("big.key"), &[1u8; 4097], 0o600)?;
    for (key, want, code) in [
        ("missing.key", "cannot read key file", 66),
        ("short.key", "8 bytes; at least 32", 78),
        ("open.key", "readable by group or others", 78),
        ("gw.key", "writable by group or others (mode 620)", 78),
        ("ow.key", "writable by group or others (mode 602)", 78),
        ("big.key", "holds 4097 bytes, more than 4096", 78),
    ] {
        let out = audit(&["verify", "--key-file", key, "logs"], dir.path(), "");
        assert_eq!(out.status.code(), Some(code), "{key}");
        let err = text(&out.stderr);
        assert!(
            err.starts_with("audit verify: --key-file: ") && err.contains(want),
            "{key}: {err}"
        );
        assert!(out.stdout.is_empty());
    }
    Ok(())
}

/// Runs `audit ARGS` in `cwd`, killing it (and failing) if it has not exited within 30 s.
#[cfg(unix)]
fn audit_with_deadline(args: &[&str], cwd: &Path) -> std::process::Output {
    use std::time::{Duration, Instant};
    let mut child = Command::new(audit_bin())
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn audit");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("audit {args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// A FIFO as the key file (opening one for reading waits for a writer) fails at once in
/// each command that reads a key file, instead of hanging.
#[cfg(unix)]
#[test]
fn a_fifo_key_file_fails_at_once_in_verify_config_check_and_emit() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("logs"))?;
    let made = Command::new("mkfifo")
        .args(["-m", "600", "key.fifo"])
        .current_dir(dir.path())
        .status()?;
    assert!(made.success());
    std::fs::write(
        dir.path().join("c.toml"),
        "[trail]\nstorage_path = \"logs\"\n[trail.integrity]\nhmac_key_file = \"key.fifo\"\n",
    )?;
    for (args, code) in [
        (&["verify", "--key-file", "key.fifo", "logs"][..], 78),
        (&["config", "check", "c.toml"][..], 78),
        (&["emit", "--config", "c.toml"][..], 78),
    ] {
        let out = audit_with_deadline(args, dir.path());
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(
            err.contains("key.fifo is not a regular file"),
            "{args:?}: {err}"
        );
    }
    Ok(())
}

#[test]
fn emit_reports_a_long_non_ascii_value_of_the_wrong_type_as_bad_input() -> TestResult {
    let dir = tempfile::tempdir()?;
    let line = json!({"event_type": "data_access", "message": "m", "process_id": "é".repeat(80)});
    let out = audit(&["emit", "--dir", "logs"], dir.path(), format!("{line}\n"));
    assert_eq!(out.status.code(), Some(65), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("stdin line 1: key `process_id`: expected an integer, found string"),
        "{err}"
    );
    Ok(())
}

#[test]
fn config_check_on_a_missing_file_exits_66_naming_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let out = audit(&["config", "check", "nope.toml"], dir.path(), "");
    // A missing configuration file is missing input (EX_NOINPUT), as in every command.
    assert_eq!(out.status.code(), Some(66));
    assert!(
        text(&out.stderr).starts_with(
            "audit config check: nope.toml: (file): cannot read the configuration file"
        ),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    Ok(())
}

#[test]
fn query_time_bounds_cover_whole_days() -> TestResult {
    let dir = tempfile::tempdir()?;
    let input = [
        ("a", "2025-12-31T23:59:59.999999Z"),
        ("b", "2026-01-01T00:00:00Z"),
        ("c", "2026-01-01T23:59:59.999999Z"),
        ("d", "2026-01-02T00:00:00Z"),
    ]
    .iter()
    .map(|(m, t)| {
        json!({"event_type": "data_access", "message": m, "timestamp": t}).to_string() + "\n"
    })
    .collect::<String>();
    let out = audit(&["emit", "--dir", "logs"], dir.path(), &input);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = audit(
        &[
            "query",
            "logs",
            "--since",
            "2026-01-01",
            "--until",
            "2026-01-01",
        ],
        dir.path(),
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let messages: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("json")["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(messages, ["c", "b"]);
    Ok(())
}

#[test]
fn emit_skips_blank_lines_and_stops_at_unreadable_input() -> TestResult {
    let dir = tempfile::tempdir()?;
    let good = "{\"event_type\":\"data_access\",\"message\":\"a\"}\n";
    let mut input = format!("\n{good}   \n{good}").into_bytes();
    input.extend_from_slice(b"\xff\xfe not utf-8\n");
    input.extend_from_slice(good.as_bytes());
    let out = audit(&["emit", "--dir", "logs"], dir.path(), &input);
    assert_eq!(out.status.code(), Some(65), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("stdin line 5: cannot read"), "{err}");
    assert!(err.contains("emitted 2 events before the error"), "{err}");
    assert_eq!(verify(&dir.path().join("logs")).events, 2);
    Ok(())
}

#[tokio::test]
async fn verify_prints_warnings_and_exits_65_on_a_corrupt_anchor() -> TestResult {
    let dir = tempfile::tempdir()?;
    let logs = dir.path().join("logs");
    let trail = AuditTrail::new(None, Some(logs.clone()), None)?;
    log_n(&trail, 2).await?;
    trail.close().await?;
    let file = log_files(&logs).pop().ok_or("a file")?;
    let mut bytes = std::fs::read(&file)?;
    bytes.extend_from_slice(b"{\"torn");
    std::fs::write(&file, bytes)?;
    let out = audit(&["verify", "logs"], dir.path(), "");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "ok: 2 events in 1 file\n");
    assert!(
        text(&out.stderr).starts_with("warning: ")
            && text(&out.stderr).contains("unterminated final line"),
        "{}",
        text(&out.stderr)
    );
    std::fs::write(logs.join(".audit-anchor.json"), "[]")?;
    let out = audit(&["verify", "logs"], dir.path(), "");
    // Stored data that cannot be read as what it must be: EX_DATAERR.
    assert_eq!(out.status.code(), Some(65));
    assert!(
        text(&out.stderr).contains("unreadable retention anchor"),
        "{}",
        text(&out.stderr)
    );
    Ok(())
}

/// `audit query | head` and the like: a reader that went away is not an error.
#[cfg(unix)]
#[test]
fn output_into_a_closed_pipe_is_not_an_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    let input = "{\"event_type\":\"data_access\",\"message\":\"a\"}\n".repeat(50);
    let out = audit(&["emit", "--dir", "logs"], dir.path(), &input);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lib = plugin_lib("audit_backend_example");
    for args in [
        vec!["query", "logs"],
        vec!["plugin", "inspect", lib.to_str().ok_or("path")?],
    ] {
        let (reader, writer) = std::io::pipe()?;
        drop(reader);
        let out = Command::new(audit_bin())
            .args(&args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()?;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stderr.is_empty(), "{args:?}: {}", text(&out.stderr));
    }
    Ok(())
}

#[test]
fn usage_errors_exit_2_missing_input_66_and_say_what_is_wrong() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cases: &[(&[&str], &str, i32)] = &[
        (
            &["query", "missing"],
            "audit query: missing is not a directory",
            66,
        ),
        (
            &["emit", "--durability", "nonsense"],
            "`nonsense` is not a durability mode: use batched or sync",
            2,
        ),
        (
            &["query", ".", "--since", "yesterday"],
            "`yesterday` is not a time",
            2,
        ),
        (
            &["query", ".", "--event-type", "coffee"],
            "unknown AuditEventType `coffee`",
            2,
        ),
        (
            &["emit", "--config", "missing.toml"],
            "audit emit: missing.toml: (file): cannot read the configuration file",
            66,
        ),
        (
            &["verify", "--config", "missing.toml"],
            "audit verify: missing.toml: (file): cannot read the configuration file",
            66,
        ),
    ];
    for (args, want, code) in cases {
        let out = audit(args, dir.path(), "");
        assert_eq!(out.status.code(), Some(*code), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    assert!(
        !dir.path().join("audit_logs").exists(),
        "nothing was written"
    );
    Ok(())
}

#[test]
fn emit_sync_acknowledges_each_event_once_durable() -> TestResult {
    let dir = tempfile::tempdir()?;
    let input = "{\"event_type\":\"data_access\",\"message\":\"a\",\"event_id\":\"id-a\"}\n\
                 {\"event_type\":\"data_access\",\"message\":\"b\",\"event_id\":\"id-b\"}\n";
    let out = audit(
        &["emit", "--dir", "logs", "--durability", "sync", "--ack"],
        dir.path(),
        input,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "1 id-a\n2 id-b\n");
    Ok(())
}

#[test]
fn emit_exits_1_when_a_backend_without_spool_never_takes_the_events() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("audit.toml"),
        format!(
            "[trail]\nstorage_path = \"logs\"\nshutdown_timeout_ms = 100\n[[backends]]\ntype = \"file\"\n[[backends]]\ntype = \"plugin\"\nspool_max_bytes = 0\nlibrary = {}\nconfig = {{ fail_writes = 1000000000 }}\n",
            toml_str(&plugin_lib("audit_backend_faulty"))
        ),
    )?;
    let out = audit(
        &["emit", "--config", "audit.toml", "--durability", "sync"],
        dir.path(),
        "{\"event_type\":\"data_access\",\"message\":\"a\"}\n",
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("was accepted as sequence 1 but is not confirmed durable")
            && err.contains("closing the trail failed")
            && err.contains("1 accepted event(s) were NOT written to it"),
        "{err}"
    );
    assert!(err.contains("fixture failure"), "{err}");
    Ok(())
}
