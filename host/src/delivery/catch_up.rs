//! Catching a lane's backend up from a file backend of the trail: at start, the lines its
//! store lacks that are not in its spool are read back from the file backend's directory, in
//! sequence order, one bounded page at a time, every line checked (checksum and chain link)
//! with the trail's integrity settings. The worker delivers them before its spool and its
//! inbox (`worker/catch_up.rs`).

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::clock::LaneClock;
use super::lane::Lane;
use super::options::Backfill;
use audit_format::error::{Error, Result};
use audit_format::names::list_log_files;
use audit_format::record::{AuditRecord, ChainFields, Integrity};

/// At most about this many bytes of lines are read into one page.
const PAGE_BYTES: u64 = 1 << 20;

/// What the writer decides for one lane at start.
#[derive(Debug)]
pub(crate) enum Decision {
    /// Nothing to catch up (or the history choice says nothing).
    Nothing,
    /// A gap with nowhere to catch it up from (no file backend): the message to report.
    Gap(String),
    /// Deliver these lines from the file backend first.
    CatchUp(CatchUp),
}

/// Decides what lane `lane`, whose store ends at `stored` (`None`: it could not say), gets
/// from the file backend in `source` (`None`: the trail has none) before the trail's new
/// events, which follow `start`.
pub(crate) fn decide<C: LaneClock>(
    lane: &Lane<C>,
    stored: Option<u64>,
    start: u64,
    source: Option<&Path>,
    integrity: &Integrity,
) -> Decision {
    // A store that could not say where it ends gets its spool and new events, as before.
    let Some(stored) = stored else {
        return Decision::Nothing;
    };
    if stored >= start {
        return Decision::Nothing;
    }
    let Some(dir) = source else {
        if stored > 0 && !lane.spool_covers(stored + 1, start) {
            return Decision::Gap(format!(
                "this backend's store ends at sequence {stored} but the trail is at {start}: sequences {}..={start} are neither in its store nor in its spool and will not reach it (no file backend is configured to catch it up from; see docs/operations.md, known limits)",
                stored + 1
            ));
        }
        return Decision::Nothing;
    };
    // A store that is behind is always caught up; an empty one gets what `backfill` says.
    let (from, report_gap) = match (stored, lane.cfg.backfill) {
        (0, Backfill::None) => return Decision::Nothing,
        (0, Backfill::All) => (1, false),
        (0, Backfill::From(n)) => (n.max(1), true),
        (s, _) => (s + 1, true),
    };
    // What the spool holds up to the trail's head is delivered from there.
    let to = match lane.spool_first() {
        Some(first) if first <= start && lane.spool_covers(first, start) => first - 1,
        _ => start,
    };
    if from > to {
        return Decision::Nothing;
    }
    Decision::CatchUp(CatchUp {
        dir: dir.to_owned(),
        from,
        to,
        report_gap,
        reader: FileReader {
            integrity: integrity.clone(),
            cursor: None,
        },
        page: None,
        counted_upto: 0,
        delivered: 0,
        done_reported: false,
    })
}

/// A lane's catch-up from the file backend: the range and where the reading is.
#[derive(Debug)]
pub(crate) struct CatchUp {
    dir: PathBuf,
    /// The first sequence number wanted.
    pub(crate) from: u64,
    /// The last sequence number delivered from the files.
    pub(crate) to: u64,
    /// Whether lines missing at the start of the range (retention removed them) are reported.
    pub(crate) report_gap: bool,
    reader: FileReader,
    /// The last page read (its first and last sequence numbers), not yet counted.
    page: Option<(u64, u64)>,
    /// Lines up to here are counted in `delivered` (a page read again is not counted twice).
    counted_upto: u64,
    /// Lines delivered from the files so far.
    pub(crate) delivered: u64,
    /// The "caught up" line was printed.
    pub(crate) done_reported: bool,
}

/// One page of lines, and the sequence numbers missing before its first line (retention).
#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) records: Vec<AuditRecord>,
    pub(crate) gap: Option<(u64, u64)>,
}

impl CatchUp {
    /// The file backend's directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The first line of the progress report.
    pub(crate) fn describe(&self) -> String {
        format!(
            "catching up sequences {}..={} ({} events) from the file backend {} before new events",
            self.from,
            self.to,
            self.to + 1 - self.from,
            self.dir.display()
        )
    }

    /// Counts the last page as delivered once the backend stored up to `stored`.
    pub(crate) fn count_delivered(&mut self, stored: u64) {
        if let Some((first, last)) = self.page
            && stored >= last
        {
            self.delivered += last.saturating_sub((first - 1).max(self.counted_upto));
            self.counted_upto = self.counted_upto.max(last);
            self.page = None;
        }
    }

