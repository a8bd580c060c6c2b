//! For `audit bench` (built with its `postgres-bench` feature): scratch tables and the
//! baseline's writes, through this crate's own connection, TLS, SQL and batch code, so the
//! baseline writes exactly what the plugin writes and the ratio measures the trail, the ABI
//! and the delivery lane around it.

use audit_plugin_api::{Backend, PluginError, Record};
use postgres::Client;
use serde_json::Value;

use crate::config::Config;
use crate::connect::Target;
use crate::errors::classify;
use crate::{PostgresBackend, open};

/// `config_json` with `table` set to `table` and `create_table` to true: the plugin then
/// stores into a bench table, never the configured one.
///
/// # Errors
/// A configuration error when `config_json` is not a JSON object.
pub fn with_table(config_json: &str, table: &str) -> Result<String, PluginError> {
    let mut value: Value = serde_json::from_str(config_json)
        .map_err(|e| PluginError::config(format!("the plugin config is not JSON: {e}")))?;
    let Some(map) = value.as_object_mut() else {
        return Err(PluginError::config(
            "the plugin config must be a JSON object ({\"url\": ...})",
        ));
    };
    map.insert("table".into(), Value::from(table));
    map.insert("create_table".into(), Value::from(true));
    Ok(value.to_string())
}

/// A scratch table, created empty (dropped first if a previous run left it), with the
/// plugin's own session for writing into it.
pub struct BenchTable {
    backend: PostgresBackend,
}

impl std::fmt::Debug for BenchTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BenchTable")
            .field("table", &self.backend.target.sql.table)
            .finish()
    }
}

impl BenchTable {
    /// Drops the table `config_json` names if it exists, then opens it as the plugin does
    /// (connect, create, check the grants).
    ///
    /// # Errors
    /// As [`open`], and a failed `DROP TABLE`.
    pub fn fresh(config_json: &str) -> Result<Self, PluginError> {
        let target = Target::new(Config::parse(config_json)?)?;
        let mut client = target.connect()?;
        drop_table(&mut client, &target.sql.table, true)?;
        client
            .close()
            .map_err(|e| classify("closing the connection", &e))?;
        Ok(Self {
            backend: open(config_json)?,
        })
    }

    /// One batch, as the plugin's `write_batch` stores it: one transaction, COPY into the
    /// staging table, `INSERT ... SELECT ... ON CONFLICT DO NOTHING`.
    ///
    /// # Errors
    /// As the plugin's `write_batch`.
    pub fn write(&mut self, records: &[Record<'_>]) -> Result<(), PluginError> {
        self.backend.write_batch(records)
    }

    /// The transactions that inserted the table's rows (distinct `xmin`): the batches it was
    /// written in, since each batch is one transaction.
    ///
    /// # Errors
    /// A failed query.
    pub fn transactions(&mut self) -> Result<u64, PluginError> {
        self.count("SELECT count(DISTINCT xmin::text) FROM")
    }

    /// The stored lines' bytes, each with a newline (as a JSONL file would hold them).
    ///
    /// # Errors
    /// A failed query.
    pub fn stored_bytes(&mut self) -> Result<u64, PluginError> {
        self.count("SELECT coalesce(sum(octet_length(line) + 1), 0)::bigint FROM")
    }

    fn count(&mut self, select: &str) -> Result<u64, PluginError> {
        self.backend.with_client(|c, t| {
            let n: i64 = c
                .query_one(&format!("{select} {}", t.sql.table), &[])
                .and_then(|r| r.try_get(0))
                .map_err(|e| classify(&format!("counting in {}", t.sql.table), &e))?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    /// Drops the table and closes the session.
    ///
    /// # Errors
    /// A failed `DROP TABLE` or close.
    pub fn drop_table(mut self) -> Result<(), PluginError> {
        self.backend
            .with_client(|c, t| drop_table(c, &t.sql.table, false))?;
        self.backend.close()
    }
}

fn drop_table(client: &mut Client, table: &str, if_exists: bool) -> Result<(), PluginError> {
    let if_exists = if if_exists { "IF EXISTS " } else { "" };
    client
        .batch_execute(&format!("DROP TABLE {if_exists}{table}"))
        .map_err(|e| classify(&format!("dropping bench table {table}"), &e))
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn with_table_replaces_the_table_and_creates_it() -> Result<(), PluginError> {
        let cfg = with_table(
            r#"{"url":"host=/tmp user=a","table":"mine","create_table":false}"#,
            "audit_bench_1_trail",
        )?;
        let parsed = Config::parse(&cfg)?;
        assert_eq!(parsed.qualified_table(), "\"audit_bench_1_trail\"");
        assert!(parsed.config.create_table);
        assert!(matches!(
            with_table("[1]", "t"),
            Err(PluginError {
                kind: audit_plugin_api::ErrorKind::Config,
                ..
            })
        ));
        Ok(())
    }
}
