//! Which lines of a directory the trail wrote: `.audit-origin.json`, written when a trail
//! first opens the directory. Lines already there (written by fapilog 0.3.5, or by a version
//! of this trail that kept no record) are *imported*: `audit verify` lets the Python trail's
//! restarts at sequence 1 stand among them only, and retention deletes their files only when
//! told to (`retention_applies_to_imported`).

use std::io::{self, BufRead, Read, Write};
use std::path::Path;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fs::{open_private, open_read, sync_dir};
use crate::names::LogFile;
use crate::record::ChainFields;

/// The origin record's file in an audit directory.
pub const ORIGIN_FILE: &str = ".audit-origin.json";

/// What a directory held when a trail first opened it. Stored in [`ORIGIN_FILE`] as JSON
/// with sorted keys: `{"imported":null}` when the trail found no line there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The lines found at the first open (`None`: the trail wrote every line).
    pub imported: Option<Imported>,
}

/// The lines a trail found in a directory it opened for the first time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Imported {
    /// Every audit file name present then, oldest first.
    pub files: Vec<String>,
    /// The day (UTC) the trail took the directory over.
    #[serde(with = "date")]
    pub imported_on: NaiveDate,
    /// That line's `checksum` (the trail's first line links to it).
    pub last_checksum: Option<String>,
    /// The newest of `files` holding a line: the trail's own lines follow its last one.
    pub last_file: String,
    /// The 1-based number of that last line in `last_file`.
    pub last_line: u64,
    /// That line's `sequence_number` (the trail continued with the next one).
    pub last_sequence: u64,
}

impl Imported {
    /// Is line `line` (1-based) of the file named `file` one of the imported lines?
    pub fn holds(&self, file: &str, line: u64) -> bool {
        self.files.iter().any(|f| f == file) && (file != self.last_file || line <= self.last_line)
    }
}

impl Origin {
    /// The origin record of `dir`, if it has one.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read; [`Error::Integrity`] when it is not an
    /// origin record.
    pub fn read(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(ORIGIN_FILE);
        let mut bytes = Vec::new();
        match open_read(&path).and_then(|mut f| f.read_to_end(&mut bytes)) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("cannot read", &path)(e)),
        }
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::Integrity(format!(
                "{}: unreadable origin record: {e}; it records which lines this trail did not write (docs/python-migration.md)",
                path.display()
            ))
        })
    }

    /// The origin record of `dir`; when it has none, records what `files` (the directory's
    /// audit files, oldest first) hold now: nothing, or lines the trail did not write.
    ///
    /// # Errors
    /// As [`read`](Self::read), and [`Error::Io`] when the record cannot be written or a
    /// file cannot be read.
    pub fn record_on_open(dir: &Path, files: &[LogFile]) -> Result<Self> {
        if let Some(origin) = Self::read(dir)? {
            return Ok(origin);
        }
        let mut imported = None;
        for f in files.iter().rev() {
            if let Some(last) = last_line_of(&f.path)? {
                imported = Some(Imported {
                    files: files.iter().map(|f| file_name(&f.path)).collect(),
                    imported_on: chrono::Utc::now().date_naive(),
                    last_checksum: last.checksum,
                    last_file: file_name(&f.path),
                    last_line: last.number,
                    last_sequence: last.sequence,
                });
                break;
            }
        }
        let origin = Self { imported };
        origin
            .write(dir)
            .map_err(Error::io("cannot write origin record in", dir))?;
        if let Some(i) = &origin.imported {
            tracing::info!(
                dir = %dir.display(),
                files = i.files.len(),
                sequence = i.last_sequence,
                "{}: continuing a chain this trail did not write ({} files, up to {}:{}, sequence {}; recorded in {ORIGIN_FILE}); retention leaves those files alone unless `retention_applies_to_imported = true`",
                dir.display(),
                i.files.len(),
                i.last_file,
                i.last_line,
                i.last_sequence
            );
        }
        Ok(origin)
    }

    /// Writes the record into `dir`, atomically (a temporary file renamed over it) and
    /// durably.
    ///
    /// # Errors
    /// The `io::Error` of writing, renaming or syncing.
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        let body = serde_json::to_vec(self).map_err(io::Error::other)?;
        let tmp = dir.join(".audit-origin.tmp");
        {
            let mut f = open_private(&tmp, false)?;
            f.set_len(0)?;
            f.write_all(&body)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, dir.join(ORIGIN_FILE))?;
        sync_dir(dir)
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Which lines of a directory a trail did not write, for `audit verify`: among them, a
/// restart at sequence 1 is fapilog 0.3.5's new process, not a broken chain.
#[derive(Debug)]
pub(crate) enum ImportedLines {
    /// No trail has opened the directory (no origin record): every line is another
    /// program's.
    All,
    /// The trail wrote every line.
    None,
    /// The lines up to the recorded last one.
    Upto(Imported),
}

