//! `audit-backend-sqlite`: stores audit events in an embedded SQLite database.
//!
//! One table (default `audit_events`) with the indexed fields as columns and the canonical
//! JSON line as text; `sequence_number` is the primary key, so a re-delivered batch adds no
//! row (a different line under a stored sequence number is a fatal error, never a silent
//! drop), and `last_line` lets a restarted host continue the chain; indexes on `timestamp`, `event_type` and `user_id`; WAL journal; one transaction per
//! batch.
//!
//! ```toml
//! [[backends]]
//! type = "plugin"
//! library = "audit_backend_sqlite"        # found in [trail] plugin_dir
//! config = { path = "audit.db", synchronous = "full" }
//! ```
//!
//! Errors: a database that cannot be opened or created is a configuration error; a busy or
//! locked database, a full disk or an I/O error is retryable; anything else is fatal.
//!
//! Capabilities: `validate` (the keys and values, checked without touching the database, for
//! `audit config check --no-connect` and before the host opens anything); `health`
//! (`ok: last sequence N, db PATH`); `stats` (monotonic since `open`: `rows_written`,
//! `duplicates_skipped`, `batches_written`); `read` (the stored lines in sequence order, for
//! `audit verify --config FILE --backend NAME` and `audit query --config FILE --backend NAME`).

mod config;

use audit_plugin_api::{
    Backend, Health, PluginError, ReadBack, Record, Stats, Validate, export_backend, export_health,
    export_read, export_stats, export_validate,
};
use rusqlite::{Connection, ErrorCode, params};

pub use config::{Config, Synchronous};

/// An open database.
#[derive(Debug)]
pub struct SqliteBackend {
    conn: Connection,
    insert_sql: String,
    stored_line_sql: String,
    last_line_sql: String,
    last_sequence_sql: String,
    read_from_sql: String,
    synchronous: Synchronous,
    path: String,
    counters: Counters,
}

/// What the instance did since `open` (the `stats` capability); committed batches only.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Rows inserted.
    pub rows_written: u64,
    /// Records already stored with the same line (a re-delivery), not inserted again.
    pub duplicates_skipped: u64,
    /// Batches committed (one transaction each).
    pub batches_written: u64,
}

fn classify(context: &str, e: &rusqlite::Error) -> PluginError {
    let message = format!("{context}: {e}");
    match e.sqlite_error_code() {
        Some(
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::DiskFull
            | ErrorCode::SystemIoFailure,
        ) => PluginError::retryable(message),
        _ => PluginError::fatal(message),
    }
}

/// Parses the configuration and opens (or creates) the database and its table.
///
/// # Errors
/// A configuration error naming the key (unknown keys, a missing `path`, a database that
/// cannot be opened, a bad table name); a retryable error if the database is busy.
pub fn open(config_json: &str) -> Result<SqliteBackend, PluginError> {
    let config = Config::parse(config_json)?;
    let conn = Connection::open(&config.path).map_err(|e| {
        PluginError::config(format!(
            "config `path`: cannot open database {}: {e}",
            config.path
        ))
    })?;
    conn.busy_timeout(std::time::Duration::from_millis(config.busy_timeout_ms))
        .map_err(|e| classify("setting busy_timeout", &e))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
        .map_err(|e| match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) => PluginError::config(format!(
                "config `path`: {} is not an SQLite database",
                config.path
            )),
            _ => classify("enabling WAL", &e),
        })?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(PluginError::config(format!(
            "config `path`: {} cannot use a WAL journal (journal_mode is {mode}); use a local file system",
            config.path
        )));
    }
    conn.execute_batch(&format!(
        "PRAGMA synchronous={}",
        config.synchronous.pragma()
    ))
    .map_err(|e| classify("setting synchronous", &e))?;
    let t = &config.table;
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {t} (
            sequence_number INTEGER PRIMARY KEY,
            timestamp TEXT NOT NULL,
            timestamp_micros INTEGER NOT NULL,
            event_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            log_level TEXT NOT NULL,
            user_id TEXT,
            line TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS {t}_timestamp ON {t}(timestamp);
        CREATE INDEX IF NOT EXISTS {t}_event_type ON {t}(event_type);
        CREATE INDEX IF NOT EXISTS {t}_user_id ON {t}(user_id);"
    ))
    .map_err(|e| classify(&format!("creating table `{t}`"), &e))?;
    Ok(SqliteBackend {
        conn,
        insert_sql: format!(
            "INSERT INTO {t} (sequence_number, timestamp, timestamp_micros, event_id, event_type, log_level, user_id, line) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (sequence_number) DO NOTHING"
        ),
        stored_line_sql: format!("SELECT line FROM {t} WHERE sequence_number = ?1"),
        last_line_sql: format!("SELECT line FROM {t} ORDER BY sequence_number DESC LIMIT 1"),
        last_sequence_sql: format!("SELECT max(sequence_number) FROM {t}"),
        read_from_sql: format!(
            "SELECT line FROM {t} WHERE sequence_number >= ?1 ORDER BY sequence_number LIMIT ?2"
        ),
        synchronous: config.synchronous,
        path: config.path,
        counters: Counters::default(),
    })
}

