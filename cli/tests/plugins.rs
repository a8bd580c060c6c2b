//! Backend plugins through the `audit` command: `emit --config` with plugin backends,
//! `plugin inspect` and its loader errors, `config check`.
//!
//! Moved from host/tests/plugins.rs.

mod common;

use std::path::{Path, PathBuf};

use audit_host::{AuditTrail, Error};
use common::*;

fn events(n: usize) -> String {
    (1..=n)
        .map(|i| {
            format!(
                "{{\"event_type\":\"data_access\",\"message\":\"read {i}\",\"user_id\":\"u{}\"}}\n",
                i % 3
            )
        })
        .collect()
}

fn toml_str(p: &Path) -> String {
    format!("{:?}", p.to_str().expect("utf-8 path"))
}

fn sqlite_rows(db: &Path) -> Vec<(i64, String, Option<String>)> {
    let conn = rusqlite::Connection::open(db).expect("open db");
    let mut stmt = conn
        .prepare("SELECT sequence_number, line, user_id FROM audit_events ORDER BY sequence_number")
        .expect("prepare");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

fn plugin_config(dir: &Path, lib: &Path, config: &str) -> PathBuf {
    plugin_config_with(dir, lib, "", config)
}

/// A file backend in `logs` and the plugin with `keys` (lines of its `[[backends]]` entry).
fn plugin_config_with(dir: &Path, lib: &Path, keys: &str, config: &str) -> PathBuf {
    let path = dir.join("audit.toml");
    std::fs::write(
        &path,
        format!("[trail]\nstorage_path = \"logs\"\nshutdown_timeout_ms = 300\n\n[[backends]]\ntype = \"file\"\n\n[[backends]]\ntype = \"plugin\"\nlibrary = {}\n{keys}config = {config}\n", toml_str(lib)),
    )
    .expect("write config");
    path
}

/// Runs `audit plugin inspect` on `path` and returns stderr, checking the exit code and the
/// five-line limit.
fn inspect_error(path: &Path, extra: &[&str]) -> String {
    let mut args = vec!["plugin", "inspect", path.to_str().expect("utf-8")];
    args.extend_from_slice(extra);
    let out = audit(&args, Path::new("/"), "");
    assert_eq!(out.status.code(), Some(1), "stdout: {}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(err.lines().count() <= 5, "more than 5 lines:\n{err}");
    assert!(
        err.contains(&path.display().to_string()),
        "names the library: {err}"
    );
    err
}

#[test]
fn sqlite_plugin_from_toml_receives_every_event() -> TestResult {
    let dir = tempfile::tempdir()?;
    let lib_dir = plugin_lib("audit_backend_sqlite")
        .parent()
        .ok_or("dir")?
        .to_path_buf();
    std::fs::write(
        dir.path().join("audit.toml"),
        format!(
            "[trail]\nstorage_path = \"logs\"\nplugin_dir = {}\n\n[[backends]]\ntype = \"file\"\n\n[[backends]]\ntype = \"plugin\"\nlibrary = \"audit_backend_sqlite\"\nconfig = {{ path = \"audit.db\" }}\n",
            toml_str(&lib_dir)
        ),
    )?;
    let out = audit(&["emit", "--config", "audit.toml"], dir.path(), events(500));
    assert!(out.status.success(), "{}", text(&out.stderr));
    // config paths inside the plugin's own table are the plugin's business: relative to the cwd.
    let rows = sqlite_rows(&dir.path().join("audit.db"));
    assert_eq!(rows.len(), 500);
    assert!(
        rows.iter().enumerate().all(|(i, r)| r.0 == i as i64 + 1),
        "contiguous sequences"
    );
    // The plugin stored exactly the bytes the file backend stored.
    let file_lines = all_lines(&dir.path().join("logs"));
    assert_eq!(
        file_lines,
        rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>()
    );
    assert_eq!(rows[0].2.as_deref(), Some("u1"));
    assert_eq!(verify(&dir.path().join("logs")).events, 500);
    Ok(())
}

#[test]
fn no_backends_configured_means_the_file_backend() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("audit.toml"),
        "[trail]\nstorage_path = \"logs\"\n",
    )?;
    let out = audit(&["emit", "--config", "audit.toml"], dir.path(), events(3));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(verify(&dir.path().join("logs")).events, 3);
    Ok(())
}

