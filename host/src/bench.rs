//! `audit bench`: throughput, latency and memory of a real [`AuditTrail`], measured against
//! the tightest hand-written loop doing the same work (same events, same canonical line, same
//! chain, same durability) on the same machine, in the same process.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::event::{AuditEvent, AuditEventType, AuditLogLevel, ComplianceLevel};
use crate::record::{Integrity, Prepared};
use crate::settings::Durability;
use crate::trail::AuditTrail;

/// Where the trail under test stores events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BenchBackend {
    /// The built-in file backend.
    File,
    /// A plugin library, opened with this JSON configuration.
    Plugin {
        /// The library file.
        library: PathBuf,
        /// The `config` handed to its `open`.
        config_json: String,
    },
}

/// One benchmark run.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// A name for the report.
    pub name: String,
    /// How many events to log.
    pub events: usize,
    /// How many concurrent producers (tasks) log them.
    pub producers: usize,
    /// Durability mode of the trail (and of the baseline).
    pub durability: Durability,
    /// The backend.
    pub backend: BenchBackend,
    /// A scratch directory (created; its contents are replaced).
    pub dir: PathBuf,
    /// Pace producers to this many events per second in total (`None`: as fast as possible).
    pub rate: Option<f64>,
    /// Skip the baseline (for scenarios compared with another scenario instead).
    pub skip_baseline: bool,
    /// Split the events into this many rounds, each a trail run and a baseline run in
    /// alternating order; the ratio is then the median of the rounds' ratios (1: one run
    /// each, the plain ratio).
    pub rounds: usize,
}

/// What one scenario measured. Field names are the `--json` contract.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct BenchResult {
    /// Scenario name.
    pub scenario: String,
    /// Events logged.
    pub events: usize,
    /// Concurrent producers.
    pub producers: usize,
    /// `batched` or `sync`.
    pub durability: String,
    /// `file` or `plugin:<library>`.
    pub backend: String,
    /// From the first `log_event` to `close` returning (everything durable).
    pub seconds: f64,
    /// Events per second over `seconds`.
    pub events_per_s: f64,
    /// Megabytes (10^6 bytes) of stored lines per second.
    pub mb_per_s: f64,
    /// Stored bytes per event (line plus newline).
    pub bytes_per_event: f64,
    /// The hand-written loop's events per second (0 when skipped).
    pub baseline_events_per_s: f64,
    /// `events_per_s / baseline_events_per_s`; with several rounds, the median of the
    /// rounds' ratios (0 when skipped).
    pub ratio_to_baseline: f64,
    /// Median `log_event` latency as the caller sees it, in microseconds.
    pub p50_us: f64,
    /// 99th percentile latency, microseconds.
    pub p99_us: f64,
    /// 99.9th percentile latency, microseconds.
    pub p999_us: f64,
    /// Peak resident memory of this process so far (Linux `VmHWM`; 0 elsewhere).
    pub peak_rss_bytes: u64,
}

/// Realistic events: every field present, a ~60-character message, a 3-key metadata object;
/// about 900 bytes per stored line. `n` distinct events, reused round-robin.
pub fn sample_events(n: usize) -> Vec<AuditEvent> {
    let types = [
        AuditEventType::DataAccess,
        AuditEventType::DataModification,
        AuditEventType::AuthenticationFailed,
        AuditEventType::ConfigChanged,
    ];
    (0..n.max(1))
        .map(|i| {
            let mut ctx = Map::new();
            ctx.insert("retries".into(), Value::from(i % 4));
            let mut ev = AuditEvent::new(
                types[i % types.len()],
                format!(
                    "user u{:05} read customer record {:08} from the billing ledger",
                    i % 10_000,
                    i
                ),
            )
            .log_level(if i % 50 == 0 {
                AuditLogLevel::Warning
            } else {
                AuditLogLevel::Info
            })
            .component("billing-service")
            .operation("read")
            .user_id(format!("u{:05}", i % 10_000))
            .session_id(format!("s-{:08x}", i as u64 * 0x9e37_79b9 % 0xffff_ffff))
            .request_id(format!("r-{:08x}", i as u64 * 0x85eb_ca6b % 0xffff_ffff))
            .client_ip(format!("10.{}.{}.{}", i % 200, (i / 200) % 250, i % 250))
            .user_agent("billing-client/4.2")
            .container_id("c0ffee")
            .plugin_name("ledger")
            .error_category("none")
            .error_severity("low")
            .data_classification("confidential")
            .retention_category("7y")
            .signature("sig-v1")
            .contains_pii(i % 3 == 0)
            .tag("sox")
            .tag("pci")
            .meta("resource", format!("customers/{i}"))
            .meta("rows", (i % 100) as u64)
            .meta("region", "eu-west-1")
            .error_context(ctx);
            ev.compliance_level = ComplianceLevel::Sox;
            ev
        })
        .collect()
}