impl ImportedLines {
    /// What `dir`'s origin record says.
    pub(crate) fn of(dir: &Path) -> Result<Self> {
        Ok(match Origin::read(dir)? {
            None => Self::All,
            Some(Origin { imported: None }) => Self::None,
            Some(Origin { imported: Some(i) }) => Self::Upto(i),
        })
    }

    /// Is line `line` (1-based) of `file`, whose checksum is `checksum` (`None`: the line
    /// does not verify, which the chain rules report), imported? The last imported line must
    /// have the checksum the record names, or the record does not describe these files.
    pub(crate) fn check(
        &self,
        file: &str,
        line: u64,
        checksum: Option<&str>,
    ) -> std::result::Result<bool, String> {
        let i = match self {
            Self::All => return Ok(true),
            Self::None => return Ok(false),
            Self::Upto(i) => i,
        };
        if file == i.last_file
            && line == i.last_line
            && checksum.is_some()
            && checksum != i.last_checksum.as_deref()
        {
            return Err(format!(
                "{ORIGIN_FILE} records the last line the trail did not write here with checksum {}, this line has {}: lines were altered, removed or inserted before it",
                i.last_checksum.as_deref().unwrap_or("null"),
                checksum.unwrap_or_default(),
            ));
        }
        Ok(i.holds(file, line))
    }
}

/// The last complete line of a file: its 1-based number and chain fields.
struct LastLine {
    number: u64,
    sequence: u64,
    checksum: Option<String>,
}

/// The last complete line of `path`; `None` when the file holds no complete line.
fn last_line_of(path: &Path) -> Result<Option<LastLine>> {
    let err = |e| Error::io("cannot read", path)(e);
    let mut reader = io::BufReader::new(open_read(path).map_err(err)?);
    let (mut count, mut last) = (0u64, Vec::new());
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).map_err(err)? == 0 || buf.last() != Some(&b'\n') {
            break;
        }
        count += 1;
        std::mem::swap(&mut last, &mut buf);
    }
    if count == 0 {
        return Ok(None);
    }
    let fields: ChainFields<'_> = serde_json::from_slice(&last[..last.len() - 1]).map_err(|e| {
        Error::Integrity(format!(
            "{}:{count}: line is not a valid audit event ({e})",
            path.display()
        ))
    })?;
    Ok(Some(LastLine {
        number: count,
        sequence: fields.sequence_number,
        checksum: fields.checksum.map(|c| c.into_owned()),
    }))
}

/// Dates as `YYYY-MM-DD` (chrono is built without its serde feature).
mod date {
    use chrono::NaiveDate;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&d.format("%Y-%m-%d"))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn a_directory_without_lines_is_recorded_as_the_trails_own() -> Result<()> {
        let dir = tempfile::tempdir().map_err(Error::io("cannot create", "tempdir"))?;
        assert_eq!(Origin::read(dir.path())?, None);
        let origin = Origin::record_on_open(dir.path(), &[])?;
        assert_eq!(origin, Origin { imported: None });
        let stored = std::fs::read_to_string(dir.path().join(ORIGIN_FILE))
            .map_err(Error::io("cannot read", dir.path()))?;
        assert_eq!(stored, r#"{"imported":null}"#);
        assert_eq!(Origin::read(dir.path())?, Some(origin));
        Ok(())
    }

    #[test]
    fn imported_lines_end_at_the_recorded_last_line() {
        let i = Imported {
            files: vec![
                "audit_2025-06-01.jsonl".into(),
                "audit_2025-06-02.jsonl".into(),
            ],
            imported_on: NaiveDate::from_ymd_opt(2026, 1, 1).expect("date"),
            last_checksum: None,
            last_file: "audit_2025-06-02.jsonl".into(),
            last_line: 8,
            last_sequence: 3,
        };
        assert!(i.holds("audit_2025-06-01.jsonl", 100));
        assert!(i.holds("audit_2025-06-02.jsonl", 8));
        assert!(!i.holds("audit_2025-06-02.jsonl", 9));
        assert!(!i.holds("audit_2026-01-01.jsonl", 1));
    }
}
