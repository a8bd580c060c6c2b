//! The exit codes of every `audit` command, from sysexits where one fits, and the one mapping
//! from an error to its code (docs/operations.md, "Exit codes").

use audit_host::Error;
use audit_host::verify::VerifyError;

/// The verdict is negative: a broken chain, a failed check, an event that could not be stored.
pub(crate) const EXIT_FAILED: u8 = 1;
/// A usage error: clap's own, or options that do not go together.
pub(crate) const EXIT_USAGE: u8 = 2;
/// sysexits' EX_DATAERR: bad input data (an `emit` line that is not an event; stored data
/// the trail cannot continue or read, such as a corrupt anchor or a used-up chain).
pub(crate) const EXIT_DATAERR: u8 = 65;
/// sysexits' EX_NOINPUT: an input does not exist (the directory, `--key-file`,
/// `--public-key`, the configuration file).
pub(crate) const EXIT_NOINPUT: u8 = 66;
/// sysexits' EX_IOERR: a file, directory or store cannot be read or written (a backend that
/// failed included), or the output cannot be written.
pub(crate) const EXIT_IOERR: u8 = 74;
/// sysexits' EX_TEMPFAIL: the audit directory is locked by another process; try later.
pub(crate) const EXIT_TEMPFAIL: u8 = 75;
/// sysexits' EX_CONFIG: bad configuration (the file, a key file, a plugin library that
/// cannot be loaded or rejects its `config`, a backend name the configuration lacks).
pub(crate) const EXIT_CONFIG: u8 = 78;

/// The exit code for `e`, in every command that stops on it.
pub(crate) fn exit_code_for(e: &Error) -> u8 {
    match e {
        // The configuration file itself cannot be read because it does not exist.
        Error::Config(c)
            if c.line.is_none() && !c.file.as_os_str().is_empty() && missing(&c.file) =>
        {
            EXIT_NOINPUT
        }
        Error::Config(_)
        | Error::Plugin { .. }
        | Error::Unsupported { .. }
        | Error::PluginCall {
            kind: audit_host::CallErrorKind::Config,
            ..
        } => EXIT_CONFIG,
        Error::InvalidEvent { .. } | Error::Integrity(_) | Error::SequenceExhausted { .. } => {
            EXIT_DATAERR
        }
        Error::DirectoryLocked { .. } => EXIT_TEMPFAIL,
        Error::Io { .. }
        | Error::PluginCall { .. }
        | Error::Backend { .. }
        | Error::Fatal { .. }
        | Error::Storage { .. }
        | Error::NotDurable { .. }
        | Error::Shutdown { .. } => EXIT_IOERR,
        Error::QueueFull { .. } | Error::Closed => EXIT_FAILED,
        _ => EXIT_FAILED,
    }
}

/// The exit code for a verification that did not pass: 1 for a verdict on the chain, the
/// error's code when it could not be checked.
pub(crate) fn verify_exit_code(e: &VerifyError) -> u8 {
    match e {
        VerifyError::Io(e) => exit_code_for(e),
        _ => EXIT_FAILED,
    }
}

/// The exit code for an input file that could not be read: 66 when it does not exist, else
/// `otherwise`.
pub(crate) fn missing_or(path: &std::path::Path, otherwise: u8) -> u8 {
    if missing(path) {
        EXIT_NOINPUT
    } else {
        otherwise
    }
}

fn missing(path: &std::path::Path) -> bool {
    matches!(std::fs::symlink_metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}

#[cfg(test)]
mod test {
    use std::path::PathBuf;

    use audit_host::ConfigError;

    use super::*;

    fn config_error(file: PathBuf, key: &str) -> Error {
        ConfigError {
            file,
            line: None,
            column: None,
            key: key.into(),
            message: "m".into(),
        }
        .into()
    }

    #[test]
    fn each_kind_of_error_has_its_code() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let there = dir.path().join("a.toml");
        std::fs::write(&there, "")?;
        let cases = [
            (config_error(dir.path().join("gone.toml"), "(file)"), 66),
            (config_error(there.clone(), "(file)"), 78),
            (config_error(there, "trail.durability"), 78),
            // A builder setting names no file.
            (config_error(PathBuf::new(), "trail.durability"), 78),
            (Error::invalid("message", "m"), 65),
            (Error::Integrity("corrupt anchor".into()), 65),
            (Error::SequenceExhausted { last: u64::MAX }, 65),
            (
                Error::DirectoryLocked {
                    dir: dir.path().into(),
                    pid: None,
                },
                75,
            ),
            (
                Error::io("cannot read", dir.path())(std::io::Error::other("x")),
                74,
            ),
            (Error::backend("down"), 74),
            (
                Error::Plugin {
                    library: "x.so".into(),
                    message: "m".into(),
                    details: None,
                },
                78,
            ),
        ];
        for (e, code) in cases {
            assert_eq!(exit_code_for(&e), code, "{e:?}");
        }
        let broken = VerifyError::Directory {
            path: dir.path().into(),
            reason: "r".into(),
        };
        assert_eq!(verify_exit_code(&broken), 1);
        Ok(())
    }
}
