//! `audit config check`: a pre-flight of a configuration file. It parses the file, loads
//! every plugin library, checks the directories the trail would write to, has every plugin
//! that exports the `validate` capability check its configuration, and opens every plugin
//! instance, asks its health and closes it (unless `--no-connect`), then prints the result.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use std::io::Write as _;

use audit_host::StorageBackend;
use audit_host::config::{BackendConfig, TrailConfig};
use audit_host::plugin::LoadedPlugin;
use audit_host::preflight::{self, Problem};
use clap::Subcommand;

use super::{EXIT_CONFIG, exit_code_for, fail, runtime};
use render::{Backend, Found, Open, Validate};

mod render;

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
    /// (EX_CONFIG) on any problem, each named as `backends[N] "NAME" (FILE:LINE): KEY: ...`,
    /// 66 (EX_NOINPUT) when FILE does not exist.
    Check {
        /// Do not open the plugin instances (offline checks only: the file, the libraries,
        /// the directories, and `validate` for the plugins that export it).
        #[arg(long)]
        no_connect: bool,
        /// Print one JSON object on stdout instead of text, whatever the outcome: `ok`,
        /// `exit_code`, `config`, `settings` (the resolved settings, one line each),
        /// `backends` (per entry: `entry`, `index`, `name`, `type`, `file`, `line`,
        /// `plugin`, `validate`, `open`, `health`, `problems`) and `problems` (each
        /// `place`, `backend`, `key`, `message`). Nothing on stderr; the same exit code.
        #[arg(long)]
        json: bool,
        /// The TOML file.
        file: PathBuf,
    },
}

pub(crate) fn run(command: ConfigCommand, verbose: bool) -> ExitCode {
    match command {
        ConfigCommand::Check {
            file,
            no_connect,
            json,
        } => config_check(&file, !no_connect, json, verbose),
    }
}

fn config_check(file: &Path, connect: bool, json: bool, verbose: bool) -> ExitCode {
    let cfg = match TrailConfig::load(file) {
        Ok(cfg) => cfg,
        Err(e) if json => {
            let code = exit_code_for(&e);
            print_json(&render::unloaded_json(file, &e, code));
            return ExitCode::from(code);
        }
        Err(e) => return fail("audit config check", &e, verbose),
    };
    let found = check(&cfg, connect);
    let code = if found.failed() { EXIT_CONFIG } else { 0 };
    if json {
        print_json(&found.to_json(file, &cfg, code));
    } else {
        found.print_text(file, &cfg, verbose);
    }
    ExitCode::from(code)
}

/// Prints `value` on one line of stdout (a closed pipe is not an error).
fn print_json(value: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{value}").and_then(|()| out.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("audit config check: cannot write output: {e}");
    }
}

/// Loads every plugin library of `cfg`, noting each backend in `found`: each backend's name
/// (a plugin without `name` is named by the plugin; `None` when its library did not load)
/// and library.
fn load_libraries(
    cfg: &TrailConfig,
    found: &mut Found,
) -> (Vec<Option<String>>, Vec<Option<LoadedPlugin>>) {
    let mut names: Vec<Option<String>> = Vec::new();
    let mut loaded = Vec::new();
    for (i, backend) in cfg.backends.iter().enumerate() {
        let mut entry = Backend::new(cfg.entry(i, &backend.configured_name()), backend);
        match backend {
            BackendConfig::Plugin { name, .. } => match cfg.load_plugin(backend) {
                Ok(p) => {
                    let info = p.info().clone();
                    let name = name.clone().unwrap_or_else(|| info.name.clone());
                    entry.entry.name.clone_from(&name);
                    entry.plugin = Some(info);
                    names.push(Some(name));
                    loaded.push(Some(p));
                }
                Err(e) => {
                    found.unloaded.push((i, e));
                    names.push(None);
                    loaded.push(None);
                }
            },
            other => {
                names.push(Some(other.configured_name()));
                loaded.push(None);
            }
        }
        found.backends.push(entry);
    }
    (names, loaded)
}

/// Runs every check on `cfg` (opening the plugin instances when `connect`).
fn check(cfg: &TrailConfig, connect: bool) -> Found {
    let mut found = Found::default();
    let (names, loaded) = load_libraries(cfg, &mut found);
    found
        .problems
        .extend(preflight::directory_collisions(cfg, &names));
    found
        .problems
        .extend(preflight::directory_access(cfg, &names));
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
        let validate = match plugin.validate(config_json) {
            None => Validate::NotExported,
            Some(Ok(())) => Validate::Passed,
            Some(Err(e)) => {
                let problem = Problem::new(cfg.entry(i, name), "config", e.to_string());
                found.problems.push(problem);
                Validate::Failed
            }
        };
        let entry = &mut found.backends[i];
        entry.validate = Some(validate);
        if validate == Validate::Failed {
            continue;
        }
        if !connect {
            entry.open = Some(Open::NotOpened);
            continue;
        }
        let timeouts = (*open_timeout_ms, *call_timeout_ms);
        match open_and_close(plugin, name, config_json, timeouts) {
            Ok(health) => entry.open = Some(Open::Opened(health)),
            Err((key, e)) => {
                entry.open = Some(Open::Failed);
                let problem = Problem::new(cfg.entry(i, name), key, e.to_string());
                found.problems.push(problem);
            }
        }
    }
    found
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
