//! The spool's unit tests, and the chained records other delivery tests use.

use super::reader::read_segment;
use super::*;
use crate::{AuditEvent, AuditEventType};
use audit_format::record::{Integrity, LineEncoder};
use chrono::SubsecRound;

/// `n` chained records starting at `first`.
pub(in crate::delivery) fn records(first: u64, n: u64) -> Vec<AuditRecord> {
    let mut prev: Option<[u8; 64]> = None;
    let mut p = LineEncoder::default();
    (first..first + n)
        .map(|seq| {
            let ev = AuditEvent::new(AuditEventType::DataAccess, format!("event {seq}"));
            p.encode(&ev, &format!("id-{seq}"), "h", 1, ev.compliance_level);
            let (r, hex) = p.assemble(
                &ev,
                seq,
                prev.as_ref(),
                chrono::Utc::now().trunc_subsecs(6),
                &Integrity::Sha256,
            );
            prev = Some(hex);
            r
        })
        .collect()
}

fn segment_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("spool-"))
        .collect();
    v.sort();
    v
}

#[test]
fn created_only_when_written_and_recovered_in_order_after_a_restart() -> Result<()> {
    let tmp = tempfile::tempdir().map_err(Error::io("tempdir", "/tmp"))?;
    let dir = tmp.path().join("spool/x");
    let mut s = Spool::open(dir.clone(), 1 << 20, false)?;
    assert!(!dir.exists(), "nothing to keep, nothing created");
    assert_eq!(s.last_head()?, None);
    let rs = records(5, 10);
    assert!(matches!(s.append(&rs[4..])?, Put::Stored));
    // Older records, failed in memory, go in front.
    assert!(matches!(s.prepend(&rs[..4])?, Put::Stored));
    assert_eq!(s.synced(), 0, "nothing fdatasync'd yet");
    s.sync()?;
    assert_eq!((s.events(), s.synced()), (10, 14));
    assert_eq!(
        segment_files(&dir),
        [
            "spool-00000000000000000005.jsonl",
            "spool-00000000000000000009.jsonl"
        ]
    );
    // Locked while open.
    assert!(matches!(
        Spool::open(dir.clone(), 1 << 20, false),
        Err(Error::DirectoryLocked { .. })
    ));
    drop(s);

    // A crash left half a line at the end of the newest segment: it is cut off.
    let newest = dir.join("spool-00000000000000000009.jsonl");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&newest)
        .map_err(Error::io("open", &newest))?;
    f.write_all(b"{\"checksum\":\"0123")
        .map_err(Error::io("write", &newest))?;
    drop(f);
    let mut s = Spool::open(dir.clone(), 1 << 20, false)?;
    assert_eq!(s.events(), 10);
    let head = s.last_head()?.expect("a head");
    assert_eq!(
        (head.sequence_number, head.line.as_str()),
        (14, rs[9].line())
    );
    let first = s.head().expect("segment");
    assert_eq!((first.first, first.last), (5, 8));
    let bytes = read_segment(&first.path, 0, first.len)?;
    assert_eq!(
        String::from_utf8_lossy(&bytes).lines().collect::<Vec<_>>(),
        rs[..4].iter().map(AuditRecord::line).collect::<Vec<_>>()
    );
    // Delivered segments are removed whole; a length that changed keeps the segment.
    let len = first.len;
    assert!(!s.pop_head(len - 1)?);
    assert!(s.pop_head(len)?);
    let len = s.head().expect("segment").len;
    assert!(s.pop_head(len)?);
    assert!(s.is_empty() && segment_files(&dir).is_empty());
    assert_eq!(s.bytes(), 0);
    Ok(())
}

