//! Hardening of what the trail trusts on disk: symbolic links planted in a storage directory
//! are never followed, storage directories writable by group or others (or owned by someone
//! else) are refused unless `allow_insecure_permissions` says otherwise, and HMAC key files
//! must be private regular files of a bounded size (a FIFO fails at once instead of hanging).
#![cfg(unix)]

mod common;

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::time::Duration;

use audit_format::FileStore;
use audit_host::config::{TrailConfig, read_key_file};
use audit_host::error::chain;
use audit_host::{AuditTrailBuilder, FileStorageBackend, Integrity, todays_file_name};
use common::*;

const PRECIOUS: &str = "precious: not an audit file\n";

/// A file outside the audit directory that a planted link points at.
fn victim(dir: &Path) -> Result<std::path::PathBuf, std::io::Error> {
    let p = dir.join("victim.txt");
    std::fs::write(&p, PRECIOUS)?;
    Ok(p)
}

fn chmod(p: &Path, mode: u32) -> std::io::Result<()> {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
}

#[test]
fn a_planted_lock_symlink_is_refused_and_its_target_untouched() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let target = victim(tmp.path())?;
    let dir = tmp.path().join("logs");
    std::fs::create_dir(&dir)?;
    chmod(&dir, 0o700)?;
    symlink(&target, dir.join(".audit.lock"))?;
    let e = FileStorageBackend::open(&dir).expect_err("a symlinked lock file must be refused");
    let shown = chain(&e);
    assert!(
        shown.contains(".audit.lock") && shown.contains("symbolic link"),
        "{shown}"
    );
    assert_eq!(std::fs::read_to_string(&target)?, PRECIOUS);
    Ok(())
}

#[test]
fn a_planted_symlink_named_like_an_audit_file_is_refused_by_open_and_verify() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let target = victim(tmp.path())?;
    let dir = tmp.path().join("logs");
    std::fs::create_dir(&dir)?;
    chmod(&dir, 0o700)?;
    symlink(&target, dir.join(todays_file_name()))?;
    let e = FileStorageBackend::open(&dir).expect_err("a symlinked audit file must be refused");
    assert!(chain(&e).contains("symbolic link"), "{e}");
    // verify does not report "ok: 0 events in 0 files" past it.
    let e = audit_host::verify_dir(&dir, &Integrity::Sha256).expect_err("verify must refuse");
    assert!(
        chain(&e).contains(&todays_file_name()) && chain(&e).contains("is a symlink"),
        "{e}"
    );
    assert_eq!(std::fs::read_to_string(&target)?, PRECIOUS);
    Ok(())
}

/// A stored line for [`FileStore::append`] (its bytes are not checked there).
struct Line;

impl audit_format::Storable for Line {
    fn line(&self) -> &str {
        r#"{"sequence_number":1}"#
    }
    fn sequence_number(&self) -> u64 {
        1
    }
    fn date(&self) -> audit_format::error::Result<chrono::NaiveDate> {
        Ok(chrono::Utc::now().date_naive())
    }
}

/// A link planted after the store opened (between listing and opening the day's file) is
/// not followed either: the append fails and the target is untouched.
#[test]
fn a_symlink_planted_while_the_store_is_open_is_not_written_through() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let target = victim(tmp.path())?;
    let dir = tmp.path().join("logs");
    let mut store = FileStore::open(&dir, 0, None)?;
    symlink(&target, dir.join(todays_file_name()))?;
    let e = store
        .append([Line])
        .expect_err("appending through a link must fail");
    assert!(chain(&e).contains("symbolic link"), "{e}");
    assert_eq!(std::fs::read_to_string(&target)?, PRECIOUS);
    Ok(())
}

#[test]
fn a_group_writable_or_foreign_storage_directory_is_refused_unless_allowed() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("logs");
    std::fs::create_dir(&dir)?;
    for mode in [0o770, 0o702, 0o777] {
        chmod(&dir, mode)?;
        let e = FileStorageBackend::open(&dir).expect_err("an insecure directory is refused");
        let shown = chain(&e);
        assert!(
            shown.contains(&dir.display().to_string())
                && shown.contains(&format!("mode {mode:o}"))
                && shown.contains("chmod go-w")
                && shown.contains("allow_insecure_permissions"),
            "{shown}"
        );
        assert!(
            std::fs::read_dir(&dir)?.next().is_none(),
            "nothing created in a refused directory"
        );
    }
    drop(
        FileStorageBackend::builder(&dir)
            .allow_insecure_permissions(true)
            .open()?,
    );
    chmod(&dir, 0o755)?;
    drop(FileStorageBackend::open(&dir)?);

    // Owned by another user (the tests may run as root, who can hand it over).
    // SAFETY: geteuid has no preconditions and touches no memory.
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::chown(&dir, Some(4321), None)?;
        let e = FileStorageBackend::open(&dir).expect_err("a foreign directory is refused");
        assert!(chain(&e).contains("owned by uid 4321"), "{e}");
    }
    Ok(())
}

