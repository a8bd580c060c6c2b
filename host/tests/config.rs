//! Configuration: the TOML file and the builder's settings are checked key by key, and an
//! error names the file, line and key.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use audit_host::config::{BackendConfig, IntegrityConfig, TrailConfig};
use audit_host::{AuditTrail, BackendOptions, Durability, Error, Integrity, OnFull};
use common::*;

fn parse(text: &str) -> audit_host::Result<TrailConfig> {
    TrailConfig::parse(text, Path::new("/etc/audit/audit.toml"))
}

fn config_error(text: &str) -> audit_host::ConfigError {
    match parse(text) {
        Err(Error::Config(e)) => e,
        other => panic!("expected a config error for {text:?}, got {other:?}"),
    }
}

#[test]
fn zero_flush_interval_or_queue_capacity_is_refused_before_touching_the_disk() -> TestResult {
    let dir = tempfile::tempdir()?;
    let logs = dir.path().join("logs");
    let builder = AuditTrail::builder()
        .storage_path(&logs)
        .queue_capacity(7)
        .flush_interval(Duration::ZERO);
    let shown = format!("{builder:?}");
    assert!(
        shown.starts_with("AuditTrailBuilder") && shown.contains("queue_capacity: 7"),
        "{shown}"
    );
    match builder.build() {
        Err(Error::Config(e)) => {
            assert_eq!(e.key, "trail.flush_interval_ms");
            assert_eq!(
                e.to_string(),
                "trail.flush_interval_ms: must be at least 1 ms"
            );
        }
        other => panic!("expected a config error, got {other:?}"),
    }
    match AuditTrail::builder()
        .storage_path(&logs)
        .queue_capacity(0)
        .build()
    {
        Err(Error::Config(e)) => {
            assert_eq!(e.key, "trail.queue_capacity");
            assert_eq!(e.to_string(), "trail.queue_capacity: must be at least 1");
        }
        other => panic!("expected a config error, got {other:?}"),
    }
    assert!(!logs.exists(), "nothing was created");
    Ok(())
}

#[test]
fn plugin_backend_entries_are_validated_key_by_key() {
    let plugin = "[[backends]]\ntype = \"plugin\"\nlibrary = \"/opt/libx.so\"\n";
    let cases: &[(String, Option<usize>, &str, &str)] = &[
        (
            "[trail]\n\n[[backends]]\ntype = 1\n".into(),
            Some(4),
            "backends[1].type",
            "must be a string",
        ),
        (
            format!("{plugin}colour = \"red\"\n"),
            Some(4),
            "backends[1].colour",
            "unknown field `colour`",
        ),
        (
            format!("{plugin}sha256 = \"abc\"\n"),
            Some(4),
            "backends[1].sha256",
            "`abc` is not a SHA-256 (64 hex digits)",
        ),
        (
            format!("{plugin}sha256 = \"{}\"\n", "g".repeat(64)),
            Some(4),
            "backends[1].sha256",
            "is not a SHA-256",
        ),
        (
            format!("{plugin}name = \"copy\"\n\n{plugin}name = \"copy\"\n"),
            Some(9),
            "backends[2].name",
            "`copy` is already the name of the backend at line 1",
        ),
        (
            format!("{plugin}retry_initial_ms = 0\n"),
            Some(4),
            "backends[1].retry_initial_ms",
            "must be at least 1",
        ),
        (
            format!("{plugin}retry_initial_ms = 500\nretry_max_ms = 100\n"),
            Some(5),
            "backends[1].retry_max_ms",
            "100 is less than retry_initial_ms (500)",
        ),
        (
            format!("{plugin}backfill = \"everything\"\n"),
            Some(4),
            "backends[1].backfill",
            "`\"everything\"` is not a backfill choice; use \"all\"",
        ),
        (
            format!("{plugin}backfill = 0\n"),
            Some(4),
            "backends[1].backfill",
            "`0` is not a backfill choice",
        ),
        (
            format!("{plugin}call_timeout_ms = 0\n"),
            Some(4),
            "backends[1].call_timeout_ms",
            "must be at least 1",
        ),
        (
            format!("{plugin}spool_max_bytes = -1\n"),
            Some(4),
            "backends[1].spool_max_bytes",
            "integer `-1`, expected u64",
        ),
        (
            "[[backends]]\ntype = \"plugin\"\nlibrary = \"audit_backend_x\"\n".into(),
            Some(3),
            "backends[1].library",
            "set [trail] plugin_dir to the directory holding libaudit_backend_x.so",
        ),
        (
            "[[backends]]\ntype = \"file\"\nlibrary = \"x\"\n".into(),
            Some(3),
            "backends[1].library",
            "(in the [[backends]] entry with type = \"file\")",
        ),
    ];
    for (toml, line, key, message) in cases {
        let e = config_error(toml);
        assert_eq!((e.line, e.key.as_str()), (*line, *key), "{toml}");
        assert!(e.message.contains(message), "{toml}: {e}");
    }
}

