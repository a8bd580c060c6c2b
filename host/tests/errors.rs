//! Error messages: an error's `Display` does not repeat its `source()`'s text (the standard
//! library's convention); `audit_host::error::chain` prints the whole chain for a person.

mod common;

use std::error::Error as _;

use audit_host::error::{DisplayChain, chain};
use audit_host::{AuditTrail, Error};
use common::*;

#[test]
fn an_io_error_names_what_and_where_and_leaves_the_cause_to_its_source() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, b"x")?;
    // The storage path's parent is a regular file: opening it fails with ENOTDIR.
    let e = AuditTrail::builder()
        .storage_path(file.join("audit"))
        .build()
        .expect_err("a file as parent directory");
    let Error::Io { source, .. } = &e else {
        panic!("expected Error::Io, got {e:?}");
    };
    let cause = source.to_string();
    assert!(!cause.is_empty());
    let own = e.to_string();
    assert!(!own.contains(&cause), "{own}");
    assert!(own.contains("not-a-dir"), "{own}");
    assert_eq!(
        e.source().map(ToString::to_string).as_deref(),
        Some(cause.as_str())
    );
    assert_eq!(chain(&e), format!("{own}: {cause}"));
    assert_eq!(DisplayChain(&e).to_string(), chain(&e));
    Ok(())
}

#[test]
fn a_wrapped_error_prints_every_link_once() {
    let io = std::io::Error::other("disk on fire");
    let inner = Error::io("cannot write audit file", "logs/audit_2026-01-01.jsonl")(io);
    let e = Error::Storage {
        backend: "file:logs".into(),
        queued: 3,
        source: std::sync::Arc::new(inner),
    };
    let own = e.to_string();
    assert!(!own.contains("cannot write"), "{own}");
    assert!(!own.contains("disk on fire"), "{own}");
    let full = chain(&e);
    assert_eq!(
        full,
        "storage backend `file:logs` failed (3 accepted event(s) are kept queued and retried, \
         new events are refused until it recovers): cannot write audit file \
         logs/audit_2026-01-01.jsonl: disk on fire"
    );
    assert_eq!(full.matches("disk on fire").count(), 1);
}