#[test]
fn plugin_inspect_prints_the_plugins_fields() -> TestResult {
    let dir = tempfile::tempdir()?;
    let lib = plugin_lib("audit_backend_sqlite");
    let out = audit(
        &["plugin", "inspect", lib.to_str().ok_or("path")?],
        dir.path(),
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "name: sqlite");
    assert_eq!(lines[1], "version: 0.1.0");
    assert_eq!(
        lines[2],
        format!("plugin_api: {}", audit_plugin_api::API_VERSION)
    );
    assert!(
        lines[3].starts_with("description: Stores audit events in an embedded SQLite database")
    );
    assert_eq!(
        lines[4],
        "capabilities: health/1, validate/1, read/1, stats/1"
    );
    assert!(stdout.contains("path (string, required)"), "{stdout}");
    // --json: the same, one object.
    let out = audit(
        &["plugin", "inspect", "--json", lib.to_str().ok_or("path")?],
        dir.path(),
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 1);
    let info: serde_json::Value = serde_json::from_str(&text(&out.stdout))?;
    assert_eq!(info["name"], "sqlite");
    assert_eq!(info["abi"], "rust");
    assert_eq!(info["plugin_api"], audit_plugin_api::API_VERSION);
    assert_eq!(
        info["capabilities"],
        serde_json::json!(["health/1", "validate/1", "read/1", "stats/1"])
    );
    assert!(
        info["config_help"]
            .as_str()
            .is_some_and(|h| h.contains("path (string, required)"))
    );
    let missing = dir.path().join("libnothing.so");
    let out = audit(
        &[
            "plugin",
            "inspect",
            "--json",
            missing.to_str().ok_or("path")?,
        ],
        dir.path(),
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout for a refused library"
    );
    Ok(())
}

#[test]
fn loader_errors_are_short_and_say_what_to_do() -> TestResult {
    let dir = tempfile::tempdir()?;

    let missing = dir.path().join("libnothing.so");
    assert!(inspect_error(&missing, &[]).contains("file not found"));

    let text_file = dir.path().join("libtext.so");
    std::fs::write(&text_file, "this is not a library\n")?;
    assert!(inspect_error(&text_file, &[]).contains("not a loadable shared library"));

    let system_lib = [
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
        "/lib64/libm.so.6",
        "/usr/lib/libm.so.6",
        "/lib/aarch64-linux-gnu/libm.so.6",
    ]
    .iter()
    .map(Path::new)
    .find(|p| p.exists())
    .ok_or("no system libm found")?;
    assert!(inspect_error(system_lib, &[]).contains("not an audit backend plugin"));

    let altered = plugin_lib("audit_backend_altered_layout");
    let err = inspect_error(&altered, &[]);
    assert!(
        err.contains("built against audit-plugin-api 1.0.0") && err.contains("--verbose"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "Rebuild the plugin against audit-plugin-api {}",
            audit_plugin_api::API_VERSION
        )),
        "{err}"
    );
    let verbose = audit(
        &[
            "--verbose",
            "plugin",
            "inspect",
            altered.to_str().ok_or("path")?,
        ],
        Path::new("/"),
        "",
    );
    assert_eq!(verbose.status.code(), Some(1));
    assert!(
        text(&verbose.stderr).lines().count() > 5,
        "the layout report is behind --verbose"
    );

    let example = plugin_lib("audit_backend_example");
    let err = inspect_error(&example, &["--sha256", &"0".repeat(64)]);
    assert!(
        err.contains(&format!(
            "sha256 mismatch: expected {}, actual ",
            "0".repeat(64)
        )),
        "{err}"
    );
    let actual = {
        use sha2::Digest;
        sha2::Sha256::digest(std::fs::read(&example)?)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert!(err.contains(&actual), "{err}");
    let ok = audit(
        &[
            "plugin",
            "inspect",
            example.to_str().ok_or("path")?,
            "--sha256",
            &actual.to_uppercase(),
        ],
        Path::new("/"),
        "",
    );
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    Ok(())
}

