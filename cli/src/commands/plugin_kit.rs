//! `audit plugin test`: the conformance kit. Runs the plugin contract against a plugin library
//! through the host's own [`PluginBackend`], with real chained lines, and prints one line per
//! check.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use audit_format::record::ChainFields;
use audit_format::{AuditEvent, AuditEventType, AuditRecord, Integrity, LineEncoder};
use audit_host::plugin::{LoadOptions, LoadedPlugin, PluginAbi, PluginBackend};
use audit_host::{Batch, StorageBackend};
use chrono::SubsecRound;

use super::{EXIT_CONFIG, EXIT_IOERR, EXIT_USAGE, report};

mod read;
mod refusal;

/// Records per batch and batches in the ordering check.
const BATCH: u64 = 100;
const BATCHES: u64 = 3;

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

/// One check's outcome.
enum Outcome {
    Ok(Option<String>),
    Fail(String),
    Skip(String),
}

/// The checks' outcomes, printed as they come.
#[derive(Default)]
struct Results {
    passed: u32,
    failed: u32,
    skipped: u32,
}

impl Results {
    fn print(&mut self, name: &str, outcome: Outcome) {
        let line = match outcome {
            Outcome::Ok(None) => {
                self.passed += 1;
                format!("ok   {name}")
            }
            Outcome::Ok(Some(note)) => {
                self.passed += 1;
                format!("ok   {name}: {note}")
            }
            Outcome::Fail(why) => {
                self.failed += 1;
                format!("FAIL {name}: {why}")
            }
            Outcome::Skip(why) => {
                self.skipped += 1;
                format!("skip {name}: {why}")
            }
        };
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    }

    fn ok(&mut self, name: &str) {
        self.print(name, Outcome::Ok(None));
    }

    fn note(&mut self, name: &str, note: impl Into<String>) {
        self.print(name, Outcome::Ok(Some(note.into())));
    }

    fn fail(&mut self, name: &str, why: impl Into<String>) {
        self.print(name, Outcome::Fail(why.into()));
    }

    fn skip(&mut self, name: &str, why: impl Into<String>) {
        self.print(name, Outcome::Skip(why.into()));
    }

    /// Marks the checks that could not run because `after` failed.
    fn skip_rest(&mut self, names: &[&str], after: &str) {
        for name in names {
            self.skip(name, format!("not run: `{after}` failed"));
        }
    }
}