/// A log-linear latency histogram: 32 sub-buckets per power of two (about 3% precision).
#[derive(Debug, Clone)]
struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

impl Histogram {
    fn new() -> Self {
        Self {
            counts: vec![0; 64 * 32],
            total: 0,
        }
    }

    fn index(nanos: u64) -> usize {
        if nanos < 32 {
            return nanos as usize;
        }
        let log = 63 - u64::from(nanos.leading_zeros());
        let sub = (nanos >> (log - 5)) & 31;
        ((log - 4) * 32 + sub) as usize
    }

    fn lower_bound(index: usize) -> u64 {
        if index < 32 {
            return index as u64;
        }
        let log = (index / 32) as u64 + 4;
        let sub = (index % 32) as u64;
        (32 + sub) << (log - 5)
    }

    fn record(&mut self, nanos: u64) {
        let i = Self::index(nanos).min(self.counts.len() - 1);
        self.counts[i] += 1;
        self.total += 1;
    }

    fn merge(&mut self, other: &Self) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
    }

    fn percentile_us(&self, p: f64) -> f64 {
        let rank = ((self.total as f64) * p).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::lower_bound(i) as f64 / 1000.0;
            }
        }
        0.0
    }
}

/// Peak resident memory of this process (`VmHWM`), in bytes; 0 where unknown.
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn fresh_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(Error::io("cannot clear bench directory", dir))?;
    }
    fs::create_dir_all(dir).map_err(Error::io("cannot create bench directory", dir))?;
    // Commit the removal before the clock starts: otherwise the next journal commit, the
    // first fdatasync of the run, frees the old files' blocks (and, on a `discard` mount,
    // trims them): in three 6,400-event sync runs the trail's fdatasyncs took 5-36% longer
    // without this.
    let parent = dir.parent().unwrap_or(dir);
    crate::file::sync_dir(parent).map_err(Error::io("cannot fsync bench directory", parent))
}

fn dir_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// The `path` in a plugin's config (both shipped plugins have one).
fn plugin_store_path(config_json: &str) -> Option<PathBuf> {
    serde_json::from_str::<Value>(config_json)
        .ok()
        .and_then(|v| v.get("path")?.as_str().map(PathBuf::from))
}

/// Empties a plugin store that lies inside the bench directory (the default one does) before
/// a run: each run's chain starts at sequence 1, which a store holding an earlier run's
/// events refuses (or continues from). A store elsewhere is the user's and is left alone.
fn clear_bench_store(config_json: &str, bench_dir: &Path) -> Result<()> {
    let Some(path) = plugin_store_path(config_json).filter(|p| p.starts_with(bench_dir)) else {
        return Ok(());
    };
    let cleared = if path.is_dir() {
        fs::remove_dir_all(&path)
    } else {
        // SQLite's write-ahead log and shared-memory files go with the database.
        for suffix in ["-wal", "-shm"] {
            let mut side = path.clone().into_os_string();
            side.push(suffix);
            let _ = fs::remove_file(side);
        }
        fs::remove_file(&path)
    };
    match cleared {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(
            "cannot clear the plugin store in the bench directory",
            &path,
        )(e)),
        _ => Ok(()),
    }
}

