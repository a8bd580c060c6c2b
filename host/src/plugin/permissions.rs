//! Who may have written a plugin library: refused when someone other than root or this user
//! could have replaced it.

use std::path::Path;

use super::plugin_error;
use audit_format::error::Result;

#[cfg(unix)]
fn current_euid() -> u32 {
    #[expect(unsafe_code, reason = "geteuid has no safe std equivalent")]
    // SAFETY: geteuid takes no arguments, cannot fail and touches no memory of ours.
    unsafe {
        libc::geteuid()
    }
}

/// Refuses a library file, or its directory, that is writable by group or others or owned
/// by a user other than root or the current user: whoever can replace it can run code in
/// this process.
#[cfg(unix)]
pub(super) fn check_permissions(path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let euid = current_euid();
    let dir = path.parent().unwrap_or(Path::new("/"));
    // Through a symlink, the directory of the file actually loaded matters too.
    let real = std::fs::canonicalize(path)
        .map_err(|e| plugin_error(path, format!("cannot resolve the path: {e}")))?;
    let real_dir = real.parent().unwrap_or(Path::new("/"));
    let how = "set allow_insecure_permissions = true on this backend (--allow-insecure-permissions for `audit plugin inspect`)";
    for (what, p) in [
        ("library", path),
        ("directory", dir),
        ("directory", real_dir),
    ] {
        // `metadata` follows symlinks: for the library this is the real file.
        let meta = std::fs::metadata(p)
            .map_err(|e| plugin_error(path, format!("cannot stat {}: {e}", p.display())))?;
        let mode = meta.mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(plugin_error(
                path,
                format!(
                    "the {what} {} is writable by group or others (mode {mode:o}): anyone who can replace the file can run code in this process. Run `chmod go-w {}`, or {how}",
                    p.display(),
                    p.display()
                ),
            ));
        }
        if meta.uid() != 0 && meta.uid() != euid {
            return Err(plugin_error(
                path,
                format!(
                    "the {what} {} is owned by uid {}, neither root nor this user (uid {euid}); `chown` it, or {how}",
                    p.display(),
                    meta.uid()
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(not(unix))]
pub(super) fn check_permissions(_path: &Path) -> Result<()> {
    Ok(())
}
