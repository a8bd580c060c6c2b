//! The `audit` command: emit, verify (tampering, HMAC), query, config check.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;

fn run(args: &[&str], stdin: &[u8], cwd: &Path) -> Output {
    audit(args, cwd, stdin)
}

fn events(n: usize) -> String {
    (1..=n)
        .map(|i| format!(r#"{{"event_type":"data_access","message":"read {i}","user_id":"u{}","metadata":{{"i":{i}}}}}"#, i % 7) + "\n")
        .collect()
}

#[test]
fn emit_without_arguments_writes_audit_logs_in_the_working_directory() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let out = run(&["emit"], events(5).as_bytes(), cwd.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr).trim(), "emitted 5 events");
    let file = cwd
        .path()
        .join("audit_logs")
        .join(audit_host::todays_file_name());
    assert_eq!(std::fs::read_to_string(file)?.lines().count(), 5);
    let out = run(&["verify", "audit_logs"], b"", cwd.path());
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout).lines().last(),
        Some("ok: 5 events in 1 file")
    );
    Ok(())
}

#[test]
fn emit_stops_at_a_bad_line_after_writing_everything_before_it() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let mut input = events(499);
    input.push_str("{\"event_type\":\"data_access\",\"message\":\"x\",\"contains_pii\":\"yes\"}\n");
    input.push_str(&events(10));
    let out = run(&["emit", "--dir", "logs"], input.as_bytes(), cwd.path());
    assert_eq!(out.status.code(), Some(65), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("line 500") && err.contains("contains_pii"),
        "{err}"
    );
    let out = run(&["verify", "logs"], b"", cwd.path());
    assert_eq!(
        text(&out.stdout).lines().last(),
        Some("ok: 499 events in 1 file")
    );
    Ok(())
}

/// With `--rejects FILE` the run goes on past bad lines (not JSON, a bad key, not UTF-8,
/// longer than --max-event-bytes), each written to FILE with its line number and error;
/// every good line is recorded, in order, and the exit code is 0.
#[test]
fn emit_with_rejects_keeps_going_and_writes_each_bad_line_there() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let mut input = events(3).into_bytes();
    input.extend_from_slice(b"not json\n");
    input.extend_from_slice(events(2).as_bytes());
    input.extend_from_slice(
        b"{\"event_type\":\"data_access\",\"message\":\"x\",\"contains_pii\":\"yes\"}\n",
    );
    input.extend_from_slice(b"{\"event_type\":\"data_access\",\"message\":\"\xff\"}\n");
    input.extend_from_slice(format!("{{\"message\":\"{}\"}}\n", "y".repeat(5000)).as_bytes());
    input.extend_from_slice(events(1).as_bytes());
    let out = run(
        &[
            "emit",
            "--dir",
            "logs",
            "--max-event-bytes",
            "2000",
            "--rejects",
            "bad.jsonl",
        ],
        &input,
        cwd.path(),
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("4 input line(s) were not events") && err.contains("bad.jsonl"),
        "{err}"
    );
    let out = run(&["verify", "logs"], b"", cwd.path());
    assert_eq!(
        text(&out.stdout).lines().last(),
        Some("ok: 6 events in 1 file")
    );
    let rejects: Vec<serde_json::Value> = std::fs::read_to_string(cwd.path().join("bad.jsonl"))?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let lines: Vec<u64> = rejects.iter().filter_map(|r| r["line"].as_u64()).collect();
    assert_eq!(lines, [4, 7, 8, 9]);
    assert_eq!(rejects[0]["input"], "not json");
    assert!(
        rejects[1]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("contains_pii")
    );
    assert!(
        rejects[2]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("not valid UTF-8")
    );
    assert_eq!(rejects[3]["truncated"], true);
    assert_eq!(rejects[3]["input"].as_str().map(str::len), Some(2001));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(cwd.path().join("bad.jsonl"))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    Ok(())
}

