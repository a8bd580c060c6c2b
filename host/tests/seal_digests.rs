//! The digests the file store keeps for seals (`FileStore::with_seal_digests`) equal what
//! reading the files back gives, across rotations inside a batch, a new day's file, a failed
//! batch rolled back, and a reopen that continues the newest file.

use std::collections::BTreeMap;
use std::path::Path;

use audit_format::FileStore;
use audit_format::seal::FileDigest;
use chrono::NaiveDate;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A canonical-looking line (checksum first) dated `day` of March 2026; its date fails
/// when `fails`.
struct Line {
    text: String,
    seq: u64,
    day: u32,
    fails: bool,
}

fn line(seq: u64, day: u32) -> Line {
    Line {
        text: format!(
            "{{\"checksum\":\"{}\",\"message\":\"event {seq}\",\"sequence_number\":{seq}}}",
            format!("{:02x}", seq % 256).repeat(32)
        ),
        seq,
        day,
        fails: false,
    }
}

impl audit_format::Storable for Line {
    fn line(&self) -> &str {
        &self.text
    }
    fn sequence_number(&self) -> u64 {
        self.seq
    }
    fn date(&self) -> audit_format::Result<NaiveDate> {
        if self.fails {
            return Err(audit_format::Error::backend("the test's failing line"));
        }
        NaiveDate::from_ymd_opt(2026, 3, self.day)
            .ok_or_else(|| audit_format::Error::backend("bad day"))
    }
}

/// Flushes and adds the point's digests to `seen` (a later one replaces an earlier one).
fn flush_into(store: &mut FileStore, seen: &mut BTreeMap<String, FileDigest>) -> TestResult {
    store.flush()?;
    let point = store.seal_point().ok_or("no seal point after a flush")?;
    for (name, d) in &point.digests {
        seen.insert(name.clone(), d.clone());
    }
    Ok(())
}

/// Every audit file in `dir` has a digest in `seen`, over its whole length, equal to
/// reading it back.
fn assert_digests_match_the_files(dir: &Path, seen: &BTreeMap<String, FileDigest>) -> TestResult {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if !name.starts_with("audit_") {
            continue;
        }
        let len = std::fs::metadata(&path)?.len();
        let written = seen.get(&name).ok_or(format!("no digest of {name}"))?;
        let read = FileDigest::of_prefix(&path, len)?;
        assert_eq!(
            (written.size(), written.lines(), written.hex()),
            (len, read.lines(), read.hex()),
            "{name}"
        );
        names.push(name);
    }
    assert!(names.len() >= 4, "rotations happened: {names:?}");
    Ok(())
}

/// Lines `first..first + n` dated `day`.
fn lines(first: u64, n: u64, day: u32) -> Vec<Line> {
    (first..first + n).map(|s| line(s, day)).collect()
}

#[test]
fn the_writers_digests_equal_the_files_read_back() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("logs");
    let mut seen = BTreeMap::new();
    {
        // About three lines per file: each batch rotates inside itself.
        let mut store = FileStore::open(&dir, 400, None)?.with_seal_digests()?;
        store.append(lines(1, 10, 1))?;
        flush_into(&mut store, &mut seen)?;
        // A batch that rotates, starts a new day's file, then fails: all of it rolled back.
        let mut failing = lines(11, 4, 1);
        failing.extend(lines(15, 3, 2));
        failing.push(Line {
            fails: true,
            ..line(18, 2)
        });
        assert!(store.append(failing).is_err());
        store.append(lines(11, 5, 1))?;
        flush_into(&mut store, &mut seen)?;
        store.append(lines(16, 4, 2))?;
        flush_into(&mut store, &mut seen)?;
        store.close()?;
    }
    assert_digests_match_the_files(&dir, &seen)?;
    // Reopened: the newest file is read once and continued.
    let mut store = FileStore::open(&dir, 400, None)?.with_seal_digests()?;
    store.append(lines(20, 1, 2))?;
    flush_into(&mut store, &mut seen)?;
    assert_digests_match_the_files(&dir, &seen)?;
    Ok(())
}
