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

use super::configured::{self, ConfiguredStore, Unopened};
use super::count;
use super::exit::{EXIT_CONFIG, EXIT_IOERR, EXIT_NOINPUT, EXIT_USAGE, exit_code_for, missing_or};
use crate::progress::Progress;
use verdict::{Kind, Verdict};

mod verdict;

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
    /// Print one JSON object on stdout instead of text, whatever the outcome: `ok`,
    /// `exit_code`, `store`, `events`, `files`, `first_sequence`, `last_sequence`,
    /// `warnings` (array), `failure` (null, or `kind`, `sequence`, `file`, `line`, `reason`,
    /// `message`), `failures` (all of them) and, with --public-key, `seals`. Nothing on
    /// stderr; the exit code is the same as without --json.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: ConfiguredStore,
    /// The audit directory.
    #[arg(required_unless_present = "config")]
    dir: Option<PathBuf>,
}

pub(crate) fn verify(args: &VerifyArgs, verbose: bool) -> ExitCode {
    let mut verdict = Verdict::default();
    check(args, &mut verdict);
    verdict.finish(args.json, verbose)
}

/// Runs the checks `args` ask for, collecting what they find in `v`.
fn check(args: &VerifyArgs, v: &mut Verdict) {
    if let Some(dir) = &args.dir {
        v.store(&dir.display().to_string());
    }
    let (key, sealed) = match read_keys(args) {
        Ok(keys) => keys,
        Err((code, message)) => return v.error(code, message),
    };
    let expect = Expect {
        events: args.require_events,
        min_sequence: args.min_sequence,
    };
    match (&args.dir, &args.store.config, &args.store.backend) {
        (_, Some(config), backend) => {
            let asked = Asked {
                key,
                retention_days: args.retention_days,
                sealed: sealed.as_ref(),
                expect,
            };
            verify_configured(config, backend.as_deref(), asked, v);
        }
        (Some(dir), _, _) => {
            if !dir.is_dir() {
                if let Some(s) = sealed.as_ref().filter(|s| s.seals.is_some()) {
                    // The directory is gone: what the witness's seals name is missing.
                    return seals_verdict(dir, s, None, None, v);
                }
                return v.error(
                    EXIT_NOINPUT,
                    format!("{} is not a directory", dir.display()),
                );
            }
            let hint = key.is_none();
            let asked = Asked {
                key,
                retention_days: args.retention_days,
                sealed: sealed.as_ref(),
                expect,
            };
            verify_directory(dir, hint, asked, v);
        }
        _ => v.error(
            EXIT_USAGE,
            "give DIR, or --config FILE --backend NAME".to_owned(),
        ),
    }
}

/// The `--key-file` and `--public-key` keys, or the exit code and message when one cannot
/// be read: 66 when the file does not exist, 78 when it is not acceptable.
fn read_keys(args: &VerifyArgs) -> Result<(Option<Integrity>, Option<Sealed>), (u8, String)> {
    let key = match &args.key_file {
        Some(path) => Some(
            audit_host::config::read_key_file(path)
                .map_err(|msg| (missing_or(path, EXIT_CONFIG), format!("--key-file: {msg}")))?,
        ),
        None => None,
    };
    let sealed = match &args.public_key {
        Some(path) => Some(Sealed {
            key: PublicKey::read(path).map_err(|msg| {
                (
                    missing_or(path, EXIT_CONFIG),
                    format!("--public-key: {msg}"),
                )
            })?,
            seals: args.seals.clone(),
        }),
        None => None,
    };
    Ok((key, sealed))
}

/// What the options ask of a chain besides its checks: the key, the anchor's retention,
/// the seals and the expectations.
struct Asked<'a> {
    key: Option<Integrity>,
    retention_days: Option<u32>,
    sealed: Option<&'a Sealed>,
    expect: Expect,
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
fn key_hint(e: &VerifyError, hint: bool, v: &mut Verdict) {
    if hint && e.is_checksum_mismatch() {
        v.hint("if this trail uses an HMAC key, pass it with --key-file");
    }
}

/// Whether `e` is a verdict on the chain (exit 1), not a failure to read it.
fn is_verdict(e: &VerifyError) -> bool {
    e.broken_sequence().is_some() || matches!(e, VerifyError::Directory { .. })
}

/// `--public-key` (and `--seals`): how to check the seals.
struct Sealed {
    key: PublicKey,
    seals: Option<PathBuf>,
}

/// `audit verify DIR` with the key `asked.key` (SHA-256 without one): `hint` suggests
/// --key-file when the chain breaks; `asked.retention_days` is the policy's minimum for
/// removals the anchor records; `asked.sealed`: check the seals too.
fn verify_directory(dir: &Path, hint: bool, asked: Asked<'_>, v: &mut Verdict) {
    let integrity = asked.key.unwrap_or(Integrity::Sha256);
    let mut progress = Progress::new("verifying", true);
    let result = verify_dir_with_progress(dir, &integrity, &mut |d, t| progress.update(d, t));
    progress.finish();
    let subject = dir.display().to_string();
    if let (Ok(report), Some(days)) = (&result, asked.retention_days)
        && let Some(r) = &report.removed
        && r.retention_days < days
    {
        let anchor = dir.join(ANCHOR_FILE).display().to_string();
        let reason = format!(
            "records that files dated up to {} were removed on {} under retention_days {}, shorter than --retention-days {days}",
            r.newest_date, r.removed_on, r.retention_days
        );
        v.checked(report, &subject);
        return v.fail(
            Kind::Retention,
            Some(anchor.clone()),
            &reason,
            format!("{anchor}: {reason}"),
        );
    }
    let Some(sealed) = asked.sealed else {
        let result = result.map(|r| {
            let files = r.files;
            (r, count(files as u64, "file", "files"))
        });
        return outcome(result, hint, asked.expect, Some(&subject), v);
    };
    if let Ok(report) = &result
        && let Some(why) = asked.expect.unmet(report, &subject)
    {
        v.checked(report, &subject);
        for w in &report.warnings {
            v.warn(w);
        }
        return v.fail(Kind::Expectation, None, &why, why.clone());
    }
    // The chain first; the seals are checked whatever it says, and every failure is named.
    match result {
        Ok(report) => {
            v.checked(&report, &subject);
            let ok = format!(
                "ok: {} in {}",
                count(report.events, "event", "events"),
                count(report.files as u64, "file", "files")
            );
            let last = report.last_sequence;
            seals_verdict(dir, sealed, last, Some((ok, report.warnings)), v);
        }
        Err(e) if is_verdict(&e) => {
            v.broken(&e);
            key_hint(&e, hint, v);
            seals_verdict(dir, sealed, None, None, v);
        }
        Err(e) => v.broken(&e),
    }
}

