//! The promise to vendors: a plugin built against `audit-plugin-api` 1.0.0 loads into this
//! host and every later 1.x host. The fixture `plugins/testing/compat-1-0` is built against
//! the frozen copy of 1.0.0 in `plugins/testing/plugin-api-1.0.0` (same package name and
//! version as the released crate, so `abi_stable` checks its types against this host's
//! exactly as it checks a vendor's). A change to `plugin-api` that makes the host refuse
//! 1.0.0 plugins fails here. See docs/plugin-abi.md.

mod common;

use std::path::Path;

use audit_host::plugin::{LoadOptions, LoadedPlugin};
use audit_host::{AuditTrail, Error};
use common::*;

/// Loads the fixture, failing with the loader's message and `abi_stable`'s layout report.
fn load_fixture() -> LoadedPlugin {
    let lib = plugin_lib("audit_backend_compat_1_0");
    match LoadedPlugin::load(&lib, &LoadOptions::default()) {
        Ok(p) => p,
        Err(Error::Plugin {
            message, details, ..
        }) => panic!(
            "this host refuses a plugin built against audit-plugin-api 1.0.0: {message}\n{}",
            details.unwrap_or_default()
        ),
        Err(e) => panic!("this host refuses a plugin built against audit-plugin-api 1.0.0: {e}"),
    }
}

fn config(dir: &Path, store: &Path) -> std::io::Result<std::path::PathBuf> {
    let path = dir.join("audit.toml");
    std::fs::write(
        &path,
        format!(
            r#"[[backends]]
type = "plugin"
library = {lib}
config = {{ dir = {store} }}
"#,
            lib = toml_str(&plugin_lib("audit_backend_compat_1_0")),
            store = toml_str(store),
        ),
    )?;
    Ok(path)
}

#[test]
fn the_host_loads_a_plugin_built_against_1_0_0() {
    let plugin = load_fixture();
    let info = plugin.info();
    assert_eq!(info.plugin_api, "1.0.0");
    assert_eq!(info.name, "compat-1-0");
}

#[tokio::test]
async fn a_1_0_0_plugin_stores_3000_events_that_verify_and_continues_after_a_restart() -> TestResult
{
    load_fixture();
    let dir = tempfile::tempdir()?;
    let store = dir.path().join("store");
    let config = config(dir.path(), &store)?;

    let trail = AuditTrail::from_config_file(&config)?;
    assert_eq!(trail.statistics().backends, ["compat-1-0"]);
    log_n(&trail, 3_000).await?;
    trail.close().await?;
    let report = verify(&store);
    assert_eq!(
        (report.events, report.first_sequence, report.last_sequence),
        (3_000, Some(1), Some(3_000))
    );

    // The plugin is the only backend: the next trail continues from its `last_line`.
    let trail = AuditTrail::from_config_file(&config)?;
    log_n(&trail, 10).await?;
    trail.close().await?;
    assert_eq!(verify(&store).last_sequence, Some(3_010));
    assert_eq!(sequences(&store), (1..=3_010).collect::<Vec<_>>());
    Ok(())
}
