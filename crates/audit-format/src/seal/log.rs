//! The seals of a directory: `.audit-seals/seals_YYYY-MM-DD.jsonl` (the UTC day the seal
//! was written), one signed line per seal, appended and fdatasynced one at a time.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::error::{Error, Result};
use crate::fs::{create_dir_private, open_private, open_read, sync_dir, truncate_to};

/// The seals' directory inside an audit directory.
pub const SEALS_DIR: &str = ".audit-seals";

/// One line read from a seals directory.
#[derive(Debug, Clone)]
pub struct SealLine {
    /// The file it is in.
    pub file: PathBuf,
    /// 1-based line number.
    pub line: u64,
    /// Its text, without the newline.
    pub text: String,
    /// Whether a newline ends it (a torn last line does not).
    pub complete: bool,
}

/// The seal files of `seals_dir`, oldest first (an empty list when it does not exist).
///
/// # Errors
/// The `io::Error` of listing it.
pub fn seal_files(seals_dir: &Path) -> io::Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(seals_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for e in entries {
        let e = e?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("seals_") && name.ends_with(".jsonl") {
            files.push(e.path());
        }
    }
    files.sort();
    Ok(files)
}

/// Every line of every seal file of `seals_dir`, in order.
///
/// # Errors
/// [`Error::Io`] naming the file that cannot be read.
pub fn read_seal_lines(seals_dir: &Path) -> Result<Vec<SealLine>> {
    let mut out = Vec::new();
    for file in seal_files(seals_dir).map_err(Error::io("cannot list", seals_dir))? {
        let mut bytes = Vec::new();
        io::Read::read_to_end(
            &mut open_read(&file).map_err(Error::io("cannot open", &file))?,
            &mut bytes,
        )
        .map_err(Error::io("cannot read", &file))?;
        let text = String::from_utf8_lossy(&bytes);
        let mut rest: &str = &text;
        let mut n = 0;
        while !rest.is_empty() {
            n += 1;
            let (line, complete, next) = match rest.find('\n') {
                Some(i) => (&rest[..i], true, &rest[i + 1..]),
                None => (rest, false, ""),
            };
            out.push(SealLine {
                file: file.clone(),
                line: n,
                text: line.to_owned(),
                complete,
            });
            rest = next;
        }
    }
    Ok(out)
}

/// Appends seal lines to a seals directory.
#[derive(Debug)]
pub struct SealLog {
    dir: PathBuf,
}

impl SealLog {
    /// The seals directory `seals_dir` (created 0700 when missing). A torn last line (a crash
    /// while a seal was written) is cut off, with a warning on stderr.
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be created or repaired.
    pub fn open(seals_dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = seals_dir.into();
        if !dir.exists() {
            create_dir_private(&dir).map_err(Error::io("cannot create", &dir))?;
            if let Some(parent) = dir.parent() {
                sync_dir(parent).map_err(Error::io("cannot fsync directory", parent))?;
            }
        }
        if let Some(last) = seal_files(&dir)
            .map_err(Error::io("cannot list", &dir))?
            .last()
        {
            let bytes = fs::read(last).map_err(Error::io("cannot read", last))?;
            if !bytes.is_empty() && bytes.last() != Some(&b'\n') {
                let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                tracing::warn!(
                    path = %last.display(),
                    bytes = bytes.len() - keep,
                    "warning: cutting a torn seal line ({} bytes) off the end of {}",
                    bytes.len() - keep,
                    last.display()
                );
                truncate_to(last, keep as u64).map_err(Error::io("cannot repair", last))?;
            }
        }
        Ok(Self { dir })
    }

    /// The seals directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last complete line, if any.
    ///
    /// # Errors
    /// As [`read_seal_lines`].
    pub fn last_line(&self) -> Result<Option<SealLine>> {
        Ok(read_seal_lines(&self.dir)?
            .into_iter()
            .rev()
            .find(|l| l.complete))
    }

    /// Appends `line` (one seal, no newline) to the file of `day` and fdatasyncs it; a new
    /// file is made durable in the directory too.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn append(&self, day: NaiveDate, line: &str) -> Result<()> {
        let path = self.dir.join(format!("seals_{day}.jsonl"));
        let created = !path.exists();
        let mut f = open_private(&path, true).map_err(Error::io("cannot open seal file", &path))?;
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        f.write_all(&buf)
            .and_then(|()| f.sync_data())
            .map_err(Error::io("cannot write seal file", &path))?;
        if created {
            sync_dir(&self.dir).map_err(Error::io("cannot fsync directory", &self.dir))?;
        }
        Ok(())
    }
}
