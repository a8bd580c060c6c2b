//! `audit verify`: check the hash chain of every audit file in a directory, or of the store
//! of a configured backend (`--config FILE --backend NAME`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use audit_format::anchor::ANCHOR_FILE;
use audit_host::Integrity;
use audit_host::readback::StoreReader;
use audit_host::verify::{StreamVerifier, VerifyError, VerifyReport, verify_dir_with_progress};
use clap::Args;

use super::configured::{self, ConfiguredStore};
use super::{EXIT_USAGE, report, runtime};
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
    match (&args.dir, &args.store.config, &args.store.backend) {
        (_, Some(config), Some(backend)) => {
            verify_configured(config, backend, key, verbose, args.retention_days)
        }
        (Some(dir), _, _) => {
            if !dir.is_dir() {
                eprintln!("audit verify: {} is not a directory", dir.display());
                return ExitCode::from(EXIT_USAGE);
            }
            let hint = key.is_none();
            verify_directory(
                dir,
                &key.unwrap_or(Integrity::Sha256),
                hint,
                args.retention_days,
            )
        }
        _ => {
            eprintln!("audit verify: give DIR, or --config FILE --backend NAME");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// `audit verify DIR`: `hint` suggests --key-file when the chain breaks; `retention_days`
/// is the policy's minimum for removals the anchor records.
fn verify_directory(
    dir: &Path,
    integrity: &Integrity,
    hint: bool,
    retention_days: Option<u32>,
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
    outcome(
        result.map(|r| {
            let files = r.files;
            (r, format!("{files} files"))
        }),
        hint,
    )
}

/// `audit verify --config FILE --backend NAME`: the key from the configuration unless
/// --key-file gives one.
fn verify_configured(
    config: &Path,
    backend: &str,
    key: Option<Integrity>,
    verbose: bool,
    retention_days: Option<u32>,
) -> ExitCode {
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
        return verify_directory(dir, &integrity, hint, retention_days);
    }
    let Ok(rt) = runtime() else {
        return ExitCode::from(EXIT_USAGE);
    };
    outcome(rt.block_on(verify_store(store, &integrity)), hint)
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
/// error (exit 2).
fn outcome(result: Result<(VerifyReport, String), VerifyError>, hint: bool) -> ExitCode {
    match result {
        Ok((report, place)) => {
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
            println!("ok: {} events in {place}", report.events);
            ExitCode::SUCCESS
        }
        Err(e) if e.broken_sequence().is_some() || matches!(e, VerifyError::Directory { .. }) => {
            println!("FAILED: {e}");
            if hint && e.broken_sequence().is_some() {
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
