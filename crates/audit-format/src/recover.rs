//! Crash recovery: where a directory's stored chain ends, after moving a torn final line
//! aside.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::anchor::{ANCHOR_FILE, Anchor};
use crate::error::{Error, Result};
use crate::fs::{open_private, open_read, open_read_write};
use crate::names::{LogFile, list_log_files};
use crate::record::ChainFields;

/// How much of a file's end is read first when looking for its last line.
pub(crate) const TAIL_CHUNK: u64 = 64 * 1024;

/// Where a stored chain ends, so a restarted trail continues it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// The last stored sequence number.
    pub sequence_number: u64,
    /// That event's stored line (without newline), so the trail can check it was written
    /// with the same integrity settings.
    pub line: String,
    /// Where the line is, for messages (for example `audit_2026-11-26.jsonl:1042`).
    pub location: String,
    /// Set when no file holds a line and the end of the chain comes from the directory's
    /// [`Anchor`] (retention removed every older file): `line` is empty, `sequence_number` is
    /// the anchor's minus one, and the chain continues at the anchor's sequence number with
    /// its `previous_hash`.
    pub anchor: Option<Anchor>,
}

impl ChainHead {
    /// The end of the chain an anchor records for a directory in which no file holds a line.
    pub fn from_anchor(anchor: Anchor, dir: &Path) -> Self {
        Self {
            sequence_number: anchor.sequence_number.saturating_sub(1),
            line: String::new(),
            location: format!(
                "{} (no audit file holds a line)",
                dir.join(ANCHOR_FILE).display()
            ),
            anchor: Some(anchor),
        }
    }
}

/// Finds the last complete line of the newest non-empty file; moves a torn tail (bytes
/// after the last newline, or trailing lines that are not JSON) to `<file>.torn`.
pub(crate) fn recover_tail(files: &[LogFile]) -> Result<Option<ChainHead>> {
    for f in files.iter().rev() {
        let path = &f.path;
        let mut file = open_read_write(path).map_err(Error::io("cannot open", path))?;
        let len = file
            .metadata()
            .map_err(Error::io("cannot stat", path))?
            .len();
        if len == 0 {
            continue;
        }
        let mut chunk = TAIL_CHUNK.min(len);
        // Reads the last `chunk` bytes; whenever the torn tail or a line being judged may
        // begin before them, reads further back (4x) and starts over.
        let (start, buf, keep, last_line) = 'read: loop {
            let start = len - chunk;
            let mut buf = vec![0u8; chunk as usize];
            file.seek(SeekFrom::Start(start))
                .and_then(|_| file.read_exact(&mut buf))
                .map_err(Error::io("cannot read", path))?;
            // `keep` = length of buf that holds complete, parseable lines.
            let mut keep = match buf.iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                None if start > 0 => {
                    chunk = (chunk * 4).min(len);
                    continue 'read;
                }
                None => 0,
            };
            let mut last_line: Option<(usize, usize)> = None;
            while keep > 0 {
                let line_start = buf[..keep - 1]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                if line_start == 0 && start > 0 {
                    // The line begins before our chunk: read it whole.
                    chunk = (chunk * 4).min(len);
                    continue 'read;
                }
                let line = &buf[line_start..keep - 1];
                if serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok() {
                    last_line = Some((line_start, keep - 1));
                    break;
                }
                keep = line_start;
            }
            break (start, buf, keep, last_line);
        };
        let cut = start + keep as u64;
        if cut < len {
            let torn = &buf[keep..];
            let torn_path = path.with_extension("jsonl.torn");
            let mut t =
                open_private(&torn_path, true).map_err(Error::io("cannot create", &torn_path))?;
            t.write_all(torn)
                .and_then(|()| t.write_all(b"\n"))
                .and_then(|()| t.sync_all())
                .map_err(Error::io("cannot write", &torn_path))?;
            file.set_len(cut)
                .and_then(|()| file.sync_all())
                .map_err(Error::io("cannot truncate", path))?;
            tracing::warn!(
                path = %path.display(),
                bytes = torn.len(),
                moved_to = %torn_path.display(),
                "recovered a torn final line in {}: {} byte(s) moved to {}; the chain continues from the last complete line",
                path.display(),
                torn.len(),
                torn_path.display()
            );
        }
        let Some((a, b)) = last_line else {
            continue; // the whole file was torn (cut to 0 above); look at the previous one
        };
        let line = &buf[a..b];
        let fields: ChainFields<'_> = serde_json::from_slice(line).map_err(|e| {
            Error::Integrity(format!(
                "{}: the last line is JSON but not an audit event ({e}); this directory holds \
                 foreign data: point the trail at another directory or move the file aside",
                path.display()
            ))
        })?;
        let line_no = count_lines_before(&mut file, start + a as u64, path)? + 1;
        return Ok(Some(ChainHead {
            sequence_number: fields.sequence_number,
            line: String::from_utf8_lossy(line).into_owned(),
            location: format!("{}:{line_no}", path.display()),
            anchor: None,
        }));
    }
    Ok(None)
}

