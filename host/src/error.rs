//! The error vocabulary (`audit_format::error`), at its old path in this crate.

pub use audit_format::error::*;
