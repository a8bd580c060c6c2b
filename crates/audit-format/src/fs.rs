//! File-system helpers for audit directories: private modes (0700 directories, 0600 files),
//! durable directory entries, and truncation back to a known length.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;

/// Creates `dir` and its missing parents, mode 0700 on Unix.
///
/// # Errors
/// The `io::Error` of creating it.
#[cfg(unix)]
pub fn create_dir_private(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Creates `dir` and its missing parents, mode 0700 on Unix.
///
/// # Errors
/// The `io::Error` of creating it.
#[cfg(not(unix))]
pub fn create_dir_private(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

/// Opens `path` for reading and writing (appending when `append`), creating it with mode 0600
/// on Unix.
///
/// # Errors
/// The `io::Error` of opening it.
pub fn open_private(path: &Path, append: bool) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).create(true);
    if append {
        o.append(true);
    } else {
        o.write(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
}

/// Makes a new directory entry durable.
///
/// # Errors
/// The `io::Error` of opening or fsyncing the directory.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Cuts the file at `path` back to `len` bytes and fdatasyncs it.
///
/// # Errors
/// The `io::Error` of opening, truncating or syncing it.
pub fn truncate_to(path: &Path, len: u64) -> io::Result<()> {
    let f = OpenOptions::new().write(true).open(path)?;
    f.set_len(len)?;
    f.sync_data()
}