#[test]
fn emit_names_each_kind_of_bad_input() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let cases: &[(&str, &str)] = &[
        ("{not json", "not a JSON object"),
        (
            r#"{"event_type":"made_up","message":"m"}"#,
            "key `event_type`: unknown AuditEventType `made_up`",
        ),
        (
            r#"{"event_type":"data_access"}"#,
            "key `message`: required key is missing",
        ),
        (
            r#"{"event_type":"data_access","message":"m","colour":"red"}"#,
            "key `colour`: unknown key",
        ),
        (
            r#"{"event_type":"data_access","message":"m","sequence_number":4}"#,
            "key `sequence_number`: is assigned by the trail",
        ),
        (
            r#"{"event_type":"data_access","message":"m","metadata":"x"}"#,
            "key `metadata`: expected an object",
        ),
        (
            r#"{"event_type":"data_access","message":"m","timestamp":"yesterday"}"#,
            "key `timestamp`",
        ),
        (r#"[1,2]"#, "not a JSON object"),
    ];
    for (line, want) in cases {
        let input = format!("{}{line}\n", events(2));
        let out = run(&["emit", "--dir", "d"], input.as_bytes(), cwd.path());
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(65), "{line}: {err}");
        assert!(
            err.contains("stdin line 3") && err.contains(want),
            "{line}: {err}"
        );
    }
    let out = run(&["verify", "d"], b"", cwd.path());
    assert_eq!(
        text(&out.stdout).lines().last(),
        Some(format!("ok: {} events in 1 file", 2 * cases.len()).as_str())
    );
    Ok(())
}

/// Writes 10 events and returns the directory and the file.
fn ten_events() -> Result<(tempfile::TempDir, std::path::PathBuf), Box<dyn std::error::Error>> {
    let cwd = tempfile::tempdir()?;
    let out = run(
        &["emit", "--dir", "logs"],
        events(10).as_bytes(),
        cwd.path(),
    );
    assert!(out.status.success());
    let file = log_files(&cwd.path().join("logs")).pop().ok_or("no file")?;
    Ok((cwd, file))
}

fn verify_failure(cwd: &Path) -> String {
    let out = run(&["verify", "logs"], b"", cwd);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout: {} stderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn verify_catches_a_flipped_byte_at_its_sequence() -> TestResult {
    let (cwd, file) = ten_events()?;
    let mut bytes = std::fs::read(&file)?;
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(
            bytes
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect();
    // Flip one byte inside the message of sequence 6.
    let line6 = line_starts[5];
    let at = line6 + text(&bytes[line6..]).find("read 6").ok_or("message")? + 1;
    bytes[at] ^= 0x01;
    std::fs::write(&file, &bytes)?;
    let out = verify_failure(cwd.path());
    assert!(
        out.contains("sequence 6 at")
            && out.contains(".jsonl:6:")
            && out.contains("checksum mismatch"),
        "{out}"
    );
    Ok(())
}

#[test]
fn verify_catches_a_deleted_line_at_its_sequence() -> TestResult {
    let (cwd, file) = ten_events()?;
    let content = std::fs::read_to_string(&file)?;
    let kept: Vec<&str> = content
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 3)
        .map(|(_, l)| l)
        .collect();
    std::fs::write(&file, kept.join("\n") + "\n")?;
    let out = verify_failure(cwd.path());
    assert!(
        out.contains("sequence 4 at")
            && out.contains(":4:")
            && out.contains("sequence 4 is missing"),
        "{out}"
    );
    Ok(())
}

#[test]
fn verify_catches_a_swapped_pair_at_its_sequence() -> TestResult {
    let (cwd, file) = ten_events()?;
    let content = std::fs::read_to_string(&file)?;
    let mut lines: Vec<&str> = content.lines().collect();
    lines.swap(6, 7);
    std::fs::write(&file, lines.join("\n") + "\n")?;
    let out = verify_failure(cwd.path());
    assert!(
        out.contains("sequence 7 at") && out.contains(":7:"),
        "{out}"
    );
    Ok(())
}

#[test]
fn verify_catches_a_recomputed_checksum_by_its_broken_link() -> TestResult {
    // An attacker edits line 3 and recomputes its checksum: line 4's previous_hash no longer matches.
    let (cwd, file) = ten_events()?;
    let content = std::fs::read_to_string(&file)?;
    let mut lines: Vec<String> = content.lines().map(str::to_owned).collect();
    let edited = lines[2].replace("read 3", "read 9");
    let body = &edited[79..];
    let digest = {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"{");
        h.update(body.as_bytes());
        h.finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    lines[2] = format!("{}{}{}", &edited[..13], digest, &edited[77..]);
    std::fs::write(&file, lines.join("\n") + "\n")?;
    let out = verify_failure(cwd.path());
    assert!(
        out.contains("sequence 4 at") && out.contains("previous_hash"),
        "{out}"
    );
    Ok(())
}

/// A directory with `audit.key` (48 bytes, mode 0600) and `audit.toml` writing `logs` with
/// that HMAC key.
fn hmac_trail_dir() -> Result<tempfile::TempDir, Box<dyn std::error::Error>> {
    let cwd = tempfile::tempdir()?;
    let key = cwd.path().join("audit.key");
    std::fs::write(&key, [42u8; 48])?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::write(
        cwd.path().join("audit.toml"),
        "[trail]\nstorage_path = \"logs\"\n[trail.integrity]\nhmac_key_file = \"audit.key\"\n",
    )?;
    Ok(cwd)
}

#[test]
fn hmac_chain_verifies_with_the_key_and_fails_without() -> TestResult {
    let cwd = hmac_trail_dir()?;
    let out = run(
        &["emit", "--config", "audit.toml"],
        events(20).as_bytes(),
        cwd.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(
        &["verify", "--key-file", "audit.key", "logs"],
        b"",
        cwd.path(),
    );
    assert_eq!(
        text(&out.stdout).lines().last(),
        Some("ok: 20 events in 1 file")
    );
    let out = run(&["verify", "logs"], b"", cwd.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("sequence 1 at"),
        "{}",
        text(&out.stdout)
    );
    assert!(text(&out.stderr).contains("--key-file"));
    // A wrong key fails too.
    let wrong = cwd.path().join("wrong.key");
    std::fs::write(&wrong, [7u8; 48])?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600))?;
    }
    let out = run(
        &["verify", "--key-file", "wrong.key", "logs"],
        b"",
        cwd.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    Ok(())
}

