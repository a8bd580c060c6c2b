//! No event lost: a plugin backend that goes down, comes back, is closed while down, is
//! fatal with a spool that fills, or is not required; and a spool altered on disk.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use audit_host::{AuditEventType, AuditTrail, Error};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_down_for_the_middle_third_gets_every_event_in_order() -> TestResult {
    const N: u64 = 200_000;
    let dir = tempfile::tempdir()?;
    let Outage { flag, record, cfg } = outage(dir.path(), "", 200);
    let trail = AuditTrail::from_config_file(&cfg)?;
    let mut slowest_while_down = Duration::ZERO;
    let mut spooled_while_down = 0;
    for i in 0..N {
        if i == N / 3 {
            std::fs::write(&flag, "down")?;
        }
        if i == 2 * N / 3 {
            spooled_while_down = trail.statistics().per_backend[1].spooled_events;
            std::fs::remove_file(&flag)?;
        }
        let started = Instant::now();
        trail
            .log_event(AuditEventType::DataAccess, format!("event {i}"))
            .user_id("u")
            .await?;
        if (N / 3..2 * N / 3).contains(&i) {
            slowest_while_down = slowest_while_down.max(started.elapsed());
        }
    }
    // While it was down, log_event kept returning promptly (no waiting on the plugin or its
    // retries): the events went to its spool.
    assert!(
        slowest_while_down < Duration::from_secs(2),
        "log_event took {slowest_while_down:?} while the plugin was down"
    );
    assert!(spooled_while_down > 0, "the outage filled the spool");
    wait_until(Duration::from_secs(120), "the plugin to catch up", || {
        trail.statistics().per_backend[1].delivered_sequence == N
    })
    .await;
    let stats = trail.statistics();
    let plugin = &stats.per_backend[1];
    assert!(plugin.retried >= 1, "{plugin:?}");
    assert_eq!(plugin.state, "ok");
    assert_eq!(plugin.spooled_events, 0, "{plugin:?}");
    trail.close().await?;
    // The file backend has all of them with a verified chain; the plugin received every
    // sequence number, in order, none missing.
    assert_eq!(verify(&dir.path().join("logs")).events, N);
    let got = received(&record);
    assert_eq!(got.len() as u64, N);
    assert!(got.iter().copied().eq(1..=N), "out of order or missing");
    assert_eq!(spool_segments(&dir.path().join("logs/.spool/faulty")), 0);
    Ok(())
}

#[tokio::test]
async fn a_panicking_plugin_beside_the_file_backend_is_contained_and_spooled() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cfg = config(dir.path(), "", "", "{ panic_in = \"write_batch\" }");
    let trail = AuditTrail::from_config_file(&cfg)?;
    for i in 0..50 {
        trail
            .log_event(AuditEventType::DataAccess, format!("e{i}"))
            .await?;
    }
    trail.flush().await?;
    let stats = trail.statistics();
    let plugin = &stats.per_backend[1];
    assert_eq!(
        (plugin.state.as_str(), plugin.fatal),
        ("fatal", 1),
        "{plugin:?}"
    );
    assert!(
        plugin
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("panicked in write_batch")),
        "{plugin:?}"
    );
    assert_eq!(stats.last_error, None, "the trail keeps accepting");
    trail.close().await?;
    assert_eq!(verify(&dir.path().join("logs")).events, 50);
    assert_eq!(trail.statistics().per_backend[1].spooled_events, 50);
    Ok(())
}

/// Logs one event and waits until the `fatal` fixture's lane has failed on it. Until then the
/// lane takes batches into memory (up to twice the queue), and on a busy machine a burst
/// could fill the queue before any offer meets the refusing spool: with no offer after it,
/// the trail would not refuse anything yet.
async fn log_until_fatal(trail: &AuditTrail) -> audit_host::Result<()> {
    trail.log_event(AuditEventType::DataAccess, "first").await?;
    wait_until(
        Duration::from_secs(10),
        "the plugin's fatal failure",
        || {
            trail
                .statistics()
                .per_backend
                .iter()
                .any(|b| b.state == "fatal")
        },
    )
    .await;
    Ok(())
}