#[test]
fn a_valid_plugin_entry_resolves_its_library_and_config() -> TestResult {
    let pin = "AB".repeat(32);
    let c = parse(&format!(
        "[trail]\nplugin_dir = \"plugins\"\n[[backends]]\ntype = \"plugin\"\nname = \"copy\"\nlibrary = \"audit_backend_x\"\nrequired = true\nsha256 = \"{pin}\"\nconfig = {{ path = \"a.db\", retries = 3 }}\n[[backends]]\ntype = \"plugin\"\nlibrary = \"lib/liby.so\"\nallow_insecure_permissions = true\n"
    ))?;
    assert_eq!(
        c.backends,
        [
            BackendConfig::Plugin {
                name: Some("copy".into()),
                library: PathBuf::from("/etc/audit/plugins/libaudit_backend_x.so"),
                sha256: Some(pin.clone()),
                allow_insecure_permissions: false,
                config_json: r#"{"path":"a.db","retries":3}"#.into(),
                call_timeout_ms: 30_000,
                open_timeout_ms: 30_000,
                options: BackendOptions::default(),
                line: Some(3),
            },
            BackendConfig::Plugin {
                name: None,
                library: PathBuf::from("/etc/audit/lib/liby.so"),
                sha256: None,
                allow_insecure_permissions: true,
                config_json: "{}".into(),
                call_timeout_ms: 30_000,
                open_timeout_ms: 30_000,
                options: BackendOptions::default(),
                line: Some(10),
            },
        ]
    );
    assert!(matches!(
        c.load_plugin(&BackendConfig::File {
            name: "file".into(),
            path: "/x".into(),
            max_file_bytes: 0,
            line: None,
        }),
        Err(Error::Backend { message }) if message == "not a plugin backend"
    ));
    Ok(())
}

#[test]
fn config_errors_name_the_key_wherever_it_is_written() {
    // A top-level key, and an error on a table header line.
    let e = config_error("colour = 1\n");
    assert_eq!((e.line, e.key.as_str()), (Some(1), "colour"));
    let e = config_error("[trail]\ndurability = \"sync\"\n[trail.bogus]\nx = 1\n");
    assert_eq!(e.line, Some(3));
    // The header's own table, as written (issue: `[trail.polcy]` reported as `trail.polcy`).
    assert_eq!(e.key, "trail.bogus");
    assert!(e.message.contains("unknown field `bogus`"), "{e}");
    // A policy given as an inline table: no `[trail.policy]` line to point at.
    let e = config_error("[trail]\npolicy = { encrypt_audit_logs = true }\n");
    assert_eq!(
        (e.line, e.key.as_str()),
        (None, "trail.policy.encrypt_audit_logs")
    );
    assert!(
        e.to_string()
            .starts_with("/etc/audit/audit.toml: trail.policy.encrypt_audit_logs: "),
        "{e}"
    );
}

