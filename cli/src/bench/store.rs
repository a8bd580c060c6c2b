//! The bench's scratch directories and plugin stores: clearing, sizing, syncing.

use std::fs;
use std::path::{Path, PathBuf};

use audit_host::{Error, Result};
use serde_json::Value;

/// Peak resident memory of this process (`VmHWM`), in bytes; 0 where unknown.
pub(crate) fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Empties (or creates) `dir` and commits the removal to disk.
pub(crate) fn fresh_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(Error::io("cannot clear bench directory", dir))?;
    }
    fs::create_dir_all(dir).map_err(Error::io("cannot create bench directory", dir))?;
    // Commit the removal before the clock starts, so the run's first fdatasync does not pay
    // for freeing the old files' blocks (docs/internals.md, section 5, bench method).
    let parent = dir.parent().unwrap_or(dir);
    audit_format::fs::sync_dir(parent).map_err(Error::io("cannot fsync bench directory", parent))
}

/// The bytes of the files directly in `dir`.
pub(crate) fn dir_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// The `path` in a plugin's config (both shipped plugins have one).
fn plugin_store_path(config_json: &str) -> Option<PathBuf> {
    serde_json::from_str::<Value>(config_json)
        .ok()
        .and_then(|v| v.get("path")?.as_str().map(PathBuf::from))
}

/// Empties a plugin store that lies inside the bench directory (the default one does) before
/// a run: each run's chain starts at sequence 1, which a store holding an earlier run's
/// events refuses (or continues from). A store elsewhere is the user's and is left alone.
pub(crate) fn clear_bench_store(config_json: &str, bench_dir: &Path) -> Result<()> {
    let Some(path) = plugin_store_path(config_json).filter(|p| p.starts_with(bench_dir)) else {
        return Ok(());
    };
    let cleared = if path.is_dir() {
        fs::remove_dir_all(&path)
    } else {
        // SQLite's write-ahead log and shared-memory files go with the database.
        for suffix in ["-wal", "-shm"] {
            let mut side = path.clone().into_os_string();
            side.push(suffix);
            let _ = fs::remove_file(side);
        }
        fs::remove_file(&path)
    };
    match cleared {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(
            "cannot clear the plugin store in the bench directory",
            &path,
        )(e)),
        _ => Ok(()),
    }
}

/// What a plugin stored, when its config's `path` names a file or a directory of files
/// (both shipped plugins); 0 otherwise.
pub(crate) fn plugin_store_bytes(config_json: &str) -> u64 {
    let Some(path) = plugin_store_path(config_json) else {
        return 0;
    };
    if path.is_dir() {
        dir_bytes(&path)
    } else {
        fs::metadata(&path).map_or(0, |m| m.len())
    }
}
