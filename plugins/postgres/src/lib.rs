//! `audit-backend-postgres`: stores audit events in a PostgreSQL table.
//!
//! One row per event: `sequence_number bigint primary key`, the indexed fields (`event_id`,
//! `timestamp timestamptz`, `event_type`, `log_level`, `user_id`) and `line`, the canonical
//! JSON line byte for byte. Each batch is one transaction: a batch above the highest stored
//! sequence is copied (`COPY`) straight into the table; any other (a re-delivery) goes into
//! a temporary staging table, then `INSERT ... SELECT ... ON CONFLICT (sequence_number) DO
//! NOTHING`, so a re-delivered batch inserts nothing; a stored row whose line differs from
//! the delivered one is a fatal error naming the sequence, never kept silently nor
//! overwritten (a direct copy that meets a stored sequence is refused by the primary key and
//! redone through the staging table).
//!
//! ```toml
//! [[backends]]
//! type = "plugin"
//! library = "audit_backend_postgres"      # found in [trail] plugin_dir
//! config = { url = "postgresql://audit@db.example:5432/audit", password_file = "/etc/audit/pg-password", tls = { ca_file = "/etc/audit/pg-ca.pem" } }
//! ```
//!
//! Errors: an unreachable or restarting server, a dropped connection, `too many
//! connections`, a read-only server (a replica after failover) or a statement timeout is
//! retryable, and the next call reconnects; a failed login, a rejected server certificate,
//! a missing grant, schema or table is a configuration error naming the key to fix.
//!
//! TLS is rustls with the ring provider (docs/backends/postgres.md says why).
//!
//! Capabilities: `validate` (keys and values, offline) and `health` (the server, table and
//! highest stored sequence). docs/backends/postgres.md covers setup, grants and durability.
//!
//! [`mod@bench`] gives `audit bench` scratch tables and the baseline's writes (docs/benchmarks.md).

pub mod bench;
mod config;
mod connect;
mod errors;
mod sql;
mod tls;
mod write;

use audit_plugin_api::{
    Backend, Health, PluginError, ReadBack, Record, Stats, Validate, export_backend, export_health,
    export_read, export_stats, export_validate,
};
use postgres::Client;

pub use config::{Config, Parsed, TlsConfig, TlsMode};

use connect::Target;
use errors::{classify, needs_reconnect};

/// An instance: where to connect and the current session, if any.
pub struct PostgresBackend {
    target: Target,
    client: Option<Client>,
    /// The highest stored sequence as this instance last committed it (0: empty table);
    /// `None` until read, and after any failed write.
    head: Option<i64>,
    counters: Counters,
}

/// What the `stats` capability reports, counted since `open` after each commit.
#[derive(Debug, Default)]
struct Counters {
    rows_written: u64,
    duplicates_skipped: u64,
    batches_written: u64,
    /// Batches written through the staging table (re-deliveries), not copied directly.
    batches_staged: u64,
    reconnects: u64,
}

impl std::fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresBackend")
            .field("target", &self.target.describe)
            .field("connected", &self.client.is_some())
            .finish()
    }
}

/// Parses the configuration, connects, and creates (or checks) the table.
///
/// # Errors
/// A configuration error naming the key (bad keys or values, a password or certificate the
/// server refuses, a missing grant or table); a retryable error when the server cannot be
/// reached.
pub fn open(config_json: &str) -> Result<PostgresBackend, PluginError> {
    let target = Target::new(Config::parse(config_json)?)?;
    let mut client = target.connect()?;
    target.prepare_table(&mut client)?;
    Ok(PostgresBackend {
        target,
        client: Some(client),
        head: None,
        counters: Counters::default(),
    })
}

impl PostgresBackend {
    /// Runs `f` on a live session (reconnecting first if the last one failed); a retryable
    /// failure drops the session so the next call starts a new one.
    fn with_client<T>(
        &mut self,
        f: impl FnOnce(&mut Client, &Target) -> Result<T, PluginError>,
    ) -> Result<T, PluginError> {
        let client = match &mut self.client {
            Some(c) if !c.is_closed() => c,
            slot => {
                let fresh = self.target.connect()?;
                self.counters.reconnects += 1;
                slot.insert(fresh)
            }
        };
        let result = f(client, &self.target);
        if let Err(e) = &result
            && needs_reconnect(e)
        {
            self.client = None;
        }
        result
    }

