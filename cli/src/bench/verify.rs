//! `audit bench --verify`: `audit verify` throughput against plain SHA-256.

use std::fs::{self, File};
use std::path::Path;
use std::time::Instant;

use audit_host::{Error, Integrity, Result};
use serde::Serialize;

use super::store::dir_bytes;

/// `audit verify` throughput against plain SHA-256 over the same bytes.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub(crate) struct VerifyResult {
    /// Always `verify`.
    pub(crate) scenario: String,
    /// Megabytes (10^6 bytes) of audit files.
    pub(crate) megabytes: f64,
    /// Events verified.
    pub(crate) events: u64,
    /// `verify_dir` throughput.
    pub(crate) verify_mb_per_s: f64,
    /// SHA-256 over the same bytes, read the same way (one pass, 1 MiB buffer).
    pub(crate) sha256_mb_per_s: f64,
    /// `verify_mb_per_s / sha256_mb_per_s`.
    pub(crate) ratio_to_sha256: f64,
}

/// Times [`verify_dir`](audit_host::verify_dir) over `dir` and plain SHA-256 over the same files.
///
/// # Errors
/// Read errors, or a chain that does not verify.
pub(crate) fn verify_vs_sha256(dir: &Path) -> Result<VerifyResult> {
    use sha2::Digest;
    use std::io::Read;
    let bytes = dir_bytes(dir) as f64;
    let t = Instant::now();
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    for entry in fs::read_dir(dir).map_err(Error::io("cannot list", dir))? {
        let path = entry.map_err(Error::io("cannot list", dir))?.path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            let mut f = File::open(&path).map_err(Error::io("cannot open", &path))?;
            loop {
                let n = f.read(&mut buf).map_err(Error::io("cannot read", &path))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
        }
    }
    std::hint::black_box(hasher.finalize());
    let sha_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let report = audit_host::verify_dir(dir, &Integrity::Sha256)
        .map_err(|e| Error::Integrity(audit_format::error::chain(&e)))?;
    let verify_secs = t.elapsed().as_secs_f64();
    let (v, s) = (bytes / verify_secs / 1e6, bytes / sha_secs / 1e6);
    Ok(VerifyResult {
        scenario: "verify".into(),
        megabytes: bytes / 1e6,
        events: report.events,
        verify_mb_per_s: v,
        sha256_mb_per_s: s,
        ratio_to_sha256: v / s,
    })
}