    /// Reads the next page, from sequence `from` (where the backend's store ends, plus one).
    ///
    /// # Errors
    /// [`Error::Integrity`] when a line does not verify, does not link to the line before it,
    /// or a sequence number is missing inside the files; [`Error::Io`] when they cannot be
    /// read.
    pub(crate) fn read(&mut self, from: u64) -> Result<Page> {
        let page = self.reader.read(&self.dir, from, self.to)?;
        if let (Some(first), Some(last)) = (page.records.first(), page.records.last()) {
            self.page = Some((first.sequence_number(), last.sequence_number()));
        } else {
            // The files end before `to` (they lost lines since start): nothing more to read.
            self.to = from - 1;
        }
        Ok(page)
    }
}

/// Where reading stands: the file, the offset and line number in it, and the chain so far.
#[derive(Debug)]
struct Cursor {
    files: Vec<PathBuf>,
    file: usize,
    offset: u64,
    line_no: u64,
    /// The next sequence number expected.
    next: u64,
    /// The last line read (its sequence number and checksum), to check the next one's link.
    prev: Option<(u64, String)>,
    /// A line at or after the range's start was found.
    started: bool,
}

/// Reads a file backend's directory in sequence order.
#[derive(Debug)]
struct FileReader {
    integrity: Integrity,
    cursor: Option<Cursor>,
}

impl FileReader {
    /// Up to `PAGE_BYTES` of lines from sequence `from` up to `to`, each checked.
    fn read(&mut self, dir: &Path, from: u64, to: u64) -> Result<Page> {
        if self.cursor.as_ref().is_none_or(|c| c.next != from) {
            self.cursor = Some(seek(dir, from)?);
        }
        let Some(c) = self.cursor.as_mut() else {
            unreachable!("the cursor was just set; this is a bug in audit-host");
        };
        let mut page = Page {
            records: Vec::new(),
            gap: None,
        };
        let mut bytes = 0;
        while c.file < c.files.len() {
            let path = c.files[c.file].clone();
            let mut f = File::open(&path).map_err(Error::io("cannot open", &path))?;
            f.seek(SeekFrom::Start(c.offset))
                .map_err(Error::io("cannot read", &path))?;
            let mut r = BufReader::new(f);
            let mut line = Vec::new();
            loop {
                line.clear();
                let n = r
                    .read_until(b'\n', &mut line)
                    .map_err(Error::io("cannot read", &path))?;
                // The end of the file, or a line still being written (after `to`).
                if n == 0 || line.last() != Some(&b'\n') {
                    break;
                }
                let text = &line[..n - 1];
                let fields: ChainFields<'_> = serde_json::from_slice(text)
                    .map_err(|e| bad(&path, c.line_no + 1, format!("not an audit event ({e})")))?;
                let seq = fields.sequence_number;
                if seq > to {
                    c.file = c.files.len();
                    return Ok(page);
                }
                c.offset += n as u64;
                c.line_no += 1;
                if seq < c.next && !c.started {
                    // Before the range: only its checksum matters, for the first link.
                    let sum = fields.checksum.as_deref().unwrap_or_default().to_owned();
                    c.prev = Some((seq, sum));
                    continue;
                }
                let record = check(c, &path, text, &self.integrity, &mut page)?;
                bytes += n as u64;
                c.next = seq + 1;
                c.prev = Some((seq, record.checksum().to_owned()));
                c.started = true;
                page.records.push(record);
                if bytes >= PAGE_BYTES {
                    return Ok(page);
                }
            }
            c.file += 1;
            c.offset = 0;
            c.line_no = 0;
        }
        Ok(page)
    }
}

/// Checks one line at or after the range's start: it verifies, it is the next sequence number
/// (or, as the first, after a gap left by retention, which is noted in `page`), and it links
/// to the line before it.
fn check(
    c: &Cursor,
    path: &Path,
    text: &[u8],
    integrity: &Integrity,
    page: &mut Page,
) -> Result<AuditRecord> {
    let line_no = c.line_no;
    let line = std::str::from_utf8(text).map_err(|e| bad(path, line_no, format!("{e}")))?;
    let record =
        AuditRecord::from_stored(line, integrity).map_err(|why| bad(path, line_no, why))?;
    let seq = record.sequence_number();
    if seq != c.next {
        if c.started || seq < c.next {
            return Err(bad(
                path,
                line_no,
                format!(
                    "sequence {seq} where {} was expected: a line is missing or out of place",
                    c.next
                ),
            ));
        }
        page.gap = Some((c.next, seq - 1));
        return Ok(record);
    }
    if let Some((prev, sum)) = &c.prev
        && *prev + 1 == seq
        && record.previous_hash() != Some(sum.as_str())
    {
        return Err(bad(
            path,
            line_no,
            format!(
                "previous_hash does not link to sequence {prev} (a line was removed or altered)"
            ),
        ));
    }
    Ok(record)
}

/// A line that must not be delivered.
fn bad(path: &Path, line_no: u64, why: String) -> Error {
    Error::Integrity(format!(
        "{}:{line_no}: {why}; nothing from this line on is delivered from the file backend. Run `audit verify {}`",
        path.display(),
        path.parent()
            .map_or_else(String::new, |d| d.display().to_string())
    ))
}

