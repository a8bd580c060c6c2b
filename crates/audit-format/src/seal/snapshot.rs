//! Building and writing the next seal: the files up to the durable point the store last
//! reported, each with the digest of its lines' checksums ([`FileDigest`]). The writer
//! hands over the digests of the files it wrote; only files it did not write are read here,
//! once, and a file still at the size the last seal recorded is taken from that seal.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};

use super::digest::FileDigest;
use super::format::{SEAL_FORMAT, Seal, SealAnchor, SealReason, SealedFile, parse_signed};
use super::hex;
use super::keys::SigningKey;
use super::log::{SEALS_DIR, SealLog};
use crate::anchor::{ANCHOR_FILE, Anchor};
use crate::error::{Error, Result};
use crate::fs::open_read;
use crate::names::{list_log_files, parse_log_file_name};

/// Where the store's data was last durable: what a seal may cover. Every audit file before
/// `file` is complete; `file` is durable up to `len`; files after it were started since.
#[derive(Debug, Clone)]
pub struct SealPoint {
    /// The last durable sequence number.
    pub last_sequence: u64,
    /// Its checksum.
    pub last_checksum: String,
    /// The file the last durable line is in.
    pub file: PathBuf,
    /// That file's durable length.
    pub len: u64,
    /// The digests of the files the store wrote to since the point before (by file name),
    /// each over the file's whole durable content: `file`'s at `len`, and those it left
    /// (rotated away from) since.
    pub digests: Vec<(String, FileDigest)>,
}

/// Signs and appends a directory's seals, continuing its seal chain.
#[derive(Debug)]
pub struct Sealer {
    dir: PathBuf,
    key: Arc<SigningKey>,
    log: SealLog,
    next: u64,
    previous_signature: Option<String>,
    last_sealed: Option<u64>,
    /// Per file name: its digest as far as known (handed over by the writer, or read here).
    digests: HashMap<String, FileDigest>,
    /// Per file name: what the last seal recorded, reused while the file keeps that size.
    last_files: HashMap<String, SealedFile>,
}

impl Sealer {
    /// Opens `dir`'s seals (`.audit-seals/`, created when missing) and continues from the
    /// last one, which must verify under `key`.
    ///
    /// # Errors
    /// [`Error::Io`] when the seals directory cannot be read or created;
    /// [`Error::Integrity`] when its last seal was not signed by `key`.
    pub fn open(dir: &Path, key: Arc<SigningKey>) -> Result<Self> {
        let log = SealLog::open(dir.join(SEALS_DIR))?;
        let mut sealer = Self {
            dir: dir.to_path_buf(),
            key,
            log,
            next: 1,
            previous_signature: None,
            last_sealed: None,
            digests: HashMap::new(),
            last_files: HashMap::new(),
        };
        if let Some(l) = sealer.log.last_line()? {
            let s = parse_signed(&l.text, sealer.key.public()).map_err(|e| {
                Error::Integrity(format!(
                    "cannot continue the seal chain from {}:{}: {e}. Use the signing key that wrote it, or move {} aside to start a new seal chain",
                    l.file.display(),
                    l.line,
                    sealer.log.dir().display()
                ))
            })?;
            sealer.next = s.seal.seal + 1;
            sealer.previous_signature = Some(s.signature);
            sealer.last_sealed = Some(s.seal.last_sequence);
            sealer.last_files = s
                .seal
                .files
                .into_iter()
                .map(|f| (f.name.clone(), f))
                .collect();
        }
        Ok(sealer)
    }

    /// The last sequence number sealed, if any.
    pub fn last_sealed(&self) -> Option<u64> {
        self.last_sealed
    }

    /// Takes the writer's digests (see [`SealPoint::digests`]); a longer one replaces a
    /// shorter one of the same file.
    pub fn learn(&mut self, digests: impl IntoIterator<Item = (String, FileDigest)>) {
        for (name, d) in digests {
            match self.digests.get(&name) {
                Some(known) if known.size() > d.size() => {}
                _ => {
                    self.digests.insert(name, d);
                }
            }
        }
    }

    /// Reads, ahead of the first seal, every audit file but the newest (which the writer
    /// digests itself when it continues it) that the last seal does not cover at its
    /// present size: files the writer will not hand over. Run off the hot path.
    ///
    /// # Errors
    /// [`Error::Io`] when the directory cannot be listed or a file read (a file deleted
    /// meanwhile is skipped).
    pub fn prepare(&mut self) -> Result<()> {
        let io = |e| Error::io("cannot read for sealing", &self.dir)(e);
        let files = list_log_files(&self.dir).map_err(io)?;
        for f in files.iter().take(files.len().saturating_sub(1)) {
            let name = file_name(&f.path);
            let size = match fs::symlink_metadata(&f.path) {
                Ok(m) => m.len(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("cannot read for sealing", &f.path)(e)),
            };
            if let Err(e) = self.sealed_file(&name, &f.path, size)
                && e.kind() != io::ErrorKind::NotFound
            {
                return Err(Error::io("cannot read for sealing", &f.path)(e));
            }
        }
        Ok(())
    }