#[test]
fn a_missing_configuration_file_is_a_config_error() {
    let path = Path::new("/nonexistent/audit.toml");
    match TrailConfig::load(path) {
        Err(Error::Config(e)) => {
            assert_eq!((e.line, e.key.as_str()), (None, "(file)"));
            assert!(
                e.message.starts_with("cannot read the configuration file"),
                "{e}"
            );
            assert_eq!(e.file, path);
        }
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[cfg(unix)]
#[test]
fn a_key_file_that_disappears_after_parsing_is_reported_against_the_config() -> TestResult {
    let dir = tempfile::tempdir()?;
    write_key(&dir.path().join("k.key"), &[3u8; 32], 0o600)?;
    let source = dir.path().join("audit.toml");
    let c = TrailConfig::parse("[trail.integrity]\nhmac_key_file = \"k.key\"\n", &source)?;
    assert_eq!(
        c.integrity,
        IntegrityConfig::HmacKeyFile(dir.path().join("k.key"))
    );
    assert!(matches!(c.integrity(), Ok(Integrity::Hmac(_))));
    std::fs::remove_file(dir.path().join("k.key"))?;
    for result in [c.integrity().map(drop), c.builder().map(drop)] {
        match result {
            Err(Error::Config(e)) => {
                assert_eq!(e.file, source);
                assert_eq!(e.key, "trail.integrity.hmac_key_file");
                assert!(e.message.contains("cannot read key file"), "{e}");
            }
            other => panic!("expected a config error, got {other:?}"),
        }
    }
    Ok(())
}

#[cfg(unix)]
#[test]
fn describe_lists_every_setting_and_backend() -> TestResult {
    let dir = tempfile::tempdir()?;
    write_key(&dir.path().join("k.key"), &[3u8; 32], 0o600)?;
    let pin = "0".repeat(64);
    let c = TrailConfig::parse(
        &format!(
            "[trail]\nstorage_path = \"/var/audit\"\ndurability = \"sync\"\non_full = \"fail\"\nqueue_capacity = 10\nflush_interval_ms = 50\nshutdown_timeout_ms = 900\n[trail.policy]\nlevel = \"gdpr\"\nretention_days = 7\n[trail.integrity]\nhmac_key_file = \"k.key\"\n[[backends]]\ntype = \"file\"\nmax_file_bytes = 1024\n[[backends]]\ntype = \"plugin\"\nname = \"copy\"\nlibrary = \"/opt/libcopy.so\"\nsha256 = \"{pin}\"\n[[backends]]\ntype = \"plugin\"\nlibrary = \"/opt/liby.so\"\nallow_insecure_permissions = true\nrequired = false\nspool_max_bytes = 0\nretry_initial_ms = 20\nretry_max_ms = 40\nbackfill = 1000\n"
        ),
        &dir.path().join("audit.toml"),
    )?;
    assert_eq!(c.durability, Durability::Sync);
    assert_eq!(c.on_full, OnFull::Fail);
    let want = format!(
        "trail: storage_path=/var/audit durability=sync flush_interval_ms=50 queue_capacity=10 on_full=fail shutdown_timeout_ms=900\n\
         policy: level=gdpr enabled=true retention_days=7\n\
         integrity: hmac-sha256 key_file={}\n\
         backend 1: type=file name=file path=/var/audit max_file_bytes=1024\n\
         backend 2: type=plugin name=copy library=/opt/libcopy.so sha256={pin} allow_insecure_permissions=false call_timeout_ms=30000 required=true spool_max_bytes=1073741824 spool_dir=(STORAGE_PATH/.spool/NAME) retry_initial_ms=100 retry_max_ms=30000 open_timeout_ms=30000 backfill=all refuse=dead-letter\n\
         backend 3: type=plugin name=(the plugin's name) library=/opt/liby.so sha256=(not pinned) allow_insecure_permissions=true call_timeout_ms=30000 required=false spool_max_bytes=0 spool_dir=(none) retry_initial_ms=20 retry_max_ms=40 open_timeout_ms=30000 backfill=1000 refuse=dead-letter\n",
        dir.path().join("k.key").display()
    );
    assert_eq!(c.describe(), want);
    Ok(())
}