#[cfg(unix)]
#[test]
fn a_group_writable_library_is_refused_unless_allowed() -> TestResult {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir()?;
    let copy = dir.path().join("libcopy.so");
    std::fs::copy(plugin_lib("audit_backend_example"), &copy)?;
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o775))?;
    let err = inspect_error(&copy, &[]);
    assert!(
        err.contains("writable by group or others (mode 775)")
            && err.contains("allow_insecure_permissions"),
        "{err}"
    );
    let ok = audit(
        &[
            "plugin",
            "inspect",
            copy.to_str().ok_or("path")?,
            "--allow-insecure-permissions",
        ],
        Path::new("/"),
        "",
    );
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    // The same through the configuration.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))?;
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755))?;
    let cfg = |extra: &str| {
        format!(
            "[[backends]]\ntype = \"plugin\"\nlibrary = \"libcopy.so\"\n{extra}config = {{ path = \"copy.jsonl\" }}\n"
        )
    };
    std::fs::write(dir.path().join("a.toml"), cfg(""))?;
    let out = audit(&["config", "check", "a.toml"], dir.path(), "");
    assert_eq!(out.status.code(), Some(78));
    assert!(
        text(&out.stderr).contains("the directory") && text(&out.stderr).contains("mode 777"),
        "{}",
        text(&out.stderr)
    );
    std::fs::write(
        dir.path().join("b.toml"),
        cfg("allow_insecure_permissions = true\n"),
    )?;
    let out = audit(&["config", "check", "b.toml"], dir.path(), "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!(
            "plugin example-line-file 0.1.0 (plugin_api {})",
            audit_plugin_api::API_VERSION
        )),
        "{}",
        text(&out.stdout)
    );
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
    Ok(())
}

#[test]
fn a_plugin_rejecting_its_config_names_the_key() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cfg = plugin_config(
        dir.path(),
        &plugin_lib("audit_backend_sqlite"),
        "{ path = \"a.db\", journal = \"delete\" }",
    );
    match AuditTrail::from_config_file(&cfg) {
        Err(e @ Error::Plugin { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("plugin `sqlite` rejected its config")
                    && msg.contains("unknown field `journal`"),
                "{msg}"
            );
        }
        other => panic!("expected a plugin error, got {other:?}"),
    }
    let out = audit(&["emit", "--config", "audit.toml"], dir.path(), events(1));
    assert_eq!(out.status.code(), Some(78));
    assert!(text(&out.stderr).contains("unknown field `journal`"));
    // Nothing was written before the configuration was refused.
    assert!(!dir.path().join("logs").exists() || log_files(&dir.path().join("logs")).is_empty());
    Ok(())
}

#[test]
fn bare_library_names_resolve_in_plugin_dir() -> TestResult {
    let dir = tempfile::tempdir()?;
    let lib = plugin_lib("audit_backend_example");
    std::fs::write(
        dir.path().join("audit.toml"),
        format!(
            "[trail]\nplugin_dir = {}\n[[backends]]\ntype = \"plugin\"\nlibrary = \"audit_backend_example\"\nconfig = {{ path = \"out.jsonl\" }}\n",
            toml_str(lib.parent().ok_or("dir")?)
        ),
    )?;
    let out = audit(&["config", "check", "audit.toml"], dir.path(), "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("library={}", lib.display())),
        "{}",
        text(&out.stdout)
    );
    std::fs::write(
        dir.path().join("bad.toml"),
        "[[backends]]\ntype = \"plugin\"\nlibrary = \"audit_backend_example\"\n",
    )?;
    let out = audit(&["config", "check", "bad.toml"], dir.path(), "");
    assert_eq!(out.status.code(), Some(78));
    assert!(
        text(&out.stderr).contains("set [trail] plugin_dir"),
        "{}",
        text(&out.stderr)
    );
    std::fs::write(
        dir.path().join("retry.toml"),
        "[[backends]]\ntype = \"plugin\"\nlibrary = \"x.so\"\nrequired = false\nretry_initial_ms = 50\nretry_max_ms = 5\n",
    )?;
    let out = audit(&["config", "check", "retry.toml"], dir.path(), "");
    assert_eq!(out.status.code(), Some(78));
    assert!(
        text(&out.stderr).contains(
            "retry.toml:6: backends[1].retry_max_ms: 5 is less than retry_initial_ms (50)"
        ),
        "{}",
        text(&out.stderr)
    );
    Ok(())
}

