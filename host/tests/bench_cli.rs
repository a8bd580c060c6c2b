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
