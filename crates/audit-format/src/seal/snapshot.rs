//! Building and writing the next seal: the files up to the durable point the store last
//! reported, hashed incrementally (each byte of a file is read once across all seals).

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealPoint {
    /// The last durable sequence number.
    pub last_sequence: u64,
    /// Its checksum.
    pub last_checksum: String,
    /// The file the last durable line is in.
    pub file: PathBuf,
    /// That file's durable length.
    pub len: u64,
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
    /// Per file name: the bytes hashed so far and the hash state after them.
    hashed: HashMap<String, (u64, Sha256)>,
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
        let (next, previous_signature, last_sealed) = match log.last_line()? {
            None => (1, None, None),
            Some(l) => {
                let s = parse_signed(&l.text, key.public()).map_err(|e| {
                    Error::Integrity(format!(
                        "cannot continue the seal chain from {}:{}: {e}. Use the signing key that wrote it, or move {} aside to start a new seal chain",
                        l.file.display(),
                        l.line,
                        log.dir().display()
                    ))
                })?;
                (
                    s.seal.seal + 1,
                    Some(s.signature),
                    Some(s.seal.last_sequence),
                )
            }
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            key,
            log,
            next,
            previous_signature,
            last_sealed,
            hashed: HashMap::new(),
        })
    }

    /// The last sequence number sealed, if any.
    pub fn last_sealed(&self) -> Option<u64> {
        self.last_sealed
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
        let new_events = self.last_sealed.is_none_or(|s| point.last_sequence > s);
        if !new_events && reason != SealReason::Retention {
            return Ok(None);
        }
        // Retention may delete a file between listing and hashing: list again then.
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
        Ok(Some(line))
    }

    /// Every audit file up to `point.file`, with its size and hash.
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
            let name = f
                .path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            let size = if f.path == point.file {
                point.len
            } else {
                fs::symlink_metadata(&f.path)?.len()
            };
            let sha256 = self.hash_prefix(&name, &f.path, size)?;
            out.push(SealedFile { name, sha256, size });
        }
        self.hashed
            .retain(|name, _| out.iter().any(|f| &f.name == name));
        Ok(out)
    }

    /// SHA-256 of the first `size` bytes of `path`, reading only what the last call did not.
    fn hash_prefix(&mut self, name: &str, path: &Path, size: u64) -> io::Result<String> {
        let (mut done, mut state) = match self.hashed.get(name) {
            Some((len, st)) if *len <= size => (*len, st.clone()),
            _ => (0, Sha256::new()),
        };
        if done < size {
            let mut file = open_read(path)?;
            file.seek(SeekFrom::Start(done))?;
            let mut reader = file.take(size - done);
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = reader.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                state.update(&buf[..n]);
                done += n as u64;
            }
            if done < size {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "{} is shorter than its durable length {size}",
                        path.display()
                    ),
                ));
            }
        }
        let digest = hex(&state.clone().finalize());
        self.hashed.insert(name.to_owned(), (done, state));
        Ok(digest)
    }
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
