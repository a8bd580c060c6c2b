//! The directory lock: a writer waits briefly for a lock its own process holds, and reports
//! one held elsewhere.

mod common;

use std::time::{Duration, Instant};

use audit_host::{Error, FileStorageBackend};
use common::*;

/// A lock recorded for this process, held by another descriptor a little longer (as by a
/// child process another thread is starting, until it runs its program), is waited for; one
/// that stays held is reported after the wait.
#[test]
fn a_lock_briefly_held_by_this_process_is_waited_for() -> TestResult {
    use std::io::Write as _;
    let dir = tempfile::tempdir()?;
    let lock_for_this_process = || -> Result<std::fs::File, Box<dyn std::error::Error>> {
        let mut lock = std::fs::File::create(dir.path().join(".audit.lock"))?;
        lock.try_lock()?;
        writeln!(lock, "{}", std::process::id())?;
        Ok(lock)
    };
    // Released by another thread 100 ms after it was taken. The clock starts first: a pause
    // of this thread after taking the lock cannot shorten the wait it sees.
    let started = Instant::now();
    let lock = lock_for_this_process()?;
    let holder = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        drop(lock);
    });
    let be = FileStorageBackend::open(dir.path())?;
    assert!(started.elapsed() >= Duration::from_millis(90));
    holder.join().map_err(|_| "holder thread panicked")?;
    drop(be);

    // Held until the open has given up.
    let lock = lock_for_this_process()?;
    let started = Instant::now();
    match FileStorageBackend::open(dir.path()) {
        Err(Error::DirectoryLocked { pid: Some(p), .. }) => assert_eq!(p, std::process::id()),
        other => panic!("expected the directory to be locked, got {other:?}"),
    }
    // Not at once: the same process could be a child about to run its program.
    assert!(started.elapsed() >= Duration::from_millis(450));
    drop(lock);
    Ok(())
}

#[test]
fn a_lock_held_without_a_pid_is_still_reported() -> TestResult {
    let dir = tempfile::tempdir()?;
    let lock = std::fs::File::create(dir.path().join(".audit.lock"))?;
    lock.try_lock()?;
    match FileStorageBackend::open(dir.path()) {
        Err(e @ Error::DirectoryLocked { pid: None, .. }) => {
            assert!(e.to_string().contains("another process holds it"), "{e}");
        }
        other => panic!("expected the directory to be locked, got {other:?}"),
    }
    lock.unlock()?;
    FileStorageBackend::open(dir.path())?;
    Ok(())
}