/// What a plugin stored, when its config's `path` names a file or a directory of files
/// (both shipped plugins); 0 otherwise.
fn plugin_store_bytes(config_json: &str) -> u64 {
    let Some(path) = plugin_store_path(config_json) else {
        return 0;
    };
    if path.is_dir() {
        dir_bytes(&path)
    } else {
        fs::metadata(&path).map_or(0, |m| m.len())
    }
}

/// Runs `scenario`: the trail, then the baseline. `progress` receives (events done, total).
///
/// # Errors
/// Anything the trail or the file system reports.
pub fn run(scenario: &Scenario, progress: &(dyn Fn(u64, u64) + Sync)) -> Result<BenchResult> {
    let pool = Arc::new(sample_events(1024));
    let producers = scenario.producers.max(1);
    let rounds = scenario.rounds.max(1);
    // Every round logs the same number of events, a multiple of the producers.
    let per_round = (scenario.events / rounds / producers).max(1) * producers;
    let events = per_round * rounds;
    let mut histogram = Histogram::new();
    let (mut seconds, mut base_seconds, mut bytes) = (0.0, 0.0, 0.0);
    let mut ratios = Vec::with_capacity(rounds);
    let mut backend_name = String::new();
    for round in 0..rounds {
        // Alternate which goes first, so a noisy neighbour hits both alike.
        let baseline_first = round % 2 == 1;
        let mut base = None;
        if baseline_first && !scenario.skip_baseline {
            base = Some(run_baseline(scenario, &pool, per_round, producers)?);
        }
        let done_before = (round * per_round) as u64;
        let shown = |done: u64, _: u64| progress(done_before + done, events as u64);
        let r = run_trail(scenario, &pool, per_round, producers, &shown)?;
        if !baseline_first && !scenario.skip_baseline {
            base = Some(run_baseline(scenario, &pool, per_round, producers)?);
        }
        if let Some(b) = base {
            base_seconds += b;
            ratios.push(b / r.seconds);
        }
        seconds += r.seconds;
        bytes += r.bytes;
        histogram.merge(&r.histogram);
        backend_name = r.backend_name;
    }
    let peak = peak_rss_bytes();
    let eps = events as f64 / seconds;
    let baseline_eps = if ratios.is_empty() {
        0.0
    } else {
        events as f64 / base_seconds
    };
    // One round: the plain ratio. Several: the median of the rounds' ratios, which a burst of
    // noise in one round does not move.
    ratios.sort_by(f64::total_cmp);
    let ratio = match ratios.len() {
        0 => 0.0,
        1 => eps / baseline_eps,
        n if n % 2 == 1 => ratios[n / 2],
        n => (ratios[n / 2 - 1] + ratios[n / 2]) / 2.0,
    };
    Ok(BenchResult {
        scenario: scenario.name.clone(),
        events,
        producers,
        durability: match scenario.durability {
            Durability::Batched => "batched".into(),
            Durability::Sync => "sync".into(),
        },
        backend: backend_name,
        seconds,
        events_per_s: eps,
        mb_per_s: bytes / seconds / 1e6,
        bytes_per_event: if events == 0 {
            0.0
        } else {
            bytes / events as f64
        },
        baseline_events_per_s: baseline_eps,
        ratio_to_baseline: ratio,
        p50_us: histogram.percentile_us(0.50),
        p99_us: histogram.percentile_us(0.99),
        p999_us: histogram.percentile_us(0.999),
        peak_rss_bytes: peak,
    })
}

/// Counts a producer task out however it ends (done, error or panic); the last one wakes
/// the progress loop.
struct FinishGuard(Arc<AtomicUsize>, Arc<tokio::sync::Notify>);

impl Drop for FinishGuard {
    fn drop(&mut self) {
        if self.0.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Stores a permit when the loop is not waiting yet.
            self.1.notify_one();
        }
    }
}

/// What one timed trail run measured.
struct TrailRun {
    seconds: f64,
    bytes: f64,
    histogram: Histogram,
    backend_name: String,
}

