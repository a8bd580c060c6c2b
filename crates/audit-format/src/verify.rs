//! `audit verify`: re-checks a directory's chain from the stored bytes alone.
//!
//! `dir.rs` walks a directory (files read in order, lines checked on worker threads),
//! `anchor_check.rs` judges its chain anchor, `chain.rs` holds the sequential chain rules
//! that `stream.rs` applies to lines read back one by one too, and `report.rs` what a
//! verification found.

mod anchor_check;
mod chain;
mod dir;
mod report;
mod stream;

pub use dir::{verify_dir, verify_dir_with_progress};
pub use report::{VerifyError, VerifyReport};
pub use stream::StreamVerifier;
