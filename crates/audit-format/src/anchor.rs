//! The chain anchor: where a directory's chain starts when it does not start at sequence 1
//! (older files removed by retention, or a backend added to a running trail).

use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::fs::{open_private, open_read, sync_dir};
use crate::record::ChainFields;
use crate::recover::TAIL_CHUNK;

/// The anchor's file in an audit directory.
pub const ANCHOR_FILE: &str = ".audit-anchor.json";

/// The link the first line of a directory's chain carries: its sequence number and the
/// `previous_hash` it must have. Stored as `{"previous_hash":…,"sequence_number":…}` in
/// [`ANCHOR_FILE`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Anchor {
    /// The first sequence number in the directory.
    pub sequence_number: u64,
    /// The checksum of the event before it (`None`: it has none).
    pub previous_hash: Option<String>,
}

impl Anchor {
    /// The anchor of `dir`, if it has one.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read; [`Error::Integrity`] when it is not an
    /// anchor.
    pub fn read(dir: &Path) -> Result<Option<Self>> {
        let anchor_path = dir.join(ANCHOR_FILE);
        let mut bytes = Vec::new();
        match open_read(&anchor_path).and_then(|mut f| f.read_to_end(&mut bytes)) {
            Ok(_) => Ok(Some(serde_json::from_slice(&bytes).map_err(|e| {
                Error::Integrity(format!(
                    "{}: unreadable retention anchor: {e}",
                    anchor_path.display()
                ))
            })?)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("cannot read", &anchor_path)(e)),
        }
    }

    /// Writes the anchor into `dir`, atomically (a temporary file renamed over it) and
    /// durably.
    ///
    /// # Errors
    /// The `io::Error` of writing, renaming or syncing.
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        let anchor = serde_json::json!({
            "sequence_number": self.sequence_number,
            "previous_hash": self.previous_hash,
        })
        .to_string();
        let tmp = dir.join(".audit-anchor.tmp");
        {
            let mut f = open_private(&tmp, false)?;
            f.set_len(0)?;
            f.write_all(anchor.as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, dir.join(ANCHOR_FILE))?;
        sync_dir(dir)
    }

    /// The link the first line of the file at `path` carries (`None` if it cannot be read).
    pub(crate) fn at_first_line(path: &Path) -> Option<Self> {
        // The whole first line, however long.
        let mut buf = Vec::new();
        io::BufReader::new(open_read(path).ok()?)
            .read_until(b'\n', &mut buf)
            .ok()?;
        let line = buf.strip_suffix(b"\n")?;
        let fields: ChainFields<'_> = serde_json::from_slice(line).ok()?;
        Some(Self {
            sequence_number: fields.sequence_number,
            previous_hash: fields.previous_hash.map(|h| h.into_owned()),
        })
    }

    /// The link the line after the last line of the file at `path` will carry (`None` if it
    /// cannot be read).
    pub(crate) fn after_last_line(path: &Path) -> Option<Self> {
        let mut f = open_read(path).ok()?;
        let len = f.metadata().ok()?.len();
        // Read further back (4x) until the chunk holds the start of the last line.
        let mut chunk = TAIL_CHUNK.min(len);
        let (buf, line_start) = loop {
            let start = len - chunk;
            let mut buf = vec![0u8; chunk as usize];
            f.seek(SeekFrom::Start(start)).ok()?;
            f.read_exact(&mut buf).ok()?;
            let body = buf.strip_suffix(b"\n")?;
            match body.iter().rposition(|&b| b == b'\n') {
                Some(i) => break (buf, i + 1),
                None if start == 0 => break (buf, 0),
                None => chunk = (chunk * 4).min(len),
            }
        };
        let line = &buf[line_start..buf.len() - 1];
        let fields: ChainFields<'_> = serde_json::from_slice(line).ok()?;
        let checksum = fields.checksum.as_deref()?;
        Some(Self {
            sequence_number: fields.sequence_number + 1,
            previous_hash: Some(checksum.to_owned()),
        })
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn the_anchor_file_has_sorted_keys_and_reads_back() -> Result<()> {
        let dir = tempfile::tempdir().map_err(Error::io("cannot create", "tempdir"))?;
        assert_eq!(Anchor::read(dir.path())?, None);
        for (anchor, bytes) in [
            (
                Anchor {
                    sequence_number: 5,
                    previous_hash: None,
                },
                r#"{"previous_hash":null,"sequence_number":5}"#.to_owned(),
            ),
            (
                Anchor {
                    sequence_number: 7,
                    previous_hash: Some("a".repeat(64)),
                },
                format!(
                    r#"{{"previous_hash":"{}","sequence_number":7}}"#,
                    "a".repeat(64)
                ),
            ),
        ] {
            anchor
                .write(dir.path())
                .map_err(Error::io("cannot write", dir.path()))?;
            let stored = std::fs::read_to_string(dir.path().join(ANCHOR_FILE))
                .map_err(Error::io("cannot read", dir.path()))?;
            assert_eq!(stored, bytes);
            assert_eq!(Anchor::read(dir.path())?, Some(anchor));
        }
        Ok(())
    }
}
