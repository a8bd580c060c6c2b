//! The plugin's `config` table.

use audit_plugin_api::PluginError;
use serde::Deserialize;

/// Shown by `audit plugin inspect`.
pub(crate) const HELP: &str = "\
path (string, required): the database file; created if missing.
table (string, default \"audit_events\"): the table; letters, digits and _ only.
synchronous (\"full\" | \"normal\", default \"full\"): full makes every batch durable when it
    commits; normal is faster and may lose the last batches on power loss (not on a crash).
busy_timeout_ms (integer, default 5000): how long to wait for a lock held by another
    connection before the batch is retried.";

/// SQLite's `synchronous` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// Every commit is durable.
    #[default]
    Full,
    /// Commits are durable at the next checkpoint.
    Normal,
}

impl Synchronous {
    /// The PRAGMA value.
    pub const fn pragma(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Normal => "NORMAL",
        }
    }
}

const fn default_busy_timeout_ms() -> u64 {
    5000
}

fn default_table() -> String {
    "audit_events".to_owned()
}

/// The configuration keys.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The database file.
    pub path: String,
    /// The table name.
    #[serde(default = "default_table")]
    pub table: String,
    /// Durability of each commit.
    #[serde(default)]
    pub synchronous: Synchronous,
    /// Lock wait before a batch is reported retryable.
    #[serde(default = "default_busy_timeout_ms")]
    pub busy_timeout_ms: u64,
}

impl Config {
    /// Parses and validates the JSON configuration.
    ///
    /// # Errors
    /// A configuration error naming the key.
    pub fn parse(json: &str) -> Result<Self, PluginError> {
        let c: Self =
            serde_json::from_str(json).map_err(|e| PluginError::config(format!("config: {e}")))?;
        let valid = c
            .table
            .chars()
            .next()
            .is_some_and(|ch| ch.is_ascii_alphabetic() || ch == '_')
            && c.table
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
        if !valid {
            return Err(PluginError::config(format!(
                "config `table`: `{}` is not a valid table name (letters, digits and _, not starting with a digit)",
                c.table
            )));
        }
        if c.path.is_empty() {
            return Err(PluginError::config("config `path`: must not be empty"));
        }
        Ok(c)
    }
}
