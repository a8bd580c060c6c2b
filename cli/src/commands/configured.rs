//! `--config FILE --backend NAME`: the store of one configured backend, for `verify` and
//! `query` (a file backend's directory, or a plugin's store read back through its `read`
//! capability).

use std::path::PathBuf;
use std::process::ExitCode;

use audit_host::config::TrailConfig;
use audit_host::readback::StoreReader;
use clap::Args;

use super::{EXIT_USAGE, report};

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

/// The configuration and its backend's store, opened; errors are printed (`cmd: ...`).
pub(crate) fn open(
    cmd: &str,
    config: &std::path::Path,
    backend: &str,
    verbose: bool,
) -> Result<(TrailConfig, StoreReader), ExitCode> {
    let fail = |e: &audit_host::Error| {
        report(cmd, e, verbose);
        ExitCode::from(EXIT_USAGE)
    };
    let config = TrailConfig::load(config).map_err(|e| fail(&e))?;
    let store = StoreReader::open(&config, backend).map_err(|e| fail(&e))?;
    Ok((config, store))
}

/// The configuration and the directory of its first file backend (the trail's
/// `storage_path` when it names no `[[backends]]`): what `--config FILE` without `--backend`
/// reads. Errors are printed (`cmd: ...`).
pub(crate) fn file_directory(
    cmd: &str,
    config: &std::path::Path,
    verbose: bool,
) -> Result<(TrailConfig, PathBuf), ExitCode> {
    let config = TrailConfig::load(config).map_err(|e| {
        report(cmd, &e, verbose);
        ExitCode::from(EXIT_USAGE)
    })?;
    let dir = config.backends.iter().find_map(|b| match b {
        audit_host::config::BackendConfig::File { path, .. } => Some(path.clone()),
        _ => None,
    });
    match dir {
        Some(dir) => Ok((config, dir)),
        None => {
            eprintln!(
                "{cmd}: {} has no file backend: name the backend to read with --backend NAME",
                config.source.display()
            );
            Err(ExitCode::from(EXIT_USAGE))
        }
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
