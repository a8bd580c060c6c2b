//! HMAC integrity: key files are checked before use, the key never shows in `Debug`, and a
//! chain goes on only under the key it was written with.

mod common;

use std::path::Path;

use audit_host::verify::VerifyError;
use audit_host::{AuditEventType, AuditTrail, Error, Integrity};
use common::*;

#[test]
fn debug_output_never_shows_the_hmac_key() -> TestResult {
    let key = Integrity::hmac(b"an HMAC key that is 32 bytes ok!")?;
    let shown = format!("{key:?}");
    assert_eq!(shown, "Integrity::Hmac(<key>)");
    assert_eq!(format!("{:?}", Integrity::Sha256), "Integrity::Sha256");
    Ok(())
}

#[cfg(unix)]
#[tokio::test]
async fn hmac_key_files_are_checked_and_the_key_chains_the_events() -> TestResult {
    let dir = tempfile::tempdir()?;
    let key = [7u8; 32];
    let refused = |path: &Path| match AuditTrail::builder().hmac_key_file(path) {
        Err(Error::Config(e)) => {
            assert_eq!(e.key, "trail.integrity.hmac_key_file");
            e.message
        }
        other => panic!(
            "expected a config error for {}, got {other:?}",
            path.display()
        ),
    };
    let missing = dir.path().join("missing.key");
    assert!(refused(&missing).contains("cannot read key file"));
    let short = dir.path().join("short.key");
    write_key(&short, &key[..16], 0o600)?;
    assert!(refused(&short).contains("16 bytes; at least 32"));
    let open = dir.path().join("open.key");
    write_key(&open, &key, 0o640)?;
    assert!(refused(&open).contains("chmod 600"));
    match AuditTrail::builder().hmac_key(&key[..31]) {
        Err(Error::Config(e)) => assert!(e.message.contains("31 bytes"), "{e}"),
        other => panic!("expected a config error, got {other:?}"),
    }

    let good = dir.path().join("good.key");
    write_key(&good, &key, 0o600)?;
    let logs = dir.path().join("logs");
    let trail = AuditTrail::builder()
        .storage_path(&logs)
        .hmac_key_file(&good)?
        .build()?;
    log_n(&trail, 2).await?;
    assert_eq!(trail.verify_chain().await?.events, 2);
    trail.close().await?;
    assert_eq!(
        audit_host::verify_dir(&logs, &Integrity::hmac(&key)?)?.events,
        2
    );
    assert!(matches!(
        audit_host::verify_dir(&logs, &Integrity::Sha256),
        Err(VerifyError::Broken { sequence: 1, .. })
    ));
    // The same key given as an `Integrity` continues the chain.
    let trail = AuditTrail::builder()
        .storage_path(&logs)
        .integrity(Integrity::hmac(&key)?)
        .build()?;
    log_n(&trail, 1).await?;
    trail.close().await?;
    assert_eq!(
        audit_host::verify_dir(&logs, &Integrity::hmac(&key)?)?.events,
        3
    );
    Ok(())
}

#[tokio::test]
async fn a_different_key_cannot_continue_a_chain() -> TestResult {
    let dir = tempfile::tempdir()?;
    let trail = file_trail(dir.path())?;
    trail
        .log_event(AuditEventType::DataAccess, "sha256")
        .await?;
    trail.close().await?;
    let err = AuditTrail::builder()
        .storage_path(dir.path())
        .hmac_key(&[9u8; 32])?
        .build()
        .err();
    let msg = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        msg.contains("does not verify with this trail's integrity settings"),
        "{msg}"
    );
    Ok(())
}
