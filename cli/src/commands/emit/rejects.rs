//! `audit emit --rejects FILE`: input lines that are not events, each written with its error
//! as one JSON object, so the run goes on past them.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::super::EXIT_IOERR;

/// The open rejects file and how many lines went to it.
pub(super) struct Rejects {
    file: File,
    path: PathBuf,
    pub(super) count: u64,
}

impl Rejects {
    /// Opens `path` for appending (created with mode 0600: rejected input may hold what the
    /// events would have).
    ///
    /// # Errors
    /// The message naming the file.
    pub(super) fn open(path: &Path) -> Result<Self, String> {
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let file = options
            .open(path)
            .map_err(|e| format!("cannot open --rejects file {}: {e}", path.display()))?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            count: 0,
        })
    }

    /// Appends `{"line": N, "error": "...", "input": "...", "truncated": bool}`: `input` is
    /// the line as read (invalid UTF-8 replaced by U+FFFD; only its first
    /// `--max-event-bytes` + 1 bytes when `truncated`).
    ///
    /// # Errors
    /// Exit code 74 and the message naming the file.
    pub(super) fn write(
        &mut self,
        line: u64,
        error: &str,
        input: &[u8],
        truncated: bool,
    ) -> Result<(), (u8, String)> {
        let entry = serde_json::json!({
            "line": line,
            "error": error,
            "input": String::from_utf8_lossy(input),
            "truncated": truncated,
        });
        let mut text = entry.to_string();
        text.push('\n');
        self.file
            .write_all(text.as_bytes())
            .map_err(|e| self.failed("write", &e))?;
        self.count += 1;
        Ok(())
    }

    /// Makes the rejects durable (`fsync`) and says how many there were.
    ///
    /// # Errors
    /// Exit code 74 and the message naming the file.
    pub(super) fn finish(self) -> Result<(u64, PathBuf), (u8, String)> {
        self.file.sync_all().map_err(|e| self.failed("fsync", &e))?;
        Ok((self.count, self.path))
    }

    fn failed(&self, what: &str, e: &std::io::Error) -> (u8, String) {
        (
            EXIT_IOERR,
            format!(
                "cannot {what} --rejects file {}: {e}; the input line was not recorded and not kept",
                self.path.display()
            ),
        )
    }
}
