//! `audit config check`: validate a configuration file, load its plugins, print the result.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use audit_host::config::{BackendConfig, TrailConfig};
use clap::Subcommand;

use super::report;

#[derive(Subcommand)]
pub(crate) enum ConfigCommand {
    /// Validate a configuration file and print the resolved settings and backends. Plugin
    /// libraries are loaded and inspected (nothing else is called).
    Check {
        /// The TOML file.
        file: PathBuf,
    },
}

pub(crate) fn run(command: ConfigCommand, verbose: bool) -> ExitCode {
    match command {
        ConfigCommand::Check { file } => config_check(&file, verbose),
    }
}

fn config_check(file: &Path, verbose: bool) -> ExitCode {
    let cfg = match TrailConfig::load(file) {
        Ok(cfg) => cfg,
        Err(e) => {
            report("audit config check", &e, verbose);
            return ExitCode::from(1);
        }
    };
    let mut plugins = Vec::new();
    let mut failed = false;
    for (i, backend) in cfg.backends.iter().enumerate() {
        if let BackendConfig::Plugin { .. } = backend {
            match cfg.load_plugin(backend) {
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
                }
                Err(e) => {
                    report(
                        &format!("audit config check: backend {}", i + 1),
                        &e,
                        verbose,
                    );
                    failed = true;
                }
            }
        }
    }
    if failed {
        return ExitCode::from(1);
    }
    println!("config ok: {}", file.display());
    print!("{}", cfg.describe());
    for p in plugins {
        println!("{p}");
    }
    ExitCode::SUCCESS
}