#[test]
fn verify_missing_input_exits_66_and_usage_errors_2() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let out = run(&["verify", "nope"], b"", cwd.path());
    assert_eq!(out.status.code(), Some(66));
    assert!(text(&out.stderr).contains("nope is not a directory"));
    let out = run(&["verify"], b"", cwd.path());
    assert_eq!(out.status.code(), Some(2));
    Ok(())
}

#[test]
fn query_filters_newest_first() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let input = concat!(
        r#"{"event_type":"data_access","message":"a","user_id":"alice","component":"crm","timestamp":"2026-01-01T10:00:00Z"}"#,
        "\n",
        r#"{"event_type":"authentication_failed","message":"b","user_id":"bob","log_level":"security","timestamp":"2026-01-02T10:00:00Z"}"#,
        "\n",
        r#"{"event_type":"data_access","message":"c","user_id":"alice","timestamp":"2026-01-03T10:00:00Z"}"#,
        "\n",
        r#"{"event_type":"data_export","message":"d","user_id":"alice","component":"crm","timestamp":"2026-01-04T10:00:00Z"}"#,
        "\n",
    );
    let out = run(&["emit", "--dir", "logs"], input.as_bytes(), cwd.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let messages = |args: &[&str]| -> Vec<String> {
        let mut full = vec!["query", "logs"];
        full.extend_from_slice(args);
        let out = run(&full, b"", cwd.path());
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).expect("json")["message"]
                    .as_str()
                    .expect("m")
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(messages(&[]), ["d", "c", "b", "a"]);
    assert_eq!(messages(&["--user", "alice"]), ["d", "c", "a"]);
    assert_eq!(messages(&["--user", "alice", "--limit", "2"]), ["d", "c"]);
    assert_eq!(messages(&["--event-type", "data_access"]), ["c", "a"]);
    assert_eq!(messages(&["--level", "security"]), ["b"]);
    assert_eq!(messages(&["--component", "crm"]), ["d", "a"]);
    assert_eq!(
        messages(&["--since", "2026-01-02", "--until", "2026-01-03"]),
        ["c", "b"]
    );
    assert_eq!(messages(&["--since", "2026-01-03T10:00:00Z"]), ["d", "c"]);
    let out = run(&["query", "logs", "--level", "loud"], b"", cwd.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("expected one of"),
        "{}",
        text(&out.stderr)
    );
    Ok(())
}

fn config_check(cwd: &Path, toml: &str) -> Output {
    std::fs::write(cwd.join("c.toml"), toml).expect("write config");
    run(&["config", "check", "c.toml"], b"", cwd)
}

