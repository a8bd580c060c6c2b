//! `audit plugin inspect`: load a plugin library and print what it says about itself.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use super::{broken_pipe_ok, report};

#[derive(Subcommand)]
pub(crate) enum PluginCommand {
    /// Load a plugin library (checks included) and print what it says about itself:
    /// `name`, `version`, `plugin_api`, `description`, `capabilities`, then its configuration
    /// help.
    Inspect {
        /// The shared library (.so/.dll/.dylib).
        path: PathBuf,
        /// Skip the ownership and write-permission checks.
        #[arg(long)]
        allow_insecure_permissions: bool,
        /// Refuse the library unless its SHA-256 is this.
        #[arg(long, value_name = "HEX")]
        sha256: Option<String>,
        /// Print one JSON object instead: `path`, `name`, `version`, `plugin_api`, `abi`
        /// (`rust` or `c`), `description`, `capabilities` (array), `config_help`. A refused
        /// library prints nothing on stdout (the reason on stderr, exit 1).
        #[arg(long)]
        json: bool,
    },
    /// The conformance kit: run the plugin contract against a plugin library, the way the
    /// host calls it, and print one line per check (`ok`, `FAIL` or `skip`), then a summary.
    ///
    /// Checks: open and a fresh store's `last_line`; ordering (3 batches of 100 chained
    /// records); flush, close and reopen keep the last line byte for byte; re-delivery of a
    /// stored batch is ignored; a different line under a stored sequence number never becomes
    /// the head; the capabilities it exports, each called once; panics; close.
    ///
    /// Exit status: 0 when no check failed, 1 when one did, 2 on usage errors, 78 when the
    /// library cannot be loaded or opened with the config.
    #[command(
        after_help = "Pass the plugin's own configuration with --config; `{dir}` in it is replaced by the test directory. Example:\n  audit plugin test target/release/libaudit_backend_sqlite.so --config '{\"path\":\"{dir}/a.db\"}'"
    )]
    Test {
        /// The shared library (.so/.dll/.dylib).
        path: PathBuf,
        /// The JSON object handed to the plugin's `open` (its `config` table); `{dir}` is
        /// replaced by the test directory. The default suits plugins whose one required key
        /// is `path`.
        #[arg(long, value_name = "JSON", default_value = r#"{"path":"{dir}/store"}"#)]
        config: String,
        /// Run in this directory and keep it (default: a new temporary directory, removed
        /// afterwards). Use an empty one: a store already there is continued, not replaced.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Skip the ownership and write-permission checks.
        #[arg(long)]
        allow_insecure_permissions: bool,
        /// The store cannot be read back (a syslog server): `last_line` stays none, and the
        /// reopen and fork checks, which compare the stored head, are skipped.
        #[arg(long)]
        write_only: bool,
    },
}

pub(crate) fn run(command: PluginCommand, verbose: bool) -> ExitCode {
    match command {
        PluginCommand::Inspect {
            path,
            allow_insecure_permissions,
            sha256,
            json,
        } => plugin_inspect(&path, allow_insecure_permissions, sha256, json, verbose),
        PluginCommand::Test {
            path,
            config,
            dir,
            allow_insecure_permissions,
            write_only,
        } => super::plugin_kit::run(&super::plugin_kit::KitArgs {
            path,
            config,
            dir,
            allow_insecure_permissions,
            write_only,
            verbose,
        }),
    }
}

fn plugin_inspect(
    path: &Path,
    allow_insecure_permissions: bool,
    sha256: Option<String>,
    json: bool,
    verbose: bool,
) -> ExitCode {
    let opts = audit_host::plugin::LoadOptions {
        sha256,
        allow_insecure_permissions,
    };
    match audit_host::plugin::LoadedPlugin::load(path, &opts) {
        Ok(plugin) => {
            let info = plugin.info();
            let text = if json {
                inspect_json(info)
            } else {
                inspect_text(info)
            };
            let mut out = io::stdout().lock();
            match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => broken_pipe_ok(&e),
            }
        }
        Err(e) => {
            report("audit plugin inspect", &e, verbose);
            ExitCode::from(1)
        }
    }
}

/// What `inspect` prints: the fields, one per line, then the configuration help.
fn inspect_text(info: &audit_host::plugin::PluginInfo) -> String {
    let capabilities = if info.capabilities.is_empty() {
        "none".to_owned()
    } else {
        info.capabilities.join(", ")
    };
    format!(
        "name: {}\nversion: {}\nplugin_api: {}\ndescription: {}\ncapabilities: {capabilities}\n\n{}\n",
        info.name,
        info.version,
        info.plugin_api,
        info.description,
        info.config_help.trim_end()
    )
}

/// What `inspect --json` prints: one object, one line.
fn inspect_json(info: &audit_host::plugin::PluginInfo) -> String {
    let abi = match info.abi {
        audit_host::plugin::PluginAbi::C => "c",
        _ => "rust",
    };
    let value = serde_json::json!({
        "path": info.path.display().to_string(),
        "name": info.name,
        "version": info.version,
        "plugin_api": info.plugin_api,
        "abi": abi,
        "description": info.description,
        "capabilities": info.capabilities,
        "config_help": info.config_help.trim_end(),
    });
    format!("{value}\n")
}
