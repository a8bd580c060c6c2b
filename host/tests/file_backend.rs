//! The file backend on its own, through the `StorageBackend` trait: it stores what it is
//! given, and a failed write or fdatasync stops it rather than leave a hole in the chain.

mod common;

use std::path::Path;
use std::process::Command;

use audit_host::{Error, FileStorageBackend, StorageBackend};
use common::*;

/// A FIFO where a day's file belongs: it takes a short write, and fdatasync on it fails
/// (EINVAL). A symbolic link to /dev/null would be refused (files are opened `O_NOFOLLOW`).
fn fifo(path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let made = Command::new("mkfifo")
        .arg("-m")
        .arg("600")
        .arg(path)
        .status()?;
    if !made.success() {
        return Err(format!("mkfifo {} failed", path.display()).into());
    }
    Ok(())
}

/// A character device with /dev/full's numbers (1, 7) where a day's file belongs: every
/// write fails with ENOSPC, and it cannot be truncated. Creating one needs CAP_MKNOD (root,
/// as in CI); `false` when this process cannot.
fn full_device(path: &Path) -> Result<bool, Box<dyn std::error::Error>> {
    let made = Command::new("mknod")
        .arg("-m")
        .arg("600")
        .arg(path)
        .args(["c", "1", "7"])
        .stderr(std::process::Stdio::null())
        .status()?;
    if !made.success() {
        eprintln!("cannot create a device node (needs root): this check is not run");
    }
    Ok(made.success())
}

#[tokio::test]
async fn the_file_backend_works_on_its_own_through_the_trait() -> TestResult {
    let records = records_at(&[at(2026, 3, 1); 5]).await?;
    assert!(format!("{:?}", records[0]).contains("sequence_number: 1"));
    let dir = tempfile::tempdir()?;
    let logs = dir.path().join("logs");
    {
        let be = FileStorageBackend::builder(&logs)
            .name(Some("primary".into()))
            .open()?;
        assert_eq!(be.name(), "primary");
        assert_eq!(be.query_dir(), Some(logs.as_path()));
        assert_eq!(be.dir(), logs);
        assert_eq!(be.resume().await?, None, "an empty directory has no chain");
        for r in &records {
            be.write(r).await?;
        }
        be.flush().await?;
        be.close().await?;
    }
    let stored: Vec<String> = records.iter().map(|r| r.line().to_owned()).collect();
    assert_eq!(all_lines(&logs), stored);

    let be = FileStorageBackend::open(&logs)?;
    assert_eq!(be.name(), format!("file:{}", logs.display()));
    let head = be.resume().await?.ok_or("the stored chain's head")?;
    assert_eq!(head.sequence_number, 5);
    assert_eq!(head.line, stored[4]);
    assert!(
        head.location.ends_with("audit_2026-03-01.jsonl:5"),
        "{}",
        head.location
    );
    be.close().await?;
    assert_eq!(verify(&logs).events, 5);
    Ok(())
}

/// A full disk (the day's file is a `/dev/full` device node): the write fails, and until the failed write
/// can be rolled back, nothing more is written; once it can, writing continues.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_failed_write_blocks_further_writes_until_it_is_rolled_back() -> TestResult {
    let records = records_at(&[at(2026, 3, 1); 2]).await?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("audit_2026-03-01.jsonl");
    if !full_device(&file)? {
        return Ok(());
    }
    let be = FileStorageBackend::open(dir.path())?;
    match be.write(&records[0]).await {
        Err(Error::Io {
            context, source, ..
        }) => {
            assert_eq!(context, "cannot write audit file");
            assert_eq!(source.kind(), std::io::ErrorKind::StorageFull);
        }
        other => panic!("expected the write to fail, got {other:?}"),
    }
    // The rollback (truncating /dev/full) failed too: it is retried before the next write.
    match be.write(&records[0]).await {
        Err(Error::Io { context, path, .. }) => {
            assert_eq!(context, "cannot roll back failed write in");
            assert_eq!(path, file);
        }
        other => panic!("expected the pending rollback to refuse the write, got {other:?}"),
    }
    // Space again: the rollback succeeds and the records are written.
    std::fs::remove_file(&file)?;
    std::fs::write(&file, "")?;
    be.write(&records[0]).await?;
    be.write(&records[1]).await?;
    be.close().await?;
    assert_eq!(verify(dir.path()).events, 2);
    Ok(())
}

