//! `audit verify`: check the hash chain of every audit file in a directory, or of the store
//! of a configured backend (`--config FILE --backend NAME`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use audit_format::anchor::ANCHOR_FILE;
use audit_format::seal::{PublicKey, SEALS_DIR, check_seals};
use audit_host::Integrity;
use audit_host::readback::StoreReader;
use audit_host::verify::{StreamVerifier, VerifyError, VerifyReport, verify_dir_with_progress};
use clap::Args;

use super::configured::{self, ConfiguredStore};
use super::{EXIT_USAGE, count, report, runtime};
use crate::progress::Progress;

#[derive(Args)]
pub(crate) struct VerifyArgs {
    /// HMAC key file, for trails configured with [trail.integrity] hmac_key_file (with
    /// --config, the default is the configuration's key).
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// Also fail when `.audit-anchor.json` records a removal made under a `retention_days`
    /// shorter than DAYS (your policy's).
    #[arg(long, value_name = "DAYS")]
    retention_days: Option<u32>,
    /// Also check the directory's signed seals with this Ed25519 public key
    /// (`audit-signing.pub` from `audit keygen`): every seal's signature and chain, every
    /// sealed file over its sealed prefix, the last sealed sequence; events after the last
    /// seal are a warning.
    #[arg(long, value_name = "FILE")]
    public_key: Option<PathBuf>,
    /// With --public-key: read the seals from SEALS (a witness's copy) instead of
    /// DIR/.audit-seals. DIR may then be gone: every sealed file is reported missing.
    #[arg(long, value_name = "SEALS", requires = "public_key")]
    seals: Option<PathBuf>,
    /// Fail (exit 1) when no event is found: a scheduled check pointed at a wiped, empty or
    /// wrong directory must not pass.
    #[arg(long)]
    require_events: bool,
    /// Fail (exit 1) when the last sequence number found is below N (for example the
    /// highest one your monitoring has seen): the newest events were cut off, or the
    /// directory was replaced by a shorter chain.
    #[arg(long, value_name = "N")]
    min_sequence: Option<u64>,
    #[command(flatten)]
    store: ConfiguredStore,
    /// The audit directory.
    #[arg(required_unless_present = "config")]
    dir: Option<PathBuf>,
}

