//! `audit verify --public-key`: a directory against its seals. Every seal's signature and
//! the seal chain; every file the seals name, over the prefix they sealed; the last seal's
//! sequence and checksum; and what came after the last seal.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::digest::FileDigest;
use super::format::{SealLineError, SignedSeal, parse_signed};
use super::hex;
use super::keys::PublicKey;
use super::log::read_seal_lines;
use crate::anchor::{ANCHOR_FILE, Anchor};
use crate::error::Result;
use crate::fs::open_read;
use crate::names::{list_log_files, parse_log_file_name};
use crate::record::ChainFields;
use crate::recover::find_line;

/// What checking a directory's seals found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SealCheck {
    /// Seals that verified.
    pub seals: u64,
    /// The last sequence number the last seal covers.
    pub last_sealed: Option<u64>,
    /// Events stored after the last seal (a warning, not a failure).
    pub unsealed: u64,
    /// Failures, each naming what is missing or altered.
    pub failures: Vec<String>,
    /// Things worth knowing.
    pub warnings: Vec<String>,
}

/// Checks `dir` against the seals in `seals_dir` (its own `.audit-seals`, or a witness's
/// copy) with `key`. `dir_last`: the last sequence number the chain check found in `dir`
/// (`None` when it failed), to count the events not yet sealed.
///
/// # Errors
/// [`crate::Error::Io`] when the seals cannot be read.
pub fn check_seals(
    dir: &Path,
    seals_dir: &Path,
    key: &PublicKey,
    dir_last: Option<u64>,
) -> Result<SealCheck> {
    let mut out = SealCheck::default();
    let seals = read_chain(seals_dir, key, &mut out)?;
    let Some(last) = seals.last() else {
        out.failures.push(format!(
            "{}: no seals: the directory was never sealed (is signing_key_file set?) or its seals were deleted",
            seals_dir.display()
        ));
        return Ok(out);
    };
    let last = last.clone();
    out.last_sealed = Some(last.seal.last_sequence);
    check_files(dir, &seals, &last, &mut out);
    check_sealed_end(dir, &last, dir_last, &mut out);
    check_anchor(dir, &last, &mut out);
    Ok(out)
}

/// Reads and verifies every seal line: signatures, numbers, and previous signatures.
fn read_chain(seals_dir: &Path, key: &PublicKey, out: &mut SealCheck) -> Result<Vec<SignedSeal>> {
    let lines = read_seal_lines(seals_dir)?;
    let count = lines.len();
    let mut seals: Vec<SignedSeal> = Vec::new();
    for (i, l) in lines.into_iter().enumerate() {
        let at = format!("{}:{}", l.file.display(), l.line);
        if !l.complete {
            let msg = format!("{at}: a torn seal line (no newline at its end)");
            if i + 1 == count {
                out.warnings
                    .push(format!("{msg}, ignored: a crash while it was written"));
            } else {
                out.failures.push(msg);
            }
            continue;
        }
        let s = match parse_signed(&l.text, key) {
            Ok(s) => s,
            Err(e @ SealLineError::BadSignature { .. }) => {
                out.failures.push(format!("{at}: {e}"));
                continue;
            }
            Err(e) => {
                out.failures.push(format!("{at}: {e}"));
                continue;
            }
        };
        match seals.last() {
            None if s.seal.seal != 1 || s.seal.previous_signature.is_some() => {
                out.failures.push(format!(
                    "{at}: the first seal found is seal {}: seals 1 to {} are missing",
                    s.seal.seal,
                    s.seal.seal.saturating_sub(1)
                ));
            }
            Some(p) if s.seal.seal != p.seal.seal + 1 => out.failures.push(format!(
                "{at}: seal {} follows seal {}: seal(s) {} to {} are missing",
                s.seal.seal,
                p.seal.seal,
                p.seal.seal + 1,
                s.seal.seal.saturating_sub(1)
            )),
            Some(p) if s.seal.previous_signature.as_deref() != Some(p.signature.as_str()) => {
                out.failures.push(format!(
                    "{at}: seal {} does not chain to seal {} (previous_signature differs): a seal was replaced",
                    s.seal.seal, p.seal.seal
                ));
            }
            _ => {}
        }
        out.seals += 1;
        seals.push(s);
    }
    Ok(seals)
}

/// Every file a seal names, over its sealed prefixes; every file of the last seal present;
/// no file the last seal does not know among those it sealed.
fn check_files(dir: &Path, seals: &[SignedSeal], last: &SignedSeal, out: &mut SealCheck) {
    // name -> sealed (size, lines, checksums_sha256, seal number), smallest size first.
    let mut claims: BTreeMap<&str, Vec<Claim<'_>>> = BTreeMap::new();
    for s in seals {
        for f in &s.seal.files {
            claims.entry(f.name.as_str()).or_default().push((
                f.size,
                f.lines,
                f.checksums_sha256.as_str(),
                s.seal.seal,
            ));
        }
    }
    let n = last.seal.seal;
    for f in &last.seal.files {
        if !dir.join(&f.name).exists() {
            out.failures.push(format!(
                "{} is missing: seal {n} sealed it at {} bytes (the directory then ended at sequence {})",
                dir.join(&f.name).display(),
                f.size,
                last.seal.last_sequence
            ));
        }
    }
    for (name, list) in &mut claims {
        let path = dir.join(name);
        if !path.exists() {
            continue; // removed by retention after an earlier seal, or reported above
        }
        list.sort_unstable();
        list.dedup();
        if let Err(e) = check_prefixes(&path, list, out) {
            out.failures
                .push(format!("{}: cannot read: {e}", path.display()));
        }
    }
    // A file older than the last seal's newest, that it does not name: put there since.
    let newest = last
        .seal
        .files
        .last()
        .and_then(|f| parse_log_file_name(&f.name));
    if let Ok(files) = list_log_files(dir) {
        for f in files {
            let name = f
                .path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if newest.is_some_and(|nw| (f.date, f.index) <= nw)
                && !last.seal.files.iter().any(|s| s.name == name)
            {
                out.failures.push(format!(
                    "{}: not in seal {n}, though older than files it sealed: added after sealing",
                    f.path.display()
                ));
            }
        }
    }
}

