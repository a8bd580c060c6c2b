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
    },
}

pub(crate) fn run(command: PluginCommand, verbose: bool) -> ExitCode {
    match command {
        PluginCommand::Inspect {
            path,
            allow_insecure_permissions,
            sha256,
        } => plugin_inspect(&path, allow_insecure_permissions, sha256, verbose),
    }
}

fn plugin_inspect(
    path: &Path,
    allow_insecure_permissions: bool,
    sha256: Option<String>,
    verbose: bool,
) -> ExitCode {
    let opts = audit_host::plugin::LoadOptions {
        sha256,
        allow_insecure_permissions,
    };
    match audit_host::plugin::LoadedPlugin::load(path, &opts) {
        Ok(plugin) => {
            let info = plugin.info();
            let capabilities = if info.capabilities.is_empty() {
                "none".to_owned()
            } else {
                info.capabilities.join(", ")
            };
            let text = format!(
                "name: {}\nversion: {}\nplugin_api: {}\ndescription: {}\ncapabilities: {capabilities}\n\n{}\n",
                info.name,
                info.version,
                info.plugin_api,
                info.description,
                info.config_help.trim_end()
            );
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
