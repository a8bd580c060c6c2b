//! Judging a directory's chain anchor: authenticated under an HMAC key, and a removal it
//! records consistent with the chain and outside its retention.

use std::path::Path;

use super::report::VerifyError;
use crate::anchor::{ANCHOR_FILE, Anchor, AnchorAuth, Removed};
use crate::record::Integrity;

/// Reads the directory's anchor and judges it: under an HMAC key it must be authenticated,
/// and what it records as removed must end where the chain starts and lie outside the
/// retention it names. Says what it records in `warnings`.
pub(super) fn check_anchor(
    dir: &Path,
    integrity: &Integrity,
    warnings: &mut Vec<String>,
) -> Result<Option<Anchor>, VerifyError> {
    let Some((anchor, auth)) = Anchor::read_checked(dir, integrity).map_err(VerifyError::Io)?
    else {
        return Ok(None);
    };
    let fail = |reason: String| VerifyError::Directory {
        path: dir.join(ANCHOR_FILE),
        reason,
    };
    let start = anchor.sequence_number;
    match auth {
        AnchorAuth::Missing => return Err(fail(format!(
            "is not authenticated (it has no `mac`): it cannot show that the events before sequence {start} were removed by retention rather than deleted by someone who can write the directory. An older version's retention (or the file plugin, which has no key) wrote anchors like this one: check the removed events against your archive; the trail's next retention run replaces it with an authenticated anchor (docs/operations.md)"
        ))),
        AnchorAuth::Mismatch => return Err(fail(
            "does not authenticate with this key (its `mac` does not match): it was altered, forged, or written under another key".into(),
        )),
        AnchorAuth::Authentic | AnchorAuth::Unkeyed => {}
    }
    warnings.push(format!(
        "the chain in this directory starts at sequence {start} ({ANCHOR_FILE} records the link: older files were removed by retention, or this backend was added to a running trail)"
    ));
    if let Some(r) = &anchor.removed {
        check_removed(r, start, &fail, warnings)?;
    }
    Ok(Some(anchor))
}

/// What the anchor records as removed must end where the chain starts (sequence `start`)
/// and lie outside the retention it names; says what it records in `warnings`.
fn check_removed(
    r: &Removed,
    start: u64,
    fail: &dyn Fn(String) -> VerifyError,
    warnings: &mut Vec<String>,
) -> Result<(), VerifyError> {
    if r.last_sequence.checked_add(1) != Some(start)
        || r.first_sequence > start
        || r.oldest_date > r.newest_date
    {
        return Err(fail(format!(
            "records removed events {}..{} (files dated {} to {}), which do not end where the chain starts (sequence {start}): the anchor is inconsistent",
            r.first_sequence, r.last_sequence, r.oldest_date, r.newest_date
        )));
    }
    let due = r
        .removed_on
        .checked_sub_days(chrono::Days::new(u64::from(r.retention_days)));
    if due.is_none_or(|due| r.newest_date >= due) {
        return Err(fail(format!(
            "records that files dated up to {} were removed on {}, inside their retention of {} days",
            r.newest_date, r.removed_on, r.retention_days
        )));
    }
    if r.first_sequence <= r.last_sequence {
        warnings.push(format!(
            "events {}..{} (files dated {} to {}) were removed by retention on {} (retention_days {})",
            r.first_sequence,
            r.last_sequence,
            r.oldest_date,
            r.newest_date,
            r.removed_on,
            r.retention_days
        ));
    }
    if r.first_sequence > 1 {
        warnings.push(format!(
            "events 1..{} were removed before the removals {ANCHOR_FILE} records (by an older version, by hand, or never stored here: a backend added to a running trail); check them against your archive",
            r.first_sequence - 1
        ));
    }
    Ok(())
}