    /// Stored lines with `sequence_number >= from`, in order, at most `limit`: the read-back
    /// query (for the `read` capability).
    ///
    /// # Errors
    /// As `write_batch`.
    pub fn read_from(&mut self, from: u64, limit: u32) -> Result<Vec<String>, PluginError> {
        let from = i64::try_from(from).unwrap_or(i64::MAX);
        self.with_client(|c, t| {
            let rows = c
                .query(&t.sql.read_from, &[&from, &i64::from(limit)])
                .map_err(|e| classify(&format!("reading {}", t.sql.table), &e))?;
            rows.iter()
                .map(|r| r.try_get::<_, String>(0))
                .collect::<Result<_, _>>()
                .map_err(|e| classify(&format!("reading {}", t.sql.table), &e))
        })
    }
}

impl Backend for PostgresBackend {
    fn write_batch(&mut self, records: &[Record<'_>]) -> Result<(), PluginError> {
        if records.is_empty() {
            return Ok(());
        }
        // Unknown after a failure: the commit may or may not have happened.
        let head = self.head.take();
        let w = self.with_client(|c, t| write::write(c, t, records, head))?;
        self.head = Some(w.head);
        let counters = &mut self.counters;
        counters.rows_written += w.inserted;
        counters.duplicates_skipped += (records.len() as u64).saturating_sub(w.inserted);
        counters.batches_written += 1;
        counters.batches_staged += u64::from(w.staged);
        Ok(())
    }

    fn last_line(&mut self) -> Result<Option<String>, PluginError> {
        self.with_client(|c, t| {
            let row = c
                .query_opt(&t.sql.last_line, &[])
                .map_err(|e| classify("reading the last stored event", &e))?;
            row.map(|r| r.try_get::<_, String>(0))
                .transpose()
                .map_err(|e| classify("reading the last stored event", &e))
        })
    }

    fn flush(&mut self) -> Result<(), PluginError> {
        // Every batch was committed; with synchronous_commit = on (the server default) a
        // commit is durable on the server before it returns.
        Ok(())
    }

    fn close(&mut self) -> Result<(), PluginError> {
        match self.client.take() {
            Some(c) => c
                .close()
                .map_err(|e| classify("closing the connection", &e)),
            None => Ok(()),
        }
    }
}

impl Health for PostgresBackend {
    fn health(&mut self) -> Result<String, PluginError> {
        self.with_client(|c, t| {
            let max: Option<i64> = c
                .query_one(&t.sql.max_sequence, &[])
                .and_then(|r| r.try_get(0))
                .map_err(|e| classify("health check", &e))?;
            Ok(match max {
                Some(m) => format!("{}: connected, last sequence {m}", t.describe),
                None => format!("{}: connected, table empty", t.describe),
            })
        })
    }
}

/// The `validate` capability: the keys and values `open` would accept, checked offline (no
/// connection, no file read).
impl Validate for PostgresBackend {
    fn validate(config_json: &str) -> Result<(), PluginError> {
        Config::parse(config_json).map(drop)
    }
}

/// The `read` capability: `audit verify --config FILE --backend NAME` and `audit query` read
/// the table back in sequence order.
impl ReadBack for PostgresBackend {
    fn read_from(&mut self, from_sequence: u64, limit: u32) -> Result<Vec<String>, PluginError> {
        PostgresBackend::read_from(self, from_sequence, limit)
    }
}

export_validate!(PostgresBackend);
export_health!(PostgresBackend);
export_read!(PostgresBackend);

/// The `stats` capability: monotonic since `open`, counted after each commit.
impl Stats for PostgresBackend {
    fn statistics(&mut self) -> Vec<(String, u64)> {
        let c = &self.counters;
        vec![
            ("rows_written".to_owned(), c.rows_written),
            ("duplicates_skipped".to_owned(), c.duplicates_skipped),
            ("batches_written".to_owned(), c.batches_written),
            ("batches_staged".to_owned(), c.batches_staged),
            ("reconnects".to_owned(), c.reconnects),
        ]
    }
}

export_stats!(PostgresBackend);

export_backend! {
    name: "postgres",
    description: "Stores audit events in a PostgreSQL table (one transaction and COPY per batch, TLS with rustls)",
    config_help: config::HELP,
    open: open,
}