#[tokio::test]
async fn a_required_fatal_plugin_fails_closed_once_its_spool_is_full() -> TestResult {
    let dir = tempfile::tempdir()?;
    // Room for a few ~600-byte lines.
    let cfg = config(
        dir.path(),
        "on_full = \"fail\"\nqueue_capacity = 4",
        "spool_max_bytes = 3000\n",
        "{ fatal = true }",
    );
    let trail = AuditTrail::from_config_file(&cfg)?;
    log_until_fatal(&trail).await?;
    let (burst, refused) = log_until_refused(&trail, 200, Some(Duration::from_millis(2))).await;
    let accepted = burst + 1;
    // Refused: by the full spool, or first by the full queue behind it (on a busy machine).
    assert!(
        matches!(
            refused,
            Some(Error::Storage { .. } | Error::QueueFull { .. })
        ),
        "expected the trail to refuse events, got {refused:?}"
    );
    assert!(accepted > 0 && accepted < 200, "{accepted}");
    wait_until(Duration::from_secs(10), "the spool-full error", || {
        trail.statistics().last_error.is_some()
    })
    .await;
    match trail.log_event(AuditEventType::DataAccess, "refused").await {
        Err(Error::Storage {
            backend, source, ..
        }) => {
            assert_eq!(backend, "faulty");
            assert!(source.to_string().contains("spool"), "{source}");
            assert!(source.to_string().contains("is full"), "{source}");
        }
        other => panic!("expected the trail to refuse events, got {other:?}"),
    }
    // What was accepted is on disk in the file backend, also what was accepted while the
    // writer was already retrying the plugin's lane (it joins the batch being retried).
    let _ = trail.close().await;
    assert_eq!(verify(&dir.path().join("logs")).events, accepted);
    Ok(())
}

#[tokio::test]
async fn events_accepted_while_a_lane_refuses_still_reach_the_local_files() -> TestResult {
    let dir = tempfile::tempdir()?;
    // A fatal plugin whose spool holds a few lines: the lane refuses the first batch that
    // does not fit, while the producer, logging as fast as it can into a large queue, has
    // more events accepted behind it.
    let cfg = config(
        dir.path(),
        "on_full = \"fail\"\nqueue_capacity = 4096",
        "spool_max_bytes = 6000\n",
        "{ fatal = true }",
    );
    let trail = AuditTrail::from_config_file(&cfg)?;
    log_until_fatal(&trail).await?;
    let (burst, refused) = log_until_refused(&trail, 5_000, None).await;
    assert!(
        matches!(
            refused,
            Some(Error::Storage { .. } | Error::QueueFull { .. })
        ),
        "{refused:?}"
    );
    let accepted = burst + 1;
    // Whatever close says of the plugin, every accepted event is in the local files, in one
    // verifiable chain.
    let _ = trail.close().await;
    let report = verify(&dir.path().join("logs"));
    assert_eq!(report.events, accepted);
    Ok(())
}

#[tokio::test]
async fn a_plugin_that_is_not_required_only_degrades_itself() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cfg = config(
        dir.path(),
        "",
        "required = false\nspool_max_bytes = 0\n",
        "{ fatal = true }",
    );
    let trail = AuditTrail::from_config_file(&cfg)?;
    for i in 0..100 {
        trail
            .log_event(AuditEventType::DataAccess, format!("e{i}"))
            .await?;
    }
    trail.flush().await?;
    trail.close().await?;
    let stats = trail.statistics();
    let plugin = &stats.per_backend[1];
    assert!(!plugin.required);
    assert_eq!(plugin.state, "fatal");
    assert_eq!(plugin.dropped, 100, "dropped and counted, {plugin:?}");
    assert_eq!(verify(&dir.path().join("logs")).events, 100);
    Ok(())
}

#[tokio::test]
async fn an_altered_spool_line_is_refused_not_delivered() -> TestResult {
    let dir = tempfile::tempdir()?;
    let Outage { flag, record, cfg } = outage(dir.path(), "shutdown_timeout_ms = 200", 50);
    std::fs::write(&flag, "down")?;
    let trail = AuditTrail::from_config_file(&cfg)?;
    for i in 0..10 {
        trail
            .log_event(AuditEventType::DataAccess, format!("amount {i}"))
            .await?;
    }
    trail.close().await?;
    drop(trail);
    let spool = dir.path().join("logs/.spool/faulty");
    let segment = std::fs::read_dir(&spool)?
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with("spool-"))
        .ok_or("no spool segment")?
        .path();
    let text = std::fs::read_to_string(&segment)?;
    std::fs::write(&segment, text.replacen("amount 3", "amount 9", 1))?;

    std::fs::remove_file(&flag)?;
    let trail = AuditTrail::from_config_file(&cfg)?;
    wait_until(Duration::from_secs(10), "the spool check", || {
        trail.statistics().per_backend[1].state == "fatal"
    })
    .await;
    let stats = trail.statistics();
    let err = stats.per_backend[1].last_error.clone().unwrap_or_default();
    assert!(err.contains("does not match its checksum"), "{err}");
    assert!(err.contains(&segment.display().to_string()), "{err}");
    trail.close().await?;
    assert!(
        received(&record).is_empty(),
        "nothing from an altered segment reaches the backend"
    );
    Ok(())
}

