//! HMAC key files: permissions checked, bytes used as stored.

use std::path::Path;

use audit_format::record::Integrity;

/// Reads an HMAC key file: refuses one readable by group or others, or shorter than 32 bytes.
/// The bytes are used exactly as stored (a trailing newline is part of the key).
///
/// # Errors
/// A message naming the file and what to do.
pub fn read_key_file(path: &Path) -> std::result::Result<Integrity, String> {
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("cannot read key file {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if mode & 0o044 != 0 {
            return Err(format!(
                "key file {} is readable by group or others (mode {:o}); run `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let key =
        std::fs::read(path).map_err(|e| format!("cannot read key file {}: {e}", path.display()))?;
    Integrity::hmac(&key).map_err(|e| format!("{}: {e}", path.display()))
}
