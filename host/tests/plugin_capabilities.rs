//! Capabilities (docs/plugin-abi.md): a plugin built against the current interface exports
//! `health`, a plugin built against the frozen 1.0.0 interface exports nothing, and both work
//! in one process: the host uses `health` where it is exported and reports it unknown where
//! it is not.

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
    assert_eq!(new.info().capabilities, ["health/1"]);

    // Direct: health where exported, `None` (unknown) where not.
    let store = dir.path().join("direct");
    let old_backend = old.open("old", &format!(r#"{{"dir": {}}}"#, toml_str(&store)))?;
    let new_backend = new.open("new", "{}")?;
    assert_eq!(old_backend.health().await?, None);
    assert_eq!(
        new_backend.health().await?.as_deref(),
        Some("ok: 0 write calls, recorded up to sequence 0")
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
