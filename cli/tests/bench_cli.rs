//! `audit bench` runs a real trail and a baseline and reports the contract's fields.

mod common;

use std::process::Command;

use common::*;

#[test]
fn bench_json_has_every_contract_field() -> TestResult {
    let dir = tempfile::tempdir()?;
    let out = Command::new(audit_bin())
        .args([
            "bench",
            "--events",
            "3000",
            "--producers",
            "2",
            "--json",
            "--dir",
        ])
        .arg(dir.path())
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout)?;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(lines[0])?;
    for key in [
        "scenario",
        "events",
        "producers",
        "durability",
        "backend",
        "seconds",
        "events_per_s",
        "mb_per_s",
        "bytes_per_event",
        "baseline_events_per_s",
        "ratio_to_baseline",
        "p50_us",
        "p99_us",
        "p999_us",
        "peak_rss_bytes",
    ] {
        assert!(v.contains_key(key), "missing `{key}` in {text}");
    }
    assert_eq!(v["events"], 3000);
    assert_eq!(v["producers"], 2);
    assert_eq!(v["durability"], "batched");
    assert!(v["events_per_s"].as_f64().is_some_and(|x| x > 0.0));
    assert!(v["baseline_events_per_s"].as_f64().is_some_and(|x| x > 0.0));
    assert!(
        v["bytes_per_event"]
            .as_f64()
            .is_some_and(|b| (850.0..1100.0).contains(&b)),
        "{text}"
    );
    let (p50, p99, p999) = (
        v["p50_us"].as_f64(),
        v["p99_us"].as_f64(),
        v["p999_us"].as_f64(),
    );
    assert!(p50 <= p99 && p99 <= p999, "{text}");
    // The trail's output in the scratch directory is a verified chain of every event.
    assert_eq!(verify(&dir.path().join("trail")).events, 3000);
    Ok(())
}

#[test]
fn bench_rejects_an_unknown_backend() -> TestResult {
    let out = Command::new(audit_bin())
        .args(["bench", "--backend", "tape"])
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("use `file` or `plugin:PATH`"));
    Ok(())
}

#[test]
fn bench_refuses_zero_events_or_producers() -> TestResult {
    for flag in ["--events", "--producers"] {
        let out = Command::new(audit_bin())
            .args(["bench", flag, "0"])
            .output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(flag) && stderr.contains("must be at least 1"),
            "{stderr}"
        );
    }
    Ok(())
}

#[test]
fn bench_rounds_through_a_plugin_start_each_round_with_an_empty_store() -> TestResult {
    // Each round's chain starts at sequence 1: the SQLite plugin refuses a second chain in
    // the database the first round filled, so the default store must start empty each round,
    // also when the bench directory is reused.
    let dir = tempfile::tempdir()?;
    let backend = format!("plugin:{}", plugin_lib("audit_backend_sqlite").display());
    for run in 0..2 {
        let out = Command::new(audit_bin())
            .args(["bench", "--events", "600", "--rounds", "3", "--backend"])
            .arg(&backend)
            .args(["--no-baseline", "--json", "--dir"])
            .arg(dir.path())
            .output()?;
        assert!(
            out.status.success(),
            "run {run}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        assert_eq!(v["events"], 600);
        // Each round's store is measured after its round: per event, one line's worth and
        // its indexes, not an accumulation over rounds and runs.
        let per_event = v["bytes_per_event"].as_f64().unwrap_or_default();
        assert!((500.0..5000.0).contains(&per_event), "{v}");
    }
    Ok(())
}

// Moved from host/tests/edge_cases.rs.
#[test]
fn bench_prints_a_summary_and_reports_a_bad_backend() -> TestResult {
    let dir = tempfile::tempdir()?;
    let scratch = dir.path().join("scratch");
    let out = audit(
        &[
            "bench",
            "--events",
            "500",
            "--verify",
            "--dir",
            scratch.to_str().ok_or("path")?,
        ],
        dir.path(),
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with("file-batched-1p: 500 events, 1 producer(s)"),
        "{stdout}"
    );
    assert!(lines[1].starts_with("verify: "), "{stdout}");

    let out = audit(&["bench", "--backend", "tape"], dir.path(), "");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--backend `tape`: use `file` or `plugin:PATH`"),
        "{}",
        text(&out.stderr)
    );
    let missing = dir.path().join("libmissing.so");
    let out = audit(
        &[
            "bench",
            "--events",
            "10",
            "--backend",
            &format!("plugin:{}", missing.display()),
        ],
        dir.path(),
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with(&format!(
            "audit bench: plugin {}: file not found",
            missing.display()
        )),
        "{}",
        text(&out.stderr)
    );
    Ok(())
}
