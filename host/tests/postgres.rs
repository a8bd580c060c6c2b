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

fn write_config(dir: &Path, table: &str, env: &(String, String, String, String)) {
    write_config_with(dir, table, env, "", "");
}

/// `trail_keys` and `backend_keys` are extra lines for `[trail]` and the plugin's entry.
fn write_config_with(
    dir: &Path,
    table: &str,
    (url, password_file, ca, _): &(String, String, String, String),
    trail_keys: &str,
    backend_keys: &str,
) {
    let lib = plugin_lib("audit_backend_postgres");
    std::fs::write(
        dir.join("audit.toml"),
        format!(
            r#"[trail]
storage_path = "logs"
{trail_keys}
[[backends]]
type = "file"

[[backends]]
type = "plugin"
library = {lib}
{backend_keys}config = {{ url = {url}, password_file = {pw}, table = {table}, tls = {{ mode = "verify-full", ca_file = {ca} }} }}
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
    // The plugin's `stats` capability, asked for before close: every event inserted once.
    let pg = &trail.statistics().per_backend[1];
    assert_eq!(pg.counters.get("rows_written"), Some(&3000), "{pg:?}");
    assert_eq!(pg.counters.get("duplicates_skipped"), Some(&0), "{pg:?}");

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

/// A server of its own (`.ci/postgres.sh start`), killed and restarted by this test alone.
struct OwnServer {
    script: std::path::PathBuf,
    vars: std::collections::HashMap<String, String>,
}

impl OwnServer {
    fn start() -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/postgres.sh");
        let out = std::process::Command::new("bash")
            .arg(&script)
            .arg("start")
            .output()
            .expect("run .ci/postgres.sh");
        assert!(out.status.success(), "{}", text(&out.stderr));
        // `export NAME='VALUE'` lines.
        let vars = text(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
            .collect();
        Self { script, vars }
    }

    fn var(&self, name: &str) -> String {
        self.vars[name].clone()
    }

    fn run(&self, command: &str) {
        let out = std::process::Command::new("bash")
            .arg(&self.script)
            .args([command, &self.var("AUDIT_TEST_POSTGRES_DIR")])
            .output()
            .expect("run .ci/postgres.sh");
        assert!(out.status.success(), "{command}: {}", text(&out.stderr));
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(&self.script)
            .args(["stop", &self.var("AUDIT_TEST_POSTGRES_DIR")])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_run_gets_every_event_once_and_in_order_after_its_restart() -> TestResult
{
    if pg_env().is_none() {
        return Ok(());
    }
    const EVENTS: usize = 100_000;
    let server = tokio::task::spawn_blocking(OwnServer::start).await?;
    let env = (
        server.var("AUDIT_TEST_POSTGRES_URL"),
        server.var("AUDIT_TEST_POSTGRES_PASSWORD_FILE"),
        server.var("AUDIT_TEST_POSTGRES_CA"),
        server.var("AUDIT_TEST_POSTGRES_SOCKET_URL"),
    );
    let dir = tempfile::tempdir()?;
    let table = "crash".to_owned();
    write_config_with(
        dir.path(),
        &table,
        &env,
        "shutdown_timeout_ms = 120000\n",
        "retry_initial_ms = 50\nretry_max_ms = 500\n",
    );
    let trail = AuditTrail::from_config_file(dir.path().join("audit.toml"))?;
    let server = std::sync::Arc::new(server);
    let mut crash = None;
    for i in 0..EVENTS {
        trail
            .log_event(AuditEventType::DataAccess, format!("event {i}"))
            .user_id("carol")
            .await?;
        if i == EVENTS / 3 {
            // SIGKILL of the postmaster and its backends while batches are in flight, and a
            // restart 3 s later.
            let server = server.clone();
            crash = Some(std::thread::spawn(move || {
                server.run("kill9");
                std::thread::sleep(std::time::Duration::from_secs(3));
                server.run("restart");
            }));
        }
    }
    crash
        .ok_or("no crash")?
        .join()
        .map_err(|_| "the crash thread panicked")?;
    trail.flush().await?;
    // The crash was seen: calls failed, were retried, none was fatal, nothing dropped.
    let stats = trail.statistics();
    let pg = &stats.per_backend[1];
    assert!(
        pg.retried > 0,
        "no retry: the kill missed the deliveries ({pg:?})"
    );
    assert_eq!((pg.fatal, pg.dropped), (0, 0), "{pg:?}");
    assert_eq!(
        stats.per_backend[0].failed_calls, 0,
        "the file backend is unaffected"
    );
    trail.close().await?;

    let file_lines = all_lines(&dir.path().join("logs"));
    assert_eq!(file_lines.len(), EVENTS, "the file backend is unaffected");
    assert_eq!(verify(&dir.path().join("logs")).events, EVENTS as u64);
    let socket_url = env.3.clone();
    let (rows, _) = tokio::task::spawn_blocking(move || stored(&socket_url, &table)).await??;
    assert_eq!(rows.len(), EVENTS, "every event once");
    assert!(rows == file_lines, "the rows differ from the file's lines");
    Ok(())
}
