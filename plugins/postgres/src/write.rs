//! One batch, one transaction. When the batch starts above the highest stored sequence (the
//! common case), its rows are copied straight into the table; otherwise (a re-delivery, or
//! the primary key refused a direct copy) through the staging table, which skips stored
//! sequences and catches a stored line that differs.

use std::io::Write as _;

use audit_plugin_api::{PluginError, Record};
use postgres::error::SqlState;
use postgres::{Client, Transaction};

use crate::connect::Target;
use crate::errors::classify;
use crate::sql;

/// Bytes of COPY data per message to the server.
const COPY_CHUNK: usize = 64 * 1024;

/// What one batch did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Written {
    /// Rows inserted (fewer than the records when some were stored already).
    pub(crate) inserted: u64,
    /// Whether it went through the staging table.
    pub(crate) staged: bool,
    /// The highest stored sequence after the commit.
    pub(crate) head: i64,
}

/// Writes `records` (in order, not empty). `head` is the highest stored sequence as this
/// session last saw it (0: empty table), or `None` when unknown (a new session, or the last
/// commit's outcome is unknown): then it is read first.
pub(crate) fn write(
    client: &mut Client,
    t: &Target,
    records: &[Record<'_>],
    head: Option<i64>,
) -> Result<Written, PluginError> {
    let rows = sql::copy_rows(records)?;
    let (first, last) = sql::first_last(records)?;
    let head = match head {
        Some(h) => h,
        None => read_head(client, t)?,
    };
    if first > head {
        match copy_direct(client, t, &rows) {
            Ok(inserted) => {
                return Ok(Written {
                    inserted,
                    staged: false,
                    head: last,
                });
            }
            // Someone stored some of these sequences meanwhile (another session, or a commit
            // whose answer was lost): the staging path tells a re-delivery from a fork.
            Err(e) if e.is_unique_violation() => {}
            Err(e) => return Err(e.classify(&format!("COPY into {}", t.sql.table))),
        }
    }
    let inserted = copy_staged(client, t, &rows, records.len())?;
    Ok(Written {
        inserted,
        staged: true,
        head: head.max(last),
    })
}

/// The highest stored sequence, 0 for an empty table.
fn read_head(client: &mut Client, t: &Target) -> Result<i64, PluginError> {
    let max: Option<i64> = client
        .query_one(&t.sql.max_sequence, &[])
        .and_then(|r| r.try_get(0))
        .map_err(|e| {
            classify(
                &format!("reading the highest sequence in {}", t.sql.table),
                &e,
            )
        })?;
    Ok(max.unwrap_or(0))
}

/// `COPY` into the table itself, committed (the transaction is rolled back when dropped).
fn copy_direct(client: &mut Client, t: &Target, rows: &[u8]) -> Result<u64, CopyError> {
    let mut tx = client.transaction().map_err(CopyError::Db)?;
    let copied = copy_into(&mut tx, &t.sql.copy_direct, rows)?;
    tx.commit().map_err(CopyError::Db)?;
    Ok(copied)
}

/// COPY into the staging table, `INSERT ... ON CONFLICT DO NOTHING` into the table, and the
/// fork check when some rows were stored already.
fn copy_staged(
    client: &mut Client,
    t: &Target,
    rows: &[u8],
    records: usize,
) -> Result<u64, PluginError> {
    let table = &t.sql.table;
    let mut tx = client.transaction().map_err(|e| classify("BEGIN", &e))?;
    copy_into(&mut tx, &t.sql.copy, rows).map_err(|e| e.classify("COPY into the staging table"))?;
    let inserted = tx
        .execute(&t.sql.insert, &[])
        .map_err(|e| classify(&format!("inserting into {table}"), &e))?;
    if usize::try_from(inserted).ok() != Some(records) {
        // Some sequence numbers were stored already: a re-delivery is a no-op, but another
        // line under a stored number is another chain and must not be dropped.
        let conflict = tx
            .query_opt(&t.sql.conflict, &[])
            .map_err(|e| classify(&format!("comparing with {table}"), &e))?;
        if let Some(row) = conflict {
            let seq: i64 = row.get(0);
            return Err(PluginError::fatal(format!(
                "sequence {seq} is already stored in {table} with a different line: the table holds another chain (shared between trails, or the trail restarted without its history). Point `table` at a new table"
            )));
        }
    }
    tx.commit().map_err(|e| classify("COMMIT", &e))?;
    Ok(inserted)
}

/// Runs `copy` with `rows` as its data: one CopyData message per COPY_CHUNK, so the server
/// parses each while the next is on its way (the batch as one ~1 MB message made it wait for
/// the last byte: docs/benchmarks.md).
fn copy_into(tx: &mut Transaction<'_>, copy: &str, rows: &[u8]) -> Result<u64, CopyError> {
    let mut writer = tx.copy_in(copy).map_err(CopyError::Db)?;
    for chunk in rows.chunks(COPY_CHUNK) {
        writer.write_all(chunk).map_err(CopyError::Io)?;
    }
    writer.finish().map_err(CopyError::Db)
}

/// A failed COPY: the server's or the client's error, or sending the data.
#[derive(Debug)]
enum CopyError {
    Db(postgres::Error),
    Io(std::io::Error),
}

impl CopyError {
    /// The primary key refused a row: some of the sequences are stored already.
    fn is_unique_violation(&self) -> bool {
        matches!(self, Self::Db(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION))
    }

    fn classify(self, context: &str) -> PluginError {
        match self {
            Self::Db(e) => classify(context, &e),
            // Sending failed: the connection broke; a new one may succeed.
            Self::Io(e) => PluginError::retryable(format!("{context}: {e}")),
        }
    }
}
