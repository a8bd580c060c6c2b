//! Capabilities (docs/plugin-abi.md): a plugin built against the current interface exports
//! `health`, `validate` and `stats`, a plugin built against the frozen 1.0.0 interface exports
//! nothing, and both work in one process: the host uses each capability where it is exported
//! and its default (health unknown, no counters) where it is not.

mod common;

use audit_host::plugin::{LoadOptions, LoadedPlugin};
use audit_host::{AuditTrail, Error, StorageBackend};
use common::*;

#[tokio::test]
async fn a_1_0_0_plugin_and_a_plugin_with_health_in_one_process() -> TestResult {
    let dir = tempfile::tempdir()?;
    let old = LoadedPlugin::load(
        &plugin_lib("audit_backend_compat_1_0"),
        &LoadOptions::default(),
    )?;
    let new = LoadedPlugin::load(&plugin_lib("audit_backend_faulty"), &LoadOptions::default())?;
    assert_eq!(old.info().plugin_api, "1.0.0");
    assert_eq!(new.info().plugin_api, audit_plugin_api::API_VERSION);
    assert!(old.info().capabilities.is_empty());
    assert_eq!(
        new.info().capabilities,
        ["health/1", "validate/1", "stats/1", "refuse/1"]
    );

    // Direct: health where exported, `None` (unknown) where not.
    let store = dir.path().join("direct");
    let old_backend = old.open("old", &format!(r#"{{"dir": {}}}"#, toml_str(&store)))?;
    let new_backend = new.open("new", "{}")?;
    assert_eq!(old_backend.health().await?, None);
    assert_eq!(
        new_backend.health().await?.as_deref(),
        Some("ok: 0 write calls, recorded up to sequence 0")
    );
    // Likewise its counters (`stats`), none where not exported.
    assert_eq!(old_backend.statistics().await?, []);
    assert_eq!(
        new_backend.statistics().await?,
        [
            ("write_calls".to_owned(), 0),
            ("failed_writes".to_owned(), 0),
            ("records_recorded".to_owned(), 0)
        ]
    );
    old_backend.close().await?;
    new_backend.close().await?;

    // Both as backends of one trail.
    let store = dir.path().join("store");
    let record = dir.path().join("record.txt");
    let config = dir.path().join("audit.toml");
    std::fs::write(
        &config,
        format!(
            r#"[[backends]]
type = "plugin"
library = {old}
config = {{ dir = {store} }}

[[backends]]
type = "plugin"
library = {new}
config = {{ record = {record} }}
"#,
            old = toml_str(&plugin_lib("audit_backend_compat_1_0")),
            new = toml_str(&plugin_lib("audit_backend_faulty")),
            store = toml_str(&store),
            record = toml_str(&record),
        ),
    )?;
    let trail = AuditTrail::from_config_file(&config)?;
    log_n(&trail, 500).await?;
    trail.close().await?;
    // The trail's statistics show what each backend tells (asked for before close).
    let stats = trail.statistics();
    assert_eq!(stats.per_backend[0].health, None);
    assert!(stats.per_backend[0].counters.is_empty());
    assert_eq!(
        stats.per_backend[1].health.as_deref(),
        Some(
            format!(
                "ok: {} write calls, recorded up to sequence 500",
                stats.per_backend[1].counters["write_calls"]
            )
            .as_str()
        )
    );
    assert_eq!(stats.per_backend[1].counters["records_recorded"], 500);
    assert_eq!(stats.per_backend[1].counters["failed_writes"], 0);
    assert_eq!(verify(&store).last_sequence, Some(500));
    let recorded: Vec<u64> = std::fs::read_to_string(&record)?
        .lines()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    assert_eq!(recorded, (1..=500).collect::<Vec<_>>());
    Ok(())
}

#[test]
fn a_capability_whose_layout_differs_refuses_the_library() {
    let lib = plugin_lib("audit_backend_altered_capability");
    let Err(Error::Plugin {
        message, details, ..
    }) = LoadedPlugin::load(&lib, &LoadOptions::default())
    else {
        panic!("a plugin with an altered `health` capability was loaded");
    };
    assert!(
        message.starts_with(
            "its `health` capability (audit_backend_ext_health_v1) does not match this host's"
        ),
        "{message}"
    );
    assert!(details.is_some_and(|d| d.contains("HealthV1")));
}

#[test]
fn validate_where_exported_none_where_not_and_no_store_is_touched() -> TestResult {
    let dir = tempfile::tempdir()?;
    let load = |name: &str| LoadedPlugin::load(&plugin_lib(name), &LoadOptions::default());
    let sqlite = load("audit_backend_sqlite")?;
    let file = load("audit_backend_file")?;
    assert_eq!(
        sqlite.info().capabilities,
        ["health/1", "validate/1", "read/1", "stats/1"]
    );
    assert_eq!(file.info().capabilities, ["validate/1", "read/1", "seal/1"]);

    let db = dir.path().join("a.db");
    assert!(matches!(
        sqlite.validate(&format!(r#"{{"path": {}}}"#, toml_str(&db))),
        Some(Ok(()))
    ));
    let Some(Err(Error::Plugin { message, .. })) =
        sqlite.validate(&format!(r#"{{"path": {}, "table": "1x"}}"#, toml_str(&db)))
    else {
        panic!("a bad table name is refused");
    };
    assert!(
        message.starts_with("plugin `sqlite` rejected its config: config `table`"),
        "{message}"
    );
    assert!(!db.exists(), "validate opens no database");

    let logs = dir.path().join("logs");
    assert!(matches!(
        file.validate(&format!(r#"{{"path": {}}}"#, toml_str(&logs))),
        Some(Ok(()))
    ));
    let Some(Err(Error::Plugin { message, .. })) = file.validate(&format!(
        r#"{{"path": {}, "max_file_bytes": -1}}"#,
        toml_str(&logs)
    )) else {
        panic!("a negative size is refused");
    };
    assert!(message.contains("config: invalid value"), "{message}");
    assert!(!logs.exists(), "validate creates no directory");

    // Without the capability: `None` (the 1.0.0 plugin, the example).
    assert!(load("audit_backend_compat_1_0")?.validate("{}").is_none());
    assert!(load("audit_backend_example")?.validate("{}").is_none());
    Ok(())
}

#[tokio::test]
async fn read_from_where_exported_none_where_not() -> TestResult {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("audit.toml");
    let db = dir.path().join("a.db");
    let old_store = dir.path().join("old");
    std::fs::write(
        &config,
        format!(
            "[[backends]]\ntype = \"plugin\"\nlibrary = {}\nconfig = {{ path = {} }}\n\n[[backends]]\ntype = \"plugin\"\nlibrary = {}\nconfig = {{ dir = {} }}\n",
            toml_str(&plugin_lib("audit_backend_sqlite")),
            toml_str(&db),
            toml_str(&plugin_lib("audit_backend_compat_1_0")),
            toml_str(&old_store),
        ),
    )?;
    let trail = AuditTrail::from_config_file(&config)?;
    log_n(&trail, 2500).await?;
    trail.close().await?;

    let load = |name: &str| LoadedPlugin::load(&plugin_lib(name), &LoadOptions::default());
    let sqlite = load("audit_backend_sqlite")?
        .open("sqlite", &format!(r#"{{"path": {}}}"#, toml_str(&db)))?;
    let stored = all_lines(&old_store);
    assert_eq!(stored.len(), 2500);
    // Pages in sequence order, byte for byte what the 1.0.0 plugin's files hold too.
    let mut read = Vec::new();
    loop {
        let page = sqlite
            .read_from(read.len() as u64 + 1, 1000)
            .await?
            .ok_or("read/1")?;
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 1000);
        read.extend(page);
    }
    assert_eq!(read, stored);
    assert_eq!(
        sqlite.read_from(2400, 3).await?.ok_or("read/1")?,
        stored[2399..2402]
    );
    sqlite.close().await?;

    let old = load("audit_backend_compat_1_0")?
        .open("old", &format!(r#"{{"dir": {}}}"#, toml_str(&old_store)))?;
    assert_eq!(old.read_from(1, 10).await?, None);
    old.close().await?;

    // The host API: a configured backend's store, page by page, found by the plugin's name.
    let cfg = audit_host::config::TrailConfig::load(&config)?;
    let mut reader = audit_host::readback::StoreReader::open(&cfg, "sqlite")?;
    assert_eq!(reader.last_sequence().await?, Some(2500));
    let mut pages = Vec::new();
    loop {
        let page = reader.next_page().await?;
        if page.is_empty() {
            break;
        }
        pages.push(page.len());
    }
    reader.close().await?;
    assert_eq!(pages, [1000, 1000, 500]);
    let Err(Error::Plugin { message, .. }) =
        audit_host::readback::StoreReader::open(&cfg, "compat-1-0")
    else {
        panic!("a plugin without `read` was opened for reading");
    };
    assert!(
        message.starts_with("backends[2] \"compat-1-0\" (")
            && message.contains("does not export the `read` capability"),
        "{message}"
    );
    Ok(())
}