pub(crate) fn verify(args: &VerifyArgs, verbose: bool) -> ExitCode {
    let key = match &args.key_file {
        Some(path) => match audit_host::config::read_key_file(path) {
            Ok(i) => Some(i),
            Err(msg) => {
                eprintln!("audit verify: --key-file: {msg}");
                return ExitCode::from(EXIT_USAGE);
            }
        },
        None => None,
    };
    let sealed = match &args.public_key {
        Some(path) => match PublicKey::read(path) {
            Ok(k) => Some(Sealed {
                key: k,
                seals: args.seals.clone(),
            }),
            Err(msg) => {
                eprintln!("audit verify: --public-key: {msg}");
                return ExitCode::from(EXIT_USAGE);
            }
        },
        None => None,
    };
    let expect = Expect {
        events: args.require_events,
        min_sequence: args.min_sequence,
    };
    match (&args.dir, &args.store.config, &args.store.backend) {
        (_, Some(config), backend) => verify_configured(
            config,
            backend.as_deref(),
            key,
            verbose,
            args.retention_days,
            sealed.as_ref(),
            expect,
        ),
        (Some(dir), _, _) => {
            if !dir.is_dir() {
                if let Some(s) = sealed.as_ref().filter(|s| s.seals.is_some()) {
                    // The directory is gone: what the witness's seals name is missing.
                    return seals_verdict(dir, s, None, Vec::new());
                }
                eprintln!("audit verify: {} is not a directory", dir.display());
                return ExitCode::from(EXIT_USAGE);
            }
            let hint = key.is_none();
            verify_directory(
                dir,
                &key.unwrap_or(Integrity::Sha256),
                hint,
                args.retention_days,
                sealed.as_ref(),
                expect,
            )
        }
        _ => {
            eprintln!("audit verify: give DIR, or --config FILE --backend NAME");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// `--require-events` and `--min-sequence`: what a verified chain must also hold.
#[derive(Clone, Copy)]
struct Expect {
    events: bool,
    min_sequence: Option<u64>,
}

impl Expect {
    /// Why `report` falls short of the expectations, if it does.
    fn unmet(self, report: &VerifyReport, place: &str) -> Option<String> {
        if self.events && report.events == 0 {
            return Some(format!(
                "{place} holds no events (--require-events): check the path, and whether it was wiped"
            ));
        }
        let last = report.last_sequence.unwrap_or(0);
        match self.min_sequence {
            Some(min) if last < min => Some(format!(
                "the last sequence in {place} is {last}, below --min-sequence {min}: the newest events are missing, or the chain was replaced by a shorter one"
            )),
            _ => None,
        }
    }
}

/// The hint for a broken chain, on stderr: only a checksum mismatch looks like a missing or
/// wrong HMAC key.
fn key_hint(e: &VerifyError, hint: bool) {
    if hint && e.is_checksum_mismatch() {
        eprintln!("hint: if this trail uses an HMAC key, pass it with --key-file");
    }
}

/// `--public-key` (and `--seals`): how to check the seals.
struct Sealed {
    key: PublicKey,
    seals: Option<PathBuf>,
}

/// `audit verify DIR`: `hint` suggests --key-file when the chain breaks; `retention_days`
/// is the policy's minimum for removals the anchor records; `sealed`: check the seals too.
fn verify_directory(
    dir: &Path,
    integrity: &Integrity,
    hint: bool,
    retention_days: Option<u32>,
    sealed: Option<&Sealed>,
    expect: Expect,
) -> ExitCode {
    let mut progress = Progress::new("verifying", true);
    let result = verify_dir_with_progress(dir, integrity, &mut |d, t| progress.update(d, t));
    progress.finish();
    if let (Ok(report), Some(days)) = (&result, retention_days)
        && let Some(r) = &report.removed
        && r.retention_days < days
    {
        println!(
            "FAILED: {}: records that files dated up to {} were removed on {} under retention_days {}, shorter than --retention-days {days}",
            dir.join(ANCHOR_FILE).display(),
            r.newest_date,
            r.removed_on,
            r.retention_days
        );
        return ExitCode::from(1);
    }
    let subject = dir.display().to_string();
    let Some(sealed) = sealed else {
        return outcome(
            result.map(|r| {
                let files = r.files;
                (r, count(files as u64, "file", "files"))
            }),
            hint,
            expect,
            Some(&subject),
        );
    };
    if let Ok(report) = &result
        && let Some(why) = expect.unmet(report, &subject)
    {
        for w in &report.warnings {
            eprintln!("warning: {w}");
        }
        println!("FAILED: {why}");
        return ExitCode::from(1);
    }
    // The chain first; the seals are checked whatever it says, and every failure is named.
    match result {
        Ok(report) => {
            let last = report.last_sequence;
            let mut lines = report.warnings.clone();
            lines.insert(
                0,
                format!(
                    "ok: {} in {}",
                    count(report.events, "event", "events"),
                    count(report.files as u64, "file", "files")
                ),
            );
            seals_verdict(dir, sealed, last, lines)
        }
        Err(e) if e.broken_sequence().is_some() || matches!(e, VerifyError::Directory { .. }) => {
            println!("FAILED: {e}", e = audit_format::error::chain(&e));
            key_hint(&e, hint);
            let _ = seals_verdict(dir, sealed, None, Vec::new());
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("audit verify: {e}", e = audit_format::error::chain(&e));
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Checks the seals of `dir`; `chain`: the chain check's `ok:` line and its warnings (empty
/// when it failed or was not run); `last`: the last sequence it found.
fn seals_verdict(dir: &Path, sealed: &Sealed, last: Option<u64>, chain: Vec<String>) -> ExitCode {
    let seals_dir = sealed.seals.clone().unwrap_or_else(|| dir.join(SEALS_DIR));
    let check = match check_seals(dir, &seals_dir, &sealed.key, last) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("audit verify: {e}", e = audit_format::error::chain(&e));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let (ok_line, chain_warnings) = match chain.split_first() {
        Some((ok, w)) => (Some(ok.clone()), w.to_vec()),
        None => (None, Vec::new()),
    };
    for w in chain_warnings.iter().chain(&check.warnings) {
        eprintln!("warning: {w}");
    }
    if !check.failures.is_empty() {
        for f in &check.failures {
            println!("FAILED: {f}");
        }
        return ExitCode::from(1);
    }
    match ok_line {
        Some(ok) => {
            let upto = check
                .last_sealed
                .map_or_else(String::new, |l| format!(" up to sequence {l}"));
            println!(
                "{ok}, {}{upto} verified with the public key",
                count(check.seals, "seal", "seals")
            );
            ExitCode::SUCCESS
        }
        None => ExitCode::from(1),
    }
}

/// `audit verify --config FILE --backend NAME`: the key from the configuration unless
/// --key-file gives one.
fn verify_configured(
    config: &Path,
    backend: Option<&str>,
    key: Option<Integrity>,
    verbose: bool,
    retention_days: Option<u32>,
    sealed: Option<&Sealed>,
    expect: Expect,
) -> ExitCode {
    let Some(backend) = backend else {
        // --config alone: its file backend's directory, with its key.
        let (config, dir) = match configured::file_directory("audit verify", config, verbose) {
            Ok(found) => found,
            Err(code) => return code,
        };
        let hint = key.is_none() && config.integrity == audit_host::config::IntegrityConfig::Sha256;
        return match key.map_or_else(|| config.integrity(), Ok) {
            Ok(integrity) => {
                verify_directory(&dir, &integrity, hint, retention_days, sealed, expect)
            }
            Err(e) => {
                report("audit verify", &e, verbose);
                ExitCode::from(EXIT_USAGE)
            }
        };
    };
    let (config, store) = match configured::open("audit verify", config, backend, verbose) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    // No key anywhere: suggest one when the chain breaks.
    let hint = key.is_none() && config.integrity == audit_host::config::IntegrityConfig::Sha256;
    let integrity = match key.map_or_else(|| config.integrity(), Ok) {
        Ok(i) => i,
        Err(e) => {
            report("audit verify", &e, verbose);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if let Some(dir) = store.directory() {
        return verify_directory(dir, &integrity, hint, retention_days, sealed, expect);
    }
    if sealed.is_some() {
        eprintln!(
            "audit verify: --public-key checks a directory's seals; backend {backend} is not a file backend (give its witness copy with --seals SEALS DIR)"
        );
        return ExitCode::from(EXIT_USAGE);
    }
    let Ok(rt) = runtime() else {
        return ExitCode::from(EXIT_USAGE);
    };
    outcome(
        rt.block_on(verify_store(store, &integrity)),
        hint,
        expect,
        None,
    )
}

/// Reads a plugin's store back page by page into a [`StreamVerifier`], then closes it.
async fn verify_store(
    store: StoreReader,
    integrity: &Integrity,
) -> Result<(VerifyReport, String), VerifyError> {
    let entry = store.entry().to_string();
    let mut verifier = StreamVerifier::new(integrity, entry.clone());
    let mut broken = None;
    let mut progress = Progress::new("verifying", false);
    let total = store
        .last_sequence()
        .await
        .map_err(VerifyError::Io)?
        .unwrap_or(0);
    let read = configured::read_all(store, |line| match verifier.push(line) {
        Ok(()) => {
            let done = verifier.events();
            progress.update(done, total.max(done));
            true
        }
        Err(e) => {
            broken = Some(e);
            false
        }
    })
    .await;
    progress.finish();
    if let Some(e) = broken {
        return Err(e);
    }
    read.map_err(VerifyError::Io)?;
    let mut report = verifier.finish();
    if report.events == 0 {
        // Opening may have created the store (SQLite creates a missing database).
        report.warnings.push(format!(
            "{entry} holds no events: check that its config names the store the trail writes (a relative path resolves against the working directory)"
        ));
    }
    Ok((report, entry))
}

/// Prints the verdict: `ok: N events in WHERE` (exit 0), `FAILED: ...` (exit 1), or the
/// error (exit 2). `subject` names what `--require-events`/`--min-sequence` failures are
/// about (default WHERE).
fn outcome(
    result: Result<(VerifyReport, String), VerifyError>,
    hint: bool,
    expect: Expect,
    subject: Option<&str>,
) -> ExitCode {
    match result {
        Ok((report, place)) => {
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
            if let Some(why) = expect.unmet(&report, subject.unwrap_or(&place)) {
                println!("FAILED: {why}");
                return ExitCode::from(1);
            }
            println!("ok: {} in {place}", count(report.events, "event", "events"));
            ExitCode::SUCCESS
        }
        Err(e) if e.broken_sequence().is_some() || matches!(e, VerifyError::Directory { .. }) => {
            println!("FAILED: {e}", e = audit_format::error::chain(&e));
            key_hint(&e, hint);
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("audit verify: {e}", e = audit_format::error::chain(&e));
            ExitCode::from(EXIT_USAGE)
        }
    }
}
