//! `audit verify`: check the hash chain of every audit file in a directory.

use std::path::PathBuf;
use std::process::ExitCode;

use audit_format::anchor::ANCHOR_FILE;
use audit_host::Integrity;
use audit_host::verify::{VerifyError, verify_dir_with_progress};
use clap::Args;

use super::EXIT_USAGE;
use crate::progress::Progress;

#[derive(Args)]
pub(crate) struct VerifyArgs {
    /// HMAC key file, for trails configured with [trail.integrity] hmac_key_file.
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// Also fail when `.audit-anchor.json` records a removal made under a `retention_days`
    /// shorter than DAYS (your policy's).
    #[arg(long, value_name = "DAYS")]
    retention_days: Option<u32>,
    /// The audit directory.
    dir: PathBuf,
}

pub(crate) fn verify(args: &VerifyArgs) -> ExitCode {
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
            if let (Some(days), Some(r)) = (args.retention_days, &report.removed)
                && r.retention_days < days
            {
                println!(
                    "FAILED: {}: records that files dated up to {} were removed on {} under retention_days {}, shorter than --retention-days {days}",
                    args.dir.join(ANCHOR_FILE).display(),
                    r.newest_date,
                    r.removed_on,
                    r.retention_days
                );
                return ExitCode::from(1);
            }
            println!("ok: {} events in {} files", report.events, report.files);
            ExitCode::SUCCESS
        }
        Err(e @ (VerifyError::Broken { .. } | VerifyError::Directory { .. })) => {
            println!("FAILED: {e}");
            if args.key_file.is_none() && matches!(e, VerifyError::Broken { .. }) {
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
