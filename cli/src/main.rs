//! `audit`: record, verify and query audit trails from the command line.

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use audit_host::config::TrailConfig;
use audit_host::verify::{VerifyError, verify_dir_with_progress};
use audit_host::{
    AuditEvent, AuditEventType, AuditLogLevel, AuditTrail, Durability, Error, EventQuery,
    Integrity, Receipt,
};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use clap::{Args, Parser, Subcommand};

/// Exit code for bad input data (sysexits EX_DATAERR).
const EXIT_DATAERR: u8 = 65;
/// Exit code for usage, configuration and I/O errors.
const EXIT_USAGE: u8 = 2;

#[derive(Parser)]
#[command(
    name = "audit",
    version,
    about = "Tamper-evident audit trail: record events, verify the hash chain, query the log",
    long_about = "Tamper-evident audit trail: record events, verify the hash chain, query the log.\n\n\
        Events are stored one canonical JSON line each in daily files \
        (audit_YYYY-MM-DD.jsonl), sequenced and hash-chained (SHA-256, or HMAC-SHA256 with a key).",
    after_help = "Examples:\n  audit emit --dir ./audit_logs < examples/events.jsonl\n  audit verify ./audit_logs\n  \
        audit query ./audit_logs --event-type data_access --user alice --limit 10\n  audit config check examples/audit.toml"
)]
struct Cli {
    /// Show long diagnostics (for example abi_stable's full layout report when a plugin was
    /// built against an incompatible interface).
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read events (one JSON object per line) from stdin and record them.
    ///
    /// `event_type` and `message` are required; any other event field is optional
    /// (`metadata` is an object; `timestamp` and `event_id` may be given when importing).
    /// `sequence_number`, `previous_hash` and `checksum` are assigned by the trail and refused.
    /// A bad line stops the run with exit code 65 after every earlier event is written.
    Emit(EmitArgs),
    /// Check every audit_*.jsonl file in DIR: contiguous sequence numbers, each checksum
    /// recomputed over the stored bytes, each previous_hash link.
    ///
    /// Exit 0 with `ok: N events in F files`; 1 naming the first bad sequence as file:line;
    /// 2 for usage or I/O errors.
    Verify(VerifyArgs),
    /// Print the events in DIR that match every filter, newest first, as JSON lines.
    Query(QueryArgs),
    /// Configuration commands.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Backend plugin commands.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Measure a real trail against the tightest hand-written loop doing the same work.
    ///
    /// Logs realistic events (all 30 fields, ~900-byte lines) from concurrent producers,
    /// waits until all are durable, then runs the baseline in the same process. Reports
    /// events/s, MB/s, the ratio to the baseline, log_event latency percentiles and peak RSS.
    Bench(BenchArgs),
}

