//! `audit emit`: read events (one JSON object per line) from stdin and record them.

mod acks;
mod input;
mod rejects;
#[cfg(unix)]
mod signals;

use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use audit_format::numbers::find_inexact_number;
use audit_host::config::TrailConfig;
use audit_host::{AuditEvent, AuditTrail, Durability, Error};
use clap::Args;

use super::{EXIT_DATAERR, EXIT_IOERR, EXIT_USAGE, count, fail, parse_durability, runtime};
use acks::{Acks, Shared};
use input::{DEFAULT_MAX_EVENT_BYTES, Line, LineReader};
use rejects::Rejects;

#[derive(Args)]
pub(crate) struct EmitArgs {
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
    /// At the end, print the trail's statistics as JSON: queue depth, and per backend its
    /// state, delivered events and sequence, retries, fatal errors, spooled events and bytes,
    /// dropped events, last error and when, and what the backend says of itself: its health
    /// and its counters (docs/operations.md). Without DEST: indented on stderr. DEST `-`:
    /// one line on stdout (not with --ack); a path: one line in that file (replaced, mode
    /// 0600). Either is a single JSON object that `jq` reads.
    #[arg(long, value_name = "DEST", num_args = 0..=1)]
    stats: Option<Option<PathBuf>>,
    /// The longest input line accepted, in bytes (the newline not counted). A longer line
    /// stops the run with exit code 65 after every earlier event is written; it is not read
    /// further.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_EVENT_BYTES as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_event_bytes: u64,
    /// Keep going past input lines that are not events: append each to FILE as one JSON
    /// object (`line`, `error`, `input`, `truncated`; created with mode 0600), and exit 0
    /// when every other line was recorded. Without it the first bad line stops the run (65).
    #[arg(long, value_name = "FILE")]
    rejects: Option<PathBuf>,
}

/// Why reading stopped early: the exit code (when closing succeeds) and the message.
type Failure = (u8, String);

pub(crate) fn emit(args: EmitArgs, verbose: bool) -> ExitCode {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    if args.ack && matches!(&args.stats, Some(Some(p)) if p.as_os_str() == "-") {
        eprintln!(
            "audit emit: --stats - and --ack both write to stdout; give --stats a file (--stats stats.json)"
        );
        return ExitCode::from(EXIT_USAGE);
    }
    let mut rejects = match args.rejects.as_deref().map(Rejects::open).transpose() {
        Ok(r) => r,
        Err(msg) => {
            eprintln!("audit emit: {msg}");
            return ExitCode::from(EXIT_IOERR);
        }
    };
    let trail = match build_trail(&args) {
        Ok(t) => Arc::new(t),
        Err(e) => return fail("audit emit", &e, verbose),
    };
    let acks: Shared<Acks> = Shared::default();
    let interrupted = Arc::new(AtomicBool::new(false));
    #[cfg(unix)]
    if let Err(e) = signals::on_signal_close(&trail, &acks, &interrupted, args.ack) {
        eprintln!("audit emit: cannot install signal handlers: {e}");
        return ExitCode::from(EXIT_IOERR);
    }
    // In batched mode events become durable after `log` returned: acknowledge them as the
    // trail syncs, also while stdin is quiet.
    let ack_stop = Arc::new(AtomicBool::new(false));
    let ack_thread = args
        .ack
        .then(|| spawn_ack_printer(&trail, &acks, &ack_stop));
    rt.block_on(async {
        let limit = usize::try_from(args.max_event_bytes).unwrap_or(usize::MAX);
        let (count, mut failure) =
            log_stdin(&trail, args.ack.then_some(&acks), limit, rejects.as_mut()).await;
        let rejected = match rejects.map(Rejects::finish).transpose() {
            Ok(r) => r,
            Err(f) => {
                failure = failure.or(Some(f));
                None
            }
        };
        if interrupted.load(Ordering::SeqCst) {
            // The signal handler closes the trail, acknowledges what is durable and exits.
            std::future::pending::<()>().await;
        }
        let closed = trail.close().await;
        ack_stop.store(true, Ordering::Release);
        if let Some(t) = ack_thread {
            let _ = t.join();
        }
        if args.ack {
            let durable = if closed.is_ok() {
                u64::MAX
            } else {
                trail.durable_sequence()
            };
            acks::lock(&acks).print_durable(durable);
        }
        if let Err(e) = &closed {
            eprintln!("audit emit: closing the trail failed: {e}");
        }
        if let Some(dest) = &args.stats
            && let Err(e) = write_stats(&trail.statistics(), dest.as_deref())
        {
            failure = failure.or(Some((EXIT_IOERR, e)));
        }
        if let Some((n, path)) = rejected.filter(|(n, _)| *n > 0) {
            eprintln!(
                "audit emit: {n} input line(s) were not events and were not recorded; see {}",
                path.display()
            );
        }
        exit_code(failure, count, closed.is_ok())
    })
}

