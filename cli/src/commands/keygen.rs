//! `audit keygen --out DIR`: a new Ed25519 key pair for signed seals.

use std::path::PathBuf;
use std::process::ExitCode;

use audit_format::seal::keys::write_key_pair;
use clap::Args;

use super::EXIT_IOERR;

#[derive(Args)]
pub(crate) struct KeygenArgs {
    /// Where to write `audit-signing.key` (private, mode 600) and `audit-signing.pub`
    /// (created 700 if missing; existing key files are never overwritten).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

pub(crate) fn keygen(args: &KeygenArgs) -> ExitCode {
    match write_key_pair(&args.out) {
        Ok((key, public, pk)) => {
            println!(
                "private key: {} (keep it on the host that writes the trail; set [trail.integrity] signing_key_file)",
                key.display()
            );
            println!(
                "public key:  {} (give it to whoever verifies: audit verify --public-key FILE DIR)",
                public.display()
            );
            println!("key id:      {}", pk.id());
            ExitCode::SUCCESS
        }
        Err(m) => {
            eprintln!("audit keygen: {m}");
            ExitCode::from(EXIT_IOERR)
        }
    }
}
