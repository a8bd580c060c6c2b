//! The `audit` subcommands, one module each, and what they share: exit codes (`exit`), error
//! reports, the async runtime, output into a closed pipe.

pub(crate) mod bench;
pub(crate) mod config;
pub(crate) mod configured;
pub(crate) mod docs;
pub(crate) mod emit;
pub(crate) mod exit;
pub(crate) mod keygen;
pub(crate) mod plugin;
pub(crate) mod plugin_kit;
pub(crate) mod query;
pub(crate) mod verify;

use std::io;
use std::process::ExitCode;

use audit_host::{Durability, Error};

pub(crate) use exit::{
    EXIT_CONFIG, EXIT_DATAERR, EXIT_IOERR, EXIT_NOINPUT, EXIT_USAGE, exit_code_for,
};

/// `n` with the noun that fits: `1 event`, `2 events`.
pub(crate) fn count(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

pub(crate) fn parse_durability(s: &str) -> Result<Durability, String> {
    match s {
        "batched" => Ok(Durability::Batched),
        "sync" => Ok(Durability::Sync),
        other => Err(format!(
            "`{other}` is not a durability mode: use batched or sync"
        )),
    }
}

/// Prints an error; with `--verbose`, also its long details (plugin layout reports).
pub(crate) fn report(prefix: &str, e: &Error, verbose: bool) {
    eprintln!("{prefix}: {e}");
    if let Error::Plugin {
        details: Some(details),
        ..
    } = e
        && verbose
    {
        eprintln!("{details}");
    }
}

/// Reports `e` (as [`report`]) and gives the exit code for it ([`exit_code_for`]).
pub(crate) fn fail(prefix: &str, e: &Error, verbose: bool) -> ExitCode {
    report(prefix, e, verbose);
    ExitCode::from(exit_code_for(e))
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| {
            eprintln!("audit: cannot start the async runtime: {e}");
            ExitCode::from(EXIT_IOERR)
        })
}

pub(crate) fn broken_pipe_ok(e: &io::Error) -> ExitCode {
    if e.kind() == io::ErrorKind::BrokenPipe {
        ExitCode::SUCCESS
    } else {
        eprintln!("audit: cannot write output: {e}");
        ExitCode::from(EXIT_IOERR)
    }
}

/// `e` followed by each source its text does not already include, joined by `: `: the whole
/// message on one line, for the `--json` objects.
pub(crate) fn full_message(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod test {
    use super::full_message;

    /// An error whose text leaves its source out (as `Error`'s Display may).
    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("cannot read /x")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn full_message_adds_each_source_once() {
        let outer = Outer(std::io::Error::other("disk on fire"));
        assert_eq!(full_message(&outer), "cannot read /x: disk on fire");
        // A text that already ends with its source: nothing is repeated.
        let io = std::io::Error::other("disk on fire");
        let e = audit_host::Error::io("cannot read", "/x")(io);
        assert_eq!(full_message(&e).matches("disk on fire").count(), 1);
    }
}