#[test]
fn a_full_spool_refuses_without_writing_but_an_empty_one_takes_any_batch() -> Result<()> {
    let tmp = tempfile::tempdir().map_err(Error::io("tempdir", "/tmp"))?;
    let rs = records(1, 6);
    let one = rs[0].line().len() as u64 + 1;
    let mut s = Spool::open(tmp.path().join("s"), 2 * one, false)?;
    assert!(
        matches!(s.append(&rs[..4])?, Put::Stored),
        "empty: takes it"
    );
    assert!(matches!(s.append(&rs[4..5])?, Put::Full));
    assert!(matches!(s.prepend(&rs[5..6])?, Put::Full));
    assert_eq!(s.events(), 4);
    let len = s.head().expect("segment").len;
    assert!(s.pop_head(len)?);
    assert!(matches!(s.append(&rs[4..6])?, Put::Stored));
    // Coverage: segments 1..=4 was popped; 5..=6 remain.
    assert!(s.covers(5, 6) && !s.covers(4, 6) && !s.covers(5, 7));
    Ok(())
}

/// A segment planted as a symbolic link is refused on open; its target is untouched.
#[cfg(unix)]
#[test]
fn a_symlinked_segment_is_refused_and_its_target_untouched() -> Result<()> {
    let tmp = tempfile::tempdir().map_err(Error::io("tempdir", "/tmp"))?;
    let dir = tmp.path().join("s");
    let target = tmp.path().join("victim.txt");
    std::fs::write(&target, b"precious\n").map_err(Error::io("write", &target))?;
    let mut s = Spool::open(dir.clone(), 1 << 20, false)?;
    assert!(matches!(s.append(&records(1, 2))?, Put::Stored));
    drop(s);
    let link = dir.join(segment_name(3));
    std::os::unix::fs::symlink(&target, &link).map_err(Error::io("symlink", &link))?;
    let e =
        audit_format::error::chain(&Spool::open(dir.clone(), 1 << 20, false).expect_err("refused"));
    assert!(
        e.contains("symbolic link") && e.contains(&segment_name(3)),
        "{e}"
    );
    // Planted while the spool is open, as the next segment: not written through either.
    std::fs::remove_file(&link).map_err(Error::io("remove", &link))?;
    let mut s = Spool::open(dir.clone(), 1 << 20, false)?;
    std::os::unix::fs::symlink(&target, &link).map_err(Error::io("symlink", &link))?;
    let e = audit_format::error::chain(&s.append(&records(3, 1)).expect_err("refused"));
    assert!(e.contains("symbolic link"), "{e}");
    assert_eq!(
        std::fs::read(&target).map_err(Error::io("read", &target))?,
        b"precious\n"
    );
    Ok(())
}

/// An existing spool directory writable by group or others is refused, unless allowed.
#[cfg(unix)]
#[test]
fn an_insecure_spool_directory_is_refused_unless_allowed() -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().map_err(Error::io("tempdir", "/tmp"))?;
    let dir = tmp.path().join("s");
    std::fs::create_dir(&dir).map_err(Error::io("mkdir", &dir))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o757))
        .map_err(Error::io("chmod", &dir))?;
    let e =
        audit_format::error::chain(&Spool::open(dir.clone(), 1 << 20, false).expect_err("refused"));
    assert!(e.contains("mode 757"), "{e}");
    let mut s = Spool::open(dir.clone(), 1 << 20, true)?;
    assert!(matches!(s.append(&records(1, 1))?, Put::Stored));
    Ok(())
}

#[test]
fn spooled_lines_are_rebuilt_exactly_or_refused() {
    let rs = records(1, 2);
    let back = AuditRecord::from_stored(rs[1].line(), &Integrity::Sha256).expect("rebuilt");
    assert_eq!(back, rs[1]);
    let altered = rs[1].line().replacen("event 2", "event 3", 1);
    let err = AuditRecord::from_stored(&altered, &Integrity::Sha256).expect_err("altered");
    assert!(err.contains("does not match its checksum"), "{err}");
    let key = Integrity::hmac(&[7; 32]).expect("key");
    assert!(
        AuditRecord::from_stored(rs[1].line(), &key).is_err(),
        "another key"
    );
    assert!(AuditRecord::from_stored("{}", &Integrity::Sha256).is_err());
}
