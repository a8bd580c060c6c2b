//! The C example plugin (examples/c-backend) through the `audit` command: built with its
//! Makefile, `audit plugin inspect` prints its name, version and C ABI, `audit plugin test`
//! passes, and `audit emit --config` with a file and the C backend stores the same lines in
//! both (resolving a bare library name in `plugin_dir`, honouring a `sha256` pin), and
//! `audit verify --config` reads its store back and verifies it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use sha2::Digest;

/// The example, built with `make BUILD_DIR=dir`.
fn build_example(dir: &Path) -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("make")
        .arg("-s")
        .arg("-C")
        .arg(repo.join("examples/c-backend"))
        .arg(format!("BUILD_DIR={}", dir.display()))
        .output()
        .expect("run make");
    assert!(out.status.success(), "make: {}", text(&out.stderr));
    dir.join("libaudit_backend_c_example.so")
}

#[test]
fn inspect_prints_name_version_and_abi() -> TestResult {
    let dir = tempfile::tempdir()?;
    let lib = build_example(dir.path());
    let out = audit(
        &["plugin", "inspect", lib.to_str().expect("utf-8")],
        dir.path(),
        "",
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.starts_with("name: c-example\nversion: 0.1.0\nplugin_api: C ABI 1.0\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("capabilities: health/1, validate/1, read/1, stats/1\n"),
        "{stdout}"
    );
    Ok(())
}

#[test]
fn the_conformance_kit_passes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let lib = build_example(dir.path());
    let out = audit(
        &[
            "plugin",
            "test",
            lib.to_str().expect("utf-8"),
            "--config",
            r#"{"path":"{dir}/store.jsonl"}"#,
        ],
        dir.path(),
        "",
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    for check in [
        "ok   open",
        "ok   fresh",
        "ok   ordering",
        "ok   flush",
        "ok   reopen",
        "ok   redelivery",
        "ok   fork",
        "ok   read: read_from returned the 300 lines written",
        "stats/1 reports last_sequence=300, lines_appended=0, lines_skipped=0",
        "ok   close",
    ] {
        assert!(stdout.contains(check), "no `{check}` in\n{stdout}");
    }
    assert!(
        stdout.contains("10 passed, 0 failed, 2 skipped: c-example 0.1.0 (C ABI 1.0)"),
        "{stdout}"
    );
    Ok(())
}

#[test]
fn emit_through_a_configured_c_plugin_stores_the_file_backends_lines() -> TestResult {
    let dir = tempfile::tempdir()?;
    let lib = build_example(dir.path());
    let pin: String = sha2::Sha256::digest(std::fs::read(&lib)?)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let config = format!(
        "[trail]\nstorage_path = \"logs\"\nplugin_dir = {:?}\n\n[[backends]]\ntype = \"file\"\n\n[[backends]]\ntype = \"plugin\"\nlibrary = \"audit_backend_c_example\"\nsha256 = \"{pin}\"\nconfig = {{ path = \"c-store.jsonl\" }}\n",
        dir.path().to_str().expect("utf-8"),
    );
    std::fs::write(dir.path().join("audit.toml"), &config)?;
    let events: String = (0..500)
        .map(|i| format!("{{\"event_type\":\"data_access\",\"message\":\"read {i}\"}}\n"))
        .collect();
    let out = audit(&["emit", "--config", "audit.toml"], dir.path(), &events);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let expected: String = all_lines(&dir.path().join("logs"))
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(expected.lines().count(), 500);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("c-store.jsonl"))?,
        expected
    );

    // Its store read back through `read_from` verifies as a chain.
    let out = audit(
        &["verify", "--config", "audit.toml", "--backend", "c-example"],
        dir.path(),
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("ok: 500 events in backends[2] \"c-example\""),
        "{}",
        text(&out.stdout)
    );

    // A wrong pin refuses the library before any of its code runs.
    let wrong = config.replace(&pin, &"0".repeat(64));
    std::fs::write(dir.path().join("audit.toml"), wrong)?;
    let out = audit(&["emit", "--config", "audit.toml"], dir.path(), "");
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("sha256 mismatch"),
        "{}",
        text(&out.stderr)
    );
    Ok(())
}
