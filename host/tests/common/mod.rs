//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};

use audit_host::{Integrity, VerifyReport};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Every `audit_*.jsonl` file in `dir`, sorted by name order the backend uses.
pub fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<(String, u32, PathBuf)> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = name
                .strip_prefix("audit_")?
                .strip_suffix(".jsonl")?
                .to_owned();
            let (date, idx) = match stem.split_once('.') {
                Some((d, i)) => (d.to_owned(), i.parse().ok()?),
                None => (stem, 0),
            };
            Some((date, idx, e.path()))
        })
        .collect();
    files.sort();
    files.into_iter().map(|(_, _, p)| p).collect()
}

/// All stored lines in file order.
pub fn all_lines(dir: &Path) -> Vec<String> {
    log_files(dir)
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .expect("read")
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The sequence numbers of all stored lines, in file order.
pub fn sequences(dir: &Path) -> Vec<u64> {
    all_lines(dir)
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            v["sequence_number"].as_u64().expect("sequence_number")
        })
        .collect()
}

pub fn verify(dir: &Path) -> VerifyReport {
    audit_host::verify_dir(dir, &Integrity::Sha256).unwrap_or_else(|e| panic!("verify failed: {e}"))
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Output bytes as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A plugin library built by this test run (the plugin crates are dev-dependencies of
/// audit-host, so `cargo test` builds them into target/<profile>/deps/, beside this test).
pub fn plugin_lib(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let deps = exe.parent().expect("deps dir");
    let path = deps.join(audit_host::plugin::library_file_name(name));
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace`",
        path.display()
    );
    path
}

/// Logs events `e0`, `e1`, ... (up to `n`, waiting `pause` after each) until the trail
/// refuses one: how many it accepted, and the refusal.
pub async fn log_until_refused(
    trail: &audit_host::AuditTrail,
    n: usize,
    pause: Option<std::time::Duration>,
) -> (u64, Option<audit_host::Error>) {
    let mut accepted = 0;
    for i in 0..n {
        match trail
            .log_event(audit_host::AuditEventType::DataAccess, format!("e{i}"))
            .await
        {
            Ok(_) => accepted += 1,
            Err(e) => return (accepted, Some(e)),
        }
        if let Some(p) = pause {
            tokio::time::sleep(p).await;
        }
    }
    (accepted, None)
}

/// `tasks` concurrent tasks each log `per` events (`t{task} e{i}`); the first error, if any.
pub async fn log_concurrently(
    trail: &std::sync::Arc<audit_host::AuditTrail>,
    tasks: usize,
    per: u64,
) -> Result<(), audit_host::Error> {
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let trail = std::sync::Arc::clone(trail);
            tokio::spawn(async move {
                for i in 0..per {
                    trail
                        .log_event(audit_host::AuditEventType::DataAccess, format!("t{t} e{i}"))
                        .await?;
                }
                Ok::<_, audit_host::Error>(())
            })
        })
        .collect();
    for h in handles {
        h.await.expect("task")?;
    }
    Ok(())
}
