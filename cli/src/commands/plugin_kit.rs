//! `audit plugin test`: the conformance kit. Runs the plugin contract against a plugin library
//! through the host's own [`PluginBackend`], with real chained lines, and prints one line per
//! check.
//!
//! This module loads and opens the library and prints the summary; `contract.rs` runs the
//! checks in order (`capabilities.rs`, `read.rs` and `refusal.rs` hold the larger ones),
//! `results.rs` prints each outcome, `chain.rs` makes the chained lines and `head.rs` reads
//! and compares the stored head.
//!
//! [`PluginBackend`]: audit_host::plugin::PluginBackend

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use audit_host::plugin::{LoadOptions, LoadedPlugin, PluginAbi};

use self::contract::{Kit, contract};
use self::results::Results;
use super::{EXIT_CONFIG, EXIT_IOERR, EXIT_USAGE, report};

mod capabilities;
mod chain;
mod contract;
mod head;
mod read;
mod refusal;
mod results;

/// What `audit plugin test` was asked.
pub(crate) struct KitArgs {
    pub(crate) path: PathBuf,
    pub(crate) config: String,
    pub(crate) dir: Option<PathBuf>,
    pub(crate) allow_insecure_permissions: bool,
    /// The store cannot be read back (`--write-only`): skip the checks that compare heads.
    pub(crate) write_only: bool,
    pub(crate) verbose: bool,
}

/// Runs the kit; the exit status is 0 when no check failed, 1 when one did, 78 when the
/// library cannot be loaded or opened with the config.
pub(crate) fn run(args: &KitArgs) -> ExitCode {
    // `_tmp` removes a temporary directory when the kit is done.
    let (dir, _tmp) = match test_dir(args) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let config = substitute_dir(&args.config, &dir);
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&config) {
        eprintln!("audit plugin test: --config is not JSON: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    let opts = LoadOptions {
        sha256: None,
        allow_insecure_permissions: args.allow_insecure_permissions,
    };
    let plugin = match LoadedPlugin::load(&args.path, &opts) {
        Ok(p) => p,
        Err(e) => {
            report("audit plugin test", &e, args.verbose);
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match super::runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let info = plugin.info().clone();
    let mut results = Results::default();
    let backend = match plugin.open(&info.name, &config) {
        Ok(b) => b,
        Err(e) => {
            report("audit plugin test", &e, args.verbose);
            eprintln!(
                "audit plugin test: the config handed to `open` was {config}; pass the plugin's own with --config (`{{dir}}` is replaced by the test directory)"
            );
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    results.ok("open");
    let kit = Kit {
        plugin: &plugin,
        config: &config,
        plugin_api: &info.plugin_api,
        verbose: args.verbose,
        write_only: args.write_only,
    };
    runtime.block_on(contract(kit, backend, &mut results));
    print_summary(&results, &info);
    if results.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The directory `{dir}` stands for: `--dir` (created if needed) or a temporary one (kept
/// alive by the second value until the kit is done).
fn test_dir(args: &KitArgs) -> Result<(PathBuf, Option<tempfile::TempDir>), ExitCode> {
    match &args.dir {
        Some(d) => {
            if let Err(e) = std::fs::create_dir_all(d) {
                eprintln!("audit plugin test: cannot create {}: {e}", d.display());
                return Err(ExitCode::from(EXIT_IOERR));
            }
            Ok((d.clone(), None))
        }
        None => match tempfile::Builder::new()
            .prefix("audit-plugin-test")
            .tempdir()
        {
            Ok(t) => Ok((t.path().to_path_buf(), Some(t))),
            Err(e) => {
                eprintln!("audit plugin test: cannot create a temporary directory: {e}");
                Err(ExitCode::from(EXIT_IOERR))
            }
        },
    }
}

/// The last line: the counts, and the plugin and the API it was built against.
fn print_summary(results: &Results, info: &audit_host::plugin::PluginInfo) {
    let mut out = io::stdout().lock();
    let api = match info.abi {
        PluginAbi::C => info.plugin_api.clone(),
        _ => format!("audit-plugin-api {}", info.plugin_api),
    };
    let _ = writeln!(
        out,
        "{} passed, {} failed, {} skipped: {} {} ({api})",
        results.passed, results.failed, results.skipped, info.name, info.version
    )
    .and_then(|()| out.flush());
}

/// `config` with every `{dir}` replaced by `dir`, escaped as inside a JSON string.
fn substitute_dir(config: &str, dir: &Path) -> String {
    let quoted = serde_json::to_string(&dir.to_string_lossy()).unwrap_or_default();
    let inner = quoted
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(&quoted);
    config.replace("{dir}", inner)
}