#[test]
fn a_full_spool_with_on_full_block_holds_the_callers_back() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cfg = config(
        dir.path(),
        "queue_capacity = 4\nshutdown_timeout_ms = 100",
        "spool_max_bytes = 3000\n",
        "{ fatal = true }",
    );
    let trail = std::sync::Arc::new(AuditTrail::from_config_file(&cfg)?);
    let rt = rt();
    let producer = {
        let trail = std::sync::Arc::clone(&trail);
        rt.spawn(async move {
            let mut accepted = 0u64;
            for i in 0..1000 {
                match trail
                    .log_event(AuditEventType::DataAccess, format!("e{i}"))
                    .await
                {
                    Ok(_) => accepted += 1,
                    Err(e) => return (accepted, Some(e)),
                }
            }
            (accepted, None)
        })
    };
    // 1000 events do not fit in the queue, the lane's memory and the spool.
    wait_until_blocking(
        Duration::from_secs(10),
        "the queue to fill behind the spool",
        || {
            let stats = trail.statistics();
            stats.queue_size == 4 && stats.per_backend[1].spooled_bytes > 0
        },
    );
    assert!(!producer.is_finished(), "the producer must be held back");
    let stats = trail.statistics();
    assert_eq!(
        stats.last_error, None,
        "block: no error, just back-pressure"
    );
    assert!(stats.queue_size <= 4, "{}", stats.queue_size);
    // The bound, plus at most one batch taken by an empty spool (up to twice the queue
    // capacity of ~700-byte lines).
    let spooled = stats.per_backend[1].spooled_bytes;
    assert!(spooled <= 3000 + 8 * 1024, "{spooled}");
    // Closing releases the producer with `Closed`; the events the spool could not take are
    // reported, not dropped silently.
    let closed = rt.block_on(trail.close());
    let Err(Error::Shutdown { unwritten, .. }) = closed else {
        panic!("expected a shutdown error, got {closed:?}");
    };
    assert!(unwritten > 0);
    let (accepted, err) = rt.block_on(producer)?;
    assert!(matches!(err, Some(Error::Closed)), "{err:?}");
    // The events still queued behind the blocked batch were never written anywhere; they
    // are counted in `unwritten`, the rest is in the file backend.
    let stored = verify(&dir.path().join("logs")).events;
    assert!(
        stored <= accepted && stored + unwritten as u64 >= accepted,
        "stored {stored}, accepted {accepted}, unwritten {unwritten}"
    );
    Ok(())
}

#[tokio::test]
async fn a_spool_that_cannot_be_created_makes_a_required_backend_fail_closed() -> TestResult {
    let dir = tempfile::tempdir()?;
    let flag = dir.path().join("outage");
    std::fs::write(&flag, "down")?;
    let cfg = config(
        dir.path(),
        "",
        "retry_initial_ms = 10\nretry_max_ms = 20\n",
        &format!("{{ fail_while_exists = {} }}", toml_str(&flag)),
    );
    let trail = AuditTrail::from_config_file(&cfg)?;
    // Something that is not a directory where the spool goes.
    std::fs::write(dir.path().join("logs/.spool"), "not a directory")?;
    let (_, refused) = log_until_refused(&trail, 500, Some(Duration::from_millis(2))).await;
    match refused {
        Some(Error::Storage {
            backend, source, ..
        }) => {
            assert_eq!(backend, "faulty");
            assert!(
                source.to_string().contains("cannot create spool directory"),
                "{source}"
            );
        }
        other => panic!("expected a storage error, got {other:?}"),
    }
    // Once the plugin is back, the events held in memory are delivered and the error clears.
    std::fs::remove_file(&flag)?;
    wait_until(Duration::from_secs(10), "recovery", || {
        trail.statistics().last_error.is_none()
    })
    .await;
    trail.log_event(AuditEventType::DataAccess, "after").await?;
    trail.close().await?;
    let last = trail.statistics().last_sequence;
    assert_eq!(trail.statistics().per_backend[1].delivered_sequence, last);
    Ok(())
}

/// An in-process backend that fails (retryable) at random, sometimes stalls, and checks what
/// it receives the way a real de-duplicating store would.
// Kept here, not in common::backends: its seeded random failures and de-duplication are this
// test's whole point.
#[derive(Debug)]
struct Chaos {
    state: std::sync::Mutex<ChaosState>,
}

#[derive(Debug)]
struct ChaosState {
    rng: u64,
    /// The highest sequence number stored, and every one stored, in order.
    stored: Vec<u64>,
    /// Sequence numbers that arrived after a gap.
    gaps: Vec<(u64, u64)>,
}

