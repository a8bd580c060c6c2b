//! Key files (the HMAC key, the seal signing key): a private regular file of at most
//! [`MAX_KEY_FILE_BYTES`], opened without following a symbolic link or waiting on a FIFO,
//! its bytes used as stored.

use std::io::Read;
use std::path::Path;

use audit_format::record::Integrity;
use audit_format::seal::SigningKey;

/// The most bytes a key file may hold (4 KiB; a key needs at least 32).
pub const MAX_KEY_FILE_BYTES: u64 = 4096;

/// Reads an HMAC key file. Refuses a symbolic link, anything but a regular file (a FIFO
/// fails at once instead of blocking), a file readable, writable or executable by group or
/// others (any of the `0o077` bits), one owned by a user other than root or this one, one
/// longer than [`MAX_KEY_FILE_BYTES`] and one shorter than 32 bytes. The checks are made on
/// the opened file, so the file checked is the file read. The bytes are used exactly as
/// stored (a trailing newline is part of the key).
///
/// # Errors
/// A message naming the file and what to do.
pub fn read_key_file(path: &Path) -> std::result::Result<Integrity, String> {
    let key = read_private_file(path, "hmac_key_file (or --key-file)")?;
    if key.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(format!(
            "key file {} holds {} bytes, more than {MAX_KEY_FILE_BYTES}: is it the right file? A key needs 32 to {MAX_KEY_FILE_BYTES} bytes",
            path.display(),
            key.len()
        ));
    }
    Integrity::hmac(&key).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads a seal signing key (`audit keygen`'s `audit-signing.key`, PKCS#8 v2 DER) under
/// the same rules as [`read_key_file`].
///
/// # Errors
/// A message naming the file and what to do.
pub fn read_signing_key_file(path: &Path) -> std::result::Result<SigningKey, String> {
    let der = read_private_file(path, "signing_key_file")?;
    SigningKey::from_pkcs8(&der).map_err(|e| format!("signing key file {}: {e}", path.display()))
}

/// The bytes of a private key file; `setting` names where it is configured, for messages.
fn read_private_file(path: &Path, setting: &str) -> std::result::Result<Vec<u8>, String> {
    let shown = path.display();
    let cannot = |e: std::io::Error| format!("cannot read key file {shown}: {e}");
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        libc::O_NOFOLLOW | libc::O_NONBLOCK,
    );
    let file = options.open(path).map_err(|e| {
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            format!(
                "key file {shown} is a symbolic link, which is not followed: set {setting} to the file itself"
            )
        } else {
            cannot(e)
        }
    })?;
    let meta = file.metadata().map_err(cannot)?;
    if !meta.is_file() {
        return Err(format!(
            "key file {shown} is not a regular file (a FIFO, device or directory); put the key in a regular file, mode 600"
        ));
    }
    #[cfg(unix)]
    check_owner_and_mode(path, &meta)?;
    if meta.len() > MAX_KEY_FILE_BYTES {
        return Err(format!(
            "key file {shown} holds {} bytes, more than {MAX_KEY_FILE_BYTES}: is it the right file? A key needs 32 to {MAX_KEY_FILE_BYTES} bytes",
            meta.len()
        ));
    }
    let mut key = Vec::new();
    file.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut key)
        .map_err(cannot)?;
    if key.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(format!(
            "key file {shown} grew to more than {MAX_KEY_FILE_BYTES} bytes while it was read"
        ));
    }
    Ok(key)
}

/// Refuses a key file others may read or change, or owned by neither root nor this user.
#[cfg(unix)]
fn check_owner_and_mode(path: &Path, meta: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let shown = path.display();
    let mode = meta.mode() & 0o7777;
    let how = if mode & 0o044 != 0 {
        "readable"
    } else if mode & 0o022 != 0 {
        "writable"
    } else {
        "accessible"
    };
    if mode & 0o077 != 0 {
        return Err(format!(
            "key file {shown} is {how} by group or others (mode {:o}); run `chmod 600 {shown}`",
            mode & 0o777
        ));
    }
    let euid = audit_format::fs::current_euid();
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(format!(
            "key file {shown} is owned by uid {}, neither root nor this user (uid {euid}); `chown` it to this user",
            meta.uid()
        ));
    }
    Ok(())
}
