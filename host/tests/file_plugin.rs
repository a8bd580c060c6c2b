//! The built-in file backend built as a plugin (`plugins/file`, `audit-backend-file`): loaded
//! through the ABI it stores exactly what the built-in backend stores, and a second trail on
//! the same directory is refused. Through the `audit` command: cli/tests/file_plugin.rs.

mod common;

use audit_host::plugin::{LoadOptions, LoadedPlugin};
use audit_host::{AuditEventType, AuditTrail};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plugin_stores_the_same_bytes_as_the_built_in_backend() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (builtin, via_plugin) = (dir.path().join("builtin"), dir.path().join("plugin"));
    let plugin = LoadedPlugin::load(&plugin_lib("audit_backend_file"), &LoadOptions::default())?;
    assert_eq!(plugin.info().name, "file");
    let config = serde_json::json!({ "path": via_plugin, "max_file_bytes": 8192 }).to_string();
    let trail = AuditTrail::builder()
        .file_backend(&builtin, 8192)
        .backend(Box::new(plugin.open("file-plugin", &config)?))
        .build()?;
    for i in 0..200 {
        trail
            .log_event(AuditEventType::DataModification, format!("change {i}"))
            .user_id("bob")
            .meta("i", i)
            .await?;
        if i % 50 == 0 {
            trail.flush().await?;
        }
    }
    trail.close().await?;
    let (a, b) = (log_files(&builtin), log_files(&via_plugin));
    assert!(a.len() > 1, "rotated");
    let names = |v: &[std::path::PathBuf]| -> Vec<_> {
        v.iter()
            .map(|p| p.file_name().map(ToOwned::to_owned))
            .collect()
    };
    assert_eq!(names(&a), names(&b), "same files");
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(std::fs::read(x)?, std::fs::read(y)?, "{}", x.display());
    }
    assert_eq!(verify(&via_plugin).events, 200);
    Ok(())
}

#[test]
fn a_second_trail_on_the_same_directory_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let plugin = LoadedPlugin::load(&plugin_lib("audit_backend_file"), &LoadOptions::default())?;
    let config = serde_json::json!({ "path": dir.path().join("logs") }).to_string();
    let _first = plugin.open("first", &config)?;
    let err = plugin
        .open("second", &config)
        .expect_err("the directory is locked");
    let message = err.to_string();
    assert!(
        message.contains("rejected its config") && message.contains("is locked"),
        "{message}"
    );
    Ok(())
}