#[derive(Args)]
struct BenchArgs {
    /// Events to log.
    #[arg(long, value_name = "N", default_value_t = 200_000)]
    events: usize,
    /// Concurrent producers.
    #[arg(long, value_name = "P", default_value_t = 1)]
    producers: usize,
    /// `batched` or `sync`.
    #[arg(long, value_name = "MODE", value_parser = parse_durability, default_value = "batched")]
    durability: Durability,
    /// `file`, or `plugin:PATH` for a plugin library.
    #[arg(long, value_name = "BACKEND", default_value = "file")]
    backend: String,
    /// The plugin's `config`, as JSON (default: `{"path": "DIR/plugin-store"}`). A store inside DIR is emptied before each run and round; one elsewhere must be empty, since each run's chain starts at sequence 1.
    #[arg(long, value_name = "JSON")]
    plugin_config: Option<String>,
    /// Scratch directory (default: a new directory under the system's temp dir, removed at
    /// the end). With --suite, each scenario's subdirectory is removed when the scenario ends.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Pace the producers to this many events per second in total (for latency at a
    /// given load); default: as fast as possible.
    #[arg(long, value_name = "EVENTS_PER_S")]
    rate: Option<f64>,
    /// Keep the trail's files and report `audit verify` throughput over them against plain
    /// SHA-256 over the same bytes.
    #[arg(long)]
    verify: bool,
    /// One JSON object per line per scenario.
    #[arg(long)]
    json: bool,
    /// Run the standard scenarios (docs/benchmarks.md) and print their table. `--events`
    /// sets the size of the large runs (default there: 2,000,000).
    #[arg(long)]
    suite: bool,
    /// Skip the hand-written baseline loop (for runs compared with another run instead).
    #[arg(long)]
    no_baseline: bool,
    /// Split the run into R rounds, each timing the trail and the baseline back to back
    /// (in alternating order); `ratio_to_baseline` is then the median of the rounds' ratios,
    /// which one noisy moment does not move. With --verify, only the last round's files are
    /// verified.
    #[arg(long, value_name = "R", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
    rounds: u64,
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Load a plugin library (checks included) and print what it says about itself:
    /// `name`, `version`, `plugin_api`, `description`, then its configuration help.
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

#[derive(Args)]
struct EmitArgs {
    /// TOML configuration file (see docs/configuration.md).
    #[arg(long, value_name = "FILE", conflicts_with = "dir")]
    config: Option<PathBuf>,
    /// Directory for the built-in file backend when no --config is given.
    #[arg(long, value_name = "DIR", default_value = "audit_logs")]
    dir: PathBuf,
    /// Override the durability mode: `batched` or `sync` (each event fdatasync'd before
    /// `emit` reads the next line).
    #[arg(long, value_name = "MODE", value_parser = parse_durability)]
    durability: Option<Durability>,
    /// Print `SEQUENCE EVENT_ID` on stdout for each event as soon as it is durable according
    /// to the durability mode (with sync: after its fdatasync).
    #[arg(long)]
    ack: bool,
    /// At the end, print the trail's statistics as JSON on stderr: queue depth, and per
    /// backend its state, delivered events and sequence, retries, fatal errors, spooled
    /// events and bytes, dropped events, last error and when (docs/operations.md).
    #[arg(long)]
    stats: bool,
}

fn parse_durability(s: &str) -> Result<Durability, String> {
    match s {
        "batched" => Ok(Durability::Batched),
        "sync" => Ok(Durability::Sync),
        other => Err(format!(
            "`{other}` is not a durability mode: use batched or sync"
        )),
    }
}

#[derive(Args)]
struct VerifyArgs {
    /// HMAC key file, for trails configured with [trail.integrity] hmac_key_file.
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// The audit directory.
    dir: PathBuf,
}

#[derive(Args)]
struct QueryArgs {
    /// The audit directory.
    dir: PathBuf,
    /// Only events at or after T (RFC 3339, or YYYY-MM-DD for the start of that UTC day).
    #[arg(long, value_name = "T", value_parser = parse_since)]
    since: Option<DateTime<Utc>>,
    /// Only events at or before T (RFC 3339, or YYYY-MM-DD for the end of that UTC day).
    #[arg(long, value_name = "T", value_parser = parse_until)]
    until: Option<DateTime<Utc>>,
    /// Only this event type (e.g. data_access, authentication_failed).
    #[arg(long, value_name = "X", value_parser = parse_event_type)]
    event_type: Option<AuditEventType>,
    /// Only this level: debug, info, warning, error, critical, security.
    #[arg(long, value_name = "L", value_parser = parse_level)]
    level: Option<AuditLogLevel>,
    /// Only this user_id.
    #[arg(long, value_name = "U")]
    user: Option<String>,
    /// Only this component.
    #[arg(long, value_name = "C")]
    component: Option<String>,
    /// At most N events.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a configuration file and print the resolved settings and backends. Plugin
    /// libraries are loaded and inspected (nothing else is called).
    Check {
        /// The TOML file.
        file: PathBuf,
    },
}

fn parse_time(s: &str, end_of_day: bool) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let t = if end_of_day {
            NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999)
        } else {
            Some(NaiveTime::MIN)
        };
        if let Some(t) = t {
            return Ok(d.and_time(t).and_utc());
        }
    }
    Err(format!(
        "`{s}` is not a time: use RFC 3339 (2026-01-31T12:00:00Z) or a date (2026-01-31)"
    ))
}

fn parse_since(s: &str) -> Result<DateTime<Utc>, String> {
    parse_time(s, false)
}

fn parse_until(s: &str) -> Result<DateTime<Utc>, String> {
    parse_time(s, true)
}

fn parse_event_type(s: &str) -> Result<AuditEventType, String> {
    s.parse()
}

