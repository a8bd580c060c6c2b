//! Choosing the file a line goes to: the day's newest file, a size rotation, or a new day's
//! file (created 0600 and the directory fsynced).

use std::fs;
use std::path::Path;

use chrono::{NaiveDate, Utc};

use super::file_mode::DEFAULT_FILE_MODE;
use super::state::{OpenFile, State, Touched};
use crate::error::{Error, Result};
use crate::fs::{open_private, sync_dir};
use crate::names::{list_log_files, log_file_name};
use crate::seal::SealReason;

impl State {
    /// Opens the file for `date`: the newest rotation of that day if there is one (rotating
    /// on if it is full), else a new day file.
    pub(super) fn open_for(
        &mut self,
        dir: &Path,
        date: NaiveDate,
        need: u64,
        touched: &mut Vec<Touched>,
    ) -> Result<()> {
        let files = list_log_files(dir).map_err(Error::io("cannot list audit directory", dir))?;
        match files.iter().rev().find(|f| f.date == date) {
            Some(f) => {
                let len = fs::metadata(&f.path)
                    .map_err(Error::io("cannot stat", &f.path))?
                    .len();
                if self.max_file_bytes > 0 && len > 0 && len + need > self.max_file_bytes {
                    self.rotate_to(dir, date, f.index + 1, touched)
                } else {
                    self.switch_to(dir, date, f.index, false, touched)
                }
            }
            None => {
                self.switch_to(dir, date, 0, true, touched)?;
                // Retention counts back from the new day, but never from a day later than the
                // wall clock's: an imported event dated in the future must not expire the
                // files of the present. It waits until the new file's first batch is durable.
                self.pending_retention = Some(date.min(Utc::now().date_naive()));
                Ok(())
            }
        }
    }

    pub(super) fn rotate_to(
        &mut self,
        dir: &Path,
        date: NaiveDate,
        index: u32,
        touched: &mut Vec<Touched>,
    ) -> Result<()> {
        self.switch_to(dir, date, index, true, touched)
    }

    pub(super) fn switch_to(
        &mut self,
        dir: &Path,
        date: NaiveDate,
        index: u32,
        may_create: bool,
        touched: &mut Vec<Touched>,
    ) -> Result<()> {
        if let Some(old) = self.current.take() {
            if self.seal_reason.is_none() {
                self.seal_reason = Some(SealReason::Rotation);
            }
            // Everything in a file we leave is durable, so `flush` only syncs the current one.
            old.file.sync_data().map_err(|e| {
                self.poisoned = Some(format!("fdatasync of {} failed: {e}", old.path.display()));
                Error::io("fdatasync failed on", old.path.clone())(e)
            })?;
        }
        let path = dir.join(log_file_name(date, index));
        let existed = path.exists();
        if !existed && !may_create {
            return Err(Error::Integrity(format!(
                "{} disappeared while the trail was running",
                path.display()
            )));
        }
        let file = open_private(&path, true).map_err(Error::io("cannot open audit file", &path))?;
        let len = file
            .metadata()
            .map_err(Error::io("cannot stat", &path))?
            .len();
        #[cfg(unix)]
        if !existed && self.file_mode != DEFAULT_FILE_MODE {
            use std::os::unix::fs::PermissionsExt as _;
            file.set_permissions(std::fs::Permissions::from_mode(self.file_mode))
                .map_err(Error::io("cannot set the mode of audit file", &path))?;
        }
        if !existed {
            touched.push(Touched {
                path: path.clone(),
                len_before: 0,
                created: true,
            });
            sync_dir(dir).map_err(Error::io("cannot fsync directory", dir))?;
        }
        if let Some(w) = &mut self.written {
            w.switch(&path, len)
                .map_err(Error::io("cannot read for sealing", &path))?;
        }
        self.floor = Some(date);
        self.current = Some(OpenFile {
            file,
            path,
            date,
            index,
            len,
            written_back: len,
        });
        Ok(())
    }
}
