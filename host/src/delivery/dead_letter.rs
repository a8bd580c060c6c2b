//! A lane's dead-letter file: the records its backend refused
//! ([`StorageBackend::write_batch_refusing`](crate::StorageBackend::write_batch_refusing)),
//! one JSON object per line, in `dead-letter.jsonl` of the backend's spool directory (also
//! when the spool is disabled). Each line is appended and `fdatasync`ed before the batch that
//! held the record counts as delivered, so a refused record is never only in memory.
//!
//! Line format (keys sorted, as the canonical lines): `backend`, `line` (the record's
//! canonical line, as a JSON string: decoding it gives the stored bytes, whose checksum
//! verifies), `reason`, `refused_at` (RFC 3339 UTC, microseconds) and `sequence_number`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::backend::Refusal;
use crate::file::{create_dir_private, open_private, sync_dir};
use audit_format::error::{Error, Result};
use audit_format::record::AuditRecord;

/// The file's name in the backend's spool directory.
pub(crate) const DEAD_LETTER_FILE: &str = "dead-letter.jsonl";

/// One line of the file.
#[derive(Serialize)]
struct Entry<'a> {
    backend: &'a str,
    line: &'a str,
    reason: &'a str,
    refused_at: &'a str,
    sequence_number: u64,
}

/// The dead-letter file of one lane, opened on the first refusal.
#[derive(Debug)]
pub(crate) struct DeadLetter {
    dir: PathBuf,
    file: Option<File>,
    /// Highest sequence number written (and fdatasync'd) by this process: a re-delivery in
    /// the same process that refuses it again adds no second line.
    written_upto: u64,
}

impl DeadLetter {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            file: None,
            written_upto: 0,
        }
    }

    /// The file's path.
    pub(crate) fn path(&self) -> PathBuf {
        self.dir.join(DEAD_LETTER_FILE)
    }

    /// Appends one line per refused record not yet written by this process and fdatasyncs
    /// the file (and, when it was created, its directory). Returns how many lines it added.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file when it cannot be created, written or synced.
    pub(crate) fn append(
        &mut self,
        backend: &str,
        refused: &[(&AuditRecord, String)],
    ) -> Result<usize> {
        let refused_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let mut text = String::new();
        let mut last = self.written_upto;
        let mut added = 0;
        for (record, reason) in refused {
            if record.sequence_number() <= self.written_upto {
                continue;
            }
            let entry = Entry {
                backend,
                line: record.line(),
                reason,
                refused_at: &refused_at,
                sequence_number: record.sequence_number(),
            };
            let json = serde_json::to_string(&entry)
                .map_err(|e| Error::backend(format!("cannot encode a dead-letter line: {e}")))?;
            text.push_str(&json);
            text.push('\n');
            last = last.max(record.sequence_number());
            added += 1;
        }
        if added == 0 {
            return Ok(0);
        }
        let path = self.path();
        let file = match &mut self.file {
            Some(f) => f,
            None => self.file.insert(open(&self.dir, &path)?),
        };
        file.write_all(text.as_bytes())
            .map_err(Error::io("cannot write the dead-letter file", &path))?;
        file.sync_data()
            .map_err(Error::io("cannot fdatasync the dead-letter file", &path))?;
        self.written_upto = last;
        Ok(added)
    }
}

/// Creates the directory if needed and opens the file for appending; a new file's directory
/// entry is made durable.
fn open(dir: &Path, path: &Path) -> Result<File> {
    create_dir_private(dir).map_err(Error::io("cannot create the dead-letter directory", dir))?;
    let existed = path.exists();
    let file =
        open_private(path, true).map_err(Error::io("cannot open the dead-letter file", path))?;
    if !existed {
        sync_dir(dir).map_err(Error::io("cannot fdatasync the dead-letter directory", dir))?;
    }
    Ok(file)
}

