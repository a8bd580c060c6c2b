//! Undoing a failed batch: truncating the files it wrote to, removing those it created.

use std::fs;
use std::io;

use super::state::{State, Touched};
use crate::fs::truncate_to;

impl State {
    /// Undoes a failed batch: truncates files back (each truncation is fdatasynced), removes
    /// files it created. Everything written before the batch is then durable: the open file
    /// is fdatasynced too when the batch failed before writing to it, so `flush` after a
    /// rollback has nothing left to sync.
    pub(super) fn rollback(&mut self, touched: Vec<Touched>) {
        if let Some(cur) = self.current.take()
            && !touched.iter().any(|t| t.path == cur.path)
            && let Err(e) = cur.file.sync_data()
        {
            self.poisoned = Some(format!("fdatasync of {} failed: {e}", cur.path.display()));
        }
        for t in touched.into_iter().rev() {
            let undone = if t.created {
                fs::remove_file(&t.path).or_else(|e| {
                    if e.kind() == io::ErrorKind::NotFound {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })
            } else {
                truncate_to(&t.path, t.len_before)
            };
            if let Err(e) = undone {
                tracing::error!(
                    path = %t.path.display(),
                    error = %e,
                    "could not roll back a failed write in {} ({e}); will retry before the next write",
                    t.path.display()
                );
                self.repair
                    .push((t.path, if t.created { 0 } else { t.len_before }));
            }
        }
    }
}
