//! File-system helpers for audit and spool directories: private modes (0700 directories, 0600
//! files), directories refused when others could write to them, files opened without following
//! symbolic links, durable directory entries, and truncation back to a known length.
//!
//! Every file in an audit or spool directory is opened through [`open_private`] or
//! [`open_read`] (`O_NOFOLLOW` on Unix): a link planted under a file's name (`.audit.lock`,
//! today's audit file, a spool segment) makes the open fail instead of writing through it.
//! `O_NOFOLLOW` covers the last path component only: a symlinked directory (the audit
//! directory itself, or one of its parents) is still followed.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;

use crate::error::{Error, Result};

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

/// The effective user id of this process.
#[cfg(unix)]
pub fn current_euid() -> u32 {
    #[expect(unsafe_code, reason = "geteuid has no safe std equivalent")]
    // SAFETY: geteuid takes no arguments, cannot fail and touches no memory of ours.
    unsafe {
        libc::geteuid()
    }
}

/// Why `dir` must not hold audit files, or `None`: it is writable by group or others, or
/// owned by a user other than root or this one (whoever can write to a directory can plant a
/// symbolic link, or remove and replace files, in it). A message a person can act on.
#[cfg(unix)]
fn insecure_dir_reason(dir: &Path, meta: &fs::Metadata) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    const HOW: &str = "or set allow_insecure_permissions = true ([trail], or the file plugin's config) to accept it (unsafe)";
    let mode = meta.mode() & 0o7777;
    let euid = current_euid();
    if mode & 0o022 != 0 {
        return Some(format!(
            "it is writable by group or others (mode {mode:o}): they could plant a symbolic link or replace audit files in it. Run `chmod go-w {}`, {HOW}",
            dir.display()
        ));
    }
    if meta.uid() != 0 && meta.uid() != euid {
        return Some(format!(
            "it is owned by uid {}, neither root nor this user (uid {euid}): its owner could plant a symbolic link or replace audit files in it. `chown` it to this user, {HOW}",
            meta.uid()
        ));
    }
    None
}

/// Refuses an existing audit or spool directory that is writable by group or others or owned
/// by a user other than root or this one. Directories this crate creates are 0700 and pass.
///
/// # Errors
/// [`Error::Io`] naming the directory, its mode or owner, and the fix (`chmod go-w DIR`, or
/// the `allow_insecure_permissions` key); or the error of `stat`.
pub fn check_dir_private(dir: &Path) -> Result<()> {
    let meta = fs::metadata(dir).map_err(Error::io("cannot stat directory", dir))?;
    #[cfg(unix)]
    if let Some(why) = insecure_dir_reason(dir, &meta) {
        return Err(Error::io("refusing directory", dir)(io::Error::new(
            io::ErrorKind::PermissionDenied,
            why,
        )));
    }
    let _ = meta;
    Ok(())
}

/// Like [`check_dir_private`], as a message (for pre-flight checks): `None` when `dir` is
/// fine or cannot be examined.
pub fn insecure_dir_message(dir: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        let meta = fs::metadata(dir).ok()?;
        insecure_dir_reason(dir, &meta)
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// Opens `path` with `o`, never through a symbolic link (`O_NOFOLLOW`): a link in its place
/// fails with a message saying so.
fn open_nofollow(o: &mut OpenOptions, path: &Path) -> io::Result<File> {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(o, libc::O_NOFOLLOW);
    o.open(path).map_err(|e| {
        if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "it is a symbolic link, and links are never followed in audit and spool directories (one planted there could redirect writes to any file): remove it",
            )
        } else {
            e
        }
    })
}

/// Opens `path` for reading and writing (appending when `append`), creating it with mode 0600
/// on Unix; never through a symbolic link.
///
/// # Errors
/// The `io::Error` of opening it (one saying so when `path` is a symbolic link).
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
    open_nofollow(&mut o, path)
}

/// Opens the existing file at `path` for reading, never through a symbolic link.
///
/// # Errors
/// The `io::Error` of opening it (one saying so when `path` is a symbolic link).
pub fn open_read(path: &Path) -> io::Result<File> {
    open_nofollow(OpenOptions::new().read(true), path)
}

/// Opens the existing file at `path` for reading and writing, never through a symbolic link.
///
/// # Errors
/// The `io::Error` of opening it (one saying so when `path` is a symbolic link).
pub fn open_read_write(path: &Path) -> io::Result<File> {
    open_nofollow(OpenOptions::new().read(true).write(true), path)
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

/// Cuts the file at `path` back to `len` bytes and fdatasyncs it (never through a symbolic
/// link).
///
/// # Errors
/// The `io::Error` of opening, truncating or syncing it.
pub fn truncate_to(path: &Path, len: u64) -> io::Result<()> {
    let f = open_nofollow(OpenOptions::new().write(true), path)?;
    f.set_len(len)?;
    f.sync_data()
}