fn parse_level(s: &str) -> Result<AuditLogLevel, String> {
    s.parse()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbose = cli.verbose;
    match cli.command {
        Command::Emit(a) => emit(a, verbose),
        Command::Verify(a) => verify(&a),
        Command::Query(a) => query(a),
        Command::Config(ConfigCommand::Check { file }) => config_check(&file, verbose),
        Command::Bench(a) => bench(&a),
        Command::Plugin(PluginCommand::Inspect {
            path,
            allow_insecure_permissions,
            sha256,
        }) => plugin_inspect(&path, allow_insecure_permissions, sha256, verbose),
    }
}

/// Prints an error; with `--verbose`, also its long details (plugin layout reports).
fn report(prefix: &str, e: &Error, verbose: bool) {
    eprintln!("{prefix}: {e}");
    if let Error::Plugin {
        details: Some(details),
        ..
    } = e
        && verbose
    {
        eprintln!("{details}");
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
            let text = format!(
                "name: {}\nversion: {}\nplugin_api: {}\ndescription: {}\n\n{}\n",
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

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| {
            eprintln!("audit: cannot start the async runtime: {e}");
            ExitCode::from(EXIT_USAGE)
        })
}

/// Acknowledgements waiting for their events to become durable (`emit --ack`).
#[derive(Default)]
struct Acks {
    pending: std::collections::VecDeque<Receipt>,
}

impl Acks {
    /// Prints every pending acknowledgement up to `durable` (all of them with `u64::MAX`).
    fn print_durable(&mut self, durable: u64) {
        let stdout = io::stdout();
        let mut out = stdout.lock();
        while self
            .pending
            .front()
            .is_some_and(|r| r.sequence_number <= durable)
        {
            if let Some(r) = self.pending.pop_front() {
                let _ = writeln!(out, "{} {}", r.sequence_number, r.event_id);
            }
        }
        // Each acknowledgement leaves as soon as its event is durable.
        let _ = out.flush();
    }
}

type Shared<T> = std::sync::Arc<std::sync::Mutex<T>>;

fn emit(args: EmitArgs, verbose: bool) -> ExitCode {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let builder = match &args.config {
        Some(path) => TrailConfig::load(path).and_then(|c| c.builder()),
        None => Ok(AuditTrail::builder().storage_path(&args.dir)),
    };
    let trail = builder.and_then(|b| match args.durability {
        Some(d) => b.durability(d).build(),
        None => b.build(),
    });
    let trail = match trail {
        Ok(t) => std::sync::Arc::new(t),
        Err(e) => {
            report("audit emit", &e, verbose);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let acks: Shared<Acks> = Shared::default();
    let interrupted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    #[cfg(unix)]
    if let Err(e) = on_signal_close(&trail, &acks, &interrupted, args.ack) {
        eprintln!("audit emit: cannot install signal handlers: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    let lock_acks = || {
        acks.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    // In batched mode events become durable after `log` returned: acknowledge them as the
    // trail syncs, also while stdin is quiet.
    let ack_stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ack_thread = args.ack.then(|| {
        let (trail, acks, stop) = (trail.clone(), acks.clone(), ack_stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(20));
                let durable = trail.durable_sequence();
                acks.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .print_durable(durable);
            }
        })
    });
    rt.block_on(async {
        let mut count = 0u64;
        let mut failure: Option<(u8, String)> = None;
        let stdin = io::stdin();
        let mut input = stdin.lock();
        let mut line = String::new();
        let mut line_no = 0u64;
        loop {
            line.clear();
            match input.read_line(&mut line) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    failure = Some((
                        EXIT_DATAERR,
                        format!("stdin line {}: cannot read: {e}", line_no + 1),
                    ));
                    break;
                }
            }
            line_no += 1;
            let text = line.trim();
            if text.is_empty() {
                continue;
            }
            let event = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text)
                .map_err(|e| format!("stdin line {line_no}: not a JSON object: {e}"))
                .and_then(|map| {
                    AuditEvent::from_map(map, false).map_err(|e| match e {
                        Error::InvalidEvent { key, message } => {
                            format!("stdin line {line_no}: key `{key}`: {message}")
                        }
                        other => format!("stdin line {line_no}: {other}"),
                    })
                });
            let event = match event {
                Ok(ev) => ev,
                Err(msg) => {
                    failure = Some((EXIT_DATAERR, msg));
                    break;
                }
            };
            match trail.log_receipt(event).await {
                Ok(receipt) => {
                    if args.ack {
                        let mut acks = lock_acks();
                        acks.pending.push_back(receipt);
                        acks.print_durable(trail.durable_sequence());
                    }
                }
                Err(e @ Error::NotDurable { .. }) => {
                    // Accepted and queued: close below still tries to store it.
                    failure = Some((1, format!("stdin line {line_no}: {e}")));
                    count += 1;
                    break;
                }
                Err(e) => {
                    failure = Some((1, format!("stdin line {line_no}: event not recorded: {e}")));
                    break;
                }
            }
            count += 1;
        }
        if interrupted.load(std::sync::atomic::Ordering::SeqCst) {
            // The signal handler closes the trail, acknowledges what is durable and exits.
            std::future::pending::<()>().await;
        }
        let closed = trail.close().await;
        ack_stop.store(true, std::sync::atomic::Ordering::Release);
        if let Some(t) = ack_thread {
            let _ = t.join();
        }
        if args.ack {
            let durable = if closed.is_ok() { u64::MAX } else { trail.durable_sequence() };
            lock_acks().print_durable(durable);
        }
        if let Err(e) = &closed {
            eprintln!("audit emit: closing the trail failed: {e}");
        }
        if args.stats {
            match serde_json::to_string_pretty(&trail.statistics()) {
                Ok(json) => eprintln!("{json}"),
                Err(e) => eprintln!("audit emit: cannot print statistics: {e}"),
            }
        }
        match failure {
            Some((code, msg)) => {
                eprintln!("audit emit: {msg}");
                if closed.is_ok() {
                    eprintln!(
                        "audit emit: emitted {count} events before the error (all written and flushed)"
                    );
                } else {
                    eprintln!(
                        "audit emit: {count} events were accepted before the error; see above for what could not be stored"
                    );
                }
                ExitCode::from(if closed.is_err() { 1 } else { code })
            }
            None if closed.is_err() => ExitCode::from(1),
            None => {
                eprintln!("emitted {count} events");
                ExitCode::SUCCESS
            }
        }
    })
}

