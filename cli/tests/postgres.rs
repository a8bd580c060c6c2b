//! `audit` with the postgres backend against the real server `.ci/postgres.sh` starts
//! (docs/backends/postgres.md, "Running the tests"): the password from PGPASSWORD, a
//! missing password named, and `emit` into file + table.

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{TestResult, audit_bin, plugin_lib, text};

/// `AUDIT_TEST_POSTGRES_URL` and `_CA` and the password, or `None` with a loud message; in
/// CI a missing server fails.
fn pg_env() -> Option<(String, String, String)> {
    let Ok(url) = std::env::var("AUDIT_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but AUDIT_TEST_POSTGRES_URL is not: .ci/run must start PostgreSQL with .ci/postgres.sh"
        );
        // Straight to stderr: the test harness captures `eprintln!`, and a skip must be seen.
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED: no PostgreSQL test server (AUDIT_TEST_POSTGRES_URL is not set). Run `eval \"$(.ci/postgres.sh start)\"` first (docs/backends/postgres.md) ***\n"
        );
        return None;
    };
    let var = |name: &str| std::env::var(name).expect(name);
    let password = std::fs::read_to_string(var("AUDIT_TEST_POSTGRES_PASSWORD_FILE"))
        .expect("password file")
        .trim_end()
        .to_owned();
    Some((url, var("AUDIT_TEST_POSTGRES_CA"), password))
}

/// A file backend in `logs` and the postgres plugin without `password_file`.
fn write_config(dir: &Path, url: &str, ca: &str, table: &str) {
    let lib = plugin_lib("audit_backend_postgres");
    std::fs::write(
        dir.join("audit.toml"),
        format!(
            "[trail]\nstorage_path = \"logs\"\n\n[[backends]]\ntype = \"file\"\n\n[[backends]]\ntype = \"plugin\"\nlibrary = {:?}\nconfig = {{ url = {url:?}, table = {table:?}, tls = {{ ca_file = {ca:?} }} }}\n",
            lib.to_str().expect("utf-8 path")
        ),
    )
    .expect("write config");
}

