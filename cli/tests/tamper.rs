//! What `audit verify` and `audit query` catch besides an edited line: the oldest files
//! deleted under an HMAC key with a forged `.audit-anchor.json`, and `audit_*.jsonl` entries
//! that are not regular files.

mod common;

use std::path::Path;

use audit_host::{AuditEventType, AuditTrail, CompliancePolicy};
use chrono::{DateTime, TimeZone, Utc};
use common::*;

const KEY: [u8; 32] = [7u8; 32];

/// Noon (UTC) on 2026-03-`day`.
fn march(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, 12, 0, 0)
        .single()
        .expect("valid date")
}

#[cfg(unix)]
fn write_key(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, KEY)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

/// Logs `per_day` events on each of `days` (March 2026) into `dir`, under the HMAC key
/// when `hmac`, with retention `retention_days`.
fn write_trail(dir: &Path, days: &[u32], per_day: usize, hmac: bool, retention_days: u32) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let now = std::sync::Arc::new(std::sync::Mutex::new(march(days[0])));
        let clock = std::sync::Arc::clone(&now);
        let mut b = AuditTrail::builder()
            .storage_path(dir)
            .policy(CompliancePolicy {
                retention_days,
                ..Default::default()
            })
            .clock(move || *clock.lock().expect("clock"));
        if hmac {
            b = b.hmac_key(&KEY).expect("key");
        }
        let trail = b.build().expect("trail");
        for &d in days {
            *now.lock().expect("clock") = march(d);
            for i in 0..per_day {
                trail
                    .log_event(AuditEventType::DataAccess, format!("day {d} event {i}"))
                    .await
                    .expect("log");
            }
        }
        trail.close().await.expect("close");
    });
}

/// The attack: delete the oldest file and write an anchor pointing at the first remaining
/// line, as anyone who can write the directory (but has no key) can.
fn delete_oldest_and_forge_anchor(logs: &Path) -> TestResult {
    let files = log_files(logs);
    std::fs::remove_file(&files[0])?;
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&files[1])?
            .lines()
            .next()
            .ok_or("empty file")?,
    )?;
    let forged = serde_json::json!({
        "previous_hash": first["previous_hash"],
        "sequence_number": first["sequence_number"],
    });
    std::fs::write(logs.join(".audit-anchor.json"), forged.to_string())?;
    Ok(())
}

#[cfg(unix)]
#[test]
fn deleting_the_oldest_files_under_hmac_with_a_forged_anchor_fails_verify() -> TestResult {
    let dir = tempfile::tempdir()?;
    let logs = dir.path().join("logs");
    write_key(&dir.path().join("audit.key"))?;
    write_trail(&logs, &[1, 2, 3], 2, true, 365);
    assert_eq!(
        audit(
            &["verify", "--key-file", "audit.key", "logs"],
            dir.path(),
            ""
        )
        .status
        .code(),
        Some(0)
    );
    delete_oldest_and_forge_anchor(&logs)?;
    let out = audit(
        &["verify", "--key-file", "audit.key", "logs"],
        dir.path(),
        "",
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("FAILED: ")
            && stdout.contains(".audit-anchor.json")
            && stdout.contains("not authenticated"),
        "{stdout}"
    );
    Ok(())
}

#[cfg(unix)]
#[test]
fn retention_under_hmac_writes_an_anchor_that_verifies_with_the_key() -> TestResult {
    let dir = tempfile::tempdir()?;
    let logs = dir.path().join("logs");
    write_key(&dir.path().join("audit.key"))?;
    // Retention 2 days: starting 2026-03-05 deletes 03-01 and 03-02.
    write_trail(&logs, &[1, 2, 3, 5], 2, true, 2);
    assert_eq!(log_files(&logs).len(), 2);
    let out = audit(
        &["verify", "--key-file", "audit.key", "logs"],
        dir.path(),
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains("events 1..4 (files dated 2026-03-01 to 2026-03-02) were removed by retention on 2026-03-05"),
        "{err}"
    );
    assert_eq!(text(&out.stdout), "ok: 4 events in 2 files\n");
    // The policy says 7 days: removals under 2 fail the check.
    let args = ["verify", "--key-file", "audit.key", "--retention-days"];
    let out = audit(&[&args[..], &["2", "logs"]].concat(), dir.path(), "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let out = audit(&[&args[..], &["7", "logs"]].concat(), dir.path(), "");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(
            "were removed on 2026-03-05 under retention_days 2, shorter than --retention-days 7"
        ),
        "{}",
        text(&out.stdout)
    );

    // The anchor is authenticated: a forged one in its place fails.
    let anchor = logs.join(".audit-anchor.json");
    let stored: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&anchor)?)?;
    let mut forged = stored.clone();
    forged["removed"]["first_sequence"] = 3.into();
    std::fs::write(&anchor, forged.to_string())?;
    let out = audit(
        &["verify", "--key-file", "audit.key", "logs"],
        dir.path(),
        "",
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("does not authenticate"));
    Ok(())
}

