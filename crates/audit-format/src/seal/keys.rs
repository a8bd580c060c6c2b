//! The seal key pair: `audit-signing.key`, the PKCS#8 v2 document (DER, 83 bytes, as
//! `ring` generates it; `openssl pkey -inform DER` reads it), mode 0600; and
//! `audit-signing.pub`, the 32-byte Ed25519 public key as 64 lowercase hex digits and a
//! newline.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use sha2::{Digest, Sha256};

use super::{hex, unhex};
use crate::error::{Error, Result};
use crate::fs::{create_dir_private, open_read, sync_dir};

/// The private key's file name in `audit keygen --out DIR`.
pub const PRIVATE_KEY_FILE: &str = "audit-signing.key";
/// The public key's file name in `audit keygen --out DIR`.
pub const PUBLIC_KEY_FILE: &str = "audit-signing.pub";

/// The private half: signs seals.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    public: PublicKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.public.id())
    }
}

impl SigningKey {
    /// The key in a PKCS#8 v2 document (what [`generate`](Self::generate) writes).
    ///
    /// # Errors
    /// A message saying the bytes are not an Ed25519 PKCS#8 v2 key.
    pub fn from_pkcs8(der: &[u8]) -> std::result::Result<Self, String> {
        let pair = Ed25519KeyPair::from_pkcs8(der).map_err(|e| {
            format!("not an Ed25519 private key in PKCS#8 v2 DER ({e}); create one with `audit keygen --out DIR`")
        })?;
        let mut raw = [0u8; 32];
        raw.copy_from_slice(pair.public_key().as_ref());
        Ok(Self {
            pair,
            public: PublicKey(raw),
        })
    }

    /// A new key pair's PKCS#8 v2 document (DER).
    ///
    /// # Errors
    /// [`Error::Io`]-like backend error when the system's random generator fails.
    pub fn generate() -> Result<Vec<u8>> {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| {
            Error::backend("cannot generate an Ed25519 key: the system's random generator failed")
        })?;
        Ok(doc.as_ref().to_vec())
    }

    /// The public half.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The signature of `body`.
    pub fn sign(&self, body: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(self.pair.sign(body).as_ref());
        out
    }
}

/// The public half: checks seals.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey([u8; 32]);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.id())
    }
}

impl PublicKey {
    /// Parses the text of `audit-signing.pub`: 64 hex digits, surrounding whitespace ignored.
    ///
    /// # Errors
    /// A message saying what is wrong.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let t = text.trim();
        match unhex(t) {
            Some(b) if b.len() == 32 => {
                let mut raw = [0u8; 32];
                raw.copy_from_slice(&b);
                Ok(Self(raw))
            }
            _ => Err(format!(
                "not an Ed25519 public key: expected 64 hex digits (the content of {PUBLIC_KEY_FILE}), found {} characters",
                t.len()
            )),
        }
    }

    /// Reads a public key file (no permission rules: it is public; never through a link).
    ///
    /// # Errors
    /// A message naming the file.
    pub fn read(path: &Path) -> std::result::Result<Self, String> {
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut std::io::Read::take(
                open_read(path)
                    .map_err(|e| format!("cannot read public key {}: {e}", path.display()))?,
                4096,
            ),
            &mut text,
        )
        .map_err(|e| format!("cannot read public key {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|m| format!("{}: {m}", path.display()))
    }

    /// The 64 hex digits of the key.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// A short id: the first 8 bytes of the key's SHA-256, in hex. Seals name the key that
    /// signed them with it, so a wrong key is told from a forged seal.
    pub fn id(&self) -> String {
        hex(&Sha256::digest(self.0)[..8])
    }

    /// Whether `signature` is this key's signature of `body`.
    pub fn verifies(&self, body: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(body, signature)
            .is_ok()
    }
}

/// Writes a new key pair into `dir` (created 0700 if missing): `audit-signing.key` (0600)
/// and `audit-signing.pub`. Refuses to overwrite either.
///
/// # Errors
/// A message naming the file and what to do.
pub fn write_key_pair(dir: &Path) -> std::result::Result<(PathBuf, PathBuf, PublicKey), String> {
    create_dir_private(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let key_path = dir.join(PRIVATE_KEY_FILE);
    let pub_path = dir.join(PUBLIC_KEY_FILE);
    for p in [&key_path, &pub_path] {
        if std::fs::symlink_metadata(p).is_ok() {
            return Err(format!(
                "{} exists; keygen never overwrites a key: move it aside or choose another --out",
                p.display()
            ));
        }
    }
    let der = SigningKey::generate().map_err(|e| crate::error::chain(&e))?;
    let key = SigningKey::from_pkcs8(&der)?;
    write_new(&key_path, &der, 0o600)?;
    write_new(
        &pub_path,
        format!("{}\n", key.public().to_hex()).as_bytes(),
        0o644,
    )?;
    sync_dir(dir).map_err(|e| format!("cannot fsync {}: {e}", dir.display()))?;
    Ok((key_path, pub_path, *key.public()))
}

/// Creates `path` (it must not exist) with `mode`, writes `bytes` and fsyncs it.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> std::result::Result<(), String> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = o
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn sign_and_verify_round_trip() -> std::result::Result<(), String> {
        let der = SigningKey::generate().map_err(|e| crate::error::chain(&e))?;
        let key = SigningKey::from_pkcs8(&der)?;
        let sig = key.sign(b"body");
        assert!(key.public().verifies(b"body", &sig));
        assert!(!key.public().verifies(b"bodz", &sig));
        let parsed = PublicKey::parse(&format!("{}\n", key.public().to_hex()))?;
        assert_eq!(parsed, *key.public());
        assert!(PublicKey::parse("abc").is_err());
        assert!(SigningKey::from_pkcs8(b"not a key").is_err());
        Ok(())
    }
}
