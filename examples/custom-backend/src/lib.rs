//! The smallest useful audit backend plugin: appends each event's canonical line to a file.
//!
//! This is the code the extension guide (`docs/extension-guide.md`) walks through.
//!
//! ```toml
//! [[backends]]
//! type = "plugin"
//! library = "target/release/libaudit_backend_example.so"
//! config = { path = "/var/log/audit/copy.jsonl" }
//! ```

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};

use audit_plugin_api::{Backend, PluginError, Record, export_backend};
use serde::Deserialize;

/// The `config` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The file to append to (created if missing).
    pub path: String,
}

/// Appends lines to one file; `flush` fsyncs it.
#[derive(Debug)]
pub struct LineFile {
    file: File,
    /// The last sequence number written, to skip re-delivered records.
    last: u64,
}

/// Parses the configuration and opens the file.
///
/// # Errors
/// A config error naming the key (also when the file cannot be opened).
pub fn open(config_json: &str) -> Result<LineFile, PluginError> {
    let config: Config = serde_json::from_str(config_json)
        .map_err(|e| PluginError::config(format!("config: {e}")))?;
    let file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(&config.path)
        .map_err(|e| {
            PluginError::config(format!("config `path`: cannot open {}: {e}", config.path))
        })?;
    Ok(LineFile { file, last: 0 })
}

impl Backend for LineFile {
    fn write_batch(&mut self, records: &[Record<'_>]) -> Result<(), PluginError> {
        let mut buf = Vec::new();
        for r in records.iter().filter(|r| r.sequence_number > self.last) {
            buf.extend_from_slice(r.line().as_bytes());
            buf.push(b'\n');
        }
        let len = self
            .file
            .metadata()
            .map_err(|e| PluginError::retryable(format!("stat failed: {e}")))?
            .len();
        if let Err(e) = self.file.write_all(&buf) {
            // All or nothing: cut a partial write off, so the retry does not duplicate lines.
            let _ = self.file.set_len(len);
            return Err(PluginError::retryable(format!("write failed: {e}")));
        }
        if let Some(r) = records.last() {
            self.last = self.last.max(r.sequence_number);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), PluginError> {
        self.file
            .sync_data()
            .map_err(|e| PluginError::fatal(format!("fsync failed: {e}")))
    }

    fn last_line(&mut self) -> Result<Option<String>, PluginError> {
        // The last complete line of the file is the newest event.
        let len = self
            .file
            .metadata()
            .map_err(|e| PluginError::fatal(e.to_string()))?
            .len();
        let start = len.saturating_sub(1 << 20);
        let mut tail = Vec::new();
        self.file
            .seek(SeekFrom::Start(start))
            .and_then(|_| self.file.read_to_end(&mut tail))
            .map_err(|e| PluginError::fatal(format!("cannot read the file: {e}")))?;
        // A crash can leave a torn last line (no newline): cut it off, the host re-delivers it.
        let complete = tail.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if complete < tail.len() {
            self.file
                .set_len(start + complete as u64)
                .map_err(|e| PluginError::fatal(format!("cannot cut a torn line: {e}")))?;
        }
        let Some(line) = String::from_utf8_lossy(&tail[..complete])
            .lines()
            .last()
            .map(str::to_owned)
        else {
            return Ok(None);
        };
        // Remember where the file ends, so re-delivered records are skipped.
        let event: serde_json::Value = serde_json::from_str(&line)
            .map_err(|e| PluginError::fatal(format!("the last line is not JSON: {e}")))?;
        self.last = event["sequence_number"].as_u64().unwrap_or(0);
        Ok(Some(line))
    }

    fn close(&mut self) -> Result<(), PluginError> {
        self.flush()
    }
}

export_backend! {
    name: "example-line-file",
    description: "Appends each audit event's canonical JSON line to a file",
    config_help: "path (string, required): the file to append to; created if missing.",
    open: open,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_unknown_keys_by_name() {
        let err = open(r#"{"path":"/tmp/x","colour":1}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("unknown field `colour`"), "{err}");
        let err = open("{}").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("missing field `path`"), "{err}");
    }
}