impl Chaos {
    fn roll(&self, percent: u64) -> bool {
        let mut st = self.state.lock().expect("lock");
        st.rng ^= st.rng << 13;
        st.rng ^= st.rng >> 7;
        st.rng ^= st.rng << 17;
        st.rng % 100 < percent
    }
}

#[audit_host::async_trait]
impl audit_host::StorageBackend for Chaos {
    fn name(&self) -> &str {
        "chaos"
    }
    async fn write(&self, _record: &audit_host::AuditRecord) -> audit_host::Result<()> {
        unreachable!("write_batch is overridden")
    }
    async fn write_batch(&self, batch: &audit_host::Batch) -> audit_host::Result<()> {
        if self.roll(3) {
            std::thread::sleep(Duration::from_millis(30));
        }
        if self.roll(15) {
            return Err(Error::backend("chaos: write refused"));
        }
        let mut st = self.state.lock().expect("lock");
        for r in batch.iter() {
            let seq = r.sequence_number();
            let last = st.stored.last().copied().unwrap_or(0);
            if seq <= last {
                continue; // at-least-once: already stored
            }
            if seq != last + 1 {
                st.gaps.push((last, seq));
            }
            st.stored.push(seq);
        }
        Ok(())
    }
    async fn flush(&self) -> audit_host::Result<()> {
        if self.roll(10) {
            return Err(Error::backend("chaos: flush refused"));
        }
        Ok(())
    }
    async fn close(&self) -> audit_host::Result<()> {
        Ok(())
    }
}

#[test]
fn a_backend_failing_at_random_still_gets_every_event_in_order() -> TestResult {
    for seed in [0x9e37_79b9_7f4a_7c15_u64, 7, 0xdead_beef, 12_345, 99] {
        chaos_run(seed)?;
    }
    Ok(())
}

fn chaos_run(seed: u64) -> TestResult {
    const N: u64 = 30_000;
    let dir = tempfile::tempdir()?;
    let chaos = std::sync::Arc::new(Chaos {
        state: std::sync::Mutex::new(ChaosState {
            rng: seed,
            stored: Vec::new(),
            gaps: Vec::new(),
        }),
    });
    // A small queue, so the backend is often "behind" as well as failing: memory, spool and
    // the moves between them all get exercised.
    let trail = std::sync::Arc::new(
        AuditTrail::builder()
            .storage_path(dir.path())
            .queue_capacity(64)
            .flush_interval(Duration::from_millis(5))
            .backend_with(
                Box::new(std::sync::Arc::clone(&chaos)),
                audit_host::BackendOptions::default()
                    .retry(Duration::from_millis(1), Duration::from_millis(8)),
            )
            .build()?,
    );
    let rt = rt();
    rt.block_on(async {
        log_concurrently(&trail, 4, N / 4).await?;
        wait_until(Duration::from_secs(60), "delivery", || {
            trail.statistics().per_backend[0].delivered_sequence == N
        })
        .await;
        trail.close().await
    })?;
    let st = chaos.state.lock().expect("lock");
    assert_eq!(st.gaps, [], "seed {seed}: sequence numbers skipped");
    assert!(
        st.stored.iter().copied().eq(1..=N),
        "seed {seed}: not every event, in order"
    );
    let stats = trail.statistics();
    assert!(
        stats.per_backend[0].retried > 0,
        "{:?}",
        stats.per_backend[0]
    );
    assert!(
        dir.path().join(".spool/chaos").is_dir(),
        "seed {seed}: the spool was never used"
    );
    Ok(())
}

#[tokio::test]
async fn sync_callers_are_not_held_by_a_hanging_plugin_with_a_spool() -> TestResult {
    let dir = tempfile::tempdir()?;
    // The default call timeout (30 s): without the spool copy, each caller would wait that long.
    let cfg = config(
        dir.path(),
        "durability = \"sync\"\nshutdown_timeout_ms = 200",
        "",
        "{ hang_on_write = 2 }",
    );
    let trail = AuditTrail::from_config_file(&cfg)?;
    trail
        .log_event(AuditEventType::DataAccess, "delivered")
        .await?;
    let started = Instant::now();
    for i in 0..5 {
        trail
            .log_event(AuditEventType::DataAccess, format!("while it hangs {i}"))
            .await?;
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "sync callers waited {:?} for a hanging plugin",
        started.elapsed()
    );
    let stats = trail.statistics();
    assert_eq!(stats.durable_sequence, 6);
    assert!(
        stats.per_backend[1].spooled_events >= 5,
        "{:?}",
        stats.per_backend[1]
    );
    // Close leaves the stuck call behind; the events wait in the spool for the next start.
    trail.close().await?;
    assert_eq!(verify(&dir.path().join("logs")).events, 6);
    Ok(())
}
