//! Secrets for plugin configurations: passwords and tokens come from a file or the
//! environment, never only from the TOML file, which is often world-readable and checked into
//! configuration repositories.
//!
//! Plain Rust, not ABI: a plugin calls these in `open` (and `validate` may check that the
//! keys are there, but must not read the files: it runs offline, maybe on another machine).
//!
//! ```no_run
//! use audit_plugin_api::secrets::{read_secret_file, secret_from_env};
//! # fn main() -> Result<(), audit_plugin_api::PluginError> {
//! // `password_file` from the plugin's config, else the standard variable.
//! let password = match Some("/etc/audit/pg-password") {
//!     Some(path) => read_secret_file("password_file", path.as_ref())?,
//!     None => secret_from_env("PGPASSWORD")?.unwrap_or_default(),
//! };
//! # let _ = password; Ok(()) }
//! ```

use std::io::Read;
use std::path::Path;

use crate::PluginError;

/// The most bytes [`read_secret_file`] reads: a password, token or key is far smaller; a
/// larger file is a mistake (a certificate bundle, a log file).
pub const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// Reads the secret in the file at `path`, named by the config key `key` in messages: the
/// file's contents without one trailing newline (`\n` or `\r\n`).
///
/// Refused, with an error of kind `Config` naming the key, the file and the fix, when the
/// file (on Unix):
/// - is a symlink (it is opened with `O_NOFOLLOW`), or not a regular file (a FIFO does not
///   block: it is opened with `O_NONBLOCK` and refused);
/// - can be read or written by group or others (any of the `0o077` mode bits);
/// - is owned by a user other than root or the one the process runs as;
/// - is empty, larger than [`MAX_SECRET_BYTES`], or not UTF-8.
///
/// # Errors
/// As above, and when the file cannot be opened or read.
pub fn read_secret_file(key: &str, path: &Path) -> Result<String, PluginError> {
    let refuse = |why: String| PluginError::config(format!("`{key}` = {}: {why}", quoted(path)));
    let file = open_nofollow(path).map_err(|e| refuse(format!("cannot open it: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| refuse(format!("cannot stat it: {e}")))?;
    if !meta.is_file() {
        return Err(refuse(
            "not a regular file; point it at the file that holds the secret".to_owned(),
        ));
    }
    check_private(&meta).map_err(refuse)?;
    if meta.len() > MAX_SECRET_BYTES {
        return Err(refuse(format!(
            "{} bytes, more than the {MAX_SECRET_BYTES} a secret may have; is it the right file?",
            meta.len()
        )));
    }
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| refuse(format!("cannot read it: {e}")))?;
    let mut text = String::from_utf8(bytes).map_err(|_| refuse("not UTF-8 text".to_owned()))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        return Err(refuse("empty; write the secret into it".to_owned()));
    }
    Ok(text)
}

/// The secret in environment variable `name`: `None` when it is not set.
///
/// # Errors
/// Kind `Config` when it is set but empty or not UTF-8.
pub fn secret_from_env(name: &str) -> Result<Option<String>, PluginError> {
    match std::env::var(name) {
        Ok(v) if v.is_empty() => Err(PluginError::config(format!(
            "environment variable {name} is set but empty; unset it or set the secret"
        ))),
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(PluginError::config(format!(
            "environment variable {name} is not UTF-8"
        ))),
    }
}

fn quoted(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

#[cfg(unix)]
fn open_nofollow(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_nofollow(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
}

#[cfg(unix)]
fn check_private(meta: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "mode {mode:o} lets group or others read or write it; run `chmod 600` on it"
        ));
    }
    // SAFETY: geteuid takes no arguments, cannot fail and touches no memory of ours.
    let euid = unsafe { libc::geteuid() };
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(format!(
            "owned by uid {}, neither root nor this process's user (uid {euid}); `chown` it",
            meta.uid()
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_meta: &std::fs::Metadata) -> Result<(), String> {
    Ok(())
}

#[cfg(all(test, unix))]
mod test {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write(dir: &Path, name: &str, body: &str, mode: u32) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, body).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        p
    }

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("audit-secrets-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("mkdir");
        d
    }

    #[test]
    fn reads_a_private_file_without_its_trailing_newline() {
        let d = temp_dir("ok");
        let p = write(&d, "pw", "s3cret\r\n", 0o600);
        assert_eq!(
            read_secret_file("password_file", &p).expect("read"),
            "s3cret"
        );
        let p = write(&d, "token", "two\nlines\n", 0o400);
        assert_eq!(
            read_secret_file("token_file", &p).expect("read"),
            "two\nlines"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn refuses_files_others_can_read_or_write() {
        let d = temp_dir("mode");
        for mode in [0o640, 0o604, 0o620, 0o602, 0o644] {
            let p = write(&d, &format!("pw{mode:o}"), "x", mode);
            let e = read_secret_file("password_file", &p).expect_err("refused");
            assert!(
                e.message.contains("chmod 600") && e.message.contains("password_file"),
                "{mode:o}: {}",
                e.message
            );
        }
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn refuses_symlinks_fifos_empty_and_huge_files() {
        let d = temp_dir("kinds");
        let real = write(&d, "real", "x", 0o600);
        let link = d.join("link");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        assert!(read_secret_file("k", &link).is_err());
        let fifo = d.join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().expect("utf-8")).expect("cstring");
        // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
        let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
        assert_eq!(rc, 0, "mkfifo");
        let e = read_secret_file("k", &fifo).expect_err("a FIFO is refused, without blocking");
        assert!(e.message.contains("not a regular file"), "{}", e.message);
        let empty = write(&d, "empty", "\n", 0o600);
        assert!(
            read_secret_file("k", &empty)
                .expect_err("empty")
                .message
                .contains("empty")
        );
        let huge = write(&d, "huge", &"x".repeat(70_000), 0o600);
        assert!(
            read_secret_file("k", &huge)
                .expect_err("huge")
                .message
                .contains("bytes")
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn environment_secrets() {
        assert_eq!(
            secret_from_env("AUDIT_PLUGIN_API_TEST_SURELY_UNSET").expect("unset is fine"),
            None
        );
    }
}