/// The stored line with sequence number `sequence` in `dir`, if the directory holds it (the
/// trail checks another store's head against it at start).
///
/// Files hold their lines in sequence order, so it reads the first line of each file from
/// the newest back until one starts at or before `sequence`, then that one file whole: the
/// cost is one file's read (at most `max_file_bytes`, or a day's events without size
/// rotation) plus the first line of every newer file.
///
/// # Errors
/// [`Error::Io`] when the directory or a file cannot be read.
pub fn find_line(dir: &Path, sequence: u64) -> Result<Option<ChainHead>> {
    let files = list_log_files(dir).map_err(Error::io("cannot list audit directory", dir))?;
    for f in files.iter().rev() {
        let path = &f.path;
        let file = open_read(path).map_err(Error::io("cannot open", path))?;
        let mut first = Vec::new();
        BufReader::new(file)
            .read_until(b'\n', &mut first)
            .map_err(Error::io("cannot read", path))?;
        let first_seq = serde_json::from_slice::<ChainFields<'_>>(first.trim_ascii_end())
            .ok()
            .map(|c| c.sequence_number);
        // An empty file, or one whose first line is not an event, is searched whole.
        if first_seq.is_some_and(|s| s > sequence) {
            continue;
        }
        let mut text = Vec::new();
        open_read(path)
            .and_then(|mut f| f.read_to_end(&mut text))
            .map_err(Error::io("cannot read", path))?;
        let needle = format!("\"sequence_number\":{sequence}");
        // The key can also appear inside `metadata` or `error_context`: each candidate
        // line is parsed to be sure.
        for at in memchr::memmem::find_iter(&text, needle.as_bytes()) {
            if text.get(at + needle.len()).is_some_and(u8::is_ascii_digit) {
                continue;
            }
            let start = text[..at]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            let end = text[at..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(text.len(), |i| at + i);
            let line = &text[start..end];
            if serde_json::from_slice::<ChainFields<'_>>(line)
                .is_ok_and(|c| c.sequence_number == sequence)
            {
                let line_no = memchr::memchr_iter(b'\n', &text[..start]).count() + 1;
                return Ok(Some(ChainHead {
                    sequence_number: sequence,
                    line: String::from_utf8_lossy(line).into_owned(),
                    location: format!("{}:{line_no}", path.display()),
                    anchor: None,
                }));
            }
        }
        if first_seq.is_some() {
            return Ok(None);
        }
    }
    Ok(None)
}

fn count_lines_before(file: &mut File, offset: u64, path: &Path) -> Result<u64> {
    file.seek(SeekFrom::Start(0))
        .map_err(Error::io("cannot read", path))?;
    let mut remaining = offset;
    let mut count = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    while remaining > 0 {
        let want = remaining.min(buf.len() as u64) as usize;
        file.read_exact(&mut buf[..want])
            .map_err(Error::io("cannot read", path))?;
        count += buf[..want].iter().filter(|&&b| b == b'\n').count() as u64;
        remaining -= want as u64;
    }
    Ok(count)
}

#[cfg(test)]
mod test {
    use super::*;

    fn line(seq: u64, decoy: Option<u64>) -> String {
        let metadata = decoy.map_or("{}".to_owned(), |d| format!("{{\"sequence_number\":{d}}}"));
        format!("{{\"checksum\":\"c{seq}\",\"metadata\":{metadata},\"sequence_number\":{seq}}}")
    }

    #[test]
    fn find_line_reads_back_from_the_newest_file_past_decoys() -> Result<()> {
        let dir = tempfile::tempdir().map_err(Error::io("cannot create", "tempdir"))?;
        let write = |name: &str, seqs: &[(u64, Option<u64>)]| {
            let text: String = seqs.iter().map(|&(s, d)| line(s, d) + "\n").collect();
            std::fs::write(dir.path().join(name), text)
        };
        write(
            "audit_2026-01-01.jsonl",
            &[(1, None), (2, Some(5)), (3, None)],
        )
        .and_then(|()| {
            write(
                "audit_2026-01-02.jsonl",
                &[(4, Some(5)), (5, None), (6, None)],
            )
        })
        .and_then(|()| write("audit_2026-01-02.1.jsonl", &[(60, None)]))
        .map_err(Error::io("cannot write", dir.path()))?;
        let found = find_line(dir.path(), 5)?.expect("sequence 5");
        assert_eq!(found.line, line(5, None));
        assert!(
            found.location.ends_with("audit_2026-01-02.jsonl:2"),
            "{found:?}"
        );
        let found = find_line(dir.path(), 2)?.expect("sequence 2");
        assert!(
            found.location.ends_with("audit_2026-01-01.jsonl:2"),
            "{found:?}"
        );
        assert_eq!(found.line, line(2, Some(5)));
        assert_eq!(
            find_line(dir.path(), 6)?.map(|h| h.line),
            Some(line(6, None))
        );
        assert_eq!(find_line(dir.path(), 7)?, None, "a gap");
        assert_eq!(find_line(dir.path(), 0)?, None);
        assert_eq!(find_line(dir.path(), 61)?, None, "past the end");
        Ok(())
    }
}
