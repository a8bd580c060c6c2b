//! The backend against a real PostgreSQL server (started by `.ci/postgres.sh`; see
//! docs/backends/postgres.md, "Running the tests"): writes, re-delivery, conflicts, TLS,
//! authentication, permissions and reconnection.

use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};

use audit_backend_postgres::{PostgresBackend, open};
use audit_plugin_api::abi_stable::std_types::{RNone, RSome, RStr};
use audit_plugin_api::{Backend, ErrorKind, Health, PluginError, Record, Stats};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The server `.ci/postgres.sh start` describes in its environment variables.
struct Pg {
    url: String,
    limited_url: String,
    /// A role allowed one connection at a time (`CONNECTION LIMIT 1`).
    one_conn_url: String,
    socket_url: String,
    password_file: String,
    ca: String,
    other_ca: String,
}

/// The test server, or `None` (with a loud message) when none is configured; in CI (`CI`
/// set) a missing server fails the test instead.
fn pg() -> Option<Pg> {
    let var = |name: &str| std::env::var(name).ok();
    match var("AUDIT_TEST_POSTGRES_URL") {
        Some(url) => Some(Pg {
            url,
            limited_url: var("AUDIT_TEST_POSTGRES_LIMITED_URL").expect("LIMITED_URL"),
            one_conn_url: var("AUDIT_TEST_POSTGRES_ONE_CONN_URL").expect("ONE_CONN_URL"),
            socket_url: var("AUDIT_TEST_POSTGRES_SOCKET_URL").expect("SOCKET_URL"),
            password_file: var("AUDIT_TEST_POSTGRES_PASSWORD_FILE").expect("PASSWORD_FILE"),
            ca: var("AUDIT_TEST_POSTGRES_CA").expect("CA"),
            other_ca: var("AUDIT_TEST_POSTGRES_OTHER_CA").expect("OTHER_CA"),
        }),
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

/// A table name no other test (or run) uses.
fn unique_table(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("string")
}

impl Pg {
    /// The verified-TLS configuration the tests start from.
    fn config(&self, table: &str) -> String {
        format!(
            r#"{{"url":{},"password_file":{},"table":{},"tls":{{"mode":"verify-full","ca_file":{}}}}}"#,
            json_str(&self.url),
            json_str(&self.password_file),
            json_str(table),
            json_str(&self.ca)
        )
    }

    /// A direct session over the Unix socket (no TLS, trust), for checking what is stored.
    fn admin(&self) -> postgres::Client {
        postgres::Client::connect(&self.socket_url, postgres::NoTls).expect("admin connection")
    }

    fn lines(&self, table: &str) -> Vec<(i64, String)> {
        self.admin()
            .query(
                &format!("SELECT sequence_number, line FROM \"{table}\" ORDER BY sequence_number"),
                &[],
            )
            .expect("select")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    }
}

fn line(seq: u64, text: &str) -> String {
    format!(r#"{{"message":"{text} \"quoted\" \\ tab\t","sequence_number":{seq}}}"#)
}

fn record(seq: u64, line: &str) -> Record<'_> {
    Record {
        line: RStr::from_str(line),
        sequence_number: seq,
        timestamp: RStr::from_str("2026-01-01T00:00:00.000001Z"),
        timestamp_micros: 1_767_225_600_000_001,
        event_id: RStr::from_str("e"),
        event_type: RStr::from_str("data_access"),
        log_level: RStr::from_str("info"),
        user_id: if seq.is_multiple_of(2) {
            RSome(RStr::from_str("alice"))
        } else {
            RNone
        },
    }
}

fn write(b: &mut PostgresBackend, lines: &[(u64, String)]) -> Result<(), PluginError> {
    let records: Vec<Record<'_>> = lines.iter().map(|(s, l)| record(*s, l)).collect();
    b.write_batch(&records)
}

fn lines(range: std::ops::RangeInclusive<u64>, text: &str) -> Vec<(u64, String)> {
    range.map(|s| (s, line(s, text))).collect()
}

fn expect_err<T>(r: Result<T, PluginError>, what: &str) -> PluginError {
    match r {
        Ok(_) => panic!("{what}: expected an error"),
        Err(e) => e,
    }
}

#[test]
fn batches_are_stored_byte_for_byte_and_redelivery_inserts_nothing() -> TestResult {
    let Some(pg) = pg() else { return Ok(()) };
    let table = unique_table("rows");
    let mut b = open(&pg.config(&table))?;
    assert_eq!(b.last_line()?, None);
    let all = lines(1..=1000, "é ünïcode");
    for chunk in all.chunks(100) {
        write(&mut b, chunk)?;
    }
    // A re-delivered batch (a retry after a lost acknowledgement) and an overlapping one.
    write(&mut b, &all[200..300])?;
    write(&mut b, &all[950..])?;
    b.flush()?;
    let stored = pg.lines(&table);
    let expected: Vec<(i64, String)> = all.iter().map(|(s, l)| (*s as i64, l.clone())).collect();
    assert_eq!(stored, expected);
    assert_eq!(b.last_line()?, Some(all[999].1.clone()));
    assert_eq!(
        b.read_from(998, 10)?,
        vec![all[997].1.clone(), all[998].1.clone(), all[999].1.clone()]
    );
    let row = pg.admin().query_one(
        &format!("SELECT count(*) FILTER (WHERE user_id = 'alice'), count(*) FILTER (WHERE user_id IS NULL), min(\"timestamp\") = '2026-01-01T00:00:00.000001Z' FROM \"{table}\""),
        &[],
    )?;
    assert_eq!(
        (
            row.get::<_, i64>(0),
            row.get::<_, i64>(1),
            row.get::<_, bool>(2)
        ),
        (500, 500, true)
    );
    assert!(
        b.health()?.contains("last sequence 1000"),
        "{}",
        b.health()?
    );
    b.close()?;
    // A new instance continues from the stored chain.
    let mut again = open(&pg.config(&table))?;
    assert_eq!(again.last_line()?, Some(all[999].1.clone()));
    Ok(())
}

/// A batch of ~400 KB goes to the server as several COPY messages, rows split across their
/// boundaries: every row arrives whole.
#[test]
fn a_batch_larger_than_a_copy_message_is_stored_byte_for_byte() -> TestResult {
    let Some(pg) = pg() else { return Ok(()) };
    let table = unique_table("big");
    let mut b = open(&pg.config(&table))?;
    let all = lines(1..=1000, &"x\tü".repeat(100));
    write(&mut b, &all)?;
    let expected: Vec<(i64, String)> = all.iter().map(|(s, l)| (*s as i64, l.clone())).collect();
    assert_eq!(pg.lines(&table), expected);
    b.close()?;
    Ok(())
}

#[test]
fn a_different_line_under_a_stored_sequence_is_fatal_and_nothing_of_its_batch_is_kept() -> TestResult
{
    let Some(pg) = pg() else { return Ok(()) };
    let table = unique_table("conflict");
    let mut b = open(&pg.config(&table))?;
    write(&mut b, &lines(1..=3, "original"))?;
    let mut batch = lines(4..=5, "new");
    batch.insert(0, (2, line(2, "tampered")));
    let e = expect_err(write(&mut b, &batch), "conflicting batch");
    assert_eq!(e.kind, ErrorKind::Fatal, "{e}");
    assert!(e.message.contains("sequence 2 is already stored"), "{e}");
    let stored = pg.lines(&table);
    assert_eq!(stored.len(), 3, "the batch was rolled back");
    assert_eq!(stored[1].1, line(2, "original"));
    Ok(())
}

/// A batch above the stored sequences is copied straight into the table. Two sessions on one
/// table make one's idea of the highest stored sequence stale: its direct copy meets the
/// primary key, and the staging path then tells a re-delivery (the new rows inserted, the
/// stored ones skipped) from a fork (fatal, nothing kept).
#[test]
fn a_stale_session_falls_back_to_the_staging_path() -> TestResult {
    let Some(pg) = pg() else { return Ok(()) };
    let table = unique_table("stale");
    let mut a = open(&pg.config(&table))?;
    let mut b = open(&pg.config(&table))?;
    write(&mut b, &lines(1..=5, "x"))?;
    write(&mut a, &lines(6..=10, "x"))?;
    // b last stored 5: it copies 6..=12 directly, the key refuses 6, the staging path adds 11, 12.
    write(&mut b, &lines(6..=12, "x"))?;
    let expected: Vec<(i64, String)> = lines(1..=12, "x")
        .into_iter()
        .map(|(s, l)| (s as i64, l))
        .collect();
    assert_eq!(pg.lines(&table), expected);
    let counter = |be: &mut PostgresBackend, name: &str| {
        be.statistics()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    };
    assert_eq!(counter(&mut b, "batches_staged"), Some(1));
    assert_eq!(counter(&mut b, "duplicates_skipped"), Some(5));
    assert_eq!(counter(&mut a, "batches_staged"), Some(0));
    // a last stored 10: its direct copy of 11..=13 meets 11, stored with another line.
    let e = expect_err(write(&mut a, &lines(11..=13, "forked")), "forked batch");
    assert_eq!(e.kind, ErrorKind::Fatal, "{e}");
    assert!(e.message.contains("sequence 11 is already stored"), "{e}");
    assert_eq!(
        pg.lines(&table),
        expected,
        "nothing of the forked batch kept"
    );
    Ok(())
}

#[test]
fn tls_verify_full_checks_the_ca_and_the_server_name() -> TestResult {
    let Some(pg) = pg() else { return Ok(()) };
    let table = unique_table("tls");
    let mut b = open(&pg.config(&table))?;
    write(&mut b, &lines(1..=2, "tls"))?;
    // The session really is encrypted.
    let ssl = pg.admin().query_one(
        "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'audit-backend-postgres' AND a.usename = 'audit_test'",
        &[],
    )?;
    assert_eq!(ssl.get::<_, Option<bool>>(0), Some(true));

    let wrong_ca = pg
        .config(&table)
        .replace(&json_str(&pg.ca), &json_str(&pg.other_ca));
    let e = expect_err(open(&wrong_ca), "wrong CA");
    assert_eq!(e.kind, ErrorKind::Config, "{e}");
    assert!(e.message.contains("tls.ca_file"), "{e}");

    // Right CA, but a host name the certificate does not hold (same server address).
    let port = postgres::Config::from_str_ok(&pg.url).get_ports()[0];
    let wrong_name = format!(
        "host=wrong-name.invalid hostaddr=127.0.0.1 port={port} user=audit_test dbname=audit_test"
    );
    let cfg = pg
        .config(&table)
        .replace(&json_str(&pg.url), &json_str(&wrong_name));
    let e = expect_err(open(&cfg), "wrong server name");
    assert_eq!(e.kind, ErrorKind::Config, "{e}");
    assert!(e.message.contains("tls.ca_file"), "{e}");

    // `require` encrypts without checking; `disable` over TCP is plain.
    for mode in ["require", "disable"] {
        let cfg = format!(
            r#"{{"url":{},"password_file":{},"table":{},"tls":{{"mode":"{mode}"}}}}"#,
            json_str(&pg.url),
            json_str(&pg.password_file),
            json_str(&table)
        );
        let mut b = open(&cfg)?;
        assert_eq!(b.last_line()?, Some(line(2, "tls")), "{mode}");
    }
    Ok(())
}

trait FromStrOk {
    fn from_str_ok(s: &str) -> postgres::Config;
}

impl FromStrOk for postgres::Config {
    fn from_str_ok(s: &str) -> postgres::Config {
        s.parse().expect("test URL")
    }
}

#[test]
fn a_wrong_password_is_a_config_error_naming_the_key() -> TestResult {
    let Some(pg) = pg() else { return Ok(()) };
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("pw");
    let mut f = std::fs::OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut f, 0o600);
    f.write(true)
        .create_new(true)
        .open(&path)?
        .write_all(b"not the password\n")?;
    let cfg = pg.config("x").replace(
        &json_str(&pg.password_file),
        &json_str(path.to_str().expect("utf-8")),
    );
    let e = expect_err(open(&cfg), "bad password");
    assert_eq!(e.kind, ErrorKind::Config, "{e}");
    assert!(e.message.contains("password_file"), "{e}");
    assert!(
        e.message.contains("password authentication failed") && e.message.contains("28P01"),
        "{e}"
    );
    Ok(())
}

#[test]
fn a_missing_grant_or_table_is_a_config_error_naming_the_table() -> TestResult {
    let Some(pg) = pg() else { return Ok(()) };
    let table = unique_table("grants");
    // The owner creates the table; the limited role has no privilege on it.
    open(&pg.config(&table))?.close()?;
    let limited = pg
        .config(&table)
        .replace(&json_str(&pg.url), &json_str(&pg.limited_url));
    let e = expect_err(open(&limited), "no grant");
    assert_eq!(e.kind, ErrorKind::Config, "{e}");
    assert!(
        e.message.contains("config `table`") && e.message.contains("GRANT INSERT, SELECT"),
        "{e}"
    );

    // It may not create one either.
    let missing = limited.replace(&table, &unique_table("never"));
    let e = expect_err(open(&missing), "no CREATE");
    assert_eq!(e.kind, ErrorKind::Config, "{e}");
    assert!(
        e.message.contains("`table`")
            && e.message.contains("permission denied")
            && e.message.contains("42501"),
        "{e}"
    );

    // With create_table = false a missing table is named.
    let no_create = missing.replace(r#""tls":"#, r#""create_table":false,"tls":"#);
    let e = expect_err(open(&no_create), "missing table");
    assert!(
        e.message.contains("does not exist (create_table = false)"),
        "{e}"
    );

    // A granted writer role works (INSERT and SELECT only).
    pg.admin().batch_execute(&format!(
        "GRANT INSERT, SELECT ON \"{table}\" TO audit_limited"
    ))?;
    // With the append-only trigger of docs/backends/postgres.md: writes and re-deliveries
    // go through, changes do not.
    pg.admin().batch_execute(&format!(
        "CREATE OR REPLACE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'append-only (% refused)', TG_OP; END $$;
         CREATE TRIGGER append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON \"{table}\"
         FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();"
    ))?;
    let mut b = open(&limited)?;
    write(&mut b, &lines(1..=2, "limited"))?;
    write(&mut b, &lines(1..=3, "limited"))?;
    assert_eq!(pg.lines(&table).len(), 3);
    let refused = pg
        .admin()
        .batch_execute(&format!("DELETE FROM \"{table}\""));
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| format!("{e:?}").contains("append-only")),
        "{refused:?}"
    );
    Ok(())
}