/// A cursor at the start of the file that holds sequence `from` (the last file whose first
/// line is at or before it; the first file when every file starts after it).
fn seek(dir: &Path, from: u64) -> Result<Cursor> {
    let files = list_log_files(dir).map_err(Error::io("cannot list audit directory", dir))?;
    let mut start = 0;
    for (i, f) in files.iter().enumerate() {
        match first_sequence(&f.path)? {
            Some(first) if first > from => break,
            _ => start = i,
        }
    }
    Ok(Cursor {
        files: files.into_iter().map(|f| f.path).collect(),
        file: start,
        offset: 0,
        line_no: 0,
        next: from,
        prev: None,
        started: false,
    })
}

/// The sequence number of a file's first line (`None`: empty, or not an event).
fn first_sequence(path: &Path) -> Result<Option<u64>> {
    let f = File::open(path).map_err(Error::io("cannot open", path))?;
    let mut first = Vec::new();
    BufReader::new(f)
        .read_until(b'\n', &mut first)
        .map_err(Error::io("cannot read", path))?;
    Ok(
        serde_json::from_slice::<ChainFields<'_>>(first.trim_ascii_end())
            .ok()
            .map(|c| c.sequence_number),
    )
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::delivery::spool::test::records;

    /// Writes `recs` as the lines of file `name` in `dir`.
    fn write(dir: &Path, name: &str, recs: &[AuditRecord]) {
        let text: String = recs.iter().map(|r| format!("{}\n", r.line())).collect();
        std::fs::write(dir.join(name), text).expect("write");
    }

    fn catch_up(dir: &Path, from: u64, to: u64) -> CatchUp {
        CatchUp {
            dir: dir.to_owned(),
            from,
            to,
            report_gap: true,
            reader: FileReader {
                integrity: Integrity::Sha256,
                cursor: None,
            },
            page: None,
            counted_upto: 0,
            delivered: 0,
            done_reported: false,
        }
    }

    fn seqs(page: &Page) -> Vec<u64> {
        page.records
            .iter()
            .map(AuditRecord::sequence_number)
            .collect()
    }

    #[test]
    fn reads_across_rotated_and_dated_files_in_order_and_again_after_a_rewind() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let recs = records(1, 30);
        write(tmp.path(), "audit_2026-01-01.jsonl", &recs[..10]);
        write(tmp.path(), "audit_2026-01-01.1.jsonl", &recs[10..20]);
        write(tmp.path(), "audit_2026-01-02.jsonl", &recs[20..]);
        let mut cu = catch_up(tmp.path(), 5, 25);
        let page = cu.read(5).expect("read");
        assert_eq!(seqs(&page), (5..=25).collect::<Vec<_>>());
        assert_eq!(page.gap, None);
        // A failed call: read again from what the backend flushed.
        let page = cu.read(12).expect("read again");
        assert_eq!(seqs(&page), (12..=25).collect::<Vec<_>>());
        cu.count_delivered(25);
        assert_eq!(cu.delivered, 14);
        assert!(cu.read(26).expect("read").records.is_empty());
        assert_eq!(cu.to, 25);
    }

    #[test]
    fn lines_missing_before_the_first_held_line_are_a_gap_and_inside_an_error() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let recs = records(1, 10);
        // Retention removed 1..=3.
        write(tmp.path(), "audit_2026-01-01.jsonl", &recs[3..]);
        let mut cu = catch_up(tmp.path(), 2, 10);
        let page = cu.read(2).expect("read");
        assert_eq!(page.gap, Some((2, 3)));
        assert_eq!(seqs(&page), (4..=10).collect::<Vec<_>>());

        // Sequence 6 removed from the middle.
        let kept: Vec<AuditRecord> = recs
            .iter()
            .filter(|r| r.sequence_number() != 6)
            .cloned()
            .collect();
        write(tmp.path(), "audit_2026-01-01.jsonl", &kept);
        let mut cu = catch_up(tmp.path(), 2, 10);
        let e = audit_format::error::chain(&cu.read(2).expect_err("a line is missing"));
        assert!(
            e.contains("audit_2026-01-01.jsonl:6: sequence 7 where 6 was expected"),
            "{e}"
        );
    }

    #[test]
    fn a_line_that_does_not_link_to_the_one_before_is_never_delivered() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut recs = records(1, 5);
        // Sequence 6 of another chain: valid on its own, its previous_hash is not 5's checksum.
        recs.extend(records(6, 1));
        write(tmp.path(), "audit_2026-01-01.jsonl", &recs);
        let mut cu = catch_up(tmp.path(), 3, 6);
        let e = audit_format::error::chain(&cu.read(3).expect_err("not linked"));
        assert!(
            e.contains(":6: previous_hash does not link to sequence 5"),
            "{e}"
        );
        // Where the chain is whole, the same directory reads fine up to the bad line.
        let mut cu = catch_up(tmp.path(), 3, 5);
        assert_eq!(seqs(&cu.read(3).expect("read")), vec![3, 4, 5]);
    }
}
