//! `--config FILE --backend NAME`: the store of one configured backend, for `verify` and
//! `query` (a file backend's directory, or a plugin's store read back through its `read`
//! capability).

use std::path::PathBuf;
use std::process::ExitCode;

use audit_host::config::TrailConfig;
use audit_host::readback::StoreReader;
use clap::Args;

use super::{EXIT_USAGE, fail};

/// The options that name a configured backend instead of a directory.
#[derive(Args)]
pub(crate) struct ConfiguredStore {
    /// Read the store of a backend of this configuration file instead of DIR: the one
    /// --backend names, else its (first) file backend's directory.
    #[arg(long, value_name = "FILE", conflicts_with = "dir")]
    pub(crate) config: Option<PathBuf>,
    /// The backend whose store is read: its `name`, or a plugin's own name (`sqlite`).
    /// A plugin must export the `read` capability.
    #[arg(long, value_name = "NAME", requires = "config")]
    pub(crate) backend: Option<String>,
}

/// The configuration and its backend's store, opened.
pub(crate) fn open(
    config: &std::path::Path,
    backend: &str,
) -> audit_host::Result<(TrailConfig, StoreReader)> {
    let config = TrailConfig::load(config)?;
    let store = StoreReader::open(&config, backend)?;
    Ok((config, store))
}

/// Why `--config FILE` without `--backend` names no directory.
pub(crate) enum Unopened {
    /// The configuration cannot be loaded.
    Host(audit_host::Error),
    /// It has no file backend: `--backend NAME` must name the store (a usage error).
    Usage(String),
}

impl Unopened {
    /// Prints it (`cmd: ...`) and gives the exit code.
    pub(crate) fn report(self, cmd: &str, verbose: bool) -> ExitCode {
        match self {
            Self::Host(e) => fail(cmd, &e, verbose),
            Self::Usage(msg) => {
                eprintln!("{cmd}: {msg}");
                ExitCode::from(EXIT_USAGE)
            }
        }
    }
}

/// The configuration and the directory of its first file backend (the trail's
/// `storage_path` when it names no `[[backends]]`): what `--config FILE` without `--backend`
/// reads.
pub(crate) fn file_directory(config: &std::path::Path) -> Result<(TrailConfig, PathBuf), Unopened> {
    let config = TrailConfig::load(config).map_err(Unopened::Host)?;
    let dir = config.backends.iter().find_map(|b| match b {
        audit_host::config::BackendConfig::File { path, .. } => Some(path.clone()),
        _ => None,
    });
    match dir {
        Some(dir) => Ok((config, dir)),
        None => Err(Unopened::Usage(format!(
            "{} has no file backend: name the backend to read with --backend NAME",
            config.source.display()
        ))),
    }
}

/// Reads every page of `store` into `each` (one call per line, in sequence order), then
/// closes it. `each` returns `false` to stop early (the store is closed all the same).
pub(crate) async fn read_all(
    store: StoreReader,
    mut each: impl FnMut(&str) -> bool,
) -> audit_host::Result<()> {
    let mut store = store;
    let result = async {
        loop {
            let page = store.next_page().await?;
            if page.is_empty() {
                return Ok(());
            }
            if !page.iter().all(|line| each(line)) {
                return Ok(());
            }
        }
    }
    .await;
    let closed = store.close().await;
    result.and(closed)
}
