//! What the library reports reaches stderr through the `audit` binary's subscriber:
//! `audit: MESSAGE` lines by default, one JSON object per line with `--log-format json`,
//! filtered by `--log-level` or `AUDIT_LOG` (docs/operations.md#logging).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;

const EVENT: &str = "{\"event_type\":\"data_access\",\"message\":\"read\"}\n";

/// A directory with one event and a torn final line: the next `emit` recovers it and says so.
fn torn_dir(root: &Path) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let out = audit(&["emit", "--dir", "logs"], root, EVENT);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let logs = root.join("logs");
    let newest = log_files(&logs).pop().ok_or("no log file")?;
    let mut bytes = std::fs::read(&newest)?;
    bytes.extend_from_slice(b"{\"event_type\":\"da");
    std::fs::write(&newest, bytes)?;
    Ok(newest)
}

/// Runs `audit args` in `cwd` with `AUDIT_LOG` set to `level` (or removed).
fn audit_env(args: &[&str], cwd: &Path, level: Option<&str>) -> std::io::Result<Output> {
    let mut cmd = Command::new(audit_bin());
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match level {
        Some(l) => cmd.env("AUDIT_LOG", l),
        None => cmd.env_remove("AUDIT_LOG"),
    };
    let mut child = cmd.spawn()?;
    {
        use std::io::Write;
        let written = child
            .stdin
            .take()
            .ok_or("no stdin")
            .map_err(std::io::Error::other)?
            .write_all(EVENT.as_bytes());
        // A command that fails at start (a bad AUDIT_LOG) may exit before reading stdin.
        match written {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e),
            _ => {}
        }
    }
    child.wait_with_output()
}

#[test]
fn by_default_a_report_is_one_text_line_with_the_same_words() -> TestResult {
    let dir = tempfile::tempdir()?;
    let file = torn_dir(dir.path())?;
    let out = audit_env(&["emit", "--dir", "logs"], dir.path(), None)?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let expected = format!(
        "audit: recovered a torn final line in {}: 17 byte(s) moved to {}.torn; the chain continues from the last complete line\n",
        Path::new("logs")
            .join(file.file_name().ok_or("name")?)
            .display(),
        Path::new("logs")
            .join(file.file_name().ok_or("name")?)
            .display(),
    );
    assert!(stderr.starts_with(&expected), "{stderr}");
    // The command's own output is not a log: unchanged.
    assert!(stderr.contains("emitted 1 event"), "{stderr}");
    assert_eq!(sequences(&dir.path().join("logs")), vec![1, 2]);
    Ok(())
}

#[test]
fn log_format_json_writes_one_object_per_report_with_its_fields() -> TestResult {
    let dir = tempfile::tempdir()?;
    let file = torn_dir(dir.path())?;
    let out = audit_env(
        &["--log-format", "json", "emit", "--dir", "logs"],
        dir.path(),
        None,
    )?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let reports: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(reports.len(), 1, "{stderr}");
    let r = &reports[0];
    assert_eq!(r["level"], "WARN", "{r}");
    assert_eq!(r["target"], "audit_format::recover", "{r}");
    assert_eq!(r["bytes"], 17, "{r}");
    let path = Path::new("logs").join(file.file_name().ok_or("name")?);
    assert_eq!(r["path"], path.display().to_string(), "{r}");
    let message = r["message"].as_str().ok_or("no message")?;
    assert!(
        message.starts_with("recovered a torn final line in "),
        "{r}"
    );
    assert!(r["timestamp"].is_string(), "{r}");
    Ok(())
}

#[test]
fn log_level_and_audit_log_filter_reports_and_the_flag_wins() -> TestResult {
    let dir = tempfile::tempdir()?;
    torn_dir(dir.path())?;
    // A warning is not printed at `error`, from the flag or from the environment.
    let out = audit_env(
        &["--log-level", "error", "emit", "--dir", "logs"],
        dir.path(),
        None,
    )?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("torn"), "{}", text(&out.stderr));

    torn_dir(dir.path())?;
    let out = audit_env(&["emit", "--dir", "logs"], dir.path(), Some("error"))?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("torn"), "{}", text(&out.stderr));

    // The flag wins over AUDIT_LOG.
    torn_dir(dir.path())?;
    let out = audit_env(
        &["--log-level", "warn", "emit", "--dir", "logs"],
        dir.path(),
        Some("off"),
    )?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("audit: recovered a torn final line"),
        "{}",
        text(&out.stderr)
    );
    Ok(())
}

#[test]
fn a_bad_audit_log_value_is_refused_naming_the_variable_and_the_levels() -> TestResult {
    let dir = tempfile::tempdir()?;
    let out = audit_env(&["verify", "logs"], dir.path(), Some("loud"))?;
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "AUDIT_LOG=\"loud\" is not a log level; use one of off, error, warn, info, debug, trace"
        ),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn debug_reports_are_printed_only_at_debug() -> TestResult {
    let dir = tempfile::tempdir()?;
    let out = audit_env(&["emit", "--dir", "logs"], dir.path(), None)?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("trail closed"),
        "{}",
        text(&out.stderr)
    );
    let out = audit_env(&["emit", "--dir", "logs"], dir.path(), Some("debug"))?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("audit: trail closed after sequence 2\n"),
        "{}",
        text(&out.stderr)
    );
    Ok(())
}
