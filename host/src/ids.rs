//! Generated event ids (`audit_format::ids`), at their old path in this crate.

pub(crate) use audit_format::ids::*;