/// Pairs each refusal with its record of `batch`, in sequence order, once each; an empty
/// reason reads `(no reason given)`.
///
/// # Errors
/// [`Error::Fatal`] when a refusal names a sequence number that is not in the batch (a bug in
/// the backend: it cannot have refused what it was not given).
pub(crate) fn match_refusals<'b>(
    backend: &str,
    batch: &'b [AuditRecord],
    mut refusals: Vec<Refusal>,
) -> Result<Vec<(&'b AuditRecord, String)>> {
    refusals.sort_by_key(|r| r.sequence_number);
    refusals.dedup_by_key(|r| r.sequence_number);
    refusals
        .into_iter()
        .map(|r| {
            let i = batch
                .binary_search_by_key(&r.sequence_number, AuditRecord::sequence_number)
                .map_err(|_| Error::Fatal {
                    message: format!(
                        "backend `{backend}` refused sequence {}, which is not in the batch it was given ({}); this is a bug in the backend",
                        r.sequence_number,
                        span(batch)
                    ),
                })?;
            let reason = if r.reason.trim().is_empty() {
                "(no reason given)".to_owned()
            } else {
                r.reason
            };
            Ok((&batch[i], reason))
        })
        .collect()
}

/// `sequences A to B` of a batch, for messages.
fn span(batch: &[AuditRecord]) -> String {
    match (batch.first(), batch.last()) {
        (Some(a), Some(b)) => format!(
            "sequences {} to {}",
            a.sequence_number(),
            b.sequence_number()
        ),
        _ => "an empty batch".to_owned(),
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::delivery::spool::test::records;

    fn refusal(seq: u64, reason: &str) -> Refusal {
        Refusal {
            sequence_number: seq,
            reason: reason.to_owned(),
        }
    }

    #[test]
    fn refusals_are_matched_to_the_batch_once_each_and_foreign_ones_are_a_bug() -> Result<()> {
        let batch = records(1, 5);
        let matched = match_refusals(
            "x",
            &batch,
            vec![refusal(4, "too big"), refusal(2, " "), refusal(4, "again")],
        )?;
        let got: Vec<(u64, &str)> = matched
            .iter()
            .map(|(r, why)| (r.sequence_number(), why.as_str()))
            .collect();
        assert_eq!(got, [(2, "(no reason given)"), (4, "too big")]);
        let err = match_refusals("x", &batch, vec![refusal(9, "no")]).map(|_| ());
        assert!(
            matches!(&err, Err(Error::Fatal { message }) if message.contains("refused sequence 9, which is not in the batch it was given (sequences 1 to 5)")),
            "{err:?}"
        );
        Ok(())
    }

    #[test]
    fn lines_are_appended_once_per_process_with_the_canonical_line() -> Result<()> {
        let tmp = tempfile::tempdir().map_err(Error::io("tempdir", "/tmp"))?;
        let dir = tmp.path().join("spool").join("siem");
        let batch = records(1, 3);
        let mut dl = DeadLetter::new(dir.clone());
        assert_eq!(dl.append("siem", &[(&batch[1], "too big".into())])?, 1);
        // A re-delivery refused again, then a new refusal.
        let again = [(&batch[1], "too big".into()), (&batch[2], "bad".into())];
        assert_eq!(dl.append("siem", &again)?, 1);
        let text =
            std::fs::read_to_string(dir.join(DEAD_LETTER_FILE)).map_err(Error::io("read", &dir))?;
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(serde_json::from_str)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::backend(e.to_string()))?;
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["backend"], "siem");
        assert_eq!(lines[0]["sequence_number"], 2);
        assert_eq!(lines[0]["reason"], "too big");
        assert_eq!(lines[0]["line"], batch[1].line());
        assert_eq!(lines[1]["sequence_number"], 3);
        assert!(
            lines[1]["refused_at"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z'))
        );
        let first = text.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("{\"backend\":\"siem\",\"line\":"),
            "{first}"
        );
        Ok(())
    }
}