#[test]
fn config_check_prints_backends_or_names_the_bad_key() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let out = config_check(cwd.path(), "[trail]\nstorage_path = \"x\"\n");
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(stdout.contains("config ok: c.toml"));
    assert!(
        stdout.contains(&format!(
            "backend 1: type=file name=file path={}",
            cwd.path().join("x").display()
        )),
        "{stdout}"
    );

    let bad: &[(&str, &str)] = &[
        (
            "[trail]\nflush_interval = 5\n",
            "c.toml:2:1: trail.flush_interval: unknown field `flush_interval`",
        ),
        (
            "[trail]\ndurability = \"eventually\"\n",
            "c.toml:2:14: trail.durability: unknown variant `eventually`",
        ),
        (
            "[trail]\nqueue_capacity = -1\n",
            "c.toml:2:18: trail.queue_capacity:",
        ),
        (
            "[trail]\non_full = \"drop\"\n",
            "c.toml:2:11: trail.on_full: unknown variant `drop`",
        ),
        (
            "[trail.policy]\nlevel = \"hippa\"\n",
            "c.toml:2:9: trail.policy.level: unknown variant `hippa`",
        ),
        (
            "[trail.policy]\nretention_days = 30\nencrypt_audit_logs = true\n",
            "c.toml:3: trail.policy.encrypt_audit_logs: encryption at rest is not implemented",
        ),
        (
            "[trail.policy]\nrequire_integrity_check = false\n",
            "c.toml:2: trail.policy.require_integrity_check:",
        ),
        (
            "[trail.integrity]\nhmac_key_file = \"missing.key\"\n",
            "c.toml:2: trail.integrity.hmac_key_file: cannot read key file",
        ),
        (
            "[[backends]]\ntype = \"s3\"\n",
            "c.toml:2: backends[1].type: unknown backend type `s3`",
        ),
        (
            "[[backends]]\npath = \"x\"\n",
            "c.toml:1: backends[1].type: missing",
        ),
        ("[trail\n", "c.toml:1:7:"),
        (
            "[trail]\nstorage_path = \"${AUDIT_TEST_UNSET_VARIABLE}\"\n",
            "c.toml:2: trail.storage_path: environment variable AUDIT_TEST_UNSET_VARIABLE",
        ),
    ];
    for (toml, want) in bad {
        let out = config_check(cwd.path(), toml);
        assert_eq!(out.status.code(), Some(78), "{toml}");
        let err = text(&out.stderr);
        assert!(
            err.contains(want),
            "config {toml:?}\nwanted {want:?}\ngot {err}"
        );
    }
    // HMAC key files: too short, and readable by others.
    std::fs::write(cwd.path().join("short.key"), [1u8; 16])?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            cwd.path().join("short.key"),
            std::fs::Permissions::from_mode(0o600),
        )?;
        let out = config_check(
            cwd.path(),
            "[trail.integrity]\nhmac_key_file = \"short.key\"\n",
        );
        assert!(
            text(&out.stderr).contains("16 bytes; at least 32"),
            "{}",
            text(&out.stderr)
        );
        std::fs::write(cwd.path().join("open.key"), [1u8; 32])?;
        std::fs::set_permissions(
            cwd.path().join("open.key"),
            std::fs::Permissions::from_mode(0o644),
        )?;
        let out = config_check(
            cwd.path(),
            "[trail.integrity]\nhmac_key_file = \"open.key\"\n",
        );
        assert!(
            text(&out.stderr).contains("readable by group or others"),
            "{}",
            text(&out.stderr)
        );
    }
    Ok(())
}

#[test]
fn the_shipped_sample_config_is_valid() -> TestResult {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/audit.toml");
    let out = run(
        &["config", "check", sample.to_str().ok_or("path")?],
        b"",
        Path::new(env!("CARGO_MANIFEST_DIR")),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    Ok(())
}

#[test]
fn query_warns_about_lines_it_cannot_read() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let out = run(&["emit", "--dir", "logs"], events(3).as_bytes(), cwd.path());
    assert!(out.status.success());
    let file = log_files(&cwd.path().join("logs")).pop().ok_or("file")?;
    let mut content = std::fs::read_to_string(&file)?;
    content.push_str("{not an event}\n");
    std::fs::write(&file, content)?;
    let out = run(&["query", "logs"], b"", cwd.path());
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8(out.stdout)?.lines().count(), 3);
    assert!(
        text(&out.stderr).contains("1 line(s) could not be read as events"),
        "{}",
        text(&out.stderr)
    );
    Ok(())
}

/// `audit completions bash` is a script bash accepts that completes every command; `audit
/// man` is a roff page naming them; an unknown shell is a usage error listing the others.
#[test]
fn completions_and_the_manual_page_cover_every_command() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let out = run(&["completions", "bash"], b"", cwd.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let script = cwd.path().join("audit.bash");
    std::fs::write(&script, &out.stdout)?;
    let syntax = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()?;
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    let text = String::from_utf8(out.stdout)?;
    let man = run(&["man"], b"", cwd.path());
    assert!(man.status.success());
    let page = String::from_utf8(man.stdout)?;
    assert!(
        page.starts_with(".ie") && page.contains(".TH audit 1"),
        "{page}"
    );
    for command in [
        "emit",
        "verify",
        "query",
        "config",
        "plugin",
        "bench",
        "completions",
        "man",
    ] {
        assert!(text.contains(command), "completions lack `{command}`");
        assert!(
            page.contains(&format!("audit\\-{command}")) || page.contains(command),
            "the page lacks `{command}`"
        );
    }
    let bad = run(&["completions", "tcsh"], b"", cwd.path());
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("possible values: bash, zsh, fish"));
    Ok(())
}