/// Writes the statistics where `--stats` says: indented on stderr (no DEST), one line on
/// stdout (`-`), or one line in a file (replaced, mode 0600).
fn write_stats(stats: &audit_host::Statistics, dest: Option<&Path>) -> Result<(), String> {
    use std::io::Write as _;
    let Some(dest) = dest else {
        let json = serde_json::to_string_pretty(stats)
            .map_err(|e| format!("cannot print statistics: {e}"))?;
        eprintln!("{json}");
        return Ok(());
    };
    let mut json =
        serde_json::to_string(stats).map_err(|e| format!("cannot print statistics: {e}"))?;
    json.push('\n');
    if dest.as_os_str() == "-" {
        let mut out = io::stdout().lock();
        return out
            .write_all(json.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| format!("cannot write statistics to stdout: {e}"));
    }
    let mut options = std::fs::OpenOptions::new();
    options.create(true).write(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options
        .open(dest)
        .and_then(|mut f| f.write_all(json.as_bytes()))
        .map_err(|e| format!("cannot write statistics to {}: {e}", dest.display()))
}

/// The trail from `--config` or `--dir`, with `--durability` applied.
fn build_trail(args: &EmitArgs) -> Result<AuditTrail, Error> {
    let builder = match &args.config {
        Some(path) => TrailConfig::load(path).and_then(|c| c.builder()),
        None => Ok(AuditTrail::builder().storage_path(&args.dir)),
    };
    builder.and_then(|b| match args.durability {
        Some(d) => b.durability(d).build(),
        None => b.build(),
    })
}

/// A thread printing the acknowledgements of events that became durable, every 20 ms,
/// until `stop`.
fn spawn_ack_printer(
    trail: &Arc<AuditTrail>,
    acks: &Shared<Acks>,
    stop: &Arc<AtomicBool>,
) -> JoinHandle<()> {
    let (trail, acks, stop) = (trail.clone(), acks.clone(), stop.clone());
    std::thread::spawn(move || {
        while !stop.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(20));
            let durable = trail.durable_sequence();
            acks::lock(&acks).print_durable(durable);
        }
    })
}

/// What the next input line is.
enum Next {
    End,
    /// An empty line: skipped.
    Blank,
    Event(Box<AuditEvent>),
    /// Not an event: the message (naming the line), and whether only the first
    /// `--max-event-bytes` + 1 bytes were read.
    Bad(String, bool),
}

/// Reads and parses the next line of `input` into `line` (its number `line_no`).
fn next_event<R: io::BufRead>(
    input: &mut LineReader<R>,
    line: &mut Vec<u8>,
    line_no: u64,
    limit: usize,
) -> Next {
    let bad = |msg: String| Next::Bad(format!("stdin line {line_no}: {msg}"), false);
    let text = match input.next(line) {
        Ok(Line::End) => return Next::End,
        Ok(Line::Read) => std::str::from_utf8(line),
        Ok(Line::TooLong) => {
            let msg = format!(
                "stdin line {line_no}: longer than --max-event-bytes ({limit} bytes); not read \
                 further, not recorded. Make the event smaller, or raise --max-event-bytes"
            );
            return Next::Bad(msg, true);
        }
        Err(e) => return bad(format!("cannot read: {e}")),
    };
    let Ok(text) = text.map(str::trim) else {
        return bad("cannot read: the line is not valid UTF-8".to_owned());
    };
    if text.is_empty() {
        return Next::Blank;
    }
    match parse_event(text, line_no) {
        Ok(ev) => Next::Event(Box::new(ev)),
        Err(msg) => Next::Bad(msg, false),
    }
}

