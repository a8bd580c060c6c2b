//! What a seal commits a file through: its lines' checksums. [`FileDigest`] is the running
//! SHA-256 over, for each line in file order, the 32 raw bytes of its `checksum` (see
//! [`line_key`]), with the line count and the byte length. The writer keeps one per file as
//! it appends (32 bytes hashed per line, not the line), so sealing never reads the files it
//! wrote; files it did not write are read once ([`FileDigest::of_prefix`]).

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::hex;
use serde::Deserialize;

/// `{"checksum":"`: a canonical line starts with it.
const PREFIX: &[u8] = b"{\"checksum\":\"";

/// The 32 bytes a line contributes to its file's digest: its `checksum` (64 lowercase hex
/// digits) decoded, or, when the line has no such checksum, the SHA-256 of its bytes
/// (`line` is without its newline). A canonical line is read at its fixed offset; any other
/// is parsed as JSON.
pub fn line_key(line: &[u8]) -> [u8; 32] {
    let at = PREFIX.len();
    if line.starts_with(PREFIX)
        && line.get(at + 64) == Some(&b'"')
        && let Some(key) = decode(&line[at..at + 64])
    {
        return key;
    }
    let parsed = serde_json::from_slice::<Checksum<'_>>(line).ok();
    parsed
        .and_then(|f| f.checksum.and_then(|c| decode(c.as_bytes())))
        .unwrap_or_else(|| Sha256::digest(line).into())
}

/// A JSON object's `checksum` member, every other member ignored.
#[derive(Deserialize)]
struct Checksum<'a> {
    #[serde(borrow)]
    checksum: Option<Cow<'a, str>>,
}

