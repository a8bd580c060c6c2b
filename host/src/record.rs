//! The line (`audit_format::record`), at its old path in this crate, with the line encoder
//! under its old name.

pub(crate) use audit_format::record::LineEncoder as Prepared;
pub use audit_format::record::*;