#[test]
fn too_many_connections_is_retryable_and_the_retry_connects_once_one_is_free() -> TestResult {
    let Some(pg) = pg() else { return Ok(()) };
    let table = unique_table("one_conn");
    let cfg = pg
        .config(&table)
        .replace(&json_str(&pg.url), &json_str(&pg.one_conn_url));
    let mut first = open(&cfg)?;
    write(&mut first, &lines(1..=5, "first"))?;
    // The role's only connection is taken: the server answers 53300 too_many_connections.
    let e = expect_err(open(&cfg), "a second connection");
    assert_eq!(e.kind, ErrorKind::Retryable, "{e}");
    assert!(e.message.contains("too many connections"), "{e}");
    first.close()?;
    // Once it is free, the retry connects and delivers. The server releases the slot when
    // the closed session's process has exited, a moment after `close` returns: retry as the
    // host does, for up to 10 s.
    let mut tries = 0;
    let mut second = loop {
        match open(&cfg) {
            Err(e) if e.kind == ErrorKind::Retryable && tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            other => break other?,
        }
    };
    write(&mut second, &lines(1..=10, "first"))?;
    // The table belongs to that role: read it back through the plugin.
    assert_eq!(second.read_from(1, 100)?.len(), 10);
    second.close()?;
    Ok(())
}

