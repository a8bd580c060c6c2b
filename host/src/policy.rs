//! The compliance policy (`audit_format::policy`), at its old path in this crate.

pub use audit_format::policy::*;
