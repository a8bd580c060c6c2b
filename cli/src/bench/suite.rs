//! `audit bench --suite`: the standard scenarios (docs/benchmarks.md), each in a child
//! process, judged against their targets in one table.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::ab::file_plugin_ab;
use super::child::bench_child;
use super::engine::BenchResult;
use super::report::{print_bench, print_verify};
use super::verify::verify_vs_sha256;

/// Removes a suite scenario's `--dir` once it has run, and commits the removal, so the next
/// scenario does not start with this one's page cache and freed blocks.
fn remove_scenario_dir(args: &[String]) {
    let Some(dir) = args
        .iter()
        .position(|a| a == "--dir")
        .and_then(|i| args.get(i + 1))
        .map(Path::new)
    else {
        return;
    };
    let removed = std::fs::remove_dir_all(dir).and_then(|()| {
        let parent = dir.parent().unwrap_or(dir);
        std::fs::File::open(parent).and_then(|f| f.sync_all())
    });
    if let Err(e) = removed {
        eprintln!("suite: cannot remove {}: {e}", dir.display());
    }
}

/// A plugin library beside this binary (`cargo build --release -p ...`), or in `deps/`
/// (where `cargo test` and `cargo bench` put the plugins they build).
fn plugin_beside_exe(lib: &str) -> Option<PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
        .map(|p| {
            let name = audit_host::plugin::library_file_name(lib);
            let beside = p.join(&name);
            if beside.exists() {
                beside
            } else {
                p.join("deps").join(name)
            }
        })
        .filter(|p| p.exists())
}

/// Owned command-line arguments.
fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| (*x).to_owned()).collect()
}

/// `a / b`, or 0 when `b` is not positive (a scenario that failed).
fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// The suite's table (scenario, target, result) and where its scenarios run.
struct Suite<'a> {
    dir: &'a Path,
    /// Arguments every scenario gets (`--signing-key FILE`).
    common: Vec<String>,
    json: bool,
    rows: Vec<(String, String, String)>,
}

impl Suite<'_> {
    /// The `--dir` of scenario `name`.
    fn dir(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    /// Runs one scenario in a child process, removes its directory, and adds its row:
    /// `judge`'s summary of the result, or the error.
    fn run(
        &mut self,
        label: &str,
        target: &str,
        a: Vec<String>,
        judge: &dyn Fn(&BenchResult) -> String,
    ) -> Option<BenchResult> {
        eprintln!("suite: {label} ...");
        let mut a = a;
        a.extend(self.common.iter().cloned());
        let result = bench_child(&a);
        remove_scenario_dir(&a);
        match result {
            Ok(r) => {
                if self.json {
                    print_bench(&r, true);
                }
                self.rows
                    .push((label.to_owned(), target.to_owned(), judge(&r)));
                Some(r)
            }
            Err(e) => {
                self.rows
                    .push((label.to_owned(), target.to_owned(), format!("error: {e}")));
                None
            }
        }
    }

    fn print_table(&self) {
        println!("| scenario | target | result |");
        println!("|---|---|---|");
        for (label, target, result) in &self.rows {
            println!("| {label} | {target} | {result} |");
        }
    }
}

/// A result against the baseline: events/s, the ratio, the baseline's rate.
fn against_baseline(r: &BenchResult) -> String {
    format!(
        "{:.0} events/s, {:.2} x baseline ({:.0}/s)",
        r.events_per_s, r.ratio_to_baseline, r.baseline_events_per_s
    )
}

