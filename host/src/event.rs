//! The event model (`audit_format::event`), at its old path in this crate.

pub use audit_format::event::*;