    /// Writes a seal of `point` (durable before it returns), unless nothing was added since
    /// the last seal and `reason` is not retention. Returns the seal line written.
    ///
    /// # Errors
    /// [`Error::Io`] when a file cannot be read or the seal cannot be written (nothing of
    /// the chain state changes then; the next call tries again).
    pub fn seal(
        &mut self,
        point: &SealPoint,
        reason: SealReason,
        now: DateTime<Utc>,
    ) -> Result<Option<String>> {
        self.learn(point.digests.iter().cloned());
        let new_events = self.last_sealed.is_none_or(|s| point.last_sequence > s);
        if !new_events && reason != SealReason::Retention {
            return Ok(None);
        }
        // Retention may delete a file between listing and reading: list again then.
        let mut tries = 0;
        let (files, anchor) = loop {
            match self
                .files_at(point)
                .and_then(|f| Ok((f, anchor_of(&self.dir)?)))
            {
                Ok(v) => break v,
                Err(e) if tries < 3 && e.kind() == io::ErrorKind::NotFound => tries += 1,
                Err(e) => return Err(Error::io("cannot seal", &self.dir)(e)),
            }
        };
        let first_sequence = match self.last_sealed {
            Some(s) => s + 1,
            None => anchor.as_ref().map_or(1, |a| a.sequence_number),
        };
        let seal = Seal {
            anchor,
            files,
            first_sequence: first_sequence.min(point.last_sequence),
            format: SEAL_FORMAT,
            key_id: self.key.public().id(),
            last_checksum: point.last_checksum.clone(),
            last_sequence: point.last_sequence,
            previous_signature: self.previous_signature.clone(),
            reason,
            seal: self.next,
            sealed_at: now.to_rfc3339_opts(SecondsFormat::Micros, true),
        };
        let (line, signature) = seal.sign(&self.key);
        self.log.append(now.date_naive(), &line)?;
        self.next += 1;
        self.previous_signature = Some(signature);
        self.last_sealed = Some(point.last_sequence);
        self.last_files = seal
            .files
            .into_iter()
            .map(|f| (f.name.clone(), f))
            .collect();
        Ok(Some(line))
    }

    /// Every audit file up to `point.file`, with its size and digest.
    fn files_at(&mut self, point: &SealPoint) -> io::Result<Vec<SealedFile>> {
        let upto = point
            .file
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(parse_log_file_name);
        let mut out = Vec::new();
        for f in list_log_files(&self.dir)? {
            if upto.is_some_and(|u| (f.date, f.index) > u) {
                break;
            }
            let name = file_name(&f.path);
            let size = if f.path == point.file {
                point.len
            } else {
                fs::symlink_metadata(&f.path)?.len()
            };
            out.push(self.sealed_file(&name, &f.path, size)?);
        }
        self.digests
            .retain(|name, _| out.iter().any(|f| &f.name == name));
        Ok(out)
    }

    /// `name` at `size`: from the writer's digest, the last seal, or read (only what the
    /// known digest does not cover).
    fn sealed_file(&mut self, name: &str, path: &Path, size: u64) -> io::Result<SealedFile> {
        let at = |d: &FileDigest| SealedFile {
            checksums_sha256: d.hex(),
            lines: d.lines(),
            name: name.to_owned(),
            size,
        };
        if let Some(d) = self.digests.get(name).filter(|d| d.size() == size) {
            return Ok(at(d));
        }
        if let Some(f) = self.last_files.get(name).filter(|f| f.size == size) {
            return Ok(f.clone());
        }
        let mut d = self
            .digests
            .remove(name)
            .filter(|d| d.size() < size)
            .unwrap_or_default();
        d.extend_from(path, size)?;
        let sealed = at(&d);
        self.digests.insert(name.to_owned(), d);
        Ok(sealed)
    }
}

/// The file name of an audit file's path (they are all UTF-8).
fn file_name(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned()
}

/// The directory's anchor as a seal records it.
fn anchor_of(dir: &Path) -> io::Result<Option<SealAnchor>> {
    let path = dir.join(ANCHOR_FILE);
    let mut bytes = Vec::new();
    match open_read(&path) {
        Ok(mut f) => f.read_to_end(&mut bytes)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let sequence_number = Anchor::read(dir)
        .map_err(|e| io::Error::other(crate::error::chain(&e)))?
        .map_or(0, |a| a.sequence_number);
    Ok(Some(SealAnchor {
        sha256: hex(&Sha256::digest(&bytes)),
        sequence_number,
    }))
}
