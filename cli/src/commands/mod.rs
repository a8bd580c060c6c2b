//! The `audit` subcommands, one module each, and what they share: exit codes, error
//! reports, the async runtime, output into a closed pipe.

pub(crate) mod bench;
pub(crate) mod config;
pub(crate) mod configured;
pub(crate) mod docs;
pub(crate) mod emit;
pub(crate) mod keygen;
pub(crate) mod plugin;
pub(crate) mod plugin_kit;
pub(crate) mod query;
pub(crate) mod verify;

use std::io;
use std::process::ExitCode;

use audit_host::{Durability, Error};

/// Exit code for bad input data (sysexits EX_DATAERR).
pub(crate) const EXIT_DATAERR: u8 = 65;

/// `n` with the noun that fits: `1 event`, `2 events`.
pub(crate) fn count(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}
/// sysexits' EX_IOERR: an output file (`--rejects`, `--stats FILE`) cannot be written.
pub(crate) const EXIT_IOERR: u8 = 74;
/// Exit code for usage, configuration and I/O errors.
pub(crate) const EXIT_USAGE: u8 = 2;

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
    eprintln!("{prefix}: {e}", e = audit_format::error::chain(&e));
    if let Error::Plugin {
        details: Some(details),
        ..
    } = e
        && verbose
    {
        eprintln!("{details}");
    }
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| {
            eprintln!("audit: cannot start the async runtime: {e}");
            ExitCode::from(EXIT_USAGE)
        })
}

pub(crate) fn broken_pipe_ok(e: &io::Error) -> ExitCode {
    if e.kind() == io::ErrorKind::BrokenPipe {
        ExitCode::SUCCESS
    } else {
        eprintln!("audit: cannot write output: {e}");
        ExitCode::from(EXIT_USAGE)
    }
}
