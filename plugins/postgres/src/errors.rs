//! What a PostgreSQL failure means for the host: retry after reconnecting, or a
//! configuration/fatal error naming the key to fix.

use audit_plugin_api::{ErrorKind, PluginError};
use postgres::error::SqlState;

use crate::tls::is_certificate_error;

/// Classifies `e`, which happened while doing `context` (in the message).
pub(crate) fn classify(context: &str, e: &postgres::Error) -> PluginError {
    let detail = describe(e);
    let message = format!("{context}: {detail}");
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let config = |fix: &str| PluginError::config(format!("{message}; {fix}"));
        return match code {
            c if *c == SqlState::INVALID_PASSWORD
                || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
            {
                config("check the user in `url` and the password (`password_file`, or PGPASSWORD)")
            }
            c if *c == SqlState::INVALID_CATALOG_NAME => config("check the database name in `url`"),
            c if *c == SqlState::INSUFFICIENT_PRIVILEGE => config(
                "check `table`/`schema` and the writer role's grants (INSERT and SELECT on the table, USAGE on the schema; CREATE on the schema with create_table = true); docs/backends/postgres.md lists them",
            ),
            c if *c == SqlState::INVALID_SCHEMA_NAME => {
                config("check `schema` (it must exist; the plugin creates tables, not schemas)")
            }
            c if *c == SqlState::UNDEFINED_TABLE => {
                config("check `table` and `schema`, or set create_table = true to create the table")
            }
            c if *c == SqlState::UNDEFINED_COLUMN || *c == SqlState::DATATYPE_MISMATCH => config(
                "the table `table` exists with other columns; point `table` at a new table or create it as docs/backends/postgres.md shows",
            ),
            c if is_retryable(c) => PluginError::retryable(message),
            _ => PluginError::fatal(message),
        };
    }
    if is_certificate_error(e) {
        return PluginError::config(format!(
            "{message}; check `tls.ca_file` (the CA that signs the server's certificate) and that the host in `url` is a name in that certificate"
        ));
    }
    if detail.contains("password missing") {
        return PluginError::config(format!(
            "{message}; the server asks for a password: set `password_file` or PGPASSWORD"
        ));
    }
    if detail.contains("server does not support TLS") {
        return PluginError::config(format!(
            "{message}; enable ssl on the server, or set `tls.mode` = \"disable\" on a trusted network"
        ));
    }
    // I/O, a closed connection, a timeout, a refused connection: the server may come back.
    PluginError::retryable(message)
}

/// Errors after which a new connection may succeed: the connection or server went away, the
/// server is overloaded or read-only (a replica after failover), the statement timed out.
fn is_retryable(code: &SqlState) -> bool {
    let c = code.code();
    c.starts_with("08") // connection exception
        || c.starts_with("53") // insufficient resources: too many connections, disk full
        || c.starts_with("57") // operator intervention: shutdown, cancel, statement timeout
        || c.starts_with("40") // serialization failure, deadlock
        || *code == SqlState::READ_ONLY_SQL_TRANSACTION
        || *code == SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT
}

/// The error and its causes in one line.
fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        // postgres::Error's Display says only "db error": the server's own words, and the
        // code for searches.
        let mut text = format!("server: {} (SQLSTATE {})", db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            text = format!("{text}; {detail}");
        }
        if let Some(hint) = db.hint() {
            text = format!("{text}; hint: {hint}");
        }
        return text;
    }
    let mut text = e.to_string();
    let mut cur = std::error::Error::source(e);
    while let Some(s) = cur {
        let part = s.to_string();
        if !text.contains(&part) {
            text = format!("{text}: {part}");
        }
        cur = s.source();
    }
    text
}

/// Whether the connection should be dropped and opened again before the next call.
pub(crate) fn needs_reconnect(e: &PluginError) -> bool {
    e.kind == ErrorKind::Retryable
}