/// The baseline over `events` events in a fresh directory: its seconds.
fn run_baseline(
    scenario: &Scenario,
    pool: &[AuditEvent],
    events: usize,
    producers: usize,
) -> Result<f64> {
    let base_dir = scenario.dir.join("baseline");
    fresh_dir(&base_dir)?;
    let sync_every = match scenario.durability {
        Durability::Sync => producers.min(64),
        Durability::Batched => 0,
    };
    baseline(pool, events, sync_every, &base_dir)
}

/// `events` events through a real trail in a fresh directory, from `producers` tasks.
fn run_trail(
    scenario: &Scenario,
    pool: &Arc<Vec<AuditEvent>>,
    events: usize,
    producers: usize,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<TrailRun> {
    let trail_dir = scenario.dir.join("trail");
    fresh_dir(&trail_dir)?;
    // `close` must deliver everything, however far a slow plugin is behind: the run is timed
    // until every event is stored, not until the default 5 s shutdown timeout leaves the rest
    // in a spool. A backend that is down fails the run after 10 minutes.
    let mut builder = AuditTrail::builder()
        .durability(scenario.durability)
        .storage_path(&trail_dir)
        .shutdown_timeout(Duration::from_secs(600));
    let backend_name = match &scenario.backend {
        BenchBackend::File => "file".to_owned(),
        BenchBackend::Plugin {
            library,
            config_json,
        } => {
            clear_bench_store(config_json, &scenario.dir)?;
            let loaded =
                crate::plugin::LoadedPlugin::load(library, &crate::plugin::LoadOptions::default())?;
            builder = builder.backend(Box::new(loaded.open("bench", config_json)?));
            format!("plugin:{}", library.display())
        }
    };
    let trail = Arc::new(builder.build()?);
    let per = events / producers;
    let done = Arc::new(AtomicU64::new(0));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .map_err(|e| Error::backend(format!("cannot start a runtime: {e}")))?;
    // The last producer to finish wakes the progress loop at once: polling its 100 ms tick
    // would add up to 100 ms to every run (10% of a one-second run).
    let remaining = Arc::new(AtomicUsize::new(producers));
    let finished = Arc::new(tokio::sync::Notify::new());
    let started = Instant::now();
    let histogram = rt.block_on(async {
        let mut tasks = Vec::new();
        for p in 0..producers {
            let (trail, pool, done) = (Arc::clone(&trail), Arc::clone(pool), Arc::clone(&done));
            let (remaining, finished) = (Arc::clone(&remaining), Arc::clone(&finished));
            let interval = scenario
                .rate
                .map(|r| Duration::from_secs_f64(producers as f64 / r));
            tasks.push(tokio::spawn(async move {
                let _finished = FinishGuard(remaining, finished);
                let mut h = Histogram::new();
                let begin = Instant::now();
                for i in 0..per {
                    if let Some(iv) = interval {
                        let due = begin + iv * i as u32;
                        while Instant::now() < due {
                            std::hint::spin_loop();
                        }
                    }
                    let ev = &pool[(p * per + i) % pool.len()];
                    let t0 = Instant::now();
                    trail.log_ref(ev).await?;
                    h.record(t0.elapsed().as_nanos() as u64);
                    if i % 1024 == 0 {
                        done.fetch_add(1024.min((per - i) as u64), Ordering::Relaxed);
                    }
                }
                Ok::<_, Error>(h)
            }));
        }
        while remaining.load(Ordering::Acquire) > 0 {
            progress(
                done.load(Ordering::Relaxed).min(events as u64),
                events as u64,
            );
            // Times out (next progress update) or returns when the last producer is done.
            let _ = tokio::time::timeout(Duration::from_millis(100), finished.notified()).await;
        }
        let mut all = Histogram::new();
        for t in tasks {
            let h = t
                .await
                .map_err(|e| Error::backend(format!("producer task failed: {e}")))??;
            all.merge(&h);
        }
        trail.close().await?;
        let last = trail.statistics().last_sequence;
        for b in trail.statistics().per_backend {
            if b.delivered_sequence < last {
                return Err(Error::backend(format!(
                    "backend `{}` stored events up to sequence {} of {last} by close ({} spooled, {} dropped); the run does not count",
                    b.name, b.delivered_sequence, b.spooled_events, b.dropped
                )));
            }
        }
        progress(events as u64, events as u64);
        Ok::<_, Error>(all)
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let bytes = match &scenario.backend {
        BenchBackend::File => dir_bytes(&trail_dir) as f64,
        BenchBackend::Plugin { config_json, .. } => plugin_store_bytes(config_json) as f64,
    };
    Ok(TrailRun {
        seconds,
        bytes,
        histogram,
        backend_name,
    })
}

/// `audit verify` throughput against plain SHA-256 over the same bytes.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct VerifyResult {
    /// Always `verify`.
    pub scenario: String,
    /// Megabytes (10^6 bytes) of audit files.
    pub megabytes: f64,
    /// Events verified.
    pub events: u64,
    /// `verify_dir` throughput.
    pub verify_mb_per_s: f64,
    /// SHA-256 over the same bytes, read the same way (one pass, 1 MiB buffer).
    pub sha256_mb_per_s: f64,
    /// `verify_mb_per_s / sha256_mb_per_s`.
    pub ratio_to_sha256: f64,
}

/// Times [`verify_dir`](crate::verify_dir) over `dir` and plain SHA-256 over the same files.
///
/// # Errors
/// Read errors, or a chain that does not verify.
pub fn verify_vs_sha256(dir: &Path) -> Result<VerifyResult> {
    use sha2::Digest;
    use std::io::Read;
    let bytes = dir_bytes(dir) as f64;
    let t = Instant::now();
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    for entry in fs::read_dir(dir).map_err(Error::io("cannot list", dir))? {
        let path = entry.map_err(Error::io("cannot list", dir))?.path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            let mut f = File::open(&path).map_err(Error::io("cannot open", &path))?;
            loop {
                let n = f.read(&mut buf).map_err(Error::io("cannot read", &path))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
        }
    }
    std::hint::black_box(hasher.finalize());
    let sha_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let report = crate::verify::verify_dir(dir, &Integrity::Sha256)
        .map_err(|e| Error::Integrity(e.to_string()))?;
    let verify_secs = t.elapsed().as_secs_f64();
    let (v, s) = (bytes / verify_secs / 1e6, bytes / sha_secs / 1e6);
    Ok(VerifyResult {
        scenario: "verify".into(),
        megabytes: bytes / 1e6,
        events: report.events,
        verify_mb_per_s: v,
        sha256_mb_per_s: s,
        ratio_to_sha256: v / s,
    })
}

/// The tightest loop doing the trail's work without the trail: for each event, a UUID, the
/// timestamp, the canonical line, the SHA-256 chain, appended through a 256 KiB buffer with
/// one write per full buffer; fdatasync every `sync_every` events (0: at the end and every
/// 200 ms, like batched mode). Returns the seconds it took.
///
/// # Errors
/// File-system errors.
pub fn baseline(pool: &[AuditEvent], events: usize, sync_every: usize, dir: &Path) -> Result<f64> {
    let path = dir.join("baseline.jsonl");
    let mut file = File::create(&path).map_err(Error::io("cannot create", &path))?;
    let io = |e| Error::io("cannot write", &path)(e);
    let integrity = Integrity::Sha256;
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let pid = i64::from(std::process::id());
    let mut prepared = Prepared::default();
    let mut ids = crate::ids::IdPool::default();
    let mut prev: Option<[u8; 64]> = None;
    let mut buf: Vec<u8> = Vec::with_capacity(256 * 1024 + 4096);
    let started = Instant::now();
    let mut last_sync = started;
    for i in 0..events {
        let ev = &pool[i % pool.len()];
        let id = ids.next_id()?;
        prepared.encode(ev, &id, &host, pid, ComplianceLevel::Basic);
        let (record, hex) =
            prepared.assemble(ev, i as u64 + 1, prev.as_ref(), Utc::now(), &integrity);
        prev = Some(hex);
        buf.extend_from_slice(record.line().as_bytes());
        buf.push(b'\n');
        if sync_every > 0 {
            if (i + 1) % sync_every == 0 {
                file.write_all(&buf).map_err(io)?;
                buf.clear();
                file.sync_data().map_err(io)?;
            }
        } else if buf.len() >= 256 * 1024 {
            file.write_all(&buf).map_err(io)?;
            buf.clear();
            if last_sync.elapsed() >= Duration::from_millis(200) {
                file.sync_data().map_err(io)?;
                last_sync = Instant::now();
            }
        }
    }
    file.write_all(&buf).map_err(io)?;
    file.sync_data().map_err(io)?;
    Ok(started.elapsed().as_secs_f64())
}

/// The trail's per-event work, one piece at a time, for the criterion micro-benchmarks
/// (`cargo bench -p audit-host`). Not a stable API.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct LineEncoder {
    prepared: Prepared,
}

#[doc(hidden)]
impl LineEncoder {
    /// A new encoder (its buffer grows on the first event and is reused).
    pub fn new() -> Self {
        Self::default()
    }

    /// Serializes everything but the chain fields and the timestamp (outside the trail's
    /// critical section).
    pub fn encode(&mut self, ev: &AuditEvent, event_id: &str, host: &str, pid: i64) {
        self.prepared
            .encode(ev, event_id, host, pid, ComplianceLevel::Basic);
    }

    /// Assembles the final line and its checksum (inside the critical section).
    pub fn assemble(
        &self,
        ev: &AuditEvent,
        sequence_number: u64,
        previous_hash: Option<&[u8; 64]>,
        timestamp: chrono::DateTime<Utc>,
        integrity: &Integrity,
    ) -> (crate::AuditRecord, [u8; 64]) {
        self.prepared
            .assemble(ev, sequence_number, previous_hash, timestamp, integrity)
    }
}

/// The chain's checksum of a line without its checksum member (`body` is the line after its
/// opening `{`). Not a stable API.
#[doc(hidden)]
pub fn checksum_hex(integrity: &Integrity, body: &[u8]) -> [u8; 64] {
    integrity.checksum_hex(body)
}

/// Wraps records in a [`Batch`](crate::Batch) to hand to a backend. Not a stable API.
#[doc(hidden)]
pub fn batch(records: Vec<crate::AuditRecord>) -> crate::Batch {
    crate::Batch::new(records)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn histogram_percentiles_are_close() {
        let mut h = Histogram::new();
        for v in 1..=100_000u64 {
            h.record(v * 1000); // 1 µs .. 100 ms
        }
        let p50 = h.percentile_us(0.5);
        let p99 = h.percentile_us(0.99);
        assert!((p50 - 50_000.0).abs() / 50_000.0 < 0.04, "{p50}");
        assert!((p99 - 99_000.0).abs() / 99_000.0 < 0.04, "{p99}");
        assert!(Histogram::lower_bound(Histogram::index(12_345)) <= 12_345);
    }

    #[test]
    fn sample_lines_are_about_900_bytes() {
        let pool = sample_events(16);
        let mut p = Prepared::default();
        p.encode(
            &pool[3],
            "0b7c8f1e-3f57-4e8e-9d46-1c2a3b4c5d6e",
            "bench-host",
            4242,
            ComplianceLevel::Sox,
        );
        let (r, _) = p.assemble(
            &pool[3],
            123_456,
            Some(&[b'a'; 64]),
            Utc::now(),
            &Integrity::Sha256,
        );
        let len = r.line().len();
        assert!((850..1000).contains(&len), "{len}: {}", r.line());
        let v: Map<String, Value> = serde_json::from_str(r.line()).expect("json");
        assert!(
            v.values().filter(|x| x.is_null()).count() == 0,
            "all 30 fields present: {}",
            r.line()
        );
    }
}
