//! Pre-flight checks of a configuration's directories (`audit config check`): what the trail
//! would refuse, or fail on, at start, found without starting it and without leaving
//! anything behind.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use crate::config::{BackendConfig, BackendEntry, TrailConfig};
use crate::delivery::spool_dir_name;

/// One problem a pre-flight check found: the entry, the key, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// The `[[backends]]` entry (`backends[N] "NAME" (FILE:LINE)`).
    pub entry: BackendEntry,
    /// The key of the entry to change (`path`, `spool_dir`, `config`, ...).
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl Problem {
    /// A problem with `key` of `entry`.
    pub fn new(entry: BackendEntry, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            entry,
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.entry, self.key, self.message)
    }
}

/// A directory the trail writes to, and who uses it.
struct Use {
    dir: PathBuf,
    index: usize,
    name: String,
    /// `path` (a file backend) or `spool_dir`.
    key: &'static str,
    /// The key was not set: the directory is derived from `trail.storage_path`.
    default: bool,
}

/// The directories of `config`: every file backend's and every plugin backend's spool.
/// `names[i]`: backend `i`'s name (for a plugin without `name`, the plugin's own name;
/// `None` when its library could not be loaded: its default spool is then unknown).
fn uses(config: &TrailConfig, names: &[Option<String>]) -> Vec<Use> {
    let mut out = Vec::new();
    for (index, backend) in config.backends.iter().enumerate() {
        let name = names
            .get(index)
            .cloned()
            .flatten()
            .unwrap_or_else(|| backend.configured_name());
        match backend {
            BackendConfig::File { path, line, .. } => out.push(Use {
                dir: normalize(path),
                index,
                name,
                key: "path",
                default: line.is_none(),
            }),
            BackendConfig::Plugin { options, .. } if options.spool_max_bytes > 0 => {
                let (dir, default) = match &options.spool_dir {
                    Some(d) => (d.clone(), false),
                    None => {
                        let Some(Some(own)) = names.get(index) else {
                            continue;
                        };
                        (
                            config.storage_path.join(".spool").join(spool_dir_name(own)),
                            true,
                        )
                    }
                };
                out.push(Use {
                    dir: normalize(&dir),
                    index,
                    name,
                    key: "spool_dir",
                    default,
                });
            }
            _ => {}
        }
    }
    out
}

/// Two file backends on one directory, or two spools on one directory: the trail refuses
/// either at start. Needs no file system access.
pub fn directory_collisions(config: &TrailConfig, names: &[Option<String>]) -> Vec<Problem> {
    let uses = uses(config, names);
    let mut problems = Vec::new();
    for (i, u) in uses.iter().enumerate() {
        let Some(first) = uses[..i].iter().find(|o| o.dir == u.dir && o.key == u.key) else {
            continue;
        };
        let other = config.entry(first.index, &first.name);
        let (what, fix) = if u.key == "path" {
            (
                "directory",
                "each file backend needs a directory of its own (one writer per directory): set a different `path`",
            )
        } else {
            (
                "spool directory",
                "each plugin backend needs a spool of its own: give the entries distinct `name`s (or `spool_dir`s)",
            )
        };
        let default = if u.default {
            " (the default, under trail.storage_path)"
        } else {
            ""
        };
        problems.push(Problem::new(
            config.entry(u.index, &u.name),
            u.key,
            format!(
                "the {what} {}{default} is already used by {other}; {fix}",
                u.dir.display()
            ),
        ));
    }
    problems
}

/// Every directory the trail writes to can be created and written: each is probed by
/// creating and removing a file in it, or, when it does not exist yet, in its nearest
/// existing parent (nothing is left behind; no directory is created). An existing one that
/// is writable by group or others or owned by another user is refused, as the trail refuses
/// it, unless `[trail] allow_insecure_permissions`.
pub fn directory_access(config: &TrailConfig, names: &[Option<String>]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut probed: Vec<PathBuf> = Vec::new();
    for u in uses(config, names) {
        if probed.contains(&u.dir) {
            continue;
        }
        probed.push(u.dir.clone());
        if let Err(message) = probe(&u.dir, !config.allow_insecure_permissions) {
            let key = if u.default && u.key == "path" {
                "trail.storage_path"
            } else {
                u.key
            };
            problems.push(Problem::new(config.entry(u.index, &u.name), key, message));
        }
    }
    problems
}

/// Checks that `dir` exists as a writable directory, or could be created; with
/// `check_permissions`, that an existing `dir` is not open to others' writes.
fn probe(dir: &Path, check_permissions: bool) -> Result<(), String> {
    let mut at = dir;
    let existing = loop {
        match std::fs::metadata(at) {
            Ok(meta) if meta.is_dir() => break at,
            Ok(_) if at == dir => {
                return Err(format!("{} exists and is not a directory", dir.display()));
            }
            Ok(_) => {
                return Err(format!(
                    "{} cannot be created: {} is not a directory",
                    dir.display(),
                    at.display()
                ));
            }
            Err(_) => match at.parent() {
                Some(parent) => at = parent,
                None => return Err(format!("{} cannot be created", dir.display())),
            },
        }
    };
    if check_permissions
        && existing == dir
        && let Some(why) = audit_format::fs::insecure_dir_message(dir)
    {
        return Err(format!("refusing {}: {why}", dir.display()));
    }
    let file = existing.join(format!(".audit-config-check-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&file)
    {
        Ok(f) => {
            drop(f);
            let _ = std::fs::remove_file(&file);
            Ok(())
        }
        Err(e) if existing == dir => Err(format!("{} is not writable: {e}", dir.display())),
        Err(e) => Err(format!(
            "{} cannot be created: {} is not writable: {e}",
            dir.display(),
            existing.display()
        )),
    }
}

/// `p` with `.` and `..` folded (no symlink is resolved): two spellings of one directory
/// compare equal.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if out.file_name().is_some() {
                    out.pop();
                } else if !out.has_root() {
                    out.push(c);
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn normalize_folds_dots() {
        assert_eq!(normalize(Path::new("/a/b/../c/./d")), Path::new("/a/c/d"));
        assert_eq!(normalize(Path::new("/a/../../b")), Path::new("/b"));
    }

    #[test]
    fn probe_leaves_nothing_behind_and_names_the_blocker() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        assert!(probe(&dir.path().join("new/deeper"), true).is_ok());
        assert!(probe(dir.path(), true).is_ok());
        assert_eq!(std::fs::read_dir(dir.path())?.count(), 0, "nothing left");
        std::fs::write(dir.path().join("blocker"), b"")?;
        let e = probe(&dir.path().join("blocker/logs"), true).expect_err("refused");
        assert!(e.contains("blocker is not a directory"), "{e}");
        let e = probe(&dir.path().join("blocker"), true).expect_err("refused");
        assert!(e.contains("is not a directory"), "{e}");
        Ok(())
    }
}