#[cfg(unix)]
#[test]
fn an_old_unauthenticated_anchor_fails_under_hmac_until_retention_rewrites_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let logs = dir.path().join("logs");
    write_key(&dir.path().join("audit.key"))?;
    write_trail(&logs, &[1, 2, 3], 2, true, 365);
    // What an older version's retention left: day 1 gone, a bare anchor.
    delete_oldest_and_forge_anchor(&logs)?;
    let out = audit(
        &["verify", "--key-file", "audit.key", "logs"],
        dir.path(),
        "",
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("not authenticated"));
    // The next retention run (this version, with the key) deletes day 2 and writes an
    // authenticated anchor; the events removed before it are named in a warning.
    write_trail(&logs, &[5], 1, true, 2);
    let out = audit(
        &["verify", "--key-file", "audit.key", "logs"],
        dir.path(),
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains("events 3..4 (files dated 2026-03-02 to 2026-03-02) were removed by retention on 2026-03-05")
            && err.contains("events 1..2 were removed before"),
        "{err}"
    );
    Ok(())
}

#[test]
fn sha256_verify_reads_an_anchor_without_a_mac_as_before() -> TestResult {
    let dir = tempfile::tempdir()?;
    let logs = dir.path().join("logs");
    write_trail(&logs, &[1, 2, 3], 2, false, 365);
    delete_oldest_and_forge_anchor(&logs)?;
    // What SHA-256 mode cannot tell apart from retention (docs/file-format.md).
    let out = audit(&["verify", "logs"], dir.path(), "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("starts at sequence 3"));
    Ok(())
}

/// Each kind of entry that is not a regular file, under an audit file name.
#[cfg(unix)]
fn odd_entries(logs: &Path, outside: &Path) -> Vec<(&'static str, std::path::PathBuf)> {
    let target = outside.join("elsewhere.jsonl");
    std::fs::write(&target, "").expect("target");
    let link = logs.join("audit_2026-01-01.jsonl");
    let fifo = logs.join("audit_2026-01-02.jsonl");
    let dir = logs.join("audit_2026-01-03.jsonl");
    vec![("symlink", link), ("fifo", fifo), ("directory", dir)]
        .into_iter()
        .inspect(|(kind, p)| match *kind {
            "symlink" => std::os::unix::fs::symlink(&target, p).expect("symlink"),
            "fifo" => {
                let st = std::process::Command::new("mkfifo")
                    .arg(p)
                    .status()
                    .expect("mkfifo");
                assert!(st.success());
            }
            _ => std::fs::create_dir(p).expect("dir"),
        })
        .collect()
}

#[cfg(unix)]
#[test]
fn entries_that_are_not_regular_files_fail_verify_and_warn_in_query() -> TestResult {
    let dir = tempfile::tempdir()?;
    for (i, kind) in ["symlink", "fifo", "directory"].into_iter().enumerate() {
        let logs = dir.path().join(format!("logs{i}"));
        write_trail(&logs, &[1], 2, false, 365);
        let entries = odd_entries(&logs, dir.path());
        let (_, path) = entries
            .iter()
            .find(|(k, _)| *k == kind)
            .ok_or("kind")?
            .clone();
        for (k, p) in &entries {
            if *k != kind {
                std::fs::remove_file(p).or_else(|_| std::fs::remove_dir(p))?;
            }
        }
        let name = format!("logs{i}");
        let out = audit(&["verify", &name], dir.path(), "");
        assert_eq!(out.status.code(), Some(1), "{kind}: {}", text(&out.stdout));
        let stdout = text(&out.stdout);
        assert!(
            stdout.starts_with("FAILED: ")
                && stdout.contains(&format!(
                    "logs{i}/{}",
                    path.file_name().ok_or("name")?.to_string_lossy()
                ))
                && stdout.contains(&format!("is a {kind}")),
            "{kind}: {stdout}"
        );
        let out = audit(&["query", &name], dir.path(), "");
        assert_eq!(out.status.code(), Some(0), "{kind}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout).lines().count(), 2, "{kind}");
        let err = text(&out.stderr);
        assert!(
            err.contains("warning") && err.contains(&format!("is a {kind}")),
            "{kind}: {err}"
        );
    }
    Ok(())
}
