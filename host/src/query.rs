//! Reading events back (`audit_format::query`), at its old path in this crate.

pub use audit_format::query::*;