/// Checks the seals of `dir`; `chain`: the chain check's `ok:` line and its warnings (none
/// when it failed or was not run); `last`: the last sequence it found.
fn seals_verdict(
    dir: &Path,
    sealed: &Sealed,
    last: Option<u64>,
    chain: Option<(String, Vec<String>)>,
    v: &mut Verdict,
) {
    let seals_dir = sealed.seals.clone().unwrap_or_else(|| dir.join(SEALS_DIR));
    let check = match check_seals(dir, &seals_dir, &sealed.key, last) {
        Ok(c) => c,
        Err(e) => return v.io_error(&e),
    };
    v.seals(&check);
    let (ok_line, chain_warnings) = match chain {
        Some((ok, w)) => (Some(ok), w),
        None => (None, Vec::new()),
    };
    for w in chain_warnings.iter().chain(&check.warnings) {
        v.warn(w);
    }
    if !check.failures.is_empty() {
        for f in &check.failures {
            v.fail(Kind::Seal, None, f, f.clone());
        }
        return;
    }
    match ok_line {
        Some(ok) => {
            let upto = check
                .last_sealed
                .map_or_else(String::new, |l| format!(" up to sequence {l}"));
            v.ok(format!(
                "{ok}, {}{upto} verified with the public key",
                count(check.seals, "seal", "seals")
            ));
        }
        None => v.negative(),
    }
}

/// `audit verify --config FILE [--backend NAME]`: the key from the configuration unless
/// --key-file gives one.
fn verify_configured(config: &Path, backend: Option<&str>, asked: Asked<'_>, v: &mut Verdict) {
    let Some(backend) = backend else {
        // --config alone: its file backend's directory, with its key.
        let (config, dir) = match configured::file_directory(config) {
            Ok(found) => found,
            Err(Unopened::Host(e)) => return v.host_error(exit_code_for(&e), e),
            Err(Unopened::Usage(msg)) => return v.error(EXIT_USAGE, msg),
        };
        v.store(&dir.display().to_string());
        let hint =
            asked.key.is_none() && config.integrity == audit_host::config::IntegrityConfig::Sha256;
        return match asked.key.clone().map_or_else(|| config.integrity(), Ok) {
            Ok(integrity) => {
                let asked = Asked {
                    key: Some(integrity),
                    ..asked
                };
                verify_directory(&dir, hint, asked, v);
            }
            Err(e) => v.host_error(exit_code_for(&e), e),
        };
    };
    let (config, store) = match configured::open(config, backend) {
        Ok(opened) => opened,
        Err(e) => return v.host_error(exit_code_for(&e), e),
    };
    // No key anywhere: suggest one when the chain breaks.
    let hint =
        asked.key.is_none() && config.integrity == audit_host::config::IntegrityConfig::Sha256;
    let integrity = match asked.key.clone().map_or_else(|| config.integrity(), Ok) {
        Ok(i) => i,
        Err(e) => return v.host_error(exit_code_for(&e), e),
    };
    if let Some(dir) = store.directory() {
        v.store(&dir.display().to_string());
        let dir = dir.to_path_buf();
        let asked = Asked {
            key: Some(integrity),
            ..asked
        };
        return verify_directory(&dir, hint, asked, v);
    }
    v.store(&store.entry().to_string());
    if asked.sealed.is_some() {
        return v.error(
            EXIT_USAGE,
            format!(
                "--public-key checks a directory's seals; backend {backend} is not a file backend (give its witness copy with --seals SEALS DIR)"
            ),
        );
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return v.error(EXIT_IOERR, format!("cannot start the async runtime: {e}"));
        }
    };
    let result = rt.block_on(verify_store(store, &integrity));
    outcome(result, hint, asked.expect, None, v);
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

/// The verdict: `ok: N events in WHERE` (exit 0), `FAILED: ...` (exit 1), or the error
/// (its exit code). `subject` names the store and what `--require-events`/`--min-sequence`
/// failures are about (default WHERE).
fn outcome(
    result: Result<(VerifyReport, String), VerifyError>,
    hint: bool,
    expect: Expect,
    subject: Option<&str>,
    v: &mut Verdict,
) {
    match result {
        Ok((report, place)) => {
            let subject = subject.unwrap_or(&place);
            v.checked(&report, subject);
            for w in &report.warnings {
                v.warn(w);
            }
            if let Some(why) = expect.unmet(&report, subject) {
                return v.fail(Kind::Expectation, None, &why, why.clone());
            }
            v.ok(format!(
                "ok: {} in {place}",
                count(report.events, "event", "events")
            ));
        }
        Err(e) => {
            v.broken(&e);
            key_hint(&e, hint, v);
        }
    }
}
