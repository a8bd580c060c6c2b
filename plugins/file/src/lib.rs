//! `audit-backend-file`: the host's built-in file backend (`audit_host::FileStorageBackend`)
//! built as a plugin library, over the same synchronous store ([`audit_format::FileStore`]).
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
//!
//! Capabilities: `validate` (the keys and values, checked without touching the directory),
//! `read` (the stored lines in sequence order, through [`audit_format::read::DirReader`]) and
//! `seal` (a witness: the host's signed seals, appended to `<path>/.audit-witness/` in the
//! seal file format, so `audit verify --public-key KEY --seals <path>/.audit-witness DIR`
//! checks the host's directory, or notices it is gone).

mod config;
mod stderr;

use audit_format::error::chain;
use audit_format::read::DirReader;
use audit_format::seal::SealLog;
use audit_format::{Error, FileStore, Storable};
use audit_plugin_api::{
    Backend, PluginError, ReadBack, Record, Validate, Witness, export_backend, export_read,
    export_seal, export_validate,
};
use chrono::{DateTime, NaiveDate, Utc};

/// Where the witness copy of the host's seals goes, inside the plugin's directory.
pub const WITNESS_DIR: &str = ".audit-witness";

pub use config::Config;

/// An open directory.
#[derive(Debug)]
pub struct FileBackend {
    inner: FileStore,
    /// The highest sequence number stored: a re-delivered record (after a call timeout) is
    /// not appended twice.
    written: u64,
    /// The line stored under `written`.
    last: Option<String>,
    /// Reads the directory back (`read` capability).
    reader: DirReader,
    /// The witness copy of the host's seals (`seal` capability), opened on the first seal.
    witness: Option<SealLog>,
}

fn classify(e: Error) -> PluginError {
    match e {
        Error::Io { .. } => PluginError::retryable(chain(&e)),
        _ => PluginError::fatal(chain(&e)),
    }
}

/// Parses the configuration and opens (or creates) the directory.
///
/// # Errors
/// A configuration error naming the key: unknown keys, a missing `path`, a directory that
/// cannot be created, read or locked; a fatal error if its newest line is not an audit event.
pub fn open(config_json: &str) -> Result<FileBackend, PluginError> {
    stderr::install();
    let config = Config::parse(config_json)?;
    let inner = FileStore::open_with(
        &config.path,
        config.max_file_bytes,
        config.retention_days,
        config.allow_insecure_permissions,
    )
    .map_err(|e| match e {
        Error::Io { .. } | Error::DirectoryLocked { .. } => {
            PluginError::config(format!("config `path`: {}", chain(&e)))
        }
        other => PluginError::fatal(chain(&other)),
    })?;
    let head = inner.chain_head();
    let written = head.map_or(0, |h| h.sequence_number);
    // A directory whose only chain record is its anchor has no last line to report.
    let last = head.filter(|h| h.anchor.is_none()).map(|h| h.line.clone());
    let reader = DirReader::new(inner.dir());
    Ok(FileBackend {
        inner,
        written,
        last,
        reader,
        witness: None,
    })
}

impl Backend for FileBackend {
    fn write_batch(&mut self, records: &[Record<'_>]) -> Result<(), PluginError> {
        let from = records.partition_point(|r| r.sequence_number <= self.written);
        let Some(last) = records.last().filter(|_| from < records.len()) else {
            return Ok(());
        };
        self.inner
            .append(records[from..].iter().map(Line))
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
            .flush()
            .map_err(|e| PluginError::fatal(chain(&e)))
    }

    fn last_line(&mut self) -> Result<Option<String>, PluginError> {
        Ok(self.last.clone())
    }

    fn close(&mut self) -> Result<(), PluginError> {
        self.flush()
    }
}

/// A record as the store takes it: its line, sequence number and UTC date, no copy.
struct Line<'r, 'a>(&'r Record<'a>);

impl Storable for Line<'_, '_> {
    fn line(&self) -> &str {
        self.0.line()
    }

    fn sequence_number(&self) -> u64 {
        self.0.sequence_number
    }

    fn date(&self) -> audit_format::Result<NaiveDate> {
        DateTime::from_timestamp_micros(self.0.timestamp_micros)
            .map(|t| t.date_naive())
            .ok_or_else(|| {
                Error::backend(format!(
                    "record {}: timestamp_micros {} is out of range",
                    self.0.sequence_number, self.0.timestamp_micros
                ))
            })
    }
}

/// The `read` capability: the directory's lines from `from_sequence` on, in sequence order
/// (each batch is one `write`, so what was written is there).
impl ReadBack for FileBackend {
    fn read_from(&mut self, from_sequence: u64, limit: u32) -> Result<Vec<String>, PluginError> {
        self.reader
            .read_from(from_sequence, limit as usize)
            .map_err(classify)
    }
}

export_read!(FileBackend);

/// The `validate` capability: the keys and values `open` would accept ([`Config::parse`]),
/// checked without creating, reading or locking the directory.
impl Validate for FileBackend {
    fn validate(config_json: &str) -> Result<(), PluginError> {
        Config::parse(config_json).map(drop)
    }
}

export_validate!(FileBackend);

/// The `seal` capability: each seal appended, exactly as given, to
/// `<path>/.audit-witness/seals_YYYY-MM-DD.jsonl` (today, UTC) and fdatasynced.
impl Witness for FileBackend {
    fn seal(&mut self, seal_line: &str) -> Result<(), PluginError> {
        if self.witness.is_none() {
            self.witness =
                Some(SealLog::open(self.inner.dir().join(WITNESS_DIR)).map_err(classify)?);
        }
        let log = self.witness.as_ref().ok_or_else(|| {
            PluginError::fatal("witness log not open; this is a bug in audit-backend-file")
        })?;
        log.append(Utc::now().date_naive(), seal_line)
            .map_err(classify)
    }
}

export_seal!(FileBackend);

export_backend! {
    name: "file",
    description: "Stores audit events in daily JSONL files (the host's built-in file backend, as a plugin)",
    config_help: config::HELP,
    open: open,
}

#[cfg(test)]
mod tests;
