//! The SQL the backend runs, built once per instance from the (validated) table name, and
//! the COPY text encoding of a batch.

use audit_plugin_api::{PluginError, Record};

/// Name of the per-connection staging table (temporary, emptied at each commit).
const STAGING: &str = "audit_backend_staging";

/// Statements for one table.
#[derive(Debug, Clone)]
pub(crate) struct Sql {
    /// The table, quoted and qualified, for messages too.
    pub(crate) table: String,
    /// Creates the table and its indexes (run only when the table is missing).
    pub(crate) create: String,
    /// Creates this connection's staging table.
    pub(crate) create_staging: String,
    /// `COPY staging FROM STDIN`.
    pub(crate) copy: String,
    /// `COPY table FROM STDIN`: a batch wholly above the stored sequences.
    pub(crate) copy_direct: String,
    /// Staging into the table, skipping stored sequence numbers.
    pub(crate) insert: String,
    /// The first staged sequence stored with a different line.
    pub(crate) conflict: String,
    /// The line with the highest sequence number.
    pub(crate) last_line: String,
    /// Lines from a sequence number on, in order (`$1` from, `$2` limit): the read-back
    /// capability's query.
    pub(crate) read_from: String,
    /// The highest stored sequence number.
    pub(crate) max_sequence: String,
}

impl Sql {
    /// `table` is `"schema"."table"` or `"table"` (identifiers already validated).
    pub(crate) fn new(table: &str, index_prefix: &str) -> Self {
        let cols = "sequence_number, event_id, \"timestamp\", event_type, log_level, user_id, line";
        Self {
            table: table.to_owned(),
            create: format!(
                "CREATE TABLE IF NOT EXISTS {table} (
                    sequence_number bigint PRIMARY KEY,
                    event_id text NOT NULL,
                    \"timestamp\" timestamptz NOT NULL,
                    event_type text NOT NULL,
                    log_level text NOT NULL,
                    user_id text,
                    line text NOT NULL
                );
                CREATE INDEX IF NOT EXISTS \"{index_prefix}_timestamp_idx\" ON {table} (\"timestamp\");
                CREATE INDEX IF NOT EXISTS \"{index_prefix}_event_type_idx\" ON {table} (event_type);
                CREATE INDEX IF NOT EXISTS \"{index_prefix}_user_id_idx\" ON {table} (user_id);"
            ),
            create_staging: format!(
                "CREATE TEMPORARY TABLE IF NOT EXISTS {STAGING} (
                    sequence_number bigint NOT NULL,
                    event_id text NOT NULL,
                    \"timestamp\" timestamptz NOT NULL,
                    event_type text NOT NULL,
                    log_level text NOT NULL,
                    user_id text,
                    line text NOT NULL
                ) ON COMMIT DELETE ROWS"
            ),
            copy: format!("COPY {STAGING} ({cols}) FROM STDIN"),
            copy_direct: format!("COPY {table} ({cols}) FROM STDIN"),
            insert: format!(
                "INSERT INTO {table} ({cols}) SELECT {cols} FROM {STAGING} ORDER BY sequence_number ON CONFLICT (sequence_number) DO NOTHING"
            ),
            conflict: format!(
                "SELECT s.sequence_number FROM {STAGING} s JOIN {table} t USING (sequence_number) WHERE t.line <> s.line ORDER BY 1 LIMIT 1"
            ),
            last_line: format!("SELECT line FROM {table} ORDER BY sequence_number DESC LIMIT 1"),
            read_from: format!(
                "SELECT line FROM {table} WHERE sequence_number >= $1 ORDER BY sequence_number LIMIT $2"
            ),
            max_sequence: format!("SELECT max(sequence_number) FROM {table}"),
        }
    }
}

/// The batch in COPY's text format: one row per record, tab-separated, `\N` for NULL.
///
/// # Errors
/// Fatal for a sequence number beyond `bigint`.
pub(crate) fn copy_rows(records: &[Record<'_>]) -> Result<Vec<u8>, PluginError> {
    let mut out = Vec::with_capacity(records.iter().map(|r| r.line.len() + 128).sum());
    for r in records {
        let seq = bigint(r.sequence_number)?;
        out.extend_from_slice(seq.to_string().as_bytes());
        for field in [
            Some(r.event_id.as_str()),
            Some(r.timestamp.as_str()),
            Some(r.event_type.as_str()),
            Some(r.log_level.as_str()),
            r.user_id(),
            Some(r.line()),
        ] {
            out.push(b'\t');
            match field {
                Some(text) => escape_into(&mut out, text),
                None => out.extend_from_slice(b"\\N"),
            }
        }
        out.push(b'\n');
    }
    Ok(out)
}

/// The first and last sequence numbers of `records` (not empty, in order) as `bigint`s.
///
/// # Errors
/// Fatal for a sequence number beyond `bigint`, or no records.
pub(crate) fn first_last(records: &[Record<'_>]) -> Result<(i64, i64), PluginError> {
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return Err(PluginError::fatal("an empty batch has no sequence numbers"));
    };
    Ok((
        bigint(first.sequence_number)?,
        bigint(last.sequence_number)?,
    ))
}

fn bigint(sequence: u64) -> Result<i64, PluginError> {
    i64::try_from(sequence).map_err(|_| {
        PluginError::fatal(format!(
            "sequence_number {sequence} does not fit PostgreSQL's bigint"
        ))
    })
}

/// COPY text escaping: backslash, tab, newline and carriage return.
fn escape_into(out: &mut Vec<u8>, text: &str) {
    let mut start = 0;
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod test {
    use super::*;
    use audit_plugin_api::abi_stable::std_types::{RNone, RSome, RStr};

    fn record(seq: u64, line: &'static str, user: Option<&'static str>) -> Record<'static> {
        Record {
            line: RStr::from_str(line),
            sequence_number: seq,
            timestamp: RStr::from_str("2026-01-01T00:00:00.000000Z"),
            timestamp_micros: 0,
            event_id: RStr::from_str("e\t1"),
            event_type: RStr::from_str("data_access"),
            log_level: RStr::from_str("info"),
            user_id: user.map_or(RNone, |u| RSome(RStr::from_str(u))),
        }
    }

    #[test]
    fn copy_rows_escapes_and_marks_null() -> Result<(), PluginError> {
        let rows = copy_rows(&[
            record(1, r#"{"m":"a\"b\\c"}"#, None),
            record(2, "x\r\ny", Some("u")),
        ])?;
        assert_eq!(
            String::from_utf8_lossy(&rows),
            "1\te\\t1\t2026-01-01T00:00:00.000000Z\tdata_access\tinfo\t\\N\t{\"m\":\"a\\\\\"b\\\\\\\\c\"}\n\
             2\te\\t1\t2026-01-01T00:00:00.000000Z\tdata_access\tinfo\tu\tx\\r\\ny\n"
        );
        Ok(())
    }

    #[test]
    fn a_sequence_beyond_bigint_is_fatal() {
        let e = copy_rows(&[record(u64::MAX, "{}", None)]);
        assert!(matches!(
            e,
            Err(PluginError {
                kind: audit_plugin_api::ErrorKind::Fatal,
                ..
            })
        ));
    }
}
