//! The directory format's file names: one `audit_YYYY-MM-DD.jsonl` per UTC day of the events,
//! continued as `audit_YYYY-MM-DD.1.jsonl`, `.2`, ... when the day's file is rotated by size.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, Utc};

/// One `audit_YYYY-MM-DD[.N].jsonl` file in a directory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogFile {
    /// The date in its name (the UTC date of its events, or later: files never go back).
    pub date: NaiveDate,
    /// Its rotation index (0 for the first file of the day).
    pub index: u32,
    /// Its path.
    pub path: PathBuf,
}

/// The file name for `date` and rotation `index` (0 is the first file of the day).
pub fn log_file_name(date: NaiveDate, index: u32) -> String {
    if index == 0 {
        format!("audit_{date}.jsonl")
    } else {
        format!("audit_{date}.{index}.jsonl")
    }
}

/// The date and rotation index of an audit file name, or `None` for any other name.
pub fn parse_log_file_name(name: &str) -> Option<(NaiveDate, u32)> {
    let stem = name.strip_prefix("audit_")?.strip_suffix(".jsonl")?;
    let (date, index) = match stem.split_once('.') {
        Some((d, i)) => (d, i.parse().ok().filter(|&i| i > 0)?),
        None => (stem, 0),
    };
    if date.len() != 10 {
        return None;
    }
    Some((NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?, index))
}

/// An `audit_*.jsonl` name in a directory whose entry is not a regular file (a symlink, a
/// FIFO, a directory, ...). The trail never creates one; readers report it rather than skip it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotRegular {
    /// Its path.
    pub path: PathBuf,
    /// What it is: `symlink`, `fifo`, `directory`, `socket`, `block device`, `character
    /// device`.
    pub kind: &'static str,
}

impl NotRegular {
    /// What is wrong with it and what to do, after its path.
    pub fn problem(&self) -> String {
        format!(
            "is a {}, not a regular file: the trail only writes regular files, so something else \
             put it there; find out what, then move it out of the directory",
            self.kind
        )
    }
}

impl std::fmt::Display for NotRegular {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.path.display(), self.problem())
    }
}

/// Every audit log file in `dir`, oldest first (by date, then rotation index), for a reader
/// or writer of the directory; entries with an audit file name that are neither regular
/// files nor symbolic links are left out (`verify` reports them through [`scan_log_dir`]).
///
/// # Errors
/// The `io::Error` of reading the directory; one naming the entry when an audit file's name
/// is a symbolic link (never followed: it could point anywhere and redirect writes).
pub fn list_log_files(dir: &Path) -> io::Result<Vec<LogFile>> {
    let (files, odd) = scan_log_dir(dir)?;
    match odd.iter().find(|o| o.kind == "symlink") {
        None => Ok(files),
        Some(link) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is a symbolic link, and links are never followed in audit directories (one planted there could redirect writes to any file): remove it",
                link.path.display()
            ),
        )),
    }
}

/// Every audit log file in `dir`, oldest first, and the entries with an audit file name that
/// are not regular files (symlinks are not followed).
///
/// # Errors
/// The `io::Error` of reading the directory.
pub fn scan_log_dir(dir: &Path) -> io::Result<(Vec<LogFile>, Vec<NotRegular>)> {
    let mut files = Vec::new();
    let mut odd = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some((date, index)) = name.to_str().and_then(parse_log_file_name) else {
            continue;
        };
        let kind = entry.file_type()?;
        if kind.is_file() {
            files.push(LogFile {
                date,
                index,
                path: entry.path(),
            });
        } else {
            odd.push(NotRegular {
                path: entry.path(),
                kind: kind_name(kind),
            });
        }
    }
    files.sort();
    odd.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((files, odd))
}

fn kind_name(kind: fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "fifo";
        }
        if kind.is_socket() {
            return "socket";
        }
        if kind.is_block_device() {
            return "block device";
        }
        if kind.is_char_device() {
            return "character device";
        }
    }
    if kind.is_symlink() {
        "symlink"
    } else if kind.is_dir() {
        "directory"
    } else {
        "special file"
    }
}

/// Today's file name, for messages and tests: `audit_YYYY-MM-DD.jsonl` in UTC.
pub fn todays_file_name() -> String {
    log_file_name(Utc::now().date_naive(), 0)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn file_names_round_trip() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 26).expect("date");
        assert_eq!(log_file_name(d, 0), "audit_2026-11-26.jsonl");
        assert_eq!(log_file_name(d, 3), "audit_2026-11-26.3.jsonl");
        assert_eq!(
            parse_log_file_name("audit_2026-11-26.3.jsonl"),
            Some((d, 3))
        );
        assert_eq!(parse_log_file_name("audit_2026-11-26.jsonl"), Some((d, 0)));
        assert_eq!(parse_log_file_name("audit_2026-11-26.0.jsonl"), None);
        assert_eq!(parse_log_file_name("audit_2026-11-26.jsonl.torn"), None);
        assert_eq!(parse_log_file_name("audit_x.jsonl"), None);
    }
}
