//! `audit verify --json`: one JSON object on stdout whatever the outcome (intact, broken,
//! warnings, a check that could not be made), nothing on stderr, the text mode's exit code.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;
use serde_json::Value;

fn events(n: usize) -> String {
    (1..=n)
        .map(|i| format!("{{\"event_type\":\"data_access\",\"message\":\"m{i}\"}}\n"))
        .collect()
}

/// `n` events in `cwd/logs`, written by `audit emit`.
fn trail(cwd: &Path, n: usize) {
    let out = audit(&["emit", "--dir", "logs"], cwd, events(n));
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// The one JSON object on stdout, after checking that stdout is exactly one line and
/// stderr is empty, and that `exit_code` is the process's.
fn object(out: &Output) -> Result<Value, Box<dyn std::error::Error>> {
    let stdout = text(&out.stdout);
    assert!(out.stderr.is_empty(), "stderr: {}", text(&out.stderr));
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.ends_with('\n'), "{stdout}");
    let v: Value = serde_json::from_str(&stdout)?;
    assert_eq!(v["exit_code"].as_i64(), out.status.code().map(i64::from));
    assert_eq!(v["ok"], out.status.success());
    Ok(v)
}

#[test]
fn an_intact_trail_is_one_object_with_its_counts() -> TestResult {
    let cwd = tempfile::tempdir()?;
    trail(cwd.path(), 3);
    let out = audit(&["verify", "--json", "logs"], cwd.path(), "");
    assert_eq!(out.status.code(), Some(0));
    let v = object(&out)?;
    assert_eq!(v["ok"], true);
    assert_eq!(v["events"], 3);
    assert_eq!(v["files"], 1);
    assert_eq!(v["first_sequence"], 1);
    assert_eq!(v["last_sequence"], 3);
    assert_eq!(v["store"], "logs");
    assert_eq!(v["warnings"], serde_json::json!([]));
    assert!(v["failure"].is_null());
    // The text is unchanged.
    let out = audit(&["verify", "logs"], cwd.path(), "");
    assert_eq!(text(&out.stdout), "ok: 3 events in 1 file\n");
    Ok(())
}

#[test]
fn a_broken_chain_names_sequence_file_line_and_reason() -> TestResult {
    let cwd = tempfile::tempdir()?;
    trail(cwd.path(), 3);
    let file = log_files(&cwd.path().join("logs")).pop().ok_or("a file")?;
    let altered = std::fs::read_to_string(&file)?.replace("\"m2\"", "\"mX\"");
    std::fs::write(&file, altered)?;
    let out = audit(&["verify", "--json", "logs"], cwd.path(), "");
    assert_eq!(out.status.code(), Some(1));
    let v = object(&out)?;
    let f = &v["failure"];
    assert_eq!(f["kind"], "chain");
    assert_eq!(f["sequence"], 2);
    assert_eq!(f["line"], 2);
    let name = file.file_name().and_then(|n| n.to_str()).ok_or("name")?;
    assert!(f["file"].as_str().is_some_and(|p| p.ends_with(name)), "{f}");
    assert!(
        f["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("checksum mismatch")),
        "{f}"
    );
    assert!(v["events"].is_null(), "the chain check did not finish");
    // The key hint is a warning, not text on stderr.
    assert_eq!(
        v["warnings"],
        serde_json::json!(["hint: if this trail uses an HMAC key, pass it with --key-file"])
    );
    // Text mode: the same exit code, FAILED on stdout, the hint on stderr.
    let out = audit(&["verify", "logs"], cwd.path(), "");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        format!("FAILED: {}\n", f["message"].as_str().ok_or("message")?)
    );
    assert_eq!(
        text(&out.stderr),
        "hint: if this trail uses an HMAC key, pass it with --key-file\n"
    );
    Ok(())
}

#[test]
fn events_not_yet_sealed_are_a_warning_in_the_object() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let out = audit(&["keygen", "--out", "keys"], cwd.path(), "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::write(
        cwd.path().join("signed.toml"),
        "[trail]\nstorage_path = \"logs\"\n[trail.integrity]\nsigning_key_file = \"keys/audit-signing.key\"\n",
    )?;
    // Two sealed events (sealed at close), then one written without the signing key.
    let out = audit(&["emit", "--config", "signed.toml"], cwd.path(), events(2));
    assert!(out.status.success(), "{}", text(&out.stderr));
    trail(cwd.path(), 1);
    let args = [
        "verify",
        "--json",
        "--public-key",
        "keys/audit-signing.pub",
        "logs",
    ];
    let out = audit(&args, cwd.path(), "");
    assert_eq!(out.status.code(), Some(0));
    let v = object(&out)?;
    assert_eq!(v["events"], 3);
    assert_eq!(
        v["seals"],
        serde_json::json!({"verified": 1, "last_sealed": 2, "unsealed": 1})
    );
    let warnings = v["warnings"].as_array().ok_or("warnings")?;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].as_str().is_some_and(|w| w
            .starts_with("1 event not yet sealed (sequence 3, after seal 1): a seal covers it ")),
        "{warnings:?}"
    );
    Ok(())
}

#[test]
fn a_check_that_cannot_be_made_is_still_one_object_with_the_exit_code() -> TestResult {
    let cwd = tempfile::tempdir()?;
    trail(cwd.path(), 1);
    std::fs::write(cwd.path().join("short.key"), [1u8; 8])?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::Permissions::from_mode(0o600);
        std::fs::set_permissions(cwd.path().join("short.key"), mode)?;
    }
    let cases: &[(&[&str], i32, &str)] = &[
        (&["nope"], 66, "nope is not a directory"),
        (
            &["--key-file", "missing.key", "logs"],
            66,
            "--key-file: cannot read key file",
        ),
        (
            &["--key-file", "short.key", "logs"],
            78,
            "8 bytes; at least 32",
        ),
        (
            &["--config", "missing.toml"],
            66,
            "cannot read the configuration file",
        ),
    ];
    for (extra, code, want) in cases {
        let mut args = vec!["verify", "--json"];
        args.extend_from_slice(extra);
        let out = audit(&args, cwd.path(), "");
        assert_eq!(out.status.code(), Some(*code), "{args:?}");
        let v = object(&out)?;
        let f = &v["failure"];
        assert_eq!(f["kind"], "error", "{args:?}");
        assert!(
            f["reason"].as_str().is_some_and(|r| r.contains(want)),
            "{args:?}: {f}"
        );
    }
    // clap's own usage errors come before any check: its message on stderr, exit 2.
    let out = audit(&["verify", "--json"], cwd.path(), "");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    Ok(())
}

#[test]
fn an_unmet_expectation_is_a_failure_of_its_own_kind() -> TestResult {
    let cwd = tempfile::tempdir()?;
    trail(cwd.path(), 2);
    let out = audit(
        &["verify", "--json", "--min-sequence", "5", "logs"],
        cwd.path(),
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    let v = object(&out)?;
    assert_eq!(v["events"], 2);
    assert_eq!(v["last_sequence"], 2);
    assert_eq!(v["failure"]["kind"], "expectation");
    assert!(
        v["failure"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("below --min-sequence 5")),
        "{v}"
    );
    Ok(())
}
