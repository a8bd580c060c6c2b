//! Signed seals: Ed25519-signed records of what an audit directory held at a moment (every
//! audit file with its size, line count and a SHA-256 over its lines' checksums, the last
//! sequence and checksum, the chain anchor),
//! chained to each other by the previous seal's signature. A hash chain cannot show that
//! its tail was cut off or its newest file deleted; a seal can, and anyone holding only the
//! public key can check it. The byte format is in `docs/file-format.md`.
//!
//! - [`keys`]: the key pair (`audit keygen`) and its files;
//! - [`mod@format`]: one seal, its canonical JSON line and what is signed;
//! - [`log`]: the `.audit-seals/` directory the seals are appended to;
//! - [`digest`]: what a seal commits a file through (its lines' checksums), kept by the
//!   writer as it appends;
//! - [`snapshot`]: building the next seal from the writer's digests (reading only files it
//!   did not write);
//! - [`check`]: verifying a directory against its seals (`audit verify --public-key`).

pub mod check;
pub mod digest;
pub mod format;
pub mod keys;
pub mod log;
pub mod snapshot;
pub(crate) mod written;

pub use check::{SealCheck, check_seals};
pub use digest::FileDigest;
pub use format::{Seal, SealAnchor, SealReason, SealedFile};
pub use keys::{PublicKey, SigningKey};
pub use log::{SEALS_DIR, SealLog};
pub use snapshot::Sealer;

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// The bytes of lowercase (or uppercase) hex `s`, or `None` if it is not hex of even length.
pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|p| {
            let d = |c: u8| char::from(c).to_digit(16);
            u8::try_from(d(p[0])? * 16 + d(p[1])?).ok()
        })
        .collect()
}
