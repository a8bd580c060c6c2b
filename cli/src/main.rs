//! `audit`: record, verify and query audit trails from the command line.
//!
//! One module per command under `commands/`; the bench engine and its suite under `bench/`.

mod bench;
mod commands;
mod logging;
mod progress;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use commands::bench::BenchArgs;
use commands::config::ConfigCommand;
use commands::docs::CompletionsArgs;
use commands::emit::EmitArgs;
use commands::keygen::KeygenArgs;
use commands::plugin::PluginCommand;
use commands::query::QueryArgs;
use commands::verify::VerifyArgs;

#[derive(Parser)]
#[command(
    name = "audit",
    version,
    about = "Tamper-evident audit trail: record events, verify the hash chain, query the log",
    long_about = "Tamper-evident audit trail: record events, verify the hash chain, query the log.\n\n\
        Events are stored one canonical JSON line each in daily files \
        (audit_YYYY-MM-DD.jsonl), sequenced and hash-chained (SHA-256, or HMAC-SHA256 with a key).",
    after_help = "Examples:\n  audit emit --dir ./audit_logs < examples/events.jsonl\n  audit verify ./audit_logs\n  \
        audit verify --config examples/sqlite.toml --backend sqlite\n  \
        audit query ./audit_logs --event-type data_access --user alice --limit 10\n  audit config check examples/audit.toml"
)]
struct Cli {
    /// Show long diagnostics (for example abi_stable's full layout report when a plugin was
    /// built against an incompatible interface).
    #[arg(short, long, global = true)]
    verbose: bool,
    /// How the library's reports (a failing backend, retention, recovery) are written to
    /// stderr: `text` (`audit: MESSAGE` lines) or `json` (one object per line).
    #[arg(long, global = true, value_enum, default_value_t = logging::LogFormat::Text)]
    log_format: logging::LogFormat,
    /// The least severe report printed: off, error, warn, info, debug, trace. Default: the
    /// AUDIT_LOG environment variable, else `info`.
    #[arg(long, global = true, value_enum)]
    log_level: Option<logging::LogLevel>,
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
    /// A number that would be stored as a different number (an integer beyond 64 bits, more
    /// digits than a 64-bit float holds) is refused; send it as a string.
    /// A bad line stops the run with exit code 65 after every earlier event is written
    /// (with --rejects FILE: it is written to FILE and the run goes on).
    Emit(EmitArgs),
    /// Check every audit_*.jsonl file in DIR, or the store of backend NAME of a configuration
    /// (--config FILE --backend NAME): contiguous sequence numbers, each checksum recomputed
    /// over the stored bytes, each previous_hash link.
    ///
    /// With --config the HMAC key is the configuration's ([trail.integrity]) unless
    /// --key-file is given; a plugin backend's store is read back through its `read`
    /// capability (the plugin is opened with its config and closed afterwards).
    ///
    /// With --public-key FILE the directory's signed seals are checked too (every seal's
    /// signature and chain, every sealed file over its sealed prefix, the last sealed
    /// sequence); events after the last seal are a warning. --seals DIR reads a witness's copy.
    ///
    /// Exit 0 with `ok: N events in F files` (a plugin: `ok: N events in backends[I] "NAME"
    /// (FILE:LINE)`); 1 naming the first bad sequence (file:line, or the line read back),
    /// or each seal failure; otherwise the code of the error (66 missing input, 78 bad
    /// configuration or key file, an unknown NAME, a plugin without `read`; 74 I/O; 2 usage:
    /// docs/operations.md, "Exit codes"). --json: one JSON object instead, the same code.
    Verify(VerifyArgs),
    /// Print the events in DIR, or in the store of backend NAME of a configuration (--config
    /// FILE --backend NAME), that match every filter, newest first, as JSON lines.
    Query(QueryArgs),
    /// Configuration commands.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Backend plugin commands.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Create an Ed25519 key pair for signed seals: DIR/audit-signing.key (private, PKCS#8
    /// DER, mode 600) and DIR/audit-signing.pub (64 hex digits).
    Keygen(KeygenArgs),
    /// Measure a real trail against the tightest hand-written loop doing the same work.
    ///
    /// Logs realistic events (all 30 fields, ~900-byte lines) from concurrent producers,
    /// waits until all are durable, then runs the baseline in the same process. Reports
    /// events/s, MB/s, the ratio to the baseline, log_event latency percentiles and peak RSS.
    Bench(BenchArgs),
    /// Print a shell completion script: `audit completions bash > /etc/bash_completion.d/audit`
    /// (zsh: into a directory on $fpath as `_audit`; fish: ~/.config/fish/completions/audit.fish).
    Completions(CompletionsArgs),
    /// Print the manual page (roff): `audit man > audit.1; man ./audit.1`.
    Man,
}

fn main() -> ExitCode {
    ignore_file_size_signal();
    let cli = Cli::parse();
    let verbose = cli.verbose;
    if let Err(e) = logging::level(cli.log_level).and_then(|l| logging::init(cli.log_format, l)) {
        eprintln!("audit: {e}");
        return ExitCode::from(commands::exit::EXIT_USAGE);
    }
    match cli.command {
        Command::Emit(a) => commands::emit::emit(a, verbose),
        Command::Verify(a) => commands::verify::verify(&a, verbose),
        Command::Query(a) => commands::query::query(a, verbose),
        Command::Config(c) => commands::config::run(c, verbose),
        Command::Bench(a) => commands::bench::bench(&a),
        Command::Plugin(c) => commands::plugin::run(c, verbose),
        Command::Completions(a) => commands::docs::completions::<Cli>(&a),
        Command::Man => commands::docs::man::<Cli>(),
        Command::Keygen(a) => commands::keygen::keygen(&a),
    }
}

/// Ignores SIGXFSZ: past `RLIMIT_FSIZE` (`ulimit -f`) a `write` then fails with EFBIG, so the
/// file backend rolls the batch back and reports `File too large`, instead of the default
/// action killing the process (exit 153) with a partial line in the file.
fn ignore_file_size_signal() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to SIG_IGN runs no code in the handler's place;
    // it happens first thing in `main`, before any thread is started.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}
