//! No event lost across processes: a backlog spooled by one process is delivered by the next
//! `audit emit`.
//!
//! Moved from host/tests/delivery.rs.

mod common;

use std::path::{Path, PathBuf};

use audit_host::{AuditEventType, AuditTrail};
use common::*;

fn toml_str(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

/// A file backend in `logs` plus the faulty fixture plugin with `keys` and `config`.
fn config(dir: &Path, trail_keys: &str, keys: &str, config: &str) -> PathBuf {
    let path = dir.join("audit.toml");
    std::fs::write(
        &path,
        format!(
            "[trail]\nstorage_path = \"logs\"\n{trail_keys}\n[[backends]]\ntype = \"file\"\n\n[[backends]]\ntype = \"plugin\"\nlibrary = {}\n{keys}config = {config}\n",
            toml_str(&plugin_lib("audit_backend_faulty"))
        ),
    )
    .expect("write config");
    path
}

/// The fixture set up for outages: down while `flag` exists, recording into `record`.
struct Outage {
    flag: PathBuf,
    record: PathBuf,
    cfg: PathBuf,
}

fn outage(dir: &Path, trail_keys: &str, retry_max_ms: u64) -> Outage {
    let flag = dir.join("outage");
    let record = dir.join("received.txt");
    let cfg = config(
        dir,
        trail_keys,
        &format!("retry_initial_ms = 10\nretry_max_ms = {retry_max_ms}\n"),
        &format!(
            "{{ fail_while_exists = {}, record = {} }}",
            toml_str(&flag),
            toml_str(&record)
        ),
    );
    Outage { flag, record, cfg }
}

/// The sequence numbers the fixture recorded, in the order it received them.
fn received(path: &Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.parse().expect("a sequence number"))
        .collect()
}

fn spool_segments(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |rd| {
        rd.filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("spool-"))
            .count()
    })
}

#[tokio::test]
async fn a_backlog_spooled_at_close_is_delivered_by_the_next_process() -> TestResult {
    let dir = tempfile::tempdir()?;
    let Outage { flag, record, cfg } = outage(dir.path(), "shutdown_timeout_ms = 200", 50);
    std::fs::write(&flag, "down")?;
    let trail = AuditTrail::from_config_file(&cfg)?;
    for i in 0..5_000 {
        trail
            .log_event(AuditEventType::DataAccess, format!("first run {i}"))
            .await?;
    }
    // Closing while the plugin is down: nothing is lost, the backlog stays in its spool.
    trail.close().await?;
    assert_eq!(trail.statistics().per_backend[1].spooled_events, 5_000);
    assert!(received(&record).is_empty());
    let spool = dir.path().join("logs/.spool/faulty");
    assert!(spool_segments(&spool) > 0);
    drop(trail);

    // The next process, with the plugin healthy.
    std::fs::remove_file(&flag)?;
    let out = audit(
        &["emit", "--config", "audit.toml", "--stats"],
        dir.path(),
        "{\"event_type\":\"data_access\",\"message\":\"second run\"}\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        received(&record),
        (1..=5_001).collect::<Vec<_>>(),
        "the backlog first, in order, then the new event"
    );
    assert_eq!(spool_segments(&spool), 0, "the delivered spool is removed");
    assert_eq!(verify(&dir.path().join("logs")).events, 5_001);
    Ok(())
}