#[test]
fn a_plugin_only_trail_continues_its_chain_after_a_restart() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("audit.toml"),
        format!(
            "[[backends]]\ntype = \"plugin\"\nlibrary = {}\nconfig = {{ path = \"only.db\" }}\n",
            toml_str(&plugin_lib("audit_backend_sqlite"))
        ),
    )?;
    for _ in 0..3 {
        let out = audit(&["emit", "--config", "audit.toml"], dir.path(), events(10));
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let rows = sqlite_rows(&dir.path().join("only.db"));
    assert_eq!(rows.len(), 30, "every run's events are stored");
    assert!(rows.iter().enumerate().all(|(i, r)| r.0 == i as i64 + 1));
    // One chain across the three runs: each line links to the one before.
    for pair in rows.windows(2) {
        let prev: serde_json::Value = serde_json::from_str(&pair[0].1)?;
        let next: serde_json::Value = serde_json::from_str(&pair[1].1)?;
        assert_eq!(next["previous_hash"], prev["checksum"]);
    }
    Ok(())
}

#[test]
fn emit_stats_reports_each_backend() -> TestResult {
    let dir = tempfile::tempdir()?;
    let record = dir.path().join("received.txt");
    plugin_config(
        dir.path(),
        &plugin_lib("audit_backend_faulty"),
        &format!("{{ fail_writes = 2, record = {} }}", toml_str(&record)),
    );
    let out = audit(
        &["emit", "--config", "audit.toml", "--stats"],
        dir.path(),
        events(5),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let json =
        &err[err.find('{').ok_or("no statistics")?..err.rfind('}').ok_or("no statistics")? + 1];
    let stats: serde_json::Value = serde_json::from_str(json)?;
    assert_eq!(stats["total_events"], 5);
    assert_eq!(stats["durable_sequence"], 5);
    let per = stats["per_backend"].as_array().ok_or("per_backend")?;
    assert_eq!(per.len(), 2);
    assert_eq!(per[0]["name"], "file");
    assert_eq!(per[0]["delivered"], 5);
    assert_eq!(per[0]["failed_calls"], 0);
    assert_eq!(per[1]["name"], "faulty");
    assert_eq!(per[1]["failed_calls"], 2);
    // A call error names the backend entry.
    assert!(
        per[1]["last_error"].as_str().is_some_and(|e| e
            == "backends[2] \"faulty\" (audit.toml:8): retryable error: fixture failure 2 of 2"),
        "{per:?}"
    );
    // Its health and counters, asked for before close.
    assert!(
        per[1]["health"]
            .as_str()
            .is_some_and(|h| h.starts_with("ok: ") && h.contains("recorded up to sequence 5")),
        "{per:?}"
    );
    assert_eq!(per[1]["counters"]["failed_writes"], 2, "{per:?}");
    assert_eq!(per[1]["counters"]["records_recorded"], 5, "{per:?}");
    // The built-in file backend has neither.
    assert_eq!(per[0]["health"], serde_json::Value::Null);
    assert_eq!(per[0]["counters"], serde_json::json!({}));
    assert!(
        per[1]["last_error_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert!(per[1]["delivered"].as_u64().is_some_and(|d| d >= 5));
    Ok(())
}

#[test]
fn a_plugin_that_missed_events_is_caught_up_from_the_file_backend_at_start() -> TestResult {
    let dir = tempfile::tempdir()?;
    let sqlite = plugin_lib("audit_backend_sqlite");
    let both = format!(
        "[trail]\nstorage_path = \"logs\"\n[[backends]]\ntype = \"file\"\n[[backends]]\ntype = \"plugin\"\nlibrary = {}\nconfig = {{ path = \"a.db\" }}\n",
        toml_str(&sqlite)
    );
    std::fs::write(dir.path().join("both.toml"), &both)?;
    let events = |n: usize| "{\"event_type\":\"data_access\",\"message\":\"m\"}\n".repeat(n);
    let out = audit(&["emit", "--config", "both.toml"], dir.path(), events(10));
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Five events written without the plugin configured.
    let out = audit(&["emit", "--dir", "logs"], dir.path(), events(5));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = audit(
        &["emit", "--config", "both.toml", "--stats"],
        dir.path(),
        events(1),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let logs = dir.path().join("logs");
    assert!(
        err.contains(&format!(
            "audit: backend `sqlite`: catching up sequences 11..=15 (5 events) from the file backend {} before new events\n",
            logs.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(
            "audit: backend `sqlite`: caught up to sequence 15 (5 events from the file backend)\n"
        ),
        "{err}"
    );
    assert!(err.contains("\"caught_up\": 5"), "{err}");
    let rows = sqlite_rows(&dir.path().join("a.db"));
    let seqs: Vec<i64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(seqs, (1..=16).collect::<Vec<_>>(), "no gap, no duplicate");
    assert_eq!(verify(&logs).events, 16);
    Ok(())
}

#[test]
fn a_plugin_panic_is_reported_once_naming_plugin_and_method() -> TestResult {
    for method in ["write_batch", "flush", "close", "health", "statistics"] {
        let err = emit_with_panic_in(method)?;
        let about: Vec<&str> = err.lines().filter(|l| l.contains("panic")).collect();
        assert!(!about.is_empty() && about.len() <= 2, "{method}: {err}");
        assert!(
            about
                .iter()
                .all(|l| l.contains("backends[2] \"faulty\" (audit.toml:8)")
                    && l.contains(&format!("panicked in {method}: fixture panic in {method}"))),
            "{method}: {err}"
        );
        assert!(
            !err.contains("thread '"),
            "{method}: no default panic message: {err}"
        );
        if ["write_batch", "flush"].contains(&method) {
            assert!(
                !err.contains("closing backend"),
                "{method}: no close error: {err}"
            );
        }
    }
    Ok(())
}

/// Runs `audit emit` of 5 events with the faulty plugin panicking in `method`; checks that
/// the file backend has every event, and returns stderr.
fn emit_with_panic_in(method: &str) -> Result<String, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    plugin_config(
        dir.path(),
        &plugin_lib("audit_backend_faulty"),
        &format!("{{ panic_in = \"{method}\" }}"),
    );
    // Without RUST_BACKTRACE, as an operator runs it (with it, the plugin's panic hook also
    // prints Rust's own report, for a developer).
    let mut child = std::process::Command::new(audit_bin())
        .args(["emit", "--config", "audit.toml"])
        .current_dir(dir.path())
        .env_remove("RUST_BACKTRACE")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .ok_or("stdin")?
            .write_all(events(5).as_bytes())?;
    }
    let out = child.wait_with_output()?;
    // The file backend has every event; the plugin's are in its spool.
    assert_eq!(verify(&dir.path().join("logs")).events, 5, "{method}");
    Ok(text(&out.stderr))
}

#[test]
fn emit_stats_shows_the_sqlite_plugins_health_and_counters() -> TestResult {
    let dir = tempfile::tempdir()?;
    plugin_config(
        dir.path(),
        &plugin_lib("audit_backend_sqlite"),
        "{ path = \"audit.db\" }",
    );
    let out = audit(
        &["emit", "--config", "audit.toml", "--stats"],
        dir.path(),
        events(500),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let json =
        &err[err.find('{').ok_or("no statistics")?..err.rfind('}').ok_or("no statistics")? + 1];
    let stats: serde_json::Value = serde_json::from_str(json)?;
    let sqlite = &stats["per_backend"][1];
    assert_eq!(
        sqlite["health"], "ok: last sequence 500, db audit.db",
        "{sqlite}"
    );
    assert_eq!(sqlite["counters"]["rows_written"], 500, "{sqlite}");
    assert_eq!(sqlite["counters"]["duplicates_skipped"], 0, "{sqlite}");
    let batches = sqlite["counters"]["batches_written"]
        .as_u64()
        .ok_or("batches")?;
    assert!((1..=500).contains(&batches), "{sqlite}");
    assert_eq!(sqlite_rows(&dir.path().join("audit.db")).len(), 500);
    Ok(())
}
