//! What the store needs of a line ([`Storable`]), and that an [`AuditRecord`] has it.

use chrono::NaiveDate;

use crate::error::Result;
use crate::record::AuditRecord;

/// What the store needs of a line: its bytes, its sequence number and its UTC date.
pub trait Storable {
    /// The stored bytes, without the newline.
    fn line(&self) -> &str;
    /// The line's `sequence_number`.
    fn sequence_number(&self) -> u64;
    /// The UTC date of the event, which picks its file.
    ///
    /// # Errors
    /// When the date cannot be told; nothing of the batch is written then.
    fn date(&self) -> Result<NaiveDate>;
}

impl Storable for AuditRecord {
    fn line(&self) -> &str {
        AuditRecord::line(self)
    }
    fn sequence_number(&self) -> u64 {
        AuditRecord::sequence_number(self)
    }
    fn date(&self) -> Result<NaiveDate> {
        Ok(self.timestamp().date_naive())
    }
}

impl<T: Storable + ?Sized> Storable for &T {
    fn line(&self) -> &str {
        (**self).line()
    }
    fn sequence_number(&self) -> u64 {
        (**self).sequence_number()
    }
    fn date(&self) -> Result<NaiveDate> {
        (**self).date()
    }
}