/// On SIGINT or SIGTERM: stop taking input, close the trail (every accepted event is
/// written and synced), print the remaining acknowledgements, exit 130 or 143.
#[cfg(unix)]
fn on_signal_close(
    trail: &std::sync::Arc<AuditTrail>,
    acks: &Shared<Acks>,
    interrupted: &std::sync::Arc<std::sync::atomic::AtomicBool>,
    ack: bool,
) -> io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    let (trail, acks, interrupted) = (trail.clone(), acks.clone(), interrupted.clone());
    std::thread::Builder::new()
        .name("audit-signals".into())
        .spawn(move || {
            let Some(signal) = signals.forever().next() else {
                return;
            };
            interrupted.store(true, std::sync::atomic::Ordering::SeqCst);
            let name = if signal == SIGINT { "SIGINT" } else { "SIGTERM" };
            eprintln!(
                "audit emit: {name}: closing the trail; accepted events are written and synced first"
            );
            let closed = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .map_err(|e| e.to_string())
                .and_then(|rt| rt.block_on(trail.close()).map_err(|e| e.to_string()));
            let mut acks = acks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if ack {
                let durable = if closed.is_ok() { u64::MAX } else { trail.durable_sequence() };
                acks.print_durable(durable);
            }
            match closed {
                Ok(()) => eprintln!("audit emit: closed after {name}"),
                Err(e) => eprintln!("audit emit: closing after {name} failed: {e}"),
            }
            std::process::exit(128 + signal);
        })?;
    Ok(())
}

/// A one-line progress display on stderr, shown only on a terminal and only once the work
/// has taken more than a second.
struct Progress {
    label: &'static str,
    /// Counting bytes (shown in MiB) rather than events.
    bytes: bool,
    enabled: bool,
    started: Instant,
    last: Instant,
    shown: bool,
}

impl Progress {
    fn new(label: &'static str, bytes: bool) -> Self {
        let now = Instant::now();
        Self {
            label,
            bytes,
            enabled: io::stderr().is_terminal(),
            started: now,
            last: now,
            shown: false,
        }
    }