#[test]
fn the_trail_section_key_allows_an_insecure_storage_directory() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("logs");
    std::fs::create_dir(&dir)?;
    chmod(&dir, 0o775)?;
    let toml = format!("[trail]\nstorage_path = {:?}\n", dir.display().to_string());
    let config = TrailConfig::parse(&toml, &tmp.path().join("a.toml"))?;
    let e = AuditTrailBuilder::from_config(&config)?
        .build()
        .expect_err("refused without the key");
    assert!(chain(&e).contains("chmod go-w"), "{e}");
    let toml = format!("{toml}allow_insecure_permissions = true\n");
    let config = TrailConfig::parse(&toml, &tmp.path().join("a.toml"))?;
    assert!(config.allow_insecure_permissions);
    let shown = config.describe();
    assert!(
        shown
            .lines()
            .next()
            .is_some_and(|l| l.ends_with(" allow_insecure_permissions=true")),
        "{shown}"
    );
    let trail = AuditTrailBuilder::from_config(&config)?.build()?;
    rt().block_on(trail.close())?;
    Ok(())
}

fn key_file(dir: &Path, bytes: &[u8], mode: u32) -> Result<std::path::PathBuf, std::io::Error> {
    let p = dir.join("hmac.key");
    std::fs::write(&p, bytes)?;
    chmod(&p, mode)?;
    Ok(p)
}

#[test]
fn key_files_writable_by_group_or_others_are_refused() -> TestResult {
    let tmp = tempfile::tempdir()?;
    for mode in [0o620, 0o602, 0o640, 0o610] {
        let p = key_file(tmp.path(), &[7u8; 32], mode)?;
        let e = read_key_file(&p).expect_err("refused");
        assert!(
            e.contains(&format!("mode {mode:o}")) && e.contains("chmod 600"),
            "{e}"
        );
    }
    let p = key_file(tmp.path(), &[7u8; 32], 0o600)?;
    assert!(read_key_file(&p).is_ok());
    chmod(&p, 0o400)?;
    assert!(read_key_file(&p).is_ok());
    Ok(())
}

#[test]
fn oversized_and_symlinked_key_files_are_refused() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let p = key_file(tmp.path(), &[7u8; 4097], 0o600)?;
    let e = read_key_file(&p).expect_err("refused");
    assert!(e.contains("4096"), "{e}");
    let p = key_file(tmp.path(), &[7u8; 4096], 0o600)?;
    assert!(read_key_file(&p).is_ok(), "4096 bytes is the limit");
    let link = tmp.path().join("link.key");
    symlink(&p, &link)?;
    let e = read_key_file(&link).expect_err("refused");
    assert!(e.contains("symbolic link"), "{e}");
    Ok(())
}

#[test]
fn a_fifo_as_key_file_fails_at_once_instead_of_hanging() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let fifo = tmp.path().join("key.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg("-m")
        .arg("600")
        .arg(&fifo)
        .status()?;
    assert!(made.success());
    let (tx, rx) = std::sync::mpsc::channel();
    let path = fifo.clone();
    // A hang leaves this thread blocked; the deadline below fails the test instead.
    std::thread::spawn(move || {
        let _ = tx.send(read_key_file(&path).map(|_| ()));
    });
    let result = rx
        .recv_timeout(Duration::from_secs(30))
        .map_err(|_| "reading a FIFO as the key file hung")?;
    let e = result.expect_err("a FIFO is not a key file");
    assert!(e.contains("not a regular file"), "{e}");
    Ok(())
}

/// `[trail] file_mode = "0640"`: new audit files get 0640 whatever the umask, and the
/// directory the group's `r-x`, so a log shipper in the group can read them; the lock and
/// the anchor stay private. A mode that lets others write, or the owner not read and write,
/// is refused naming the key and its line.
#[test]
fn file_mode_lets_a_group_read_the_audit_files_and_nothing_more() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cfg = dir.path().join("audit.toml");
    std::fs::write(
        &cfg,
        "[trail]\nstorage_path = \"logs\"\nfile_mode = \"0640\"\n",
    )?;
    let config = TrailConfig::load(&cfg)?;
    assert_eq!(config.file_mode, 0o640);
    assert!(
        config.describe().contains("file_mode=0640"),
        "{}",
        config.describe()
    );
    let rt = rt();
    let trail = config.builder()?.build()?;
    rt.block_on(log_n(&trail, 5))?;
    rt.block_on(trail.close())?;
    let logs = dir.path().join("logs");
    let mode = |p: &Path| std::fs::metadata(p).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(mode(&logs.join(todays_file_name()))?, 0o640);
    assert_eq!(mode(&logs)?, 0o750);
    assert_eq!(mode(&logs.join(".audit.lock"))?, 0o600);
    for (bad, why) in [
        ("0660", "writable by nobody else"),
        ("0400", "readable and writable by their owner"),
        ("0750", "executable by nobody"),
        ("rw-r-----", "not an octal mode"),
    ] {
        std::fs::write(
            &cfg,
            format!("[trail]\nstorage_path = \"logs\"\nfile_mode = \"{bad}\"\n"),
        )?;
        let e = TrailConfig::load(&cfg)
            .err()
            .ok_or("a bad mode must be refused")?
            .to_string();
        assert!(
            e.contains("audit.toml:3") && e.contains("trail.file_mode") && e.contains(why),
            "{e}"
        );
    }
    Ok(())
}
