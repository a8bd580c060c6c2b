//! `audit verify`: re-checks a directory's chain from the stored bytes alone
//! (`audit_format::verify`, re-exported).

pub use audit_format::verify::*;
