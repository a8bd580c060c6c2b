//! The plugin's `config` table.

use audit_format::DEFAULT_MAX_FILE_BYTES;
use audit_plugin_api::PluginError;
use serde::Deserialize;

/// Shown by `audit plugin inspect`.
pub(crate) const HELP: &str = "\
path (string, required): the directory of audit_YYYY-MM-DD.jsonl files; created (mode 0700)
    if missing, locked while open. Relative to the working directory.
max_file_bytes (integer, default 104857600): rotate a day's file once it would grow past
    this many bytes (0: never rotate by size).
retention_days (integer, optional): delete files dated more than this many days before the
    newest event's date (default: keep everything).
allow_insecure_permissions (boolean, default false): UNSAFE; accept an existing directory
    writable by group or others or owned by another user (refused by default).";

const fn default_max_file_bytes() -> u64 {
    DEFAULT_MAX_FILE_BYTES
}

/// The configuration keys.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The directory the files go to.
    pub path: String,
    /// Size at which a day's file is rotated (0: never).
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// Files older than this many days are deleted (`None`: kept).
    #[serde(default)]
    pub retention_days: Option<u32>,
    /// Accept a directory others may write to (unsafe; default `false`).
    #[serde(default)]
    pub allow_insecure_permissions: bool,
}

impl Config {
    /// Parses and validates the JSON configuration.
    ///
    /// # Errors
    /// A configuration error naming the key.
    pub fn parse(json: &str) -> Result<Self, PluginError> {
        let c: Self =
            serde_json::from_str(json).map_err(|e| PluginError::config(format!("config: {e}")))?;
        if c.path.is_empty() {
            return Err(PluginError::config("config `path`: must not be empty"));
        }
        Ok(c)
    }
}