/// One file as one seal sealed it: (size, lines, checksums_sha256, seal number).
type Claim<'a> = (u64, u64, &'a str, u64);

/// Digests `path`'s lines once, front to back, comparing at each sealed size.
fn check_prefixes(path: &Path, claims: &[Claim<'_>], out: &mut SealCheck) -> io::Result<()> {
    let len = open_read(path)?.metadata()?.len();
    let mut digest = FileDigest::new();
    for &(size, lines, sum, seal) in claims {
        if size > len {
            out.failures.push(format!(
                "{} is {len} bytes, shorter than the {size} bytes seal {seal} sealed: its tail was cut off",
                path.display()
            ));
            return Ok(());
        }
        digest.extend_from(path, size)?;
        if digest.lines() != lines || digest.hex() != sum {
            out.failures.push(format!(
                "{}: its first {size} bytes are not those seal {seal} sealed (the SHA-256 over their lines' checksums differs; {} lines now, {lines} sealed): a line was edited, added, removed or replaced",
                path.display(),
                digest.lines()
            ));
            return Ok(());
        }
    }
    Ok(())
}

/// The last seal's last sequence and checksum must be stored; later events are unsealed.
fn check_sealed_end(dir: &Path, last: &SignedSeal, dir_last: Option<u64>, out: &mut SealCheck) {
    let (seq, n) = (last.seal.last_sequence, last.seal.seal);
    if !dir.is_dir() {
        let start = last.seal.anchor.as_ref().map_or(1, |a| a.sequence_number);
        out.failures.push(format!(
            "{} is gone: sequences {start} to {seq}, sealed by seal {n}, are missing",
            dir.display()
        ));
        return;
    }
    match find_line(dir, seq) {
        Ok(Some(head)) => {
            let sum = serde_json::from_str::<ChainFields<'_>>(&head.line)
                .ok()
                .and_then(|c| c.checksum.map(|c| c.into_owned()));
            if sum.as_deref() != Some(last.seal.last_checksum.as_str()) {
                out.failures.push(format!(
                    "sequence {seq} at {} is not the event seal {n} sealed (its checksum differs): the chain was replaced",
                    head.location
                ));
            }
        }
        Ok(None) => out.failures.push(match dir_last {
            Some(l) => format!(
                "sequences {} to {seq} are missing: seal {n} sealed up to sequence {seq}, the directory ends at sequence {l}",
                (l + 1).min(seq)
            ),
            None => format!("sequence {seq} is missing: seal {n} sealed up to it"),
        }),
        Err(e) => out.failures.push(format!("cannot look for sequence {seq}: {}", crate::error::chain(&e))),
    }
    if let Some(l) = dir_last
        && l > seq
    {
        out.unsealed = l - seq;
        let n_events = l - seq;
        let (events, them) = if n_events == 1 {
            (format!("1 event not yet sealed (sequence {l}"), "it")
        } else {
            let from = seq + 1;
            (
                format!("{n_events} events not yet sealed (sequences {from} to {l}"),
                "them",
            )
        };
        let they = if n_events == 1 { "it" } else { "they" };
        out.warnings.push(format!(
            "{events}, after seal {n}): a seal covers {them} at the next interval, rotation or close; until then {they} can be cut off unnoticed"
        ));
    }
}

/// The anchor now against the one the last seal recorded.
fn check_anchor(dir: &Path, last: &SignedSeal, out: &mut SealCheck) {
    let path = dir.join(ANCHOR_FILE);
    let now = match open_read(&path) {
        Ok(mut f) => {
            let mut b = Vec::new();
            if f.read_to_end(&mut b).is_err() {
                return;
            }
            Some(hex(&Sha256::digest(&b)))
        }
        Err(_) => None,
    };
    let sealed = last.seal.anchor.as_ref().map(|a| a.sha256.clone());
    if now == sealed {
        return;
    }
    let what = match (&sealed, &now) {
        (Some(_), None) => "was removed",
        (None, Some(_)) => "appeared",
        _ => "changed",
    };
    let msg = format!(
        "{}: {what} since seal {} sealed the directory",
        path.display(),
        last.seal.seal
    );
    // Retention writes a new anchor just before its seal; a check between the two sees it
    // moved forward. Only then (nothing else wrong, a later start) is it a warning.
    let sealed_seq = last.seal.anchor.as_ref().map_or(0, |a| a.sequence_number);
    let moved_on = Anchor::read(dir)
        .ok()
        .flatten()
        .is_some_and(|a| a.sequence_number > sealed_seq);
    if moved_on && out.failures.is_empty() {
        out.warnings
            .push(format!("{msg} (retention since the last seal?)"));
    } else {
        out.failures.push(msg);
    }
}
