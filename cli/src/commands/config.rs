//! `audit config check`: a pre-flight of a configuration file. It parses the file, loads
//! every plugin library, checks the directories the trail would write to, has every plugin
//! that exports the `validate` capability check its configuration, and opens every plugin
//! instance, asks its health and closes it (unless `--no-connect`), then prints the result.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use audit_host::StorageBackend;
use audit_host::config::{BackendConfig, TrailConfig};
use audit_host::preflight::{self, Problem};
use clap::Subcommand;

use super::{report, runtime};

/// Exit code for any problem with the configuration (sysexits EX_CONFIG).
pub(crate) const EXIT_CONFIG: u8 = 78;

#[derive(Subcommand)]
pub(crate) enum ConfigCommand {
    /// Check a configuration file before using it, and print the resolved settings and
    /// backends.
    ///
    /// Parses the file, loads every plugin library, checks the directories the trail writes
    /// to (two file backends on one directory, two plugin backends sharing a spool, a
    /// directory that cannot be created or written; probed with a file that is removed at
    /// once), has every plugin that exports `validate` check its `config` (keys and values,
    /// offline), and opens every plugin instance with its `config`, as the start of a trail
    /// would (a plugin may create its store then), prints its health (`unknown` without the
    /// `health` capability) and closes it. Exit 0 when everything passes, 78
    /// (EX_CONFIG) on any problem, each named as `backends[N] "NAME" (FILE:LINE): KEY: ...`.
    Check {
        /// Do not open the plugin instances (offline checks only: the file, the libraries,
        /// the directories, and `validate` for the plugins that export it).
        #[arg(long)]
        no_connect: bool,
        /// The TOML file.
        file: PathBuf,
    },
}

pub(crate) fn run(command: ConfigCommand, verbose: bool) -> ExitCode {
    match command {
        ConfigCommand::Check { file, no_connect } => config_check(&file, !no_connect, verbose),
    }
}

fn config_check(file: &Path, connect: bool, verbose: bool) -> ExitCode {
    let cfg = match TrailConfig::load(file) {
        Ok(cfg) => cfg,
        Err(e) => {
            report("audit config check", &e, verbose);
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let mut problems: Vec<Problem> = Vec::new();
    let mut failed = false;
    // Each backend's name (a plugin without `name` is named by the plugin) and library.
    let mut names: Vec<Option<String>> = Vec::new();
    let mut loaded = Vec::new();
    let mut plugins = Vec::new();
    for (i, backend) in cfg.backends.iter().enumerate() {
        match backend {
            BackendConfig::Plugin { name, .. } => match cfg.load_plugin(backend) {
                Ok(p) => {
                    let info = p.info();
                    plugins.push(format!(
                        "backend {}: plugin {} {} (plugin_api {}): {}",
                        i + 1,
                        info.name,
                        info.version,
                        info.plugin_api,
                        info.description
                    ));
                    names.push(Some(name.clone().unwrap_or_else(|| info.name.clone())));
                    loaded.push(Some(p));
                }
                Err(e) => {
                    let e = cfg.entry(i, &backend.configured_name()).annotate(e);
                    report("audit config check", &e, verbose);
                    failed = true;
                    names.push(None);
                    loaded.push(None);
                }
            },
            other => {
                names.push(Some(other.configured_name()));
                loaded.push(None);
            }
        }
    }
    problems.extend(preflight::directory_collisions(&cfg, &names));
    problems.extend(preflight::directory_access(&cfg, &names));
    let mut opened = Vec::new();
    for (i, (backend, plugin)) in cfg.backends.iter().zip(&loaded).enumerate() {
        let (
            BackendConfig::Plugin {
                config_json,
                open_timeout_ms,
                call_timeout_ms,
                ..
            },
            Some(plugin),
            Some(name),
        ) = (backend, plugin, &names[i])
        else {
            continue;
        };
        // The plugin's own check of its keys and values (offline: also with --no-connect).
        let validated = match plugin.validate(config_json) {
            None => "",
            Some(Ok(())) => "validated, ",
            Some(Err(e)) => {
                problems.push(Problem::new(
                    cfg.entry(i, name),
                    "config",
                    audit_format::error::chain(&e),
                ));
                continue;
            }
        };
        if !connect {
            opened.push(format!(
                "backend {}: {validated}not opened (--no-connect)",
                i + 1
            ));
            continue;
        }
        let timeouts = (*open_timeout_ms, *call_timeout_ms);
        match open_and_close(plugin, name, config_json, timeouts) {
            Ok(health) => opened.push(format!(
                "backend {}: {validated}opened and closed; health: {}",
                i + 1,
                health.as_deref().unwrap_or("unknown")
            )),
            Err((key, e)) => problems.push(Problem::new(
                cfg.entry(i, name),
                key,
                audit_format::error::chain(&e),
            )),
        }
    }
    for p in &problems {
        eprintln!("audit config check: {p}");
    }
    if failed || !problems.is_empty() {
        return ExitCode::from(EXIT_CONFIG);
    }
    println!("config ok: {}", file.display());
    print!("{}", cfg.describe());
    for p in plugins {
        println!("{p}");
    }
    for line in opened {
        println!("{line}");
    }
    ExitCode::SUCCESS
}

/// Opens an instance of `plugin` as the trail would, asks its health, then closes it: for a
/// plugin without the `validate` capability, this is the check of its configuration; with
/// it, this finds what only opening can (a store that cannot be opened, a server that
/// refuses). The instance's health (`None`: unknown), or the key the problem is shown under
/// and the error. After a failed health call the close error is not shown (a plugin that
/// panicked refuses `close` too: nothing new to say).
fn open_and_close(
    plugin: &audit_host::plugin::LoadedPlugin,
    name: &str,
    config_json: &str,
    (open_timeout_ms, call_timeout_ms): (u64, u64),
) -> Result<Option<String>, (&'static str, audit_host::Error)> {
    let instance = plugin
        .open_within(name, config_json, Duration::from_millis(open_timeout_ms))
        .map_err(|e| ("config", e))?
        .with_call_timeout(Duration::from_millis(call_timeout_ms));
    let rt = runtime().map_err(|_| {
        (
            "config",
            audit_host::Error::backend("cannot start a runtime"),
        )
    })?;
    rt.block_on(async {
        let health = instance.health().await;
        let closed = instance.close().await;
        let health = health.map_err(|e| ("health", e))?;
        closed.map_err(|e| ("config", e))?;
        Ok(health)
    })
}