/// A failed fdatasync may have lost data: the backend refuses everything afterwards.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_failed_fdatasync_poisons_the_backend() -> TestResult {
    let records = records_at(&[at(2026, 3, 1); 2]).await?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("audit_2026-03-01.jsonl");
    // fdatasync on a FIFO fails with EINVAL.
    fifo(&file)?;
    let be = FileStorageBackend::open(dir.path())?;
    be.write(&records[0]).await?;
    match be.flush().await {
        Err(Error::Io { context, path, .. }) => {
            assert_eq!(context, "fdatasync failed on");
            assert_eq!(path, file);
        }
        other => panic!("expected the flush to fail, got {other:?}"),
    }
    for result in [
        be.write(&records[1]).await,
        be.flush().await,
        be.close().await,
    ] {
        match result {
            Err(Error::Backend { message }) => assert!(
                message.contains("fdatasync of") && message.contains("Restart the process"),
                "{message}"
            ),
            other => panic!("expected the poisoned backend to refuse, got {other:?}"),
        }
    }
    Ok(())
}

/// Leaving a day's file fdatasyncs it; when that fails, the backend is poisoned too.
#[cfg(target_os = "linux")]
#[test]
fn a_failed_fdatasync_when_leaving_a_day_poisons_the_backend() -> TestResult {
    let rt = rt();
    let records = rt.block_on(records_at(&[at(2026, 3, 1), at(2026, 3, 2)]))?;
    let dir = tempfile::tempdir()?;
    let day1 = dir.path().join("audit_2026-03-01.jsonl");
    fifo(&day1)?;
    let be = FileStorageBackend::open(dir.path())?;
    be.write_batch_blocking(&records[..1])?;
    match be.write_batch_blocking(&records[1..]) {
        Err(Error::Io { context, path, .. }) => {
            assert_eq!(context, "fdatasync failed on");
            assert_eq!(path, day1);
        }
        other => panic!("expected the day switch to fail, got {other:?}"),
    }
    assert!(!dir.path().join("audit_2026-03-02.jsonl").exists());
    assert!(matches!(
        be.write_batch_blocking(&records[1..]),
        Err(Error::Backend { .. })
    ));
    Ok(())
}

/// A batch spanning two days is all or nothing: when the second day's write fails, the file
/// the batch created for the first day is removed again.
#[cfg(target_os = "linux")]
#[test]
fn a_batch_failing_on_its_second_day_removes_the_file_it_created() -> TestResult {
    let records = rt().block_on(records_at(&[at(2026, 3, 1), at(2026, 3, 2)]))?;
    let dir = tempfile::tempdir()?;
    let day1 = dir.path().join("audit_2026-03-01.jsonl");
    let day2 = dir.path().join("audit_2026-03-02.jsonl");
    if !full_device(&day2)? {
        return Ok(());
    }
    let be = FileStorageBackend::open(dir.path())?;
    match be.write_batch_blocking(&records) {
        Err(Error::Io { context, path, .. }) => {
            assert_eq!(context, "cannot write audit file");
            assert_eq!(path, day2);
        }
        other => panic!("expected the second day's write to fail, got {other:?}"),
    }
    assert!(!day1.exists(), "the first day's new file was removed");
    // The full "disk" cannot be truncated back: nothing is written until it can be.
    assert!(matches!(
        be.write_batch_blocking(&records),
        Err(Error::Io {
            context: "cannot roll back failed write in",
            ..
        })
    ));
    assert!(!day1.exists());
    std::fs::remove_file(&day2)?;
    std::fs::write(&day2, "")?;
    be.write_batch_blocking(&records)?;
    be.flush_blocking()?;
    assert_eq!(verify(dir.path()).events, 2);
    Ok(())
}
