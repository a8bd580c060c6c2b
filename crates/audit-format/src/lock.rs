//! The directory lock: one writer per audit directory.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::fs::open_private;

const LOCK_FILE: &str = ".audit.lock";

/// How long [`lock_dir`] keeps trying when the lock's holder is this very process.
const OWN_LOCK_WAIT: Duration = Duration::from_millis(500);

/// Takes the directory's `.audit.lock` (an exclusive `flock` held while the returned file
/// is open) and writes this process's pid into it.
///
/// When the recorded holder is this process, it keeps trying for up to 500 ms:
/// a lock released by closing a trail (or backend) stays held as long as a copy of its
/// descriptor lives, and a child process that another thread is starting holds such a copy
/// until it `exec`s. Reopening a directory right after closing it then failed now and then
/// in a process that also runs commands.
///
/// # Errors
/// [`Error::DirectoryLocked`] if another holder has it; [`Error::Io`] when the lock file
/// cannot be opened, locked or written.
pub fn lock_dir(dir: &Path) -> Result<File> {
    let lock_path = dir.join(LOCK_FILE);
    let mut lock =
        open_private(&lock_path, false).map_err(Error::io("cannot open lock file", &lock_path))?;
    let started = Instant::now();
    loop {
        match lock.try_lock() {
            Ok(()) => break,
            Err(fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = lock.seek(SeekFrom::Start(0));
                let _ = lock.read_to_string(&mut text);
                let pid: Option<u32> = text.trim().parse().ok();
                if pid == Some(std::process::id()) && started.elapsed() < OWN_LOCK_WAIT {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                }
                return Err(Error::DirectoryLocked {
                    dir: dir.to_path_buf(),
                    pid,
                });
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(Error::io("cannot lock audit directory", dir)(e));
            }
        }
    }
    lock.set_len(0)
        .and_then(|()| lock.write_all(format!("{}\n", std::process::id()).as_bytes()))
        .map_err(Error::io("cannot write lock file", &lock_path))?;
    Ok(lock)
}
