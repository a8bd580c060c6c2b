//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

pub mod backends;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use audit_host::{AuditEventType, AuditRecord, AuditTrail, Integrity, VerifyReport};
pub use backends::MemoryBackend;
use chrono::{DateTime, TimeZone, Utc};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Every `audit_*.jsonl` file in `dir`, in the order the backend writes them.
pub fn log_files(dir: &Path) -> Vec<PathBuf> {
    audit_format::names::list_log_files(dir)
        .expect("read dir")
        .into_iter()
        .map(|f| f.path)
        .collect()
}

/// A file's name, as text.
pub fn name_of(p: &Path) -> String {
    p.file_name().expect("name").to_string_lossy().into_owned()
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

/// Verifies `dir` with the default integrity (SHA-256); panics if it does not verify.
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
    let exe = std::env::current_exe().expect("the test's path");
    let deps = exe.parent().expect("target/<profile>/deps");
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

/// A trail with the default settings, storing into `dir`.
pub fn file_trail(dir: &Path) -> audit_host::Result<AuditTrail> {
    AuditTrail::new(None, Some(dir.to_path_buf()), None)
}

/// Logs data access events `e0`, `e1`, ... (`n` of them).
pub async fn log_n(trail: &AuditTrail, n: usize) -> audit_host::Result<()> {
    for i in 0..n {
        trail
            .log_event(AuditEventType::DataAccess, format!("e{i}"))
            .await?;
    }
    Ok(())
}

/// Noon (UTC) on the given day.
pub fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 12, 0, 0)
        .single()
        .expect("valid date")
}

/// A clock the test sets by hand; hand [`clock`](Self::clock) to the trail's builder.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(start)))
    }

    pub fn set(&self, now: DateTime<Utc>) {
        *self.0.lock().expect("lock") = now;
    }

    pub fn advance(&self, by: chrono::TimeDelta) {
        *self.0.lock().expect("lock") += by;
    }

    pub fn clock(&self) -> impl Fn() -> DateTime<Utc> + Send + Sync + 'static {
        let now = Arc::clone(&self.0);
        move || *now.lock().expect("lock")
    }
}

/// Records chained by a real trail, one per timestamp, to hand to a backend directly.
pub async fn records_at(
    times: &[DateTime<Utc>],
) -> Result<Vec<AuditRecord>, Box<dyn std::error::Error>> {
    let capture = Arc::new(MemoryBackend::named("capture"));
    let trail = AuditTrail::builder()
        .backend(Box::new(Arc::clone(&capture)))
        .build()?;
    for (i, t) in times.iter().enumerate() {
        trail
            .log_event(AuditEventType::DataAccess, format!("record {i}"))
            .timestamp(*t)
            .await?;
    }
    trail.close().await?;
    Ok(capture.records())
}

/// `p` as a TOML string.
pub fn toml_str(p: &Path) -> String {
    format!("{:?}", p.to_str().expect("utf-8 path"))
}

/// Writes a key file with the given permissions.
#[cfg(unix)]
pub fn write_key(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, bytes)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// How often [`wait_until`] looks again.
const POLL: Duration = Duration::from_millis(5);

/// Waits until `cond` holds, looking every few milliseconds; panics naming `what` if it
/// does not within `within`.
pub async fn wait_until(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < within,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// [`wait_until`] for a test outside a runtime: sleeps the thread between looks.
pub fn wait_until_blocking(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < within,
            "timed out after {within:?} waiting for {what}"
        );
        std::thread::sleep(POLL);
    }
}