/// Runs the suite in `dir`; `events` is `--events` (its default 200,000 means the suite's
/// own size, 2,000,000, for the large runs).
pub(crate) fn bench_suite(
    events: usize,
    json: bool,
    dir: &Path,
    signing_key: Option<&Path>,
) -> ExitCode {
    let large = if events == 200_000 { 2_000_000 } else { events };
    let sqlite = plugin_beside_exe("audit_backend_sqlite");
    let file_plugin = plugin_beside_exe("audit_backend_file");
    let common = signing_key.map_or_else(Vec::new, |k| {
        vec!["--signing-key".to_owned(), k.to_string_lossy().into_owned()]
    });
    let mut suite = Suite {
        dir,
        common,
        json,
        rows: Vec::new(),
    };
    let one = one_producer(&mut suite, large);
    let one_rate = one.as_ref().map_or(0.0, |r| r.events_per_s);
    let one_ratio = one.as_ref().map_or(0.0, |r| r.ratio_to_baseline);
    latency(&mut suite, large, one_rate);
    four_producers(&mut suite, large, one_rate, one_ratio);
    if let Some(lib) = sqlite {
        sqlite_plugin(&mut suite, &lib, large, one_rate);
    } else {
        eprintln!(
            "suite: sqlite plugin skipped: libaudit_backend_sqlite not found beside this binary"
        );
    }
    sync(&mut suite);
    memory(&mut suite, large);
    if let Some(lib) = file_plugin {
        file_plugin_vs_builtin(&mut suite, &lib, large);
    } else {
        eprintln!("suite: file plugin skipped: libaudit_backend_file not found beside this binary");
    }
    verify(&mut suite, large);
    suite.print_table();
    ExitCode::SUCCESS
}

fn one_producer(suite: &mut Suite<'_>, large: usize) -> Option<BenchResult> {
    let n = large.to_string();
    let dir = suite.dir("p1");
    suite.run(
        &format!("file, batched, 1 producer, {large} events"),
        ">= 0.8 x baseline",
        strings(&[
            "--events",
            &n,
            "--producers",
            "1",
            "--rounds",
            "5",
            "--dir",
            &dir,
        ]),
        &against_baseline,
    )
}

fn latency(suite: &mut Suite<'_>, large: usize, one_rate: f64) {
    let half = (one_rate / 2.0).max(1.0).round();
    let half_rate = half.to_string();
    let latency_events = (large / 4).to_string();
    let dir = suite.dir("latency");
    suite.run(
        &format!("latency at half the 1-producer rate ({half:.0}/s), batched"),
        "p99 <= 50 us",
        strings(&[
            "--events",
            &latency_events,
            "--rate",
            &half_rate,
            "--dir",
            &dir,
        ]),
        &|r| {
            format!(
                "p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us",
                r.p50_us, r.p99_us, r.p999_us
            )
        },
    );
}

fn four_producers(suite: &mut Suite<'_>, large: usize, one_rate: f64, one_ratio: f64) {
    let n = large.to_string();
    let dir = suite.dir("p4");
    suite.run(
        &format!("file, batched, 4 producers, {large} events"),
        ">= 0.9 x the 1-producer rate",
        strings(&[
            "--events",
            &n,
            "--producers",
            "4",
            "--rounds",
            "5",
            "--dir",
            &dir,
        ]),
        // Both runs are measured against the same single-threaded baseline, interleaved in
        // their own process: the ratio of their ratios cancels the machine's drift between
        // the two processes, which the ratio of raw rates does not.
        &|r| {
            format!(
                "{:.0} events/s, {:.2} x 1 producer (ratio of the two runs' median ratios to the baseline; raw rates {:.2} x)",
                r.events_per_s,
                ratio(r.ratio_to_baseline, one_ratio),
                ratio(r.events_per_s, one_rate)
            )
        },
    );
}

fn sqlite_plugin(suite: &mut Suite<'_>, lib: &Path, large: usize, one_rate: f64) {
    let lib_arg = format!("plugin:{}", lib.display());
    let events = (large / 10).to_string();
    let dir = suite.dir("sqlite");
    suite.run(
        &format!("sqlite plugin, batched, {events} events"),
        "report; ratio to the file backend",
        strings(&["--events", &events, "--backend", &lib_arg, "--dir", &dir]),
        &|r| {
            format!(
                "{:.0} events/s, {:.2} x file backend",
                r.events_per_s,
                ratio(r.events_per_s, one_rate)
            )
        },
    );
}

