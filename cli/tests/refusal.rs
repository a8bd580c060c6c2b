//! Per-record refusal through the `audit` binary: `audit emit` reports a backend's first
//! refusal once on stderr and counts every refused record in `--stats`; the conformance
//! kit's `refusal` check passes the faulty fixture's refusal mode and fails its broken ones.

mod common;

use common::{TestResult, audit, plugin_lib, text};

#[test]
fn emit_reports_the_first_refusal_once_and_counts_them_all() -> TestResult {
    let tmp = tempfile::tempdir()?;
    std::fs::write(
        tmp.path().join("audit.toml"),
        format!(
            r#"[trail]
storage_path = "logs"

[[backends]]
type = "file"

[[backends]]
type = "plugin"
name = "siem"
library = {:?}
config = {{ record = "record.txt", refuse_event_type = "security_violation", refuse_reason = "the SIEM drops this type" }}
"#,
            plugin_lib("audit_backend_faulty").display().to_string()
        ),
    )?;
    // Sync: one batch per event, so the two refusals come in separate calls.
    let input = [
        "data_access",
        "security_violation",
        "data_access",
        "security_violation",
        "data_access",
    ]
    .map(|t| format!("{{\"event_type\":\"{t}\",\"message\":\"m\"}}\n"))
    .concat();
    let out = audit(
        &[
            "emit",
            "--config",
            "audit.toml",
            "--durability",
            "sync",
            "--stats",
        ],
        tmp.path(),
        input,
    );
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let dead = tmp.path().join("logs/.spool/siem/dead-letter.jsonl");
    let told = format!(
        "audit: backend `siem` refused 1 record(s); they are in {} with the reasons",
        dead.display()
    );
    assert_eq!(stderr.matches(&told).count(), 1, "{stderr}");
    assert!(
        stderr.contains("first: sequence 2: the SIEM drops this type"),
        "{stderr}"
    );
    let stats_json = stderr
        .find('{')
        .and_then(|start| stderr.rfind('}').map(|end| &stderr[start..=end]))
        .ok_or("no statistics")?;
    let stats: serde_json::Value = serde_json::from_str(stats_json)?;
    let siem = &stats["per_backend"][1];
    assert_eq!(siem["name"], "siem");
    assert_eq!(siem["refused"], 2);
    assert_eq!(siem["delivered"], 3);
    assert_eq!(stats["per_backend"][0]["refused"], 0);
    let lines: Vec<u64> = std::fs::read_to_string(&dead)?
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).map(|v| v["sequence_number"].as_u64())
        })
        .collect::<Result<Option<_>, _>>()?
        .ok_or("a line without sequence_number")?;
    assert_eq!(lines, [2, 4]);
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("record.txt"))?,
        "1\n3\n5\n"
    );
    Ok(())
}

/// Runs the kit against the faulty fixture with `config`; its stdout.
fn kit(config: &str) -> String {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lib = plugin_lib("audit_backend_faulty");
    let out = audit(
        &[
            "plugin",
            "test",
            lib.to_str().expect("utf-8"),
            "--config",
            config,
        ],
        tmp.path(),
        "",
    );
    text(&out.stdout)
}

#[test]
fn the_kit_checks_refusal_semantics() {
    let stdout = kit(r#"{"refuse_sequences":[305],"refuse_reason":"too big"}"#);
    assert!(
        stdout.contains("ok   refusal: 1 of 10 records refused (first: sequence 305, `too big`); the rest stored (last_line is the last record not refused)"),
        "{stdout}"
    );
    let stdout = kit(r#"{"refuse_sequences":[305],"refuse_broken":"foreign"}"#);
    assert!(
        stdout.contains("FAIL refusal: it refused sequence 18446744073709551615, which is not in the batch (sequences 301 to 310)"),
        "{stdout}"
    );
    let stdout = kit(r#"{"refuse_sequences":[305],"refuse_broken":"empty_reason"}"#);
    assert!(
        stdout.contains("FAIL refusal: it refused sequence 305 without a reason"),
        "{stdout}"
    );
    // A plugin without the capability: noted, not failed.
    let tmp = tempfile::tempdir().expect("tempdir");
    let lib = plugin_lib("audit_backend_sqlite");
    let out = audit(
        &[
            "plugin",
            "test",
            lib.to_str().expect("utf-8"),
            "--config",
            r#"{"path":"{dir}/a.db"}"#,
        ],
        tmp.path(),
        "",
    );
    assert!(
        text(&out.stdout).contains("skip refusal: not exported"),
        "{}",
        text(&out.stdout)
    );
}