/// Runs the kit; the exit status is 0 when no check failed, 1 when one did, 78 when the
/// library cannot be loaded or opened with the config.
pub(crate) fn run(args: &KitArgs) -> ExitCode {
    let tmp;
    let dir = match &args.dir {
        Some(d) => {
            if let Err(e) = std::fs::create_dir_all(d) {
                eprintln!("audit plugin test: cannot create {}: {e}", d.display());
                return ExitCode::from(EXIT_IOERR);
            }
            d.clone()
        }
        None => match tempfile::Builder::new()
            .prefix("audit-plugin-test")
            .tempdir()
        {
            Ok(t) => {
                tmp = t;
                tmp.path().to_path_buf()
            }
            Err(e) => {
                eprintln!("audit plugin test: cannot create a temporary directory: {e}");
                return ExitCode::from(EXIT_IOERR);
            }
        },
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
    runtime.block_on(contract(
        &plugin,
        backend,
        &config,
        &info.plugin_api,
        args.verbose,
        args.write_only,
        &mut results,
    ));
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
    if results.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
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

/// Makes chained lines, continuing from a head.
struct Chain {
    encoder: LineEncoder,
    next: u64,
    prev: Option<[u8; 64]>,
}

impl Chain {
    fn new() -> Self {
        Self {
            encoder: LineEncoder::new(),
            next: 1,
            prev: None,
        }
    }

    /// A chain continuing after `line` (a stored head).
    fn after(line: &str) -> Result<Self, String> {
        let fields: ChainFields<'_> = serde_json::from_str(line)
            .map_err(|e| format!("its last_line is not an audit event: {e}"))?;
        let checksum = fields.checksum.as_deref().unwrap_or_default();
        let prev: [u8; 64] = checksum
            .as_bytes()
            .try_into()
            .map_err(|_| format!("its last_line has no SHA-256 checksum (`{checksum}`)"))?;
        Ok(Self {
            encoder: LineEncoder::new(),
            next: fields.sequence_number + 1,
            prev: Some(prev),
        })
    }

    /// The record at `seq` after `prev`, with `message`.
    fn make(
        &mut self,
        seq: u64,
        prev: Option<&[u8; 64]>,
        message: &str,
    ) -> (AuditRecord, [u8; 64]) {
        let ev = AuditEvent::new(AuditEventType::DataAccess, message.to_owned());
        self.encoder.encode(
            &ev,
            &format!("conformance-{seq}"),
            "audit-plugin-test",
            i64::from(std::process::id()),
            ev.compliance_level,
        );
        self.encoder.assemble(
            &ev,
            seq,
            prev,
            chrono::Utc::now().trunc_subsecs(6),
            &Integrity::Sha256,
        )
    }

    /// The next `n` records of the chain.
    fn batch(&mut self, n: u64) -> Vec<AuditRecord> {
        (0..n)
            .map(|_| {
                let seq = self.next;
                let prev = self.prev;
                let (record, hex) = self.make(seq, prev.as_ref(), &format!("conformance {seq}"));
                self.next += 1;
                self.prev = Some(hex);
                record
            })
            .collect()
    }
}

/// The stored head as the host reads it: the plugin's `last_line`.
async fn last_line(backend: &PluginBackend) -> Result<Option<String>, String> {
    backend
        .resume()
        .await
        .map(|h| h.map(|h| h.line))
        .map_err(|e| e.to_string())
}

/// `got` is not `want`: their sequence numbers and checksums; with `verbose`, both lines.
fn differs(got: Option<&str>, want: Option<&str>, verbose: bool) -> String {
    let show = |line: Option<&str>| match line {
        None => "none".to_owned(),
        Some(l) if verbose => format!("{} `{l}`", describe(l)),
        Some(l) => describe(l),
    };
    let hint = if verbose {
        ""
    } else {
        " (--verbose shows both lines)"
    };
    format!("last_line is {}, expected {}{hint}", show(got), show(want))
}

/// A line's sequence number and checksum, or that it is not an audit event.
fn describe(line: &str) -> String {
    match serde_json::from_str::<ChainFields<'_>>(line) {
        Ok(f) => format!(
            "sequence {} (checksum {})",
            f.sequence_number,
            f.checksum.as_deref().unwrap_or("none")
        ),
        Err(_) => format!("a line that is not an audit event ({} bytes)", line.len()),
    }
}

/// Closes and reopens the instance with the same config.
async fn reopen(
    plugin: &LoadedPlugin,
    backend: PluginBackend,
    config: &str,
) -> Result<PluginBackend, String> {
    backend
        .close()
        .await
        .map_err(|e| format!("close failed: {e}"))?;
    plugin
        .open(&plugin.info().name, config)
        .map_err(|e| format!("reopen failed: {e}"))
}

const AFTER_ORDERING: [&str; 9] = [
    "flush",
    "reopen",
    "redelivery",
    "fork",
    "read",
    "refusal",
    "capabilities",
    "panic",
    "close",
];

async fn contract(
    plugin: &LoadedPlugin,
    mut backend: PluginBackend,
    config: &str,
    plugin_api: &str,
    verbose: bool,
    write_only: bool,
    r: &mut Results,
) {
    // 1. A fresh store has no head; a store that has one is continued.
    let mut chain = match last_line(&backend).await {
        Ok(None) => {
            r.note("fresh", "last_line of a new store is none");
            Chain::new()
        }
        Ok(Some(line)) => match Chain::after(&line) {
            Ok(c) => {
                r.skip(
                    "fresh",
                    format!(
                        "the store is not fresh (last_line is sequence {}); the kit continues the chain after it",
                        c.next - 1
                    ),
                );
                c
            }
            Err(e) => {
                r.fail("fresh", e);
                Chain::new()
            }
        },
        Err(e) => {
            r.fail("fresh", format!("last_line failed: {e}"));
            Chain::new()
        }
    };

    // 2. Ordering: batches in order are accepted.
    let mut written: Vec<Batch> = Vec::new();
    for i in 1..=BATCHES {
        let batch = Batch::new(chain.batch(BATCH));
        if let Err(e) = backend.write_batch(&batch).await {
            r.fail(
                "ordering",
                format!("write_batch {i} of {BATCHES} ({BATCH} records) failed: {e}"),
            );
            r.skip_rest(&AFTER_ORDERING, "ordering");
            return;
        }
        written.push(batch);
    }
    r.note(
        "ordering",
        format!("{BATCHES} batches of {BATCH} records accepted in order"),
    );
    // What `read` must return: every line written, in order.
    let all_written: Vec<String> = written
        .iter()
        .flat_map(|b| b.iter().map(|rec| rec.line().to_owned()))
        .collect();
    let Some(last_batch) = written.pop() else {
        return;
    };
    let head = last_batch
        .iter()
        .last()
        .map(|rec| rec.line().to_owned())
        .unwrap_or_default();

    // 3. Flush, close, reopen: the head is the last line written.
    if let Err(e) = backend.flush().await {
        r.fail("flush", e.to_string());
    } else {
        r.ok("flush");
    }
    backend = match reopen(plugin, backend, config).await {
        Ok(b) => b,
        Err(e) => {
            r.fail("reopen", e);
            r.skip_rest(&AFTER_ORDERING[2..], "reopen");
            return;
        }
    };
    // What later checks compare with: the head after reopen, so that one wrong head is
    // reported once, by `reopen`.
    let stored = match last_line(&backend).await {
        Ok(None) if write_only => {
            r.skip(
                "reopen",
                "--write-only: the store cannot be read back (last_line is none); close and open worked",
            );
            None
        }
        Ok(Some(l)) if l == head => {
            r.note(
                "reopen",
                "after flush, close and open, last_line is the last line written, byte for byte",
            );
            Some(l)
        }
        Ok(got) => {
            r.fail("reopen", differs(got.as_deref(), Some(&head), verbose));
            got
        }
        Err(e) => {
            r.fail("reopen", format!("last_line failed: {e}"));
            Some(head.clone())
        }
    };
    let unchanged = |got: &Option<String>| *got == stored;

    // 4. Re-delivery of a stored batch is accepted and ignored.
    match backend.write_batch(&last_batch).await {
        Err(e) => r.fail(
            "redelivery",
            format!("re-delivering the last stored batch was refused: {e}"),
        ),
        Ok(()) => match backend.flush().await {
            Err(e) => r.fail("redelivery", format!("flush failed: {e}")),
            Ok(()) => match last_line(&backend).await {
                Ok(got) if unchanged(&got) => r.note(
                    "redelivery",
                    "accepted, last_line unchanged (duplicates in the store are counted by `read`, when the plugin exports it)",
                ),
                Ok(got) => r.fail(
                    "redelivery",
                    format!("the head changed: {}", differs(got.as_deref(), stored.as_deref(), verbose)),
                ),
                Err(e) => r.fail("redelivery", format!("last_line failed: {e}")),
            },
        },
    }

    // 5. A different line under a stored sequence number never becomes the head.
    // The head's own sequence number and previous hash, another message.
    let fork_at = chain.next - 1;
    let fork_prev = last_batch
        .iter()
        .rev()
        .nth(1)
        .and_then(|rec| Chain::after(rec.line()).ok())
        .and_then(|c| c.prev);
    let (fork, _) = chain.make(fork_at, fork_prev.as_ref(), "conformance fork");
    let fork_line = fork.line().to_owned();
    match backend.write_batch(&Batch::new(vec![fork])).await {
        Err(e) => r.note(
            "fork",
            format!("a different line at stored sequence {fork_at} was refused ({e})"),
        ),
        Ok(()) if write_only => r.skip(
            "fork",
            format!("--write-only: accepted; a store that cannot be read back cannot show which line it keeps at sequence {fork_at}"),
        ),
        Ok(()) => {
            let flushed = backend.flush().await;
            backend = match reopen(plugin, backend, config).await {
                Ok(b) => b,
                Err(e) => {
                    r.fail("fork", e);
                    r.skip_rest(&AFTER_ORDERING[4..], "fork");
                    return;
                }
            };
            match (flushed, last_line(&backend).await) {
                (Err(e), _) => r.fail("fork", format!("flush failed: {e}")),
                (Ok(()), Ok(got)) if unchanged(&got) => r.note(
                    "fork",
                    format!("a different line at stored sequence {fork_at} was ignored: after reopen, last_line is unchanged"),
                ),
                (Ok(()), Ok(got)) if got.as_deref() == Some(fork_line.as_str()) => r.fail(
                    "fork",
                    format!("a different line at stored sequence {fork_at} was accepted and stored as the new head (after reopen, last_line is that line)"),
                ),
                (Ok(()), Ok(got)) => r.fail(
                    "fork",
                    format!(
                        "after a different line at stored sequence {fork_at} was accepted, the head changed: {}",
                        differs(got.as_deref(), stored.as_deref(), verbose)
                    ),
                ),
                (Ok(()), Err(e)) => r.fail("fork", format!("last_line failed: {e}")),
            }
        }
    }

    // 6. Read back: the store holds what was written, once, and not the fork.
    read::check_read(&backend, &all_written, verbose, r).await;

    // 7. Refusal (the `refuse` capability): only records of the batch, with reasons; the
    // rest stored.
    refusal::check_refusal(plugin, &backend, &mut chain, verbose, r).await;

    // 8. Capabilities: list them and call each once.
    let capabilities = plugin.info().capabilities.clone();
    if capabilities.is_empty() {
        r.skip(
            "capabilities",
            "the plugin exports none (health is reported as unknown; config checks open and close it)",
        );
    } else {
        let mut failures = Vec::new();
        let mut notes = Vec::new();
        for capability in &capabilities {
            match capability.split('/').next() {
                Some("health") => match backend.health().await {
                    Ok(Some(status)) => notes.push(format!("{capability} says `{status}`")),
                    Ok(None) => failures.push(format!("{capability} returned no status")),
                    Err(e) => failures.push(format!("{capability} failed: {e}")),
                },
                Some("refuse") => notes.push(format!("{capability} (see `refusal`)")),
                Some("validate") => match plugin.validate(config) {
                    Some(Ok(())) => notes.push(format!("{capability} accepts the config")),
                    Some(Err(e)) => failures.push(format!(
                        "{capability} refuses the config that open accepted: {e}"
                    )),
                    None => failures.push(format!("{capability} is listed but not found")),
                },
                Some("read") => notes.push(format!("{capability} (checked by `read`)")),
                Some("stats") => match backend.statistics().await {
                    Ok(counters) => match bad_counter_names(&counters) {
                        None => {
                            notes.push(format!("{capability} reports {}", counter_list(&counters)))
                        }
                        Some(why) => failures.push(format!("{capability}: {why}")),
                    },
                    Err(e) => failures.push(format!("{capability} failed: {e}")),
                },
                _ => notes.push(format!(
                    "{capability} (not called: the kit does not know it)"
                )),
            }
        }
        if failures.is_empty() {
            r.note("capabilities", notes.join("; "));
        } else {
            r.fail("capabilities", failures.join("; "));
        }
    }

    // 7. Panics: an arbitrary plugin cannot be made to panic; the guard comes with the API.
    if plugin.info().abi == PluginAbi::C {
        r.skip(
            "panic",
            "a C plugin catches its own exceptions and panics at the boundary (audit_backend.h rule 6); the kit cannot provoke one",
        );
    } else if plugin_api.starts_with("1.") {
        r.skip(
            "panic",
            "cannot make an arbitrary plugin panic; export_backend! contains panics in every 1.x plugin",
        );
    } else {
        r.skip(
            "panic",
            format!("cannot make an arbitrary plugin panic; built against audit-plugin-api {plugin_api}, whose guard the kit does not know"),
        );
    }

    // 6. Close (no call follows: calling a closed instance is not part of the contract).
    match backend.close().await {
        Ok(()) => r.ok("close"),
        Err(e) => r.fail("close", e.to_string()),
    }
}

/// `name=value, ...`, or `no counters`.
fn counter_list(counters: &[(String, u64)]) -> String {
    if counters.is_empty() {
        return "no counters".to_owned();
    }
    let list: Vec<String> = counters.iter().map(|(n, v)| format!("{n}={v}")).collect();
    list.join(", ")
}

/// What is wrong with the counters' names (the `stats` capability asks for unique
/// `snake_case` names), if anything.
fn bad_counter_names(counters: &[(String, u64)]) -> Option<String> {
    for (i, (name, _)) in counters.iter().enumerate() {
        let snake = !name.is_empty()
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !snake {
            return Some(format!("counter name `{name}` is not snake_case"));
        }
        if counters[..i].iter().any(|(n, _)| n == name) {
            return Some(format!("counter name `{name}` appears twice"));
        }
    }
    None
}
