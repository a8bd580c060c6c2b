//! Backend plugins loaded at runtime from shared libraries: configuration, delivery, and every
//! loader error, produced for real.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use audit_host::{AuditEventType, AuditTrail, Error};
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

#[tokio::test]
async fn two_plugins_the_same_plugin_twice_and_the_file_backend_together() -> TestResult {
    let dir = tempfile::tempdir()?;
    let example = plugin_lib("audit_backend_example");
    let sqlite = plugin_lib("audit_backend_sqlite");
    let a = dir.path().join("a.jsonl");
    let b = dir.path().join("b.jsonl");
    let db = dir.path().join("x.db");
    let config = format!(
        r#"[trail]
storage_path = "logs"

[[backends]]
type = "file"

[[backends]]
type = "plugin"
name = "copy-a"
library = {example}
config = {{ path = {a} }}

[[backends]]
type = "plugin"
name = "copy-b"
library = {example}
config = {{ path = {b} }}

[[backends]]
type = "plugin"
library = {sqlite}
config = {{ path = {db}, table = "trail", synchronous = "normal" }}
"#,
        example = toml_str(&example),
        sqlite = toml_str(&sqlite),
        a = toml_str(&a),
        b = toml_str(&b),
        db = toml_str(&db),
    );
    std::fs::write(dir.path().join("audit.toml"), config)?;
    let trail = AuditTrail::from_config_file(dir.path().join("audit.toml"))?;
    assert_eq!(
        trail.statistics().backends[1..],
        ["copy-a", "copy-b", "sqlite"]
    );
    for i in 0..300 {
        trail
            .log_event(AuditEventType::DataModification, format!("change {i}"))
            .user_id("bob")
            .await?;
    }
    trail.close().await?;
    let file_lines = all_lines(&dir.path().join("logs"));
    assert_eq!(file_lines.len(), 300);
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .expect("read")
            .lines()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(read(&a), file_lines);
    assert_eq!(read(&b), file_lines);
    let conn = rusqlite::Connection::open(&db)?;
    let count: i64 = conn.query_row(
        "SELECT count(*) FROM trail WHERE user_id = 'bob'",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(count, 300);
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
    assert!(stdout.contains("path (string, required)"), "{stdout}");
    Ok(())
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
    assert_eq!(out.status.code(), Some(1));
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
        text(&out.stdout).contains("plugin example-line-file 0.1.0 (plugin_api 1.0.0)"),
        "{}",
        text(&out.stdout)
    );
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
    Ok(())
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

/// The `spool-*.jsonl` segments in a spool directory.
fn spool_segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("spool-"))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
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
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown field `journal`"));
    // Nothing was written before the configuration was refused.
    assert!(!dir.path().join("logs").exists() || log_files(&dir.path().join("logs")).is_empty());
    Ok(())
}

#[test]
fn a_plugin_panicking_in_open_is_an_error_not_a_crash() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cfg = plugin_config(
        dir.path(),
        &plugin_lib("audit_backend_faulty"),
        "{ panic_in = \"open\" }",
    );
    match AuditTrail::from_config_file(&cfg) {
        Err(e @ Error::Plugin { .. }) => assert!(
            e.to_string()
                .contains("panicked in open: fixture panic in open"),
            "{e}"
        ),
        other => panic!("expected a plugin error, got {other:?}"),
    }
    // Still alive: the next trail in this process works.
    let ok = plugin_config(dir.path(), &plugin_lib("audit_backend_faulty"), "{}");
    let trail = AuditTrail::from_config_file(ok)?;
    drop(trail);
    Ok(())
}

#[tokio::test]
async fn a_plugin_panicking_in_write_without_spool_fails_closed_and_the_host_survives() -> TestResult
{
    let dir = tempfile::tempdir()?;
    let cfg = plugin_config_with(
        dir.path(),
        &plugin_lib("audit_backend_faulty"),
        "spool_max_bytes = 0\n",
        "{ panic_in = \"write_batch\" }",
    );
    let trail = AuditTrail::from_config_file(&cfg)?;
    trail
        .log_event(
            AuditEventType::DataAccess,
            "accepted, then the plugin panics",
        )
        .await?;
    let err = trail.flush().await;
    match err {
        Err(Error::Storage {
            backend, source, ..
        }) => {
            assert_eq!(backend, "faulty");
            assert!(
                source
                    .to_string()
                    .contains("panicked in write_batch: fixture panic in write_batch"),
                "{source}"
            );
        }
        other => panic!("expected a storage error, got {other:?}"),
    }
    // Fail closed: new events are refused while the backend cannot take them.
    assert!(matches!(
        trail.log_event(AuditEventType::DataAccess, "refused").await,
        Err(Error::Storage { .. })
    ));
    let stats = trail.statistics();
    assert!(
        stats
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("panicked")),
        "{stats:?}"
    );
    assert!(
        trail.close().await.is_err(),
        "close reports the event the plugin never took"
    );
    // The file backend kept the accepted event.
    assert_eq!(verify(&dir.path().join("logs")).events, 1);
    Ok(())
}