/// Logs every event on stdin until its end or the first failure: how many events the trail
/// accepted, and the failure. With `acks`, each receipt waits there for its event to be
/// durable. A line longer than `limit` bytes is bad, found without reading it whole. A bad
/// line is the failure (exit 65), or, with `rejects`, written there and skipped.
async fn log_stdin(
    trail: &AuditTrail,
    acks: Option<&Shared<Acks>>,
    limit: usize,
    mut rejects: Option<&mut Rejects>,
) -> (u64, Option<Failure>) {
    let mut count = 0u64;
    let stdin = io::stdin();
    let mut input = LineReader::new(stdin.lock(), limit);
    let mut line = Vec::new();
    let mut line_no = 0u64;
    loop {
        line_no += 1;
        let event = match next_event(&mut input, &mut line, line_no, limit) {
            Next::End => break,
            Next::Blank => continue,
            Next::Event(event) => event,
            Next::Bad(msg, truncated) => {
                let Some(rejects) = rejects.as_deref_mut() else {
                    return (count, Some((EXIT_DATAERR, msg)));
                };
                if let Err(failure) = rejects.write(line_no, &msg, &line, truncated) {
                    return (count, Some(failure));
                }
                if truncated && let Err(e) = input.skip_rest() {
                    let msg = format!("stdin line {line_no}: cannot read: {e}");
                    return (count, Some((EXIT_DATAERR, msg)));
                }
                continue;
            }
        };
        match trail.log_receipt(*event).await {
            Ok(receipt) => {
                if let Some(acks) = acks {
                    let mut acks = acks::lock(acks);
                    acks.pending.push_back(receipt);
                    acks.print_durable(trail.durable_sequence());
                }
            }
            Err(e @ Error::NotDurable { .. }) => {
                // Accepted and queued: close below still tries to store it.
                return (count + 1, Some((1, format!("stdin line {line_no}: {e}"))));
            }
            Err(e) => {
                let msg = format!("stdin line {line_no}: event not recorded: {e}");
                return (count, Some((1, msg)));
            }
        }
        count += 1;
    }
    (count, None)
}

/// One input line as an event, or the message naming the line (and the key) at fault. A
/// number that would be stored as a different number is refused, never altered.
fn parse_event(text: &str, line_no: u64) -> Result<AuditEvent, String> {
    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text)
        .map_err(|e| format!("stdin line {line_no}: not a JSON object: {e}"))
        .and_then(|map| match find_inexact_number(text) {
            Some(n) => Err(format!("stdin line {line_no}: {n}")),
            None => Ok(map),
        })
        .and_then(|map| {
            AuditEvent::from_map(map, false).map_err(|e| match e {
                Error::InvalidEvent { key, message } => {
                    format!("stdin line {line_no}: key `{key}`: {message}")
                }
                other => format!("stdin line {line_no}: {other}"),
            })
        })
}

/// Reports how the run ended, after the trail was closed (`closed_ok`: without error).
fn exit_code(failure: Option<Failure>, n: u64, closed_ok: bool) -> ExitCode {
    match failure {
        Some((code, msg)) => {
            eprintln!("audit emit: {msg}");
            if closed_ok {
                eprintln!(
                    "audit emit: emitted {} before the error (all written and flushed)",
                    count(n, "event", "events")
                );
            } else {
                eprintln!(
                    "audit emit: {} accepted before the error; see above for what could not be stored",
                    count(n, "event was", "events were")
                );
            }
            ExitCode::from(if closed_ok { code } else { 1 })
        }
        None if !closed_ok => ExitCode::from(1),
        None => {
            eprintln!("emitted {}", count(n, "event", "events"));
            ExitCode::SUCCESS
        }
    }
}