fn sync(suite: &mut Suite<'_>) {
    let dir = suite.dir("sync1");
    suite.run(
        "sync, 1 producer, 5,000 events",
        ">= 0.9 x baseline (fdatasync per event)",
        strings(&[
            "--events",
            "5000",
            "--producers",
            "1",
            "--durability",
            "sync",
            "--rounds",
            "5",
            "--dir",
            &dir,
        ]),
        &against_baseline,
    );
    let dir = suite.dir("sync64");
    suite.run(
        "sync, 64 producers, 64,000 events",
        ">= 0.8 x baseline (fdatasync per 64 events)",
        strings(&[
            "--events",
            "64000",
            "--producers",
            "64",
            "--durability",
            "sync",
            "--rounds",
            "5",
            "--dir",
            &dir,
        ]),
        &against_baseline,
    );
}

fn memory(suite: &mut Suite<'_>, large: usize) {
    let mem = (large * 5 / 2).to_string();
    let dir = suite.dir("mem");
    suite.run(
        &format!("memory, {mem} events, batched"),
        "peak RSS <= 64 MiB",
        strings(&["--events", &mem, "--dir", &dir]),
        &|r| {
            format!(
                "peak RSS {:.1} MiB",
                r.peak_rss_bytes as f64 / (1024.0 * 1024.0)
            )
        },
    );
}

fn file_plugin_vs_builtin(suite: &mut Suite<'_>, lib: &Path, large: usize) {
    const ROUNDS: usize = 5;
    let label = format!(
        "file backend built as a plugin (.so, through the ABI), batched, {} events, {ROUNDS} interleaved rounds",
        large / 2
    );
    let target = ">= 0.95 x the built-in file backend".to_owned();
    match file_plugin_ab(lib, large / 2, ROUNDS, suite.dir, suite.json) {
        Ok(ab) => suite.rows.push((
            label,
            target,
            format!(
                "{:.2} x (median of the rounds' ratios: {}); medians {:.0} vs {:.0} events/s built-in",
                ab.ratios[ab.ratios.len() / 2],
                ab.ratios
                    .iter()
                    .map(|r| format!("{r:.2}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                ab.plugin,
                ab.builtin,
            ),
        )),
        Err(e) => suite.rows.push((label, target, format!("error: {e}"))),
    }
}

fn verify(suite: &mut Suite<'_>, large: usize) {
    eprintln!("suite: verify ...");
    // The 1-producer run's directory holds only its last round: write the whole size once
    // (no baseline), then time verify against SHA-256 three times and keep the median.
    let n = large.to_string();
    let dir = suite.dir("verify");
    let verify = bench_child(&strings(&["--events", &n, "--no-baseline", "--dir", &dir]))
        .map_err(audit_host::Error::backend)
        .and_then(|_| {
            let trail_dir = suite.dir.join("verify").join("trail");
            let mut runs = (0..3)
                .map(|_| verify_vs_sha256(&trail_dir))
                .collect::<audit_host::Result<Vec<_>>>()?;
            runs.sort_by(|a, b| a.ratio_to_sha256.total_cmp(&b.ratio_to_sha256));
            Ok(runs.swap_remove(1))
        });
    if let (Ok(v), true) = (&verify, suite.json) {
        print_verify(v, true);
    }
    match verify {
        Ok(v) => suite.rows.push((
            format!("`audit verify` over the {large}-event directory"),
            ">= 0.8 x SHA-256 over the same bytes".into(),
            format!(
                "{:.0} MB/s vs {:.0} MB/s, {:.2} x ({} events, median of 3)",
                v.verify_mb_per_s, v.sha256_mb_per_s, v.ratio_to_sha256, v.events
            ),
        )),
        Err(e) => suite.rows.push((
            "verify".into(),
            ">= 0.8 x SHA-256".into(),
            format!("error: {e}", e = audit_format::error::chain(&e)),
        )),
    }
}