#[test]
fn an_unreachable_server_is_retryable_and_a_dropped_session_reconnects() -> TestResult {
    let Some(pg) = pg() else { return Ok(()) };
    // Nothing listens on port 1.
    let cfg = r#"{"url":"postgresql://audit_test@127.0.0.1:1/audit_test","tls":{"mode":"disable"},"connect_timeout_ms":2000}"#;
    let e = expect_err(open(cfg), "unreachable");
    assert_eq!(e.kind, ErrorKind::Retryable, "{e}");

    let table = unique_table("reconnect");
    let app = table.clone();
    let url = format!("{}?application_name={app}", pg.url);
    let cfg = pg
        .config(&table)
        .replace(&json_str(&pg.url), &json_str(&url));
    let mut b = open(&cfg)?;
    write(&mut b, &lines(1..=10, "before"))?;
    // The server ends the session (as a restart or failover would).
    pg.admin().query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        &[&app],
    )?;
    let e = expect_err(
        write(&mut b, &lines(11..=20, "after")),
        "terminated session",
    );
    assert_eq!(e.kind, ErrorKind::Retryable, "{e}");
    // The retry reconnects and delivers.
    write(&mut b, &lines(11..=20, "after"))?;
    assert_eq!(pg.lines(&table).len(), 20);
    Ok(())
}