/// The 32 bytes of 64 lowercase hex digits, or `None`. Straight-line arithmetic over the
/// 64 digits (the compiler vectorizes it): the writer decodes every line's checksum.
fn decode(hex: &[u8]) -> Option<[u8; 32]> {
    let hex: &[u8; 64] = hex.try_into().ok()?;
    let mut nibbles = [0u8; 64];
    let mut bad = 0u8;
    for (n, &b) in nibbles.iter_mut().zip(hex) {
        let digit = b.wrapping_sub(b'0');
        let letter = b.wrapping_sub(b'a');
        let is_digit = digit < 10;
        bad |= u8::from(!is_digit && letter >= 6);
        *n = if is_digit {
            digit
        } else {
            letter.wrapping_add(10)
        };
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(nibbles.chunks_exact(2)) {
        *o = pair[0] << 4 | pair[1];
    }
    (bad == 0).then_some(out)
}

/// One file's digest over its first `size` bytes: `lines` lines, and the SHA-256 state
/// after their keys.
#[derive(Debug, Clone, Default)]
pub struct FileDigest {
    state: Sha256,
    lines: u64,
    size: u64,
}

impl FileDigest {
    /// The digest of an empty file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one line (`line` without its newline; `newline`: whether one follows it).
    pub fn push_line(&mut self, line: &[u8], newline: bool) {
        self.push_key(&line_key(line), line.len() as u64 + u64::from(newline));
    }

    /// Adds a line whose [`line_key`] the caller has, `bytes` long with its newline.
    pub fn push_key(&mut self, key: &[u8; 32], bytes: u64) {
        self.state.update(key);
        self.lines += 1;
        self.size += bytes;
    }

    /// Adds many lines at once: `keys` holds their keys back to back, `bytes` their total
    /// length with newlines.
    pub fn push_keys(&mut self, keys: &[u8], bytes: u64) {
        debug_assert!(keys.len().is_multiple_of(32));
        self.state.update(keys);
        self.lines += keys.len() as u64 / 32;
        self.size += bytes;
    }

    /// Lines digested.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Bytes digested (newlines included).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The digest so far, lowercase hex (the seal's `checksums_sha256`).
    pub fn hex(&self) -> String {
        hex(&self.state.clone().finalize())
    }

    /// Continues this digest of `path` up to `size` bytes, reading only what it has not
    /// digested (a final piece without a newline counts as a line).
    ///
    /// # Errors
    /// When `path` cannot be read or is shorter than `size`.
    pub fn extend_from(&mut self, path: &Path, size: u64) -> io::Result<()> {
        if self.size >= size {
            return Ok(());
        }
        let mut file = crate::fs::open_read(path)?;
        io::Seek::seek(&mut file, io::SeekFrom::Start(self.size))?;
        let want = size - self.size;
        let read = self.read_lines(file.take(want))?;
        if read < want {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} is shorter than {size} bytes", path.display()),
            ));
        }
        Ok(())
    }

    /// The digest of the first `size` bytes of `path`.
    ///
    /// # Errors
    /// As [`extend_from`](Self::extend_from).
    pub fn of_prefix(path: &Path, size: u64) -> io::Result<Self> {
        let mut d = Self::new();
        d.extend_from(path, size)?;
        Ok(d)
    }

    /// Digests every line `reader` yields; returns the bytes read.
    fn read_lines(&mut self, mut reader: io::Take<File>) -> io::Result<u64> {
        let mut buf = vec![0u8; 1 << 20];
        let mut carry: Vec<u8> = Vec::new();
        let mut total = 0u64;
        loop {
            let n = reader.read(&mut buf)?;
            total += n as u64;
            if n == 0 {
                if !carry.is_empty() {
                    self.push_line(&carry, false);
                }
                return Ok(total);
            }
            let mut start = 0;
            for end in memchr::memchr_iter(b'\n', &buf[..n]) {
                if carry.is_empty() {
                    self.push_line(&buf[start..end], true);
                } else {
                    carry.extend_from_slice(&buf[start..end]);
                    let line = std::mem::take(&mut carry);
                    self.push_line(&line, true);
                }
                start = end + 1;
            }
            carry.extend_from_slice(&buf[start..n]);
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn canonical_and_other_lines_give_their_checksum_else_their_hash() {
        let sum = "ab".repeat(32);
        let canonical = format!("{{\"checksum\":\"{sum}\",\"x\":1}}");
        assert_eq!(line_key(canonical.as_bytes()), [0xab; 32]);
        let legacy = format!("{{\"message\":\"x\",\"checksum\":\"{sum}\"}}");
        assert_eq!(line_key(legacy.as_bytes()), [0xab; 32]);
        let twice = format!("{{ \"checksum\":\"{sum}\",\"checksum\":\"{sum}\"}}");
        let hashed: [u8; 32] = Sha256::digest(twice.as_bytes()).into();
        assert_eq!(line_key(twice.as_bytes()), hashed);
        let upper = canonical.replace("ab", "AB");
        let hashed: [u8; 32] = Sha256::digest(upper.as_bytes()).into();
        assert_eq!(line_key(upper.as_bytes()), hashed);
        for bad in ["g", ":", "/", "`", "G", "\u{7f}"] {
            let odd = canonical.replacen("ab", &format!("{bad}b"), 1);
            let hashed: [u8; 32] = Sha256::digest(odd.as_bytes()).into();
            assert_eq!(line_key(odd.as_bytes()), hashed, "{bad}");
        }
        let digits = format!(
            "{{\"checksum\":\"{}\",\"x\":1}}",
            "0123456789abcdef".repeat(4)
        );
        let want: Vec<u8> = (0..32)
            .map(|i| [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef][i % 8])
            .collect();
        assert_eq!(line_key(digits.as_bytes()).to_vec(), want);
        let not_json = b"garbage";
        assert_eq!(
            line_key(not_json),
            <[u8; 32]>::from(Sha256::digest(not_json))
        );
    }

    #[test]
    fn reading_a_file_equals_pushing_its_lines() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("f.jsonl");
        let lines: Vec<String> = (0..5)
            .map(|i| {
                format!(
                    "{{\"checksum\":\"{}\",\"i\":{i}}}",
                    format!("{i:02x}").repeat(32)
                )
            })
            .collect();
        std::fs::write(&path, lines.join("\n") + "\n")?;
        let mut pushed = FileDigest::new();
        for (i, l) in lines.iter().enumerate() {
            pushed.push_line(l.as_bytes(), true);
            let len = pushed.size();
            let read = FileDigest::of_prefix(&path, len)?;
            assert_eq!((read.hex(), read.lines()), (pushed.hex(), i as u64 + 1));
        }
        let mut part = FileDigest::of_prefix(&path, lines[0].len() as u64 + 1)?;
        part.extend_from(&path, pushed.size())?;
        assert_eq!(part.hex(), pushed.hex());
        assert!(FileDigest::of_prefix(&path, pushed.size() + 1).is_err());
        Ok(())
    }
}
