//! `audit bench`: one scenario, or with `--suite` the standard ones (`crate::bench::suite`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Mutex, PoisonError};

use audit_host::Durability;
use clap::Args;

use super::{EXIT_USAGE, parse_durability};
use crate::bench::engine;
use crate::bench::report::{print_bench, print_verify};
use crate::bench::scenario::{BenchBackend, Scenario};
use crate::bench::suite::bench_suite;
use crate::bench::verify::verify_vs_sha256;
use crate::progress::Progress;

/// A count that must be at least 1: nothing to measure otherwise.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

#[derive(Args)]
pub(crate) struct BenchArgs {
    /// Events to log (at least 1).
    #[arg(long, value_name = "N", default_value_t = 200_000, value_parser = at_least_one)]
    pub(crate) events: usize,
    /// Concurrent producers (at least 1).
    #[arg(long, value_name = "P", default_value_t = 1, value_parser = at_least_one)]
    pub(crate) producers: usize,
    /// `batched` or `sync`.
    #[arg(long, value_name = "MODE", value_parser = parse_durability, default_value = "batched")]
    pub(crate) durability: Durability,
    /// `file`, or `plugin:PATH` for a plugin library.
    #[arg(long, value_name = "BACKEND", default_value = "file")]
    pub(crate) backend: String,
    /// The plugin's `config`, as JSON (default: `{"path": "DIR/plugin-store"}`). A store inside DIR is emptied before each run and round; one elsewhere must be empty, since each run's chain starts at sequence 1. The postgres plugin (with the `postgres-bench` feature) stores into scratch tables instead of `table` and is compared with a hand-written PostgreSQL client.
    #[arg(long, value_name = "JSON")]
    pub(crate) plugin_config: Option<String>,
    /// Scratch directory (default: a new directory under the system's temp dir, removed at
    /// the end). With --suite, each scenario's subdirectory is removed when the scenario ends.
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
    /// Pace the producers to this many events per second in total (for latency at a
    /// given load); default: as fast as possible.
    #[arg(long, value_name = "EVENTS_PER_S")]
    pub(crate) rate: Option<f64>,
    /// Keep the trail's files and report `audit verify` throughput over them against plain
    /// SHA-256 over the same bytes.
    #[arg(long)]
    pub(crate) verify: bool,
    /// One JSON object per line per scenario.
    #[arg(long)]
    pub(crate) json: bool,
    /// Run the standard scenarios (docs/benchmarks.md) and print their table. `--events`
    /// sets the size of the large runs (default there: 2,000,000).
    #[arg(long)]
    pub(crate) suite: bool,
    /// Skip the hand-written baseline loop (for runs compared with another run instead).
    #[arg(long)]
    pub(crate) no_baseline: bool,
    /// Split the run into R rounds, each timing the trail and the baseline back to back
    /// (in alternating order); `ratio_to_baseline` is then the median of the rounds' ratios,
    /// which one noisy moment does not move. With --verify, only the last round's files are
    /// verified.
    #[arg(long, value_name = "R", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub(crate) rounds: u64,
    /// Sign seals of the file backend's directory with this key (`audit keygen`'s
    /// `audit-signing.key`; default seal interval), to measure what seals cost. With
    /// --suite, every scenario runs with it.
    #[arg(long, value_name = "FILE")]
    pub(crate) signing_key: Option<PathBuf>,
}

pub(crate) fn bench(args: &BenchArgs) -> ExitCode {
    let (dir, temporary) = match &args.dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("audit-bench-{}", std::process::id())),
            true,
        ),
    };
    let backend = match bench_backend(args, &dir) {
        Ok(b) => b,
        Err(code) => return code,
    };
    if args.suite {
        let code = bench_suite(args.events, args.json, &dir, args.signing_key.as_deref());
        if temporary {
            let _ = std::fs::remove_dir_all(&dir);
        }
        return code;
    }
    let scenario = scenario(args, backend, &dir);
    let progress = Mutex::new(Progress::new("bench", false));
    let result = engine::run(&scenario, &|done, total| {
        progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .update(done, total);
    });
    progress
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .finish();
    let result = result.and_then(|r| {
        let verify = if args.verify {
            Some(verify_vs_sha256(&dir.join("trail"))?)
        } else {
            None
        };
        Ok((r, verify))
    });
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    match result {
        Ok((r, verify)) => {
            print_bench(&r, args.json);
            if let Some(v) = verify {
                print_verify(&v, args.json);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("audit bench: {e}", e = audit_format::error::chain(&e));
            ExitCode::from(1)
        }
    }
}

/// `--backend` (and `--plugin-config`, whose default store lies in `dir`).
fn bench_backend(args: &BenchArgs, dir: &Path) -> Result<BenchBackend, ExitCode> {
    match args.backend.as_str() {
        "file" => Ok(BenchBackend::File),
        other => match other.strip_prefix("plugin:") {
            Some(path) => Ok(BenchBackend::Plugin {
                library: PathBuf::from(path),
                config_json: args.plugin_config.clone().unwrap_or_else(|| {
                    serde_json::json!({ "path": dir.join("plugin-store").to_string_lossy() })
                        .to_string()
                }),
            }),
            None => {
                eprintln!("audit bench: --backend `{other}`: use `file` or `plugin:PATH`");
                Err(ExitCode::from(EXIT_USAGE))
            }
        },
    }
}

/// The one scenario the arguments describe.
fn scenario(args: &BenchArgs, backend: BenchBackend, dir: &Path) -> Scenario {
    Scenario {
        name: format!(
            "{}-{}-{}p",
            if matches!(backend, BenchBackend::File) {
                "file"
            } else {
                "plugin"
            },
            match args.durability {
                Durability::Batched => "batched",
                Durability::Sync => "sync",
            },
            args.producers
        ),
        events: args.events,
        producers: args.producers,
        durability: args.durability,
        backend,
        dir: dir.to_path_buf(),
        rate: args.rate,
        skip_baseline: args.no_baseline,
        rounds: args.rounds as usize,
        signing_key: args.signing_key.clone(),
    }
}