#[tokio::test]
async fn retryable_plugin_failures_are_retried_until_delivered() -> TestResult {
    let dir = tempfile::tempdir()?;
    let record = dir.path().join("received.txt");
    let cfg = plugin_config(
        dir.path(),
        &plugin_lib("audit_backend_faulty"),
        &format!("{{ fail_writes = 3, record = {} }}", toml_str(&record)),
    );
    let text = std::fs::read_to_string(&cfg)?;
    std::fs::write(
        &cfg,
        text.replace(
            "config = {",
            "retry_initial_ms = 10\nretry_max_ms = 40\nconfig = {",
        ),
    )?;
    let trail = AuditTrail::from_config_file(&cfg)?;
    trail.log_event(AuditEventType::DataAccess, "first").await?;
    wait_until(
        Duration::from_secs(10),
        "the first event's delivery",
        || trail.statistics().per_backend[1].delivered_sequence == 1,
    )
    .await;
    let plugin = &trail.statistics().per_backend[1];
    assert_eq!(
        (plugin.delivered_sequence, plugin.retried),
        (1, 3),
        "delivered after 3 retryable failures: {plugin:?}"
    );
    for i in 0..20 {
        trail
            .log_event(AuditEventType::DataAccess, format!("e{i}"))
            .await?;
    }
    trail.close().await?;
    let got: Vec<u64> = std::fs::read_to_string(&record)?
        .lines()
        .map(|l| l.parse().expect("seq"))
        .collect();
    assert_eq!(got, (1..=21).collect::<Vec<_>>());
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
    assert_eq!(out.status.code(), Some(1));
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
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr)
            .contains("retry.toml:1: backends.retry_max_ms: 5 is less than retry_initial_ms (50)"),
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
    assert!(
        per[1]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("fixture failure 2 of 2")),
        "{per:?}"
    );
    assert!(
        per[1]["last_error_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert!(per[1]["delivered"].as_u64().is_some_and(|d| d >= 5));
    Ok(())
}

#[tokio::test]
async fn a_fatal_plugin_error_without_spool_reaches_the_caller_with_its_kind() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cfg = plugin_config_with(
        dir.path(),
        &plugin_lib("audit_backend_faulty"),
        "spool_max_bytes = 0\n",
        "{ fatal = true }",
    );
    let trail = AuditTrail::from_config_file(&cfg)?;
    trail.log_event(AuditEventType::DataAccess, "x").await?;
    match trail.flush().await {
        Err(Error::Storage { source, .. }) => assert!(
            matches!(&*source, Error::PluginCall { kind: audit_host::CallErrorKind::Fatal, message, .. } if message.contains("broken")),
            "{source:?}"
        ),
        other => panic!("expected a storage error, got {other:?}"),
    }
    // Closing reports the plugin's loss; the file backend beside it has the event.
    assert!(matches!(
        trail.close().await,
        Err(Error::Shutdown { unwritten: 1, .. })
    ));
    assert_eq!(verify(&dir.path().join("logs")).events, 1);
    Ok(())
}

#[tokio::test]
async fn a_hanging_plugin_times_out_and_the_trail_stays_responsive() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("audit.toml"),
        format!(
            "[trail]\nstorage_path = \"logs\"\nshutdown_timeout_ms = 300\n\n[[backends]]\ntype = \"file\"\n\n[[backends]]\ntype = \"plugin\"\nlibrary = {}\ncall_timeout_ms = 200\nretry_initial_ms = 10\nretry_max_ms = 50\nconfig = {{ hang_on_write = 1 }}\n",
            toml_str(&plugin_lib("audit_backend_faulty"))
        ),
    )?;
    let trail = AuditTrail::from_config_file(dir.path().join("audit.toml"))?;
    trail
        .log_event(AuditEventType::DataAccess, "the plugin hangs on this one")
        .await?;
    let started = std::time::Instant::now();
    // The hung call times out (a retryable failure); the event goes to the plugin's spool.
    wait_until(Duration::from_secs(10), "the event to be spooled", || {
        trail.statistics().per_backend[1].spooled_events == 1
    })
    .await;
    let stats = trail.statistics();
    let plugin = &stats.per_backend[1];
    assert_eq!(plugin.spooled_events, 1, "{plugin:?}");
    assert!(
        plugin.failed_calls >= 1 && plugin.retried >= 1,
        "{plugin:?}"
    );
    assert!(
        plugin
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("no answer within call_timeout_ms (200 ms)")),
        "{plugin:?}"
    );
    assert_eq!(stats.last_error, None, "the trail itself is not failing");
    // The trail keeps accepting events, and flush returns: they are durable in the file
    // backend and in the plugin's spool.
    for i in 0..100 {
        trail
            .log_event(AuditEventType::DataAccess, format!("meanwhile {i}"))
            .await?;
    }
    trail.flush().await?;
    assert_eq!(verify(&dir.path().join("logs")).events, 101);
    // Close keeps to the shutdown timeout; what the plugin never took stays in its spool.
    let closing = std::time::Instant::now();
    trail.close().await?;
    assert!(closing.elapsed() < std::time::Duration::from_secs(5));
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let spooled = trail.statistics().per_backend[1].spooled_events;
    assert_eq!(spooled, 101);
    assert!(!spool_segments(&dir.path().join("logs/.spool/faulty")).is_empty());
    Ok(())
}

#[test]
fn a_plugin_that_missed_events_is_reported_at_start_not_silently_skipped() -> TestResult {
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
    assert!(
        err.contains("audit: backend `sqlite`: this backend's store ends at sequence 10 but the trail is at 15: sequences 11..=15 are neither in its store nor in its spool"),
        "{err}"
    );
    assert_eq!(verify(&dir.path().join("logs")).events, 16);
    Ok(())
}