/// `--stats -` prints one JSON object on stdout and `--stats FILE` writes it to FILE (what
/// `jq` reads); bare `--stats` keeps the indented copy on stderr; `-` with `--ack` (also on
/// stdout) is a usage error.
#[test]
fn emit_stats_go_to_stdout_or_a_file_as_one_json_object() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let out = run(
        &["emit", "--dir", "logs", "--stats", "-"],
        events(3).as_bytes(),
        cwd.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let stats: serde_json::Value = serde_json::from_str(&stdout)?;
    assert_eq!(stats["total_events"], 3);
    let out = run(
        &["emit", "--dir", "logs", "--stats", "stats.json"],
        events(2).as_bytes(),
        cwd.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cwd.path().join("stats.json"))?)?;
    assert_eq!(stats["durable_sequence"], 5);
    let out = run(
        &["emit", "--dir", "logs", "--stats"],
        events(1).as_bytes(),
        cwd.path(),
    );
    assert!(
        text(&out.stderr).contains("\"total_events\": 1"),
        "{}",
        text(&out.stderr)
    );
    let out = run(
        &["emit", "--dir", "logs", "--ack", "--stats", "-"],
        b"",
        cwd.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--stats stats.json"),
        "{}",
        text(&out.stderr)
    );
    let out = run(
        &["emit", "--dir", "logs", "--stats", "no/such/dir/stats.json"],
        events(1).as_bytes(),
        cwd.path(),
    );
    assert_eq!(out.status.code(), Some(74), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("cannot write statistics to no/such/dir/stats.json"));
    Ok(())
}

/// `--require-events` fails on a directory without events, `--min-sequence N` when the last
/// sequence is below N; the HMAC hint comes only with a checksum mismatch, not with a gap.
#[test]
fn verify_can_require_events_and_a_minimum_sequence() -> TestResult {
    let (cwd, file) = ten_events()?;
    std::fs::create_dir(cwd.path().join("empty"))?;
    let out = run(&["verify", "empty"], b"", cwd.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let out = run(&["verify", "--require-events", "empty"], b"", cwd.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("empty holds no events (--require-events)"),
        "{}",
        text(&out.stdout)
    );
    let out = run(&["verify", "--min-sequence", "10", "logs"], b"", cwd.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let out = run(
        &["verify", "--min-sequence", "11", "--require-events", "logs"],
        b"",
        cwd.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("the last sequence in logs is 10, below --min-sequence 11"),
        "{}",
        text(&out.stdout)
    );
    // A deleted line is a gap: no key would fix it, so no hint.
    let text_before = std::fs::read_to_string(&file)?;
    let lines: Vec<&str> = text_before.lines().collect();
    let without_third: String = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    std::fs::write(&file, without_third)?;
    let out = run(&["verify", "logs"], b"", cwd.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        !text(&out.stderr).contains("hint:"),
        "{}",
        text(&out.stderr)
    );
    Ok(())
}

/// `--config FILE` without `--backend`: verify and query read the configuration's file
/// backend directory, verify with its HMAC key; a configuration without a file backend is
/// told to name one.
#[test]
fn verify_and_query_take_the_directory_and_key_from_a_config() -> TestResult {
    let cwd = hmac_trail_dir()?;
    let out = run(
        &["emit", "--config", "audit.toml"],
        events(7).as_bytes(),
        cwd.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&["verify", "--config", "audit.toml"], b"", cwd.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(
        text(&out.stdout).lines().last(),
        Some("ok: 7 events in 1 file")
    );
    let out = run(
        &["query", "--config", "audit.toml", "--limit", "2"],
        b"",
        cwd.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["sequence_number"], 7, "newest first");
    std::fs::write(
        cwd.path().join("plugins.toml"),
        "[[backends]]\ntype = \"plugin\"\nlibrary = \"/nonexistent/libx.so\"\n",
    )?;
    let out = run(&["verify", "--config", "plugins.toml"], b"", cwd.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr)
            .contains("has no file backend: name the backend to read with --backend NAME"),
        "{}",
        text(&out.stderr)
    );
    Ok(())
}