#[test]
fn a_unix_socket_url_works_without_tls() -> TestResult {
    let Some(pg) = pg() else { return Ok(()) };
    let table = unique_table("socket");
    let cfg = format!(
        r#"{{"url":{},"table":{},"schema":"public"}}"#,
        json_str(&pg.socket_url),
        json_str(&table)
    );
    let mut b = open(&cfg)?;
    write(&mut b, &lines(1..=3, "socket"))?;
    assert_eq!(pg.lines(&table).len(), 3);
    Ok(())
}

#[test]
fn a_read_only_server_and_a_statement_timeout_are_retryable() -> TestResult {
    let Some(pg) = pg() else { return Ok(()) };
    let table = unique_table("readonly");
    let mut b = open(&pg.config(&table))?;
    write(&mut b, &lines(1..=2, "primary"))?;
    // A session that can only read, as on a replica after failover (SQLSTATE 25006).
    let url = format!("{}?options=-c%20default_transaction_read_only%3Don", pg.url);
    // (It cannot even create its staging table: a hot standby refuses that too.)
    let ro = pg
        .config(&table)
        .replace(&json_str(&pg.url), &json_str(&url));
    let e = expect_err(open(&ro), "read-only");
    assert_eq!(e.kind, ErrorKind::Retryable, "{e}");
    assert!(e.message.contains("25006"), "{e}");

    // A batch that waits on a lock longer than statement_timeout_ms is cancelled and retryable;
    // the retry after the lock is gone succeeds.
    let cfg = pg
        .config(&table)
        .replace(r#""tls":"#, r#""statement_timeout_ms":300,"tls":"#);
    let mut b = open(&cfg)?;
    let mut admin = pg.admin();
    let mut lock = admin.transaction()?;
    lock.batch_execute(&format!("LOCK TABLE \"{table}\" IN ACCESS EXCLUSIVE MODE"))?;
    let e = expect_err(write(&mut b, &lines(3..=4, "later")), "locked");
    assert_eq!(e.kind, ErrorKind::Retryable, "{e}");
    assert!(e.message.contains("57014"), "{e}");
    lock.rollback()?;
    write(&mut b, &lines(3..=4, "later"))?;
    assert_eq!(pg.lines(&table).len(), 4);
    Ok(())
}

#[test]
fn a_client_certificate_logs_in_without_a_password() -> TestResult {
    let Some(pg) = pg() else { return Ok(()) };
    let var = |name: &str| std::env::var(name).expect(name);
    let table = unique_table("cert");
    let cfg = |key: &str| {
        format!(
            r#"{{"url":{},"table":{},"tls":{{"ca_file":{},"cert_file":{},"key_file":{}}}}}"#,
            json_str(&var("AUDIT_TEST_POSTGRES_CERT_URL")),
            json_str(&table),
            json_str(&pg.ca),
            json_str(&var("AUDIT_TEST_POSTGRES_CLIENT_CERT")),
            json_str(key)
        )
    };
    let mut b = open(&cfg(&var("AUDIT_TEST_POSTGRES_CLIENT_KEY")))?;
    write(&mut b, &lines(1..=2, "cert"))?;
    assert_eq!(b.last_line()?, Some(line(2, "cert")));
    // A file with no key in it is named.
    let e = expect_err(open(&cfg(&pg.ca)), "no key");
    assert_eq!(e.kind, ErrorKind::Config, "{e}");
    assert!(e.message.contains("tls.key_file"), "{e}");
    Ok(())
}
