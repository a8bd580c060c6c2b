//! Retention: deleting the files older than `retention_days` once a new day's file is
//! durable, after writing the chain anchor that records what was removed.

use std::fs;
use std::path::Path;

use chrono::NaiveDate;

use super::state::State;
use crate::anchor::{ANCHOR_FILE, Anchor, AnchorAuth, Removed};
use crate::error::Result;
use crate::fs::sync_dir;
use crate::names::LogFile;
use crate::names::list_log_files;
use crate::origin::{ORIGIN_FILE, Origin};
use crate::seal::SealReason;

impl State {
    /// Deletes the files retention expired when a new day's file started, once that file's
    /// first batch is durable (after a successful fdatasync): deleting before would leave only
    /// the anchor if the first write failed or the process died first. Writes the anchor
    /// (the first kept line, and what was removed) before deleting anything.
    pub(super) fn apply_pending_retention(&mut self, dir: &Path) {
        let (Some(today), Some(days)) = (self.pending_retention, self.retention_days) else {
            return;
        };
        let Some(cutoff) = today.checked_sub_days(chrono::Days::new(u64::from(days))) else {
            self.pending_retention = None;
            return;
        };
        let files = match list_log_files(dir) {
            Ok(files) => files,
            Err(e) => {
                tracing::error!(
                    dir = %dir.display(),
                    error = %e,
                    "retention skipped: cannot list {}: {e}",
                    dir.display()
                );
                return;
            }
        };
        let expired: Vec<&LogFile> = files.iter().filter(|f| f.date < cutoff).collect();
        // The kept chain starts at the first line of the oldest kept file that holds one.
        let Some(kept) = files
            .iter()
            .find(|f| f.date >= cutoff && fs::metadata(&f.path).is_ok_and(|m| m.len() > 0))
        else {
            return; // nothing durable kept yet (the new day's batch was rolled back): wait
        };
        self.pending_retention = None;
        if expired.is_empty() {
            return;
        }
        if !self.retention_of_imported && self.refuse_imported(dir, &expired, days) {
            return;
        }
        let Some(mut anchor) = Anchor::at_first_line(&kept.path) else {
            tracing::error!(
                dir = %dir.display(),
                path = %kept.path.display(),
                "retention skipped in {}: cannot read where the kept chain starts ({})",
                dir.display(),
                kept.path.display()
            );
            return;
        };
        anchor.removed = Some(self.removed_range(dir, &expired, &anchor, today, days));
        if let Err(e) = anchor.write(dir, &self.integrity) {
            tracing::error!(
                dir = %dir.display(),
                error = %e,
                "retention skipped: cannot write {ANCHOR_FILE} in {}: {e}",
                dir.display()
            );
            return;
        }
        delete_expired(dir, &expired, days);
        self.seal_reason = Some(SealReason::Retention);
    }

    /// Whether `expired` includes files the trail did not write (it then deletes nothing:
    /// deleting only the newer of them would cut the chain in the middle); says so.
    pub(super) fn refuse_imported(&self, dir: &Path, expired: &[&LogFile], days: u32) -> bool {
        let names: Vec<String> = expired
            .iter()
            .filter_map(|f| f.path.file_name().map(|n| n.to_string_lossy().into_owned()))
            .filter(|n| self.imported.contains(n))
            .collect();
        if names.is_empty() {
            return false;
        }
        tracing::warn!(
            dir = %dir.display(),
            files = names.len(),
            days,
            "retention skipped in {}: {} expired (older than {days} days) but {} not written by this trail ({ORIGIN_FILE} records them as imported, e.g. from the Python trail); nothing was deleted. Archive them and set `retention_applies_to_imported = true` in [trail.policy] to let retention delete them, or raise `retention_days` to keep them",
            dir.display(),
            names.join(", "),
            if names.len() == 1 {
                "it was"
            } else {
                "they were"
            },
        );
        true
    }

    /// What the anchor at `kept` records as removed: the `expired` files, and before them
    /// what the directory's current anchor recorded, when that anchor holds (authentic under
    /// the key, or unkeyed) and starts where the expired files start.
    pub(super) fn removed_range(
        &self,
        dir: &Path,
        expired: &[&LogFile],
        kept: &Anchor,
        today: NaiveDate,
        days: u32,
    ) -> Removed {
        let oldest = expired[0];
        let first = expired
            .iter()
            .find_map(|f| Anchor::at_first_line(&f.path))
            .map_or(kept.sequence_number, |a| a.sequence_number);
        let prior = Anchor::read_checked(dir, &self.integrity).unwrap_or_else(|e| {
            tracing::warn!(dir = %dir.display(), error = %crate::error::DisplayChain(&e), "retention: the anchor it replaces is unreadable ({e}); the new one records only the removals of this run", e = crate::error::chain(&e));
            None
        });
        let (first_sequence, oldest_date) = match prior {
            Some((p, AnchorAuth::Authentic | AnchorAuth::Unkeyed))
                if p.sequence_number == first =>
            {
                p.removed
                    .map_or((first, oldest.date), |r| (r.first_sequence, r.oldest_date))
            }
            _ => (first, oldest.date),
        };
        Removed {
            first_sequence,
            last_sequence: kept.sequence_number.saturating_sub(1),
            newest_date: expired[expired.len() - 1].date,
            oldest_date,
            removed_on: today,
            retention_days: days,
        }
    }
}

/// The names of the files in `dir` the trail did not write, as its origin record says (written
/// now if it has none: the files present are then imported).
pub(super) fn imported_files(dir: &Path, files: &[LogFile]) -> Result<Vec<String>> {
    let origin = Origin::record_on_open(dir, files)?;
    Ok(origin.imported.map(|i| i.files).unwrap_or_default())
}

/// Deletes the `expired` files (the anchor already records them), each deletion reported,
/// then fsyncs the directory.
fn delete_expired(dir: &Path, expired: &[&LogFile], days: u32) {
    for f in expired {
        match fs::remove_file(&f.path) {
            Ok(()) => tracing::info!(
                path = %f.path.display(),
                days,
                "retention: deleted {} (older than {days} days)",
                f.path.display()
            ),
            Err(e) => tracing::error!(
                path = %f.path.display(),
                error = %e,
                "retention: cannot delete {}: {e}",
                f.path.display()
            ),
        }
    }
    let _ = sync_dir(dir);
}
