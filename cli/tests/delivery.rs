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

/// A plugin whose `open` fails with a retryable error (its server is down at start) does not
/// keep the trail from starting: its events go to its spool, and a retry opens it once it
/// comes up and delivers them, in order.
#[tokio::test]
async fn a_backend_down_at_start_is_opened_by_a_retry_and_gets_its_spool() -> TestResult {
    let dir = tempfile::tempdir()?;
    let flag = dir.path().join("down");
    let record = dir.path().join("received.txt");
    let cfg = config(
        dir.path(),
        "",
        "retry_initial_ms = 10\nretry_max_ms = 50\n",
        &format!(
            "{{ open_fail_while_exists = {}, record = {} }}",
            toml_str(&flag),
            toml_str(&record)
        ),
    );
    std::fs::write(&flag, "down")?;
    let trail = AuditTrail::from_config_file(&cfg)?;
    for i in 0..1_000 {
        trail
            .log_event(AuditEventType::DataAccess, format!("while down {i}"))
            .await?;
    }
    trail.flush().await?;
    // The lane reports the outage once its first delivery attempt has failed (the statistics
    // follow the lane's own thread, so give it a moment under load).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let stats = loop {
        let s = trail.statistics();
        if s.per_backend[1].state.as_str() == "retrying" || std::time::Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let plugin = &stats.per_backend[1];
    assert_eq!(plugin.state.to_string(), "retrying", "{plugin:?}");
    let error = plugin.last_error.as_deref().unwrap_or_default();
    assert!(
        error.contains("not open yet") && error.contains("cannot connect"),
        "{error}"
    );
    assert!(!record.exists(), "nothing delivered while it cannot open");
    std::fs::remove_file(&flag)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while received(&record).len() < 1_000 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    trail.close().await?;
    assert_eq!(received(&record), (1..=1_000).collect::<Vec<_>>());
    assert_eq!(verify(&dir.path().join("logs")).events, 1_000);
    Ok(())
}

/// A configuration error in `open` still stops start-up: retrying cannot fix it.
#[test]
fn a_config_error_in_open_still_stops_start_up() -> TestResult {
    let dir = tempfile::tempdir()?;
    config(dir.path(), "", "", "{ record = \"/nonexistent-dir/x\" }");
    let out = audit(&["emit", "--config", "audit.toml"], dir.path(), "");
    assert_eq!(out.status.code(), Some(78), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("config `record`"),
        "{}",
        text(&out.stderr)
    );
    Ok(())
}

/// Reads `child`'s stderr on a thread: each line is sent on the returned channel.
fn stderr_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Collects lines from `rx` until one contains `want` (returned with what came before), or
/// the stream ends; a guard of 60 s keeps a broken build from hanging the test run.
fn until(rx: &std::sync::mpsc::Receiver<String>, want: &str, seen: &mut Vec<String>) -> bool {
    while let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(60)) {
        let found = line.contains(want);
        seen.push(line);
        if found {
            return true;
        }
    }
    false
}

#[test]
fn an_outage_is_reported_once_when_it_starts_and_once_when_it_is_over() -> TestResult {
    use std::io::Write;
    let dir = tempfile::tempdir()?;
    let Outage { flag, record, .. } = outage(dir.path(), "", 50);
    std::fs::write(&flag, "down")?;
    let mut child = std::process::Command::new(audit_bin())
        .args(["emit", "--config", "audit.toml", "--stats"])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let rx = stderr_lines(&mut child);
    let mut stdin = child.stdin.take().ok_or("stdin")?;
    for i in 0..100 {
        writeln!(
            stdin,
            "{{\"event_type\":\"data_access\",\"message\":\"during the outage {i}\"}}"
        )?;
    }
    stdin.flush()?;
    let mut seen = Vec::new();
    assert!(until(&rx, "is failing", &mut seen), "{seen:#?}");
    // Let it retry a few times (the assertion below needs at least two failed calls).
    std::thread::sleep(std::time::Duration::from_millis(500));
    std::fs::remove_file(&flag)?;
    assert!(until(&rx, "recovered", &mut seen), "{seen:#?}");
    drop(stdin);
    let status = child.wait()?;
    seen.extend(rx.iter());
    assert!(status.success(), "{seen:#?}");

    let failing: Vec<&String> = seen.iter().filter(|l| l.contains("is failing")).collect();
    assert_eq!(failing.len(), 1, "{seen:#?}");
    assert!(
        failing[0].starts_with("audit: backend `faulty` is failing: backends[2] \"faulty\" (audit.toml:7): retryable error: fixture outage: ")
            && failing[0].contains("its events are kept in its spool; retrying until it recovers"),
        "{}",
        failing[0]
    );
    let recovered: Vec<&String> = seen.iter().filter(|l| l.contains("recovered")).collect();
    assert_eq!(recovered.len(), 1, "{seen:#?}");
    let stats: serde_json::Value = {
        let all = seen.join("\n");
        serde_json::from_str(&all[all.find('{').ok_or("stats")?..=all.rfind('}').ok_or("stats")?])?
    };
    let failed = stats["per_backend"][1]["failed_calls"]
        .as_u64()
        .ok_or("failed_calls")?;
    assert!(failed >= 2, "one line for {failed} failed calls");
    assert!(
        recovered[0].starts_with("audit: backend `faulty` recovered after ")
            && recovered[0].ends_with(&format!(
                "s down and {failed} failed call(s); it caught up 100 event(s)"
            )),
        "{}",
        recovered[0]
    );
    assert_eq!(received(&record), (1..=100).collect::<Vec<_>>());
    Ok(())
}
