//! The built-in file backend built as a plugin (`plugins/file`, `audit-backend-file`) through
//! the `audit` command: `audit verify` checks its directory, and a restarted trail continues
//! its chain.
//!
//! Moved from host/tests/file_plugin.rs.

mod common;

use std::path::Path;

use common::*;

fn events(n: usize) -> String {
    (1..=n)
        .map(|i| {
            format!(
                "{{\"event_type\":\"data_access\",\"message\":\"read {i}\",\"user_id\":\"u{i}\"}}\n"
            )
        })
        .collect()
}

fn toml_str(p: &Path) -> String {
    format!("{:?}", p.to_str().expect("utf-8 path"))
}

#[test]
fn a_plugin_only_trail_verifies_and_continues_its_chain_after_a_restart() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("audit.toml"),
        format!(
            "[[backends]]\ntype = \"plugin\"\nlibrary = {}\nconfig = {{ path = \"plugin-logs\", max_file_bytes = 4096 }}\n",
            toml_str(&plugin_lib("audit_backend_file"))
        ),
    )?;
    let out = audit(&["emit", "--config", "audit.toml"], dir.path(), events(20));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = audit(&["verify", "plugin-logs"], dir.path(), "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("ok: 20 events in "),
        "{}",
        text(&out.stdout)
    );

    // Restarted: the plugin reports its last line, so the chain goes on at 21.
    let out = audit(&["emit", "--config", "audit.toml"], dir.path(), events(15));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let logs = dir.path().join("plugin-logs");
    assert_eq!(sequences(&logs), (1..=35).collect::<Vec<u64>>());
    assert!(
        log_files(&logs).len() > 1,
        "max_file_bytes rotates the files"
    );
    let out = audit(&["verify", "plugin-logs"], dir.path(), "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("ok: 35 events in "),
        "{}",
        text(&out.stdout)
    );
    Ok(())
}

/// The plugin's own copy of `tracing` (which the host's subscriber never sees) still reports
/// the store's recovery of a torn final line on stderr, prefixed with the plugin's name.
#[test]
fn the_file_plugin_reports_a_recovered_torn_line_on_stderr() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("audit.toml"),
        format!(
            "[[backends]]\ntype = \"plugin\"\nlibrary = {}\nconfig = {{ path = \"plugin-logs\" }}\n",
            toml_str(&plugin_lib("audit_backend_file"))
        ),
    )?;
    let out = audit(&["emit", "--config", "audit.toml"], dir.path(), events(3));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let logs = dir.path().join("plugin-logs");
    let newest = log_files(&logs).pop().ok_or("no log file")?;
    let mut torn = std::fs::read(&newest)?;
    torn.extend_from_slice(b"{\"event_type\":\"data_acc");
    std::fs::write(&newest, torn)?;

    let out = audit(&["emit", "--config", "audit.toml"], dir.path(), events(2));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("audit: backend plugin file: recovered a torn final line in "),
        "{stderr}"
    );
    assert_eq!(sequences(&logs), (1..=5).collect::<Vec<u64>>());
    Ok(())
}
