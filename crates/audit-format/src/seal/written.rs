//! The digests a [`FileStore`](crate::store::FileStore) keeps of the files it appends to
//! when seals are on: each line's [`line_key`] is taken as the line is buffered and hashed
//! into the file's [`FileDigest`] once the write succeeded, so a seal never reads back
//! what the writer wrote.

use std::io;
use std::path::Path;

use super::digest::{FileDigest, line_key};

/// The writer's digests: the open file's, and those of files it left since the last
/// [`take`](Self::take).
#[derive(Debug, Default, Clone)]
pub(crate) struct Written {
    /// The open file's name and digest, over its whole length.
    current: Option<(String, FileDigest)>,
    /// Files left (rotated away from) since the last `take`, with their final digests.
    left: Vec<(String, FileDigest)>,
    /// The keys of the lines buffered and not yet written, back to back.
    keys: Vec<u8>,
    /// Their bytes, newlines included.
    keys_bytes: u64,
}

impl Written {
    /// The digests of a store opened on a directory whose newest file is `newest` (`len`
    /// bytes): read once here, since only the newest file can be continued.
    pub(crate) fn open(newest: Option<(&Path, u64)>) -> io::Result<Self> {
        let mut w = Self::default();
        if let Some((path, len)) = newest {
            w.current = Some((name_of(path), FileDigest::of_prefix(path, len)?));
        }
        Ok(w)
    }

    /// A line (without its newline) was buffered for the open file.
    pub(crate) fn buffer(&mut self, line: &[u8]) {
        self.keys.extend_from_slice(&line_key(line));
        self.keys_bytes += line.len() as u64 + 1;
    }

    /// The buffered lines were written to the open file.
    pub(crate) fn written(&mut self) {
        if let Some((_, d)) = &mut self.current {
            d.push_keys(&self.keys, self.keys_bytes);
        }
        self.discard();
    }

    /// Forgets the buffered lines (their write failed).
    pub(crate) fn discard(&mut self) {
        self.keys.clear();
        self.keys_bytes = 0;
    }

    /// The store opened `path`, `len` bytes long, for writing: keeps its digest if it is
    /// the one already open, else sets the one it leaves aside and reads the new one's
    /// existing content (none for a new file).
    pub(crate) fn switch(&mut self, path: &Path, len: u64) -> io::Result<()> {
        let name = name_of(path);
        match self.current.take() {
            Some((n, d)) if n == name && d.size() == len => {
                self.current = Some((n, d));
                return Ok(());
            }
            Some((n, d)) if n != name => self.left.push((n, d)),
            _ => {}
        }
        let d = if len == 0 {
            FileDigest::new()
        } else {
            FileDigest::of_prefix(path, len)?
        };
        self.current = Some((name, d));
        Ok(())
    }

    /// What a seal point carries (see [`SealPoint::digests`](super::snapshot::SealPoint)):
    /// the files left since the last call, then the open one.
    pub(crate) fn take(&mut self) -> Vec<(String, FileDigest)> {
        let mut out = std::mem::take(&mut self.left);
        out.extend(self.current.clone());
        out
    }

    /// A copy to restore if a batch fails (the buffered keys are not copied).
    pub(crate) fn snapshot(&self) -> Self {
        Self {
            current: self.current.clone(),
            left: self.left.clone(),
            keys: Vec::new(),
            keys_bytes: 0,
        }
    }
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned()
}