/// Runs `audit ARGS` in `dir` with PGPASSWORD set to `password` (or unset).
fn run(dir: &Path, args: &[&str], password: Option<&str>, stdin: &[u8]) -> Output {
    let mut cmd = Command::new(audit_bin());
    cmd.args(args)
        .current_dir(dir)
        .env_remove("PGPASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    let mut child = cmd.spawn().expect("spawn audit");
    let _ = child.stdin.take().expect("stdin").write_all(stdin);
    child.wait_with_output().expect("wait")
}

#[test]
fn pgpassword_is_used_and_a_missing_password_names_the_keys() -> TestResult {
    let Some((url, ca, password)) = pg_env() else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let table = format!("cli_{}", std::process::id());
    write_config(dir.path(), &url, &ca, &table);

    let out = run(
        dir.path(),
        &["config", "check", "audit.toml"],
        Some(&password),
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("plugin postgres 0.1.0"),
        "{}",
        text(&out.stdout)
    );

    let out = run(dir.path(), &["config", "check", "audit.toml"], None, b"");
    assert_eq!(out.status.code(), Some(78), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains("password_file") && err.contains("PGPASSWORD"),
        "{err}"
    );

    // The sample events reach the file and the table; a second emit continues the chain.
    let events =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/events.jsonl"))?;
    for _ in 0..2 {
        let out = run(
            dir.path(),
            &["emit", "--config", "audit.toml"],
            Some(&password),
            &events,
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    let out = run(dir.path(), &["verify", "logs"], None, b"");
    assert!(
        text(&out.stdout).contains("ok: 20 events"),
        "{}",
        text(&out.stdout)
    );
    Ok(())
}

/// `audit verify --config FILE --backend NAME` reads the table back through the plugin's
/// `read` capability: the stored chain verifies, and one tampered row is caught by its
/// sequence number.
#[test]
fn verify_backend_reads_the_table_back_and_catches_a_tampered_row() -> TestResult {
    let Some((url, ca, password)) = pg_env() else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let table = format!("cli_verify_{}", std::process::id());
    write_config(dir.path(), &url, &ca, &table);
    let events =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/events.jsonl"))?;
    let out = run(
        dir.path(),
        &["emit", "--config", "audit.toml"],
        Some(&password),
        &events,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let verify = ["verify", "--config", "audit.toml", "--backend", "postgres"];
    let out = run(dir.path(), &verify, Some(&password), b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("ok: 10 events in backends[2] \"postgres\""),
        "{}",
        text(&out.stdout)
    );

    let socket_url = std::env::var("AUDIT_TEST_POSTGRES_SOCKET_URL")?;
    let mut db = postgres::Client::connect(&socket_url, postgres::NoTls)?;
    let changed = db.execute(
        &format!(
            "UPDATE {table} SET line = replace(line, '\"message\":\"', '\"message\":\"x') WHERE sequence_number = 7"
        ),
        &[],
    )?;
    assert_eq!(changed, 1);
    let out = run(dir.path(), &verify, Some(&password), b"");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("FAILED: sequence 7 in backends[2] \"postgres\"")
            && stdout.contains("checksum mismatch"),
        "{stdout}"
    );
    Ok(())
}

/// `audit bench` against the postgres plugin runs and reports its baseline and ratio (no
/// timing asserted). Built with `postgres-bench`, the baseline is the client loop writing as
/// many transactions as the trail did; without it, stderr says how to get that baseline.
/// With the feature the configured table is left alone (the bench writes scratch tables and
/// drops them); without it the trail stores into the configured table, as with any plugin.
#[test]
fn bench_reports_a_baseline_and_a_ratio_and_leaves_no_table() -> TestResult {
    let Some((url, ca, password)) = pg_env() else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let table = format!("cli_bench_{}", std::process::id());
    let lib = plugin_lib("audit_backend_postgres");
    let backend = format!("plugin:{}", lib.to_str().expect("utf-8 path"));
    let config = serde_json::json!({ "url": url, "table": table, "tls": { "ca_file": ca } });
    let bench_dir = dir.path().join("bench");
    // Without the feature, a second round would find the first one's chain in the table.
    let rounds = if cfg!(feature = "postgres-bench") {
        "2"
    } else {
        "1"
    };
    let args = [
        "bench",
        "--events",
        "2000",
        "--rounds",
        rounds,
        "--json",
        "--dir",
        bench_dir.to_str().expect("utf-8 path"),
        "--backend",
        &backend,
        "--plugin-config",
        &config.to_string(),
    ];
    let out = run(dir.path(), &args, Some(&password), b"");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let r: serde_json::Value = serde_json::from_str(text(&out.stdout).trim())?;
    assert_eq!(r["events"], 2000, "{r}");
    for key in ["events_per_s", "baseline_events_per_s", "ratio_to_baseline"] {
        assert!(r[key].as_f64().is_some_and(|v| v > 0.0), "{key}: {r}");
    }
    if cfg!(feature = "postgres-bench") {
        // Each round: the trail's transactions counted, then as many in the baseline.
        assert_eq!(
            err.matches("the baseline writes as many").count(),
            2,
            "{err}"
        );
        assert!(
            r["bytes_per_event"].as_f64().is_some_and(|b| b > 500.0),
            "{r}"
        );
    } else {
        assert!(err.contains("--features postgres-bench"), "{err}");
    }

    let socket_url = std::env::var("AUDIT_TEST_POSTGRES_SOCKET_URL")?;
    let mut db = postgres::Client::connect(&socket_url, postgres::NoTls)?;
    if !cfg!(feature = "postgres-bench") {
        let stored: i64 = db
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])?
            .get(0);
        assert_eq!(stored, 2000);
        db.batch_execute(&format!("DROP TABLE {table}"))?;
    }
    let left: i64 = db
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE tablename = $1 OR tablename LIKE 'audit\\_bench\\_%'",
            &[&table],
        )?
        .get(0);
    assert_eq!(left, 0, "the bench left a table in the database");
    Ok(())
}