impl Backend for SqliteBackend {
    fn write_batch(&mut self, records: &[Record<'_>]) -> Result<(), PluginError> {
        let tx = self.conn.transaction().map_err(|e| classify("BEGIN", &e))?;
        let mut batch = Counters {
            batches_written: 1,
            ..Counters::default()
        };
        {
            let mut insert = tx
                .prepare_cached(&self.insert_sql)
                .map_err(|e| classify("preparing INSERT", &e))?;
            for r in records {
                let seq = i64::try_from(r.sequence_number).map_err(|_| {
                    PluginError::fatal(format!(
                        "sequence_number {} does not fit SQLite's INTEGER",
                        r.sequence_number
                    ))
                })?;
                let inserted = insert
                    .execute(params![
                        seq,
                        r.timestamp.as_str(),
                        r.timestamp_micros,
                        r.event_id.as_str(),
                        r.event_type.as_str(),
                        r.log_level.as_str(),
                        r.user_id(),
                        r.line(),
                    ])
                    .map_err(|e| {
                        classify(&format!("inserting sequence {}", r.sequence_number), &e)
                    })?;
                if inserted > 0 {
                    batch.rows_written += 1;
                } else {
                    // Already stored: a re-delivery is a no-op, but a different line under
                    // the same sequence number is another chain and must not be dropped.
                    let stored: String = tx
                        .prepare_cached(&self.stored_line_sql)
                        .and_then(|mut q| q.query_row([seq], |row| row.get(0)))
                        .map_err(|e| {
                            classify(&format!("reading sequence {}", r.sequence_number), &e)
                        })?;
                    batch.duplicates_skipped += 1;
                    if stored != r.line() {
                        return Err(PluginError::fatal(format!(
                            "sequence {} is already stored with a different line: this database holds another chain (shared between trails, or the trail restarted without its history). Point `path` at a new database",
                            r.sequence_number
                        )));
                    }
                }
            }
        }
        tx.commit().map_err(|e| classify("COMMIT", &e))?;
        self.counters.rows_written += batch.rows_written;
        self.counters.duplicates_skipped += batch.duplicates_skipped;
        self.counters.batches_written += batch.batches_written;
        Ok(())
    }

    fn last_line(&mut self) -> Result<Option<String>, PluginError> {
        match self
            .conn
            .query_row(&self.last_line_sql, [], |row| row.get(0))
        {
            Ok(line) => Ok(Some(line)),
            Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
            Err(e) => Err(classify("reading the last stored event", &e)),
        }
    }

    fn flush(&mut self) -> Result<(), PluginError> {
        // With synchronous = full every COMMIT is already durable. With normal, move the WAL
        // into the database file so the data survives a power loss.
        if self.synchronous == Synchronous::Normal {
            self.conn
                .execute_batch("PRAGMA wal_checkpoint(FULL)")
                .map_err(|e| classify("checkpoint", &e))?;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), PluginError> {
        self.flush()
    }
}

/// The `read` capability: the stored lines from `from_sequence` on, in sequence order.
impl ReadBack for SqliteBackend {
    fn read_from(&mut self, from_sequence: u64, limit: u32) -> Result<Vec<String>, PluginError> {
        // Past SQLite's INTEGER range nothing is stored.
        let Ok(from) = i64::try_from(from_sequence) else {
            return Ok(Vec::new());
        };
        let context = || format!("reading the stored lines from sequence {from_sequence}");
        let mut query = self
            .conn
            .prepare_cached(&self.read_from_sql)
            .map_err(|e| classify(&context(), &e))?;
        let rows = query
            .query_map(params![from, limit], |row| row.get::<_, String>(0))
            .map_err(|e| classify(&context(), &e))?;
        rows.collect::<Result<Vec<String>, _>>()
            .map_err(|e| classify(&context(), &e))
    }
}

export_read!(SqliteBackend);

/// The `validate` capability: the keys and values `open` would accept ([`Config::parse`]),
/// checked without opening or creating the database.
impl Validate for SqliteBackend {
    fn validate(config_json: &str) -> Result<(), PluginError> {
        Config::parse(config_json).map(drop)
    }
}

export_validate!(SqliteBackend);

impl SqliteBackend {
    /// What the instance did since `open`.
    pub fn counters(&self) -> Counters {
        self.counters
    }
}

/// The `health` capability: the highest stored sequence number (a primary-key lookup, cheap
/// on any table size) and the database file.
impl Health for SqliteBackend {
    fn health(&mut self) -> Result<String, PluginError> {
        let last: Option<i64> = self
            .conn
            .query_row(&self.last_sequence_sql, [], |row| row.get(0))
            .map_err(|e| classify("reading the last sequence number", &e))?;
        Ok(match last {
            Some(seq) => format!("ok: last sequence {seq}, db {}", self.path),
            None => format!("ok: empty, db {}", self.path),
        })
    }
}

export_health!(SqliteBackend);

/// The `stats` capability: [`Counters`], all monotonic since `open`.
impl Stats for SqliteBackend {
    fn statistics(&mut self) -> Vec<(String, u64)> {
        let c = self.counters;
        vec![
            ("rows_written".to_owned(), c.rows_written),
            ("duplicates_skipped".to_owned(), c.duplicates_skipped),
            ("batches_written".to_owned(), c.batches_written),
        ]
    }
}

export_stats!(SqliteBackend);

export_backend! {
    name: "sqlite",
    description: "Stores audit events in an embedded SQLite database (WAL, one transaction per batch)",
    config_help: config::HELP,
    open: open,
}

#[cfg(test)]
mod tests;
