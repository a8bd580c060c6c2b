//! A loaded plugin as a `StorageBackend`: used directly it refuses calls after close, and a
//! store holding foreign data is not continued.

mod common;

use audit_host::plugin::{LoadOptions, LoadedPlugin};
use audit_host::{AuditTrail, Error, StorageBackend};
use common::*;
use serde_json::json;

#[tokio::test]
async fn a_plugin_backend_used_directly_refuses_calls_after_close() -> TestResult {
    let dir = tempfile::tempdir()?;
    let plugin = LoadedPlugin::load(
        &plugin_lib("audit_backend_example"),
        &LoadOptions::default(),
    )?;
    let shown = format!("{plugin:?}");
    assert!(
        shown.starts_with("LoadedPlugin") && shown.contains("example-line-file"),
        "{shown}"
    );
    let copy = dir.path().join("copy.jsonl");
    let be = plugin.open("copy", &json!({"path": copy}).to_string())?;
    assert_eq!(be.name(), "copy");
    assert_eq!(be.resume().await?, None);
    let records = records_at(&[at(2026, 3, 1); 2]).await?;
    for r in &records {
        be.write(r).await?;
    }
    be.flush().await?;
    let head = be.resume().await?.ok_or("a head")?;
    assert_eq!(head.sequence_number, 2);
    assert_eq!(head.line, records[1].line());
    be.close().await?;
    assert_eq!(
        std::fs::read_to_string(&copy)?,
        format!("{}\n{}\n", records[0].line(), records[1].line())
    );
    for result in [be.write(&records[0]).await, be.flush().await] {
        assert!(
            matches!(&result, Err(Error::Backend { message }) if message == "plugin backend `copy` is closed"),
            "{result:?}"
        );
    }
    Ok(())
}

#[test]
fn a_plugin_store_holding_foreign_data_is_not_continued() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = dir.path().join("copy.jsonl");
    std::fs::write(&store, "{\"hello\":\"world\"}\n")?;
    let config = dir.path().join("audit.toml");
    std::fs::write(
        &config,
        format!(
            "[[backends]]\ntype = \"plugin\"\nname = \"copy\"\nlibrary = {}\nconfig = {{ path = {} }}\n",
            toml_str(&plugin_lib("audit_backend_example")),
            toml_str(&store)
        ),
    )?;
    match AuditTrail::from_config_file(&config) {
        Err(Error::Backend { message }) => assert!(
            // Named by its entry, and by the plugin as the entry renames it.
            message.starts_with("backends[1] \"copy\" (")
                && message.contains(
                    ":1), plugin `example-line-file`: its last stored line is not an audit event"
                ),
            "{message}"
        ),
        other => panic!("expected the foreign store to be refused, got {other:?}"),
    }
    assert_eq!(std::fs::read_to_string(&store)?, "{\"hello\":\"world\"}\n");
    Ok(())
}