    fn update(&mut self, done: u64, total: u64) {
        if !self.enabled
            || self.started.elapsed() < Duration::from_secs(1)
            || self.last.elapsed() < Duration::from_millis(100)
        {
            return;
        }
        self.last = Instant::now();
        self.shown = true;
        let pct = (done * 100).checked_div(total).unwrap_or(100);
        let secs = self.started.elapsed().as_secs_f64();
        let bar: String = (0..30)
            .map(|i| if i * 100 / 30 < pct { '#' } else { '.' })
            .collect();
        let label = self.label;
        if self.bytes {
            let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
            eprint!(
                "\r{label} [{bar}] {pct:>3}% {:.0}/{:.0} MiB {:.0} MiB/s",
                mb(done),
                mb(total),
                mb(done) / secs
            );
        } else {
            eprint!(
                "\r{label} [{bar}] {pct:>3}% {done}/{total} events {:.0}/s",
                done as f64 / secs
            );
        }
        let _ = io::stderr().flush();
    }

    fn finish(&self) {
        if self.shown {
            eprint!("\r{:78}\r", "");
        }
    }
}

fn verify(args: &VerifyArgs) -> ExitCode {
    if !args.dir.is_dir() {
        eprintln!("audit verify: {} is not a directory", args.dir.display());
        return ExitCode::from(EXIT_USAGE);
    }
    let integrity = match &args.key_file {
        Some(path) => match audit_host::config::read_key_file(path) {
            Ok(i) => i,
            Err(msg) => {
                eprintln!("audit verify: --key-file: {msg}");
                return ExitCode::from(EXIT_USAGE);
            }
        },
        None => Integrity::Sha256,
    };
    let mut progress = Progress::new("verifying", true);
    let result = verify_dir_with_progress(&args.dir, &integrity, &mut |d, t| progress.update(d, t));
    progress.finish();
    match result {
        Ok(report) => {
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
            println!("ok: {} events in {} files", report.events, report.files);
            ExitCode::SUCCESS
        }
        Err(e @ VerifyError::Broken { .. }) => {
            println!("FAILED: {e}");
            if args.key_file.is_none() {
                eprintln!("hint: if this trail uses an HMAC key, pass it with --key-file");
            }
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("audit verify: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn query(args: QueryArgs) -> ExitCode {
    if !args.dir.is_dir() {
        eprintln!("audit query: {} is not a directory", args.dir.display());
        return ExitCode::from(EXIT_USAGE);
    }
    let q = EventQuery {
        start_time: args.since,
        end_time: args.until,
        event_type: args.event_type,
        log_level: args.level,
        user_id: args.user,
        component: args.component,
        limit: args.limit,
    };
    let lines = match audit_host::query_dir_counting(&args.dir, &q) {
        Ok((lines, 0)) => lines,
        Ok((lines, unreadable)) => {
            eprintln!(
                "audit query: warning: {unreadable} line(s) could not be read as events and were skipped; run `audit verify {}`",
                args.dir.display()
            );
            lines
        }
        Err(e) => {
            eprintln!("audit query: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    for line in &lines {
        if let Err(e) = out
            .write_all(line.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
        {
            return broken_pipe_ok(&e);
        }
    }
    if let Err(e) = out.flush() {
        return broken_pipe_ok(&e);
    }
    ExitCode::SUCCESS
}

fn broken_pipe_ok(e: &io::Error) -> ExitCode {
    if e.kind() == io::ErrorKind::BrokenPipe {
        ExitCode::SUCCESS
    } else {
        eprintln!("audit: cannot write output: {e}");
        ExitCode::from(EXIT_USAGE)
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
        if let audit_host::config::BackendConfig::Plugin { .. } = backend {
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

fn bench(args: &BenchArgs) -> ExitCode {
    use audit_host::bench::{BenchBackend, Scenario};
    let (dir, temporary) = match &args.dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("audit-bench-{}", std::process::id())),
            true,
        ),
    };
    let backend = match args.backend.as_str() {
        "file" => BenchBackend::File,
        other => match other.strip_prefix("plugin:") {
            Some(path) => BenchBackend::Plugin {
                library: PathBuf::from(path),
                config_json: args.plugin_config.clone().unwrap_or_else(|| {
                    serde_json::json!({ "path": dir.join("plugin-store").to_string_lossy() })
                        .to_string()
                }),
            },
            None => {
                eprintln!("audit bench: --backend `{other}`: use `file` or `plugin:PATH`");
                return ExitCode::from(EXIT_USAGE);
            }
        },
    };
    if args.suite {
        let code = bench_suite(args, &dir);
        if temporary {
            let _ = std::fs::remove_dir_all(&dir);
        }
        return code;
    }
    let scenario = Scenario {
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
        dir: dir.clone(),
        rate: args.rate,
        skip_baseline: args.no_baseline,
        rounds: args.rounds as usize,
    };
    let progress = std::sync::Mutex::new(Progress::new("bench", false));
    let result = audit_host::bench::run(&scenario, &|done, total| {
        progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .update(done, total);
    });
    progress
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .finish();
    let result = result.and_then(|r| {
        let verify = if args.verify {
            Some(audit_host::bench::verify_vs_sha256(&dir.join("trail"))?)
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
                if args.json {
                    println!("{}", serde_json::to_string(&v).unwrap_or_default());
                } else {
                    println!(
                        "verify: {:.0} MB/s over {:.0} MB; SHA-256 alone {:.0} MB/s; ratio {:.2}",
                        v.verify_mb_per_s, v.megabytes, v.sha256_mb_per_s, v.ratio_to_sha256
                    );
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("audit bench: {e}");
            ExitCode::from(1)
        }
    }
}

fn print_bench(r: &audit_host::bench::BenchResult, json: bool) {
    if json {
        println!("{}", serde_json::to_string(r).unwrap_or_default());
    } else {
        println!(
            "{}: {} events, {} producer(s), {}, {}: {:.0} events/s ({:.1} MB/s, {:.0} B/event); baseline {:.0} events/s, ratio {:.2}; log_event p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us; peak RSS {:.1} MiB",
            r.scenario,
            r.events,
            r.producers,
            r.durability,
            r.backend,
            r.events_per_s,
            r.mb_per_s,
            r.bytes_per_event,
            r.baseline_events_per_s,
            r.ratio_to_baseline,
            r.p50_us,
            r.p99_us,
            r.p999_us,
            r.peak_rss_bytes as f64 / (1024.0 * 1024.0)
        );
    }
}

/// Runs one scenario in a child process (so peak RSS is its own) and parses its JSON line.
fn bench_child(args: &[String]) -> Result<audit_host::bench::BenchResult, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = std::process::Command::new(exe)
        .arg("bench")
        .arg("--json")
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("`audit bench {}` failed", args.join(" ")));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().ok_or("no output")?;
    serde_json::from_str(line).map_err(|e| format!("unreadable result: {e}"))
}

/// Removes a suite scenario's `--dir` once it has run, and commits the removal: the next
/// scenario then starts without the gigabytes of page cache and the freed blocks of this
/// one (after the 5,000,000-event memory scenario, the file backend as a plugin ran its first
/// rounds at 0.43-0.58 x the built-in backend, its later ones at 1.1-1.3 x).
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

/// How the file backend built as a plugin compares with the built-in one.
struct AbResult {
    /// Median events/s of the plugin runs.
    plugin: f64,
    /// Median events/s of the built-in runs.
    builtin: f64,
    /// Each round's plugin / built-in ratio (the two runs of a round ran back to back),
    /// sorted: the median is the figure judged against the target.
    ratios: Vec<f64>,
}

/// The built-in file backend and the same code loaded as a plugin, `events` each, in
/// `rounds` interleaved rounds (A B, B A, A B, ...) so the machine's drift hits both alike;
/// each run in a fresh directory, removed afterwards.
fn file_plugin_ab(
    lib: &Path,
    events: usize,
    rounds: usize,
    dir: &Path,
    json: bool,
) -> Result<AbResult, String> {
    let n = events.to_string();
    let lib_arg = format!("plugin:{}", lib.display());
    let (mut plugin, mut builtin, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        eprintln!(
            "suite: file plugin vs built-in, round {} of {rounds} ...",
            round + 1
        );
        let mut order = [false, true];
        if round % 2 == 1 {
            order.reverse();
        }
        let mut pair = [0.0; 2];
        for is_plugin in order {
            let run_dir = dir.join(if is_plugin { "ab-plugin" } else { "ab-builtin" });
            let mut a: Vec<String> = vec![
                "--events".into(),
                n.clone(),
                "--no-baseline".into(),
                "--dir".into(),
                run_dir.to_string_lossy().into_owned(),
            ];
            if is_plugin {
                a.extend(["--backend".into(), lib_arg.clone()]);
            }
            let r = bench_child(&a);
            let _ = std::fs::remove_dir_all(&run_dir);
            let r = r?;
            if json {
                print_bench(&r, true);
            }
            pair[usize::from(is_plugin)] = r.events_per_s;
        }
        builtin.push(pair[0]);
        plugin.push(pair[1]);
        ratios.push(pair[1] / pair[0]);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (plugin, builtin) = (median(&mut plugin), median(&mut builtin));
    ratios.sort_by(f64::total_cmp);
    Ok(AbResult {
        plugin,
        builtin,
        ratios,
    })
}

fn bench_suite(args: &BenchArgs, dir: &Path) -> ExitCode {
    let large = if args.events == 200_000 {
        2_000_000
    } else {
        args.events
    };
    let d = |name: &str| dir.join(name).to_string_lossy().into_owned();
    // A plugin library beside this binary (`cargo build --release -p ...`), or in `deps/`
    // (where `cargo test` and `cargo bench` put the plugins they build).
    let beside_exe = |lib: &str| {
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
    };
    let sqlite = beside_exe("audit_backend_sqlite");
    let file_plugin = beside_exe("audit_backend_file");
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let mut run = |label: &str,
                   target: &str,
                   a: Vec<String>,
                   judge: &dyn Fn(&audit_host::bench::BenchResult) -> String| {
        eprintln!("suite: {label} ...");
        let result = bench_child(&a);
        remove_scenario_dir(&a);
        match result {
            Ok(r) => {
                if args.json {
                    print_bench(&r, true);
                }
                rows.push((label.to_owned(), target.to_owned(), judge(&r)));
                Some(r)
            }
            Err(e) => {
                rows.push((label.to_owned(), target.to_owned(), format!("error: {e}")));
                None
            }
        }
    };
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    let n = large.to_string();
    let one = run(
        &format!("file, batched, 1 producer, {large} events"),
        ">= 0.8 x baseline",
        s(&[
            "--events",
            &n,
            "--producers",
            "1",
            "--rounds",
            "5",
            "--dir",
            &d("p1"),
        ]),
        &|r| {
            format!(
                "{:.0} events/s, {:.2} x baseline ({:.0}/s)",
                r.events_per_s, r.ratio_to_baseline, r.baseline_events_per_s
            )
        },
    );
    let one_rate = one.as_ref().map_or(0.0, |r| r.events_per_s);
    let one_ratio = one.as_ref().map_or(0.0, |r| r.ratio_to_baseline);
    let half = (one_rate / 2.0).max(1.0).round();
    let half_rate = half.to_string();
    let latency_events = (large / 4).to_string();
    run(
        &format!("latency at half the 1-producer rate ({half:.0}/s), batched"),
        "p99 <= 50 us",
        s(&[
            "--events",
            &latency_events,
            "--rate",
            &half_rate,
            "--dir",
            &d("latency"),
        ]),
        &|r| {
            format!(
                "p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us",
                r.p50_us, r.p99_us, r.p999_us
            )
        },
    );
    run(
        &format!("file, batched, 4 producers, {large} events"),
        ">= 0.9 x the 1-producer rate",
        s(&[
            "--events",
            &n,
            "--producers",
            "4",
            "--rounds",
            "5",
            "--dir",
            &d("p4"),
        ]),
        // Both runs are measured against the same single-threaded baseline, interleaved in
        // their own process: the ratio of their ratios cancels the machine's drift between
        // the two processes, which the ratio of raw rates does not.
        &|r| {
            format!(
                "{:.0} events/s, {:.2} x 1 producer (ratio of the two runs' median ratios to the baseline; raw rates {:.2} x)",
                r.events_per_s,
                if one_ratio > 0.0 {
                    r.ratio_to_baseline / one_ratio
                } else {
                    0.0
                },
                if one_rate > 0.0 {
                    r.events_per_s / one_rate
                } else {
                    0.0
                }
            )
        },
    );
    if let Some(lib) = sqlite {
        let lib_arg = format!("plugin:{}", lib.display());
        let events = (large / 10).to_string();
        run(
            &format!("sqlite plugin, batched, {events} events"),
            "report; ratio to the file backend",
            s(&[
                "--events",
                &events,
                "--backend",
                &lib_arg,
                "--dir",
                &d("sqlite"),
            ]),
            &|r| {
                format!(
                    "{:.0} events/s, {:.2} x file backend",
                    r.events_per_s,
                    if one_rate > 0.0 {
                        r.events_per_s / one_rate
                    } else {
                        0.0
                    }
                )
            },
        );
    } else {
        eprintln!(
            "suite: sqlite plugin skipped: libaudit_backend_sqlite not found beside this binary"
        );
    }
    run(
        "sync, 1 producer, 5,000 events",
        ">= 0.9 x baseline (fdatasync per event)",
        s(&[
            "--events",
            "5000",
            "--producers",
            "1",
            "--durability",
            "sync",
            "--rounds",
            "5",
            "--dir",
            &d("sync1"),
        ]),
        &|r| {
            format!(
                "{:.0} events/s, {:.2} x baseline ({:.0}/s)",
                r.events_per_s, r.ratio_to_baseline, r.baseline_events_per_s
            )
        },
    );
    run(
        "sync, 64 producers, 64,000 events",
        ">= 0.8 x baseline (fdatasync per 64 events)",
        s(&[
            "--events",
            "64000",
            "--producers",
            "64",
            "--durability",
            "sync",
            "--rounds",
            "5",
            "--dir",
            &d("sync64"),
        ]),
        &|r| {
            format!(
                "{:.0} events/s, {:.2} x baseline ({:.0}/s)",
                r.events_per_s, r.ratio_to_baseline, r.baseline_events_per_s
            )
        },
    );
    let mem = (large * 5 / 2).to_string();
    run(
        &format!("memory, {mem} events, batched"),
        "peak RSS <= 64 MiB",
        s(&["--events", &mem, "--dir", &d("mem")]),
        &|r| {
            format!(
                "peak RSS {:.1} MiB",
                r.peak_rss_bytes as f64 / (1024.0 * 1024.0)
            )
        },
    );
    if let Some(lib) = file_plugin {
        const ROUNDS: usize = 5;
        let label = format!(
            "file backend built as a plugin (.so, through the ABI), batched, {} events, {ROUNDS} interleaved rounds",
            large / 2
        );
        let target = ">= 0.95 x the built-in file backend".to_owned();
        match file_plugin_ab(&lib, large / 2, ROUNDS, dir, args.json) {
            Ok(ab) => rows.push((
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
            Err(e) => rows.push((label, target, format!("error: {e}"))),
        }
    } else {
        eprintln!("suite: file plugin skipped: libaudit_backend_file not found beside this binary");
    }
    eprintln!("suite: verify ...");
    // The 1-producer run's directory holds only its last round: write the whole size once
    // (no baseline), then time verify against SHA-256 three times and keep the median.
    let verify = bench_child(&s(&[
        "--events",
        &n,
        "--no-baseline",
        "--dir",
        &d("verify"),
    ]))
    .map_err(audit_host::Error::backend)
    .and_then(|_| {
        let trail_dir = dir.join("verify").join("trail");
        let mut runs = (0..3)
            .map(|_| audit_host::bench::verify_vs_sha256(&trail_dir))
            .collect::<audit_host::Result<Vec<_>>>()?;
        runs.sort_by(|a, b| a.ratio_to_sha256.total_cmp(&b.ratio_to_sha256));
        Ok(runs.swap_remove(1))
    });
    if let (Ok(v), true) = (&verify, args.json) {
        println!("{}", serde_json::to_string(v).unwrap_or_default());
    }
    match verify {
        Ok(v) => rows.push((
            format!("`audit verify` over the {large}-event directory"),
            ">= 0.8 x SHA-256 over the same bytes".into(),
            format!(
                "{:.0} MB/s vs {:.0} MB/s, {:.2} x ({} events, median of 3)",
                v.verify_mb_per_s, v.sha256_mb_per_s, v.ratio_to_sha256, v.events
            ),
        )),
        Err(e) => rows.push((
            "verify".into(),
            ">= 0.8 x SHA-256".into(),
            format!("error: {e}"),
        )),
    }
    println!("| scenario | target | result |");
    println!("|---|---|---|");
    for (label, target, result) in &rows {
        println!("| {label} | {target} | {result} |");
    }
    ExitCode::SUCCESS
}
