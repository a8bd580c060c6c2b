//! Test fixture, not shipped: a plugin built against the frozen copy of `audit-plugin-api`
//! 1.0.0 (`plugins/testing/plugin-api-1.0.0`), exactly as a vendor's plugin built against the
//! released 1.0.0 is. `host/tests/plugin_compat_1_0.rs` loads it into the current host: if a change to
//! `plugin-api` makes the host refuse it, every 1.0.0 plugin in the field is refused too.
//!
//! It stores each line in `<dir>/audit_<UTC date>.jsonl`, the file backend's layout, so the
//! store verifies with `audit verify <dir>`. Only the 1.0.0 interface is used: `write_batch`,
//! `flush`, `last_line`, `close`.
//!
//! ```toml
//! [[backends]]
//! type = "plugin"
//! library = "target/debug/deps/libaudit_backend_compat_1_0.so"
//! config = { dir = "/tmp/compat-store" }
//! ```

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

use audit_plugin_api::{Backend, PluginError, Record, export_backend};

/// A directory of `audit_<date>.jsonl` files.
#[derive(Debug)]
pub struct JsonlDir {
    dir: PathBuf,
    /// The highest sequence number stored: re-delivered records at or below it are skipped.
    last: u64,
}

/// Opens the store; the config is `{"dir": "<directory>"}` (created if missing).
///
/// # Errors
/// A configuration error naming `dir`.
pub fn open(config_json: &str) -> Result<JsonlDir, PluginError> {
    let config: serde_json::Value = serde_json::from_str(config_json)
        .map_err(|e| PluginError::config(format!("config: {e}")))?;
    let Some(dir) = config.get("dir").and_then(serde_json::Value::as_str) else {
        return Err(PluginError::config("config: `dir` (string) is required"));
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| PluginError::config(format!("config `dir`: cannot create {dir}: {e}")))?;
    Ok(JsonlDir {
        dir: PathBuf::from(dir),
        last: 0,
    })
}

impl JsonlDir {
    fn file_for(&self, record: &Record<'_>) -> PathBuf {
        let date = record.timestamp.as_str().get(..10).unwrap_or("undated");
        self.dir.join(format!("audit_{date}.jsonl"))
    }

    fn append(&self, path: &PathBuf, buf: &[u8]) -> Result<(), PluginError> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| PluginError::retryable(format!("open {}: {e}", path.display())))?;
        file.write_all(buf)
            .map_err(|e| PluginError::retryable(format!("write {}: {e}", path.display())))
    }
}

impl Backend for JsonlDir {
    fn write_batch(&mut self, records: &[Record<'_>]) -> Result<(), PluginError> {
        // One append per file (a batch can cross midnight).
        let mut current: Option<(PathBuf, Vec<u8>)> = None;
        let stored = self.last;
        for r in records.iter().filter(|r| r.sequence_number > stored) {
            let path = self.file_for(r);
            if let Some((p, buf)) = current.take_if(|(p, _)| *p != path) {
                self.append(&p, &buf)?;
            }
            let (_, buf) = current.get_or_insert_with(|| (path, Vec::new()));
            buf.extend_from_slice(r.line().as_bytes());
            buf.push(b'\n');
        }
        if let Some((p, buf)) = current {
            self.append(&p, &buf)?;
        }
        if let Some(r) = records.last() {
            self.last = self.last.max(r.sequence_number);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), PluginError> {
        Ok(())
    }

    fn last_line(&mut self) -> Result<Option<String>, PluginError> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .map_err(|e| PluginError::fatal(format!("read {}: {e}", self.dir.display())))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("audit_") && n.ends_with(".jsonl"))
            .collect();
        names.sort();
        let Some(newest) = names.last() else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(self.dir.join(newest))
            .map_err(|e| PluginError::fatal(format!("read {newest}: {e}")))?;
        let Some(line) = text.lines().last() else {
            return Ok(None);
        };
        let event: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| PluginError::fatal(format!("{newest}: the last line is not JSON: {e}")))?;
        self.last = event["sequence_number"].as_u64().unwrap_or(0);
        Ok(Some(line.to_owned()))
    }

    fn close(&mut self) -> Result<(), PluginError> {
        Ok(())
    }
}

export_backend! {
    name: "compat-1-0",
    description: "Test fixture: JSONL files, built against the frozen audit-plugin-api 1.0.0",
    config_help: "dir (string, required): the directory of audit_<date>.jsonl files.",
    open: open,
}
