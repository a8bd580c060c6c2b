//! The mode of the audit files a store creates, and which modes are allowed.

/// The mode of new audit files unless `file_mode` says otherwise.
pub const DEFAULT_FILE_MODE: u32 = 0o600;

/// Why `mode` cannot be the mode of audit files, or `None`: the owner must read and write
/// them, nobody else may write them, and nobody may execute them (0600, 0640, 0644 and 0604
/// are the modes allowed).
pub fn check_file_mode(mode: u32) -> Option<String> {
    if mode & !0o777 != 0 || mode & 0o600 != 0o600 || mode & 0o133 != 0 {
        return Some(format!(
            "{mode:04o} is not allowed: audit files must be readable and writable by their owner, writable by nobody else and executable by nobody (use 0600, 0640, 0644 or 0604)"
        ));
    }
    None
}
