//! Backend plugins loaded at runtime from shared libraries: configuration, delivery, and every
//! loader error, produced for real.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use audit_host::{AuditEventType, AuditTrail, Error};
use common::*;

fn toml_str(p: &Path) -> String {
    format!("{:?}", p.to_str().expect("utf-8 path"))
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
                .contains("panicked in open: fixture panic in open")
                && e.to_string().contains("backends[2] \"faulty\" ("),
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

#[test]
fn a_plugin_whose_open_hangs_fails_start_up_within_its_timeout_naming_plugin_and_entry()
-> TestResult {
    let dir = tempfile::tempdir()?;
    let lib = plugin_lib("audit_backend_faulty");
    // open sleeps 120 s; call_timeout_ms bounds it (open_timeout_ms defaults to it).
    let cfg = plugin_config_with(
        dir.path(),
        &lib,
        "call_timeout_ms = 2000\n",
        "{ open_sleep_ms = 120000 }",
    );
    let started = std::time::Instant::now();
    let result = AuditTrail::from_config_file(&cfg);
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}");
    assert!(elapsed >= Duration::from_millis(1900), "took {elapsed:?}");
    match result {
        Err(e @ Error::Plugin { .. }) => {
            let msg = e.to_string();
            let entry = format!("backends[2] \"faulty\" ({}:8)", cfg.display());
            assert!(msg.contains(&lib.display().to_string()), "{msg}");
            assert!(msg.contains(&entry), "{msg}");
            assert!(
                msg.contains("plugin `faulty` did not finish `open` within 2000 ms"),
                "{msg}"
            );
        }
        other => panic!("expected a plugin error, got {other:?}"),
    }
    // Its own key bounds it more tightly.
    let cfg = plugin_config_with(
        dir.path(),
        &lib,
        "open_timeout_ms = 300\n",
        "{ open_sleep_ms = 120000 }",
    );
    let started = std::time::Instant::now();
    let Err(e) = AuditTrail::from_config_file(&cfg) else {
        panic!("a plugin whose open hangs was started");
    };
    assert!(started.elapsed() < Duration::from_secs(10), "{e}");
    assert!(e.to_string().contains("within 300 ms"), "{e}");
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
            .is_some_and(|e| e.starts_with("backends[2] \"faulty\" (")
                && e.contains(
                    "audit.toml:8): retryable error: no answer within call_timeout_ms (200 ms)"
                )),
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
