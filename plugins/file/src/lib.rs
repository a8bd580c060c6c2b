//! `audit-backend-file`: the host's built-in file backend ([`audit_host::FileStorageBackend`])
//! built as a plugin library.
//!
//! The same code, the same files and the same bytes as `[[backends]] type = "file"`: daily
//! `audit_YYYY-MM-DD.jsonl` files, size rotation, retention, the directory lock, torn-tail
//! recovery, one `write` per batch. It exists to measure what the plugin boundary costs (`audit
//! bench --suite` compares it with the built-in backend) and as a model for a plugin that
//! wraps an existing Rust backend. `audit verify` and `audit query` read its directory.
//!
//! ```toml
//! [[backends]]
//! type = "plugin"
//! library = "audit_backend_file"          # found in [trail] plugin_dir
//! config = { path = "audit_logs", max_file_bytes = 104857600 }
//! ```
//!
//! Errors: a directory that cannot be created or is locked by another writer is a
//! configuration error; a failed write (rolled back: no partial line is left) is retryable; a
//! failed fdatasync is fatal (the backend refuses further writes; restart to re-check the
//! files).

mod config;

use audit_host::{Error, FileStorageBackend};
use audit_plugin_api::{Backend, PluginError, Record, export_backend};

pub use config::Config;

/// An open directory.
#[derive(Debug)]
pub struct FileBackend {
    inner: FileStorageBackend,
    /// The highest sequence number stored: a re-delivered record (after a call timeout) is
    /// not appended twice.
    written: u64,
    /// The line stored under `written`.
    last: Option<String>,
}

fn classify(e: Error) -> PluginError {
    match e {
        Error::Io { .. } => PluginError::retryable(e.to_string()),
        _ => PluginError::fatal(e.to_string()),
    }
}

/// Parses the configuration and opens (or creates) the directory.
///
/// # Errors
/// A configuration error naming the key: unknown keys, a missing `path`, a directory that
/// cannot be created, read or locked; a fatal error if its newest line is not an audit event.
pub fn open(config_json: &str) -> Result<FileBackend, PluginError> {
    let config = Config::parse(config_json)?;
    let inner = FileStorageBackend::builder(&config.path)
        .name(Some(format!("file-plugin:{}", config.path)))
        .max_file_bytes(config.max_file_bytes)
        .retention_days(config.retention_days)
        .open()
        .map_err(|e| match e {
            Error::Io { .. } | Error::DirectoryLocked { .. } => {
                PluginError::config(format!("config `path`: {e}"))
            }
            other => PluginError::fatal(other.to_string()),
        })?;
    let head = inner.chain_head();
    let written = head.map_or(0, |h| h.sequence_number);
    let last = head.map(|h| h.line.clone());
    Ok(FileBackend {
        inner,
        written,
        last,
    })
}

impl Backend for FileBackend {
    fn write_batch(&mut self, records: &[Record<'_>]) -> Result<(), PluginError> {
        let from = records.partition_point(|r| r.sequence_number <= self.written);
        let Some(last) = records.last().filter(|_| from < records.len()) else {
            return Ok(());
        };
        self.inner
            .write_plugin_records_blocking(&records[from..])
            .map_err(classify)?;
        self.written = last.sequence_number;
        let line = self.last.get_or_insert_default();
        line.clear();
        line.push_str(last.line());
        Ok(())
    }

    fn flush(&mut self) -> Result<(), PluginError> {
        // A failed fdatasync poisons the backend: the kernel may have dropped the data.
        self.inner
            .flush_blocking()
            .map_err(|e| PluginError::fatal(e.to_string()))
    }

    fn last_line(&mut self) -> Result<Option<String>, PluginError> {
        Ok(self.last.clone())
    }

    fn close(&mut self) -> Result<(), PluginError> {
        self.flush()
    }
}

export_backend! {
    name: "file",
    description: "Stores audit events in daily JSONL files (the host's built-in file backend, as a plugin)",
    config_help: config::HELP,
    open: open,
}

#[cfg(test)]
mod tests;
