//! The postgres backend plugin inside an `AuditTrail`, against the real PostgreSQL server
//! `.ci/postgres.sh` starts (docs/backends/postgres.md, "Running the tests"): the table holds
//! exactly the file backend's lines.

mod common;

use std::io::Write as _;
use std::path::Path;

use audit_host::{AuditEventType, AuditTrail};
use common::*;

/// `AUDIT_TEST_POSTGRES_*`, or `None` with a loud message; in CI a missing server fails.
fn pg_env() -> Option<(String, String, String, String)> {
    let var = |name: &str| std::env::var(name).ok();
    match var("AUDIT_TEST_POSTGRES_URL") {
        Some(url) => Some((
            url,
            var("AUDIT_TEST_POSTGRES_PASSWORD_FILE").expect("PASSWORD_FILE"),
            var("AUDIT_TEST_POSTGRES_CA").expect("CA"),
            var("AUDIT_TEST_POSTGRES_SOCKET_URL").expect("SOCKET_URL"),
        )),
        None if std::env::var_os("CI").is_some() => panic!(
            "CI is set but AUDIT_TEST_POSTGRES_URL is not: .ci/run must start PostgreSQL with .ci/postgres.sh"
        ),
        None => {
            // Straight to stderr: the test harness captures `eprintln!`, and a skip must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED: no PostgreSQL test server (AUDIT_TEST_POSTGRES_URL is not set). Run `eval \"$(.ci/postgres.sh start)\"` first (docs/backends/postgres.md) ***\n"
            );
            None
        }
    }
}

fn toml_str(s: &str) -> String {
    format!("{s:?}")
}

fn write_config(
    dir: &Path,
    table: &str,
    (url, password_file, ca, _): &(String, String, String, String),
) {
    let lib = plugin_lib("audit_backend_postgres");
    std::fs::write(
        dir.join("audit.toml"),
        format!(
            r#"[trail]
storage_path = "logs"

[[backends]]
type = "file"

[[backends]]
type = "plugin"
library = {lib}
config = {{ url = {url}, password_file = {pw}, table = {table}, tls = {{ mode = "verify-full", ca_file = {ca} }} }}
"#,
            lib = toml_str(lib.to_str().expect("utf-8 path")),
            url = toml_str(url),
            pw = toml_str(password_file),
            table = toml_str(table),
            ca = toml_str(ca),
        ),
    )
    .expect("write config");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_thousand_events_reach_the_table_byte_for_byte() -> TestResult {
    let Some(env) = pg_env() else { return Ok(()) };
    let dir = tempfile::tempdir()?;
    let table = format!("trail_{}", std::process::id());
    write_config(dir.path(), &table, &env);
    let trail = AuditTrail::from_config_file(dir.path().join("audit.toml"))?;
    assert_eq!(trail.statistics().backends[1..], ["postgres"]);
    for i in 0..3000 {
        trail
            .log_event(
                AuditEventType::DataAccess,
                format!("read record {i} «ünïcode» \"q\""),
            )
            .user_id(if i % 3 == 0 { "alice" } else { "bob" })
            .await?;
    }
    trail.close().await?;

    // A second trail continues the chain; both backends get the new events.
    let trail = AuditTrail::from_config_file(dir.path().join("audit.toml"))?;
    trail
        .log_event(AuditEventType::DataModification, "restarted")
        .await?;
    trail.close().await?;

    let file_lines = all_lines(&dir.path().join("logs"));
    assert_eq!(file_lines.len(), 3001);
    // The sync client runs its own runtime: off the test's.
    let socket_url = env.3.clone();
    let (rows, alice) = tokio::task::spawn_blocking(move || stored(&socket_url, &table)).await??;
    assert_eq!(rows, file_lines);
    assert_eq!(alice, 1000);
    Ok(())
}

/// The table's lines in sequence order and alice's `data_access` rows; drops the table.
fn stored(socket_url: &str, table: &str) -> Result<(Vec<String>, i64), postgres::Error> {
    let mut db = postgres::Client::connect(socket_url, postgres::NoTls)?;
    let rows = db
        .query(
            &format!("SELECT line FROM \"{table}\" ORDER BY sequence_number"),
            &[],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let alice: i64 = db
        .query_one(
            &format!("SELECT count(*) FROM \"{table}\" WHERE user_id = 'alice' AND event_type = 'data_access'"),
            &[],
        )?
        .get(0);
    db.batch_execute(&format!("DROP TABLE \"{table}\""))?;
    Ok((rows, alice))
}
