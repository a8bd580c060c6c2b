//! One `audit bench` scenario: throughput and `log_event` latency of a real [`AuditTrail`],
//! timed against the hand-written [baseline](super::baseline) in the same process.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use audit_host::plugin::{LoadOptions, LoadedPlugin};
use audit_host::{AuditEvent, AuditTrail, Durability, Error, Result};
use serde::Serialize;

use super::baseline::run_baseline;
use super::histogram::Histogram;
use super::plugin_bench::PluginBench;
use super::sample::sample_events;
use super::scenario::{BenchBackend, Scenario};
use super::store::{clear_bench_store, dir_bytes, fresh_dir, peak_rss_bytes, plugin_store_bytes};

/// What one scenario measured. Field names are the `--json` contract.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub(crate) struct BenchResult {
    /// Scenario name.
    pub(crate) scenario: String,
    /// Events logged.
    pub(crate) events: usize,
    /// Concurrent producers.
    pub(crate) producers: usize,
    /// `batched` or `sync`.
    pub(crate) durability: String,
    /// `file` or `plugin:<library>`.
    pub(crate) backend: String,
    /// From the first `log_event` to `close` returning (everything durable).
    pub(crate) seconds: f64,
    /// Events per second over `seconds`.
    pub(crate) events_per_s: f64,
    /// Megabytes (10^6 bytes) of stored lines per second.
    pub(crate) mb_per_s: f64,
    /// Stored bytes per event (line plus newline).
    pub(crate) bytes_per_event: f64,
    /// The hand-written loop's events per second (0 when skipped).
    pub(crate) baseline_events_per_s: f64,
    /// `events_per_s / baseline_events_per_s`; with several rounds, the median of the
    /// rounds' ratios (0 when skipped).
    pub(crate) ratio_to_baseline: f64,
    /// Median `log_event` latency as the caller sees it, in microseconds.
    pub(crate) p50_us: f64,
    /// 99th percentile latency, microseconds.
    pub(crate) p99_us: f64,
    /// 99.9th percentile latency, microseconds.
    pub(crate) p999_us: f64,
    /// Peak resident memory of this process so far (Linux `VmHWM`; 0 elsewhere).
    pub(crate) peak_rss_bytes: u64,
}

/// Runs `scenario`: the trail, then the baseline. `progress` receives (events done, total).
///
/// # Errors
/// Anything the trail or the file system reports.
pub(crate) fn run(
    scenario: &Scenario,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<BenchResult> {
    let pool = Arc::new(sample_events(1024));
    let producers = scenario.producers.max(1);
    let rounds = scenario.rounds.max(1);
    // Every round logs the same number of events, a multiple of the producers.
    let per_round = (scenario.events / rounds / producers).max(1) * producers;
    let events = per_round * rounds;
    // The postgres and syslog plugins are compared with a client loop of their own.
    let mut pg = PluginBench::for_scenario(scenario)?;
    let pg_scenario = pg.as_ref().map(|p| p.scenario(scenario));
    let scenario = pg_scenario.as_ref().unwrap_or(scenario);
    let mut totals = Totals {
        histogram: Histogram::new(),
        seconds: 0.0,
        base_seconds: 0.0,
        bytes: 0.0,
        ratios: Vec::with_capacity(rounds),
        backend_name: String::new(),
    };
    for round in 0..rounds {
        // Alternate which goes first, so a noisy neighbour hits both alike.
        let baseline_first = round % 2 == 1;
        let mut base = None;
        let baseline = |pg: Option<&mut PluginBench>| match pg {
            Some(p) => p.baseline(&pool, per_round),
            None => run_baseline(scenario, &pool, per_round, producers),
        };
        if baseline_first && !scenario.skip_baseline {
            base = Some(baseline(pg.as_mut())?);
        }
        let done_before = (round * per_round) as u64;
        let shown = |done: u64, _: u64| progress(done_before + done, events as u64);
        let r = run_trail(scenario, pg.as_mut(), &pool, per_round, producers, &shown)?;
        if !baseline_first && !scenario.skip_baseline {
            base = Some(baseline(pg.as_mut())?);
        }
        totals.add(r, base);
    }
    Ok(totals.result(scenario, events, producers))
}

/// The rounds of one scenario, added up.
struct Totals {
    histogram: Histogram,
    /// The trail runs' seconds.
    seconds: f64,
    /// The baseline runs' seconds.
    base_seconds: f64,
    /// Stored bytes.
    bytes: f64,
    /// Each round's baseline seconds / trail seconds.
    ratios: Vec<f64>,
    backend_name: String,
}

impl Totals {
    /// Adds a round: its trail run and, unless skipped, its baseline's seconds.
    fn add(&mut self, r: TrailRun, base: Option<f64>) {
        if let Some(b) = base {
            self.base_seconds += b;
            self.ratios.push(b / r.seconds);
        }
        self.seconds += r.seconds;
        self.bytes += r.bytes;
        self.histogram.merge(&r.histogram);
        self.backend_name = r.backend_name;
    }

    fn result(mut self, scenario: &Scenario, events: usize, producers: usize) -> BenchResult {
        let peak = peak_rss_bytes();
        let seconds = self.seconds;
        let eps = events as f64 / seconds;
        let baseline_eps = if self.ratios.is_empty() {
            0.0
        } else {
            events as f64 / self.base_seconds
        };
        // One round: the plain ratio. Several: the median of the rounds' ratios, which a
        // burst of noise in one round does not move.
        let ratios = &mut self.ratios;
        ratios.sort_by(f64::total_cmp);
        let ratio = match ratios.len() {
            0 => 0.0,
            1 => eps / baseline_eps,
            n if n % 2 == 1 => ratios[n / 2],
            n => (ratios[n / 2 - 1] + ratios[n / 2]) / 2.0,
        };
        let (bytes, histogram) = (self.bytes, &self.histogram);
        BenchResult {
            scenario: scenario.name.clone(),
            events,
            producers,
            durability: match scenario.durability {
                Durability::Batched => "batched".into(),
                Durability::Sync => "sync".into(),
            },
            backend: self.backend_name,
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
        }
    }
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

/// `events` events through a real trail in a fresh directory, from `producers` tasks.
fn run_trail(
    scenario: &Scenario,
    mut pg: Option<&mut PluginBench>,
    pool: &Arc<Vec<AuditEvent>>,
    events: usize,
    producers: usize,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<TrailRun> {
    let trail_dir = scenario.dir.join("trail");
    fresh_dir(&trail_dir)?;
    if let Some(p) = pg.as_deref_mut() {
        p.before_trail()?;
    }
    let (trail, backend_name) = build_trail(scenario, &trail_dir)?;
    let trail = Arc::new(trail);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .map_err(|e| Error::backend(format!("cannot start a runtime: {e}")))?;
    let started = Instant::now();
    let histogram = rt.block_on(log_all(scenario, &trail, pool, events, producers, progress))?;
    let seconds = started.elapsed().as_secs_f64();
    let bytes = match (&scenario.backend, pg) {
        (_, Some(p)) => p.after_trail(events, &plugin_counters(&trail))?,
        (BenchBackend::File, None) => dir_bytes(&trail_dir) as f64,
        (BenchBackend::Plugin { config_json, .. }, None) => plugin_store_bytes(config_json) as f64,
    };
    Ok(TrailRun {
        seconds,
        bytes,
        histogram,
        backend_name,
    })
}

/// The counters the plugin under test (the backend named `bench`) reported at close.
fn plugin_counters(trail: &AuditTrail) -> BTreeMap<String, u64> {
    trail
        .statistics()
        .per_backend
        .into_iter()
        .find(|b| b.name == "bench")
        .map(|b| b.counters)
        .unwrap_or_default()
}

/// The trail under test, storing into `trail_dir` or the scenario's plugin, and the
/// backend's name for the report.
fn build_trail(scenario: &Scenario, trail_dir: &Path) -> Result<(AuditTrail, String)> {
    // `close` must deliver everything, however far a slow plugin is behind: the run is timed
    // until every event is stored, not until the default 5 s shutdown timeout leaves the rest
    // in a spool. A backend that is down fails the run after 10 minutes.
    let mut builder = AuditTrail::builder()
        .durability(scenario.durability)
        .storage_path(trail_dir)
        .shutdown_timeout(Duration::from_secs(600));
    if let Some(key) = &scenario.signing_key {
        builder = builder.signing_key_file(key)?;
    }
    let backend_name = match &scenario.backend {
        BenchBackend::File => "file".to_owned(),
        BenchBackend::Plugin {
            library,
            config_json,
        } => {
            clear_bench_store(config_json, &scenario.dir)?;
            let loaded = LoadedPlugin::load(library, &LoadOptions::default())?;
            builder = builder.backend(Box::new(loaded.open("bench", config_json)?));
            format!("plugin:{}", library.display())
        }
    };
    Ok((builder.build()?, backend_name))
}

/// Logs `events` events from `producers` tasks, showing progress, then closes the trail and
/// checks every backend got every event: the producers' latencies.
async fn log_all(
    scenario: &Scenario,
    trail: &Arc<AuditTrail>,
    pool: &Arc<Vec<AuditEvent>>,
    events: usize,
    producers: usize,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Histogram> {
    let per = events / producers;
    let done = Arc::new(AtomicU64::new(0));
    // The last producer to finish wakes the progress loop at once: polling its 100 ms tick
    // would add up to 100 ms to every run (10% of a one-second run).
    let remaining = Arc::new(AtomicUsize::new(producers));
    let finished = Arc::new(tokio::sync::Notify::new());
    let interval = scenario
        .rate
        .map(|r| Duration::from_secs_f64(producers as f64 / r));
    let mut tasks = Vec::new();
    for p in 0..producers {
        let guard = FinishGuard(Arc::clone(&remaining), Arc::clone(&finished));
        let producer = Producer {
            trail: Arc::clone(trail),
            pool: Arc::clone(pool),
            done: Arc::clone(&done),
            first: p * per,
            count: per,
            interval,
        };
        tasks.push(tokio::spawn(producer.run(guard)));
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
    check_delivered(trail)?;
    progress(events as u64, events as u64);
    Ok(all)
}

/// One producer task: `count` events from the pool, starting at `first`, paced to one per
/// `interval` when given.
struct Producer {
    trail: Arc<AuditTrail>,
    pool: Arc<Vec<AuditEvent>>,
    /// Events logged by all producers, updated every 1,024.
    done: Arc<AtomicU64>,
    first: usize,
    count: usize,
    interval: Option<Duration>,
}

impl Producer {
    /// Logs the events: their `log_event` latencies.
    async fn run(self, _finished: FinishGuard) -> Result<Histogram> {
        let Self {
            trail,
            pool,
            done,
            first,
            count: per,
            interval,
        } = self;
        let mut h = Histogram::new();
        let begin = Instant::now();
        for i in 0..per {
            if let Some(iv) = interval {
                let due = begin + iv * i as u32;
                while Instant::now() < due {
                    std::hint::spin_loop();
                }
            }
            let ev = &pool[(first + i) % pool.len()];
            let t0 = Instant::now();
            trail.log_ref(ev).await?;
            h.record(t0.elapsed().as_nanos() as u64);
            if i % 1024 == 0 {
                done.fetch_add(1024.min((per - i) as u64), Ordering::Relaxed);
            }
        }
        Ok(h)
    }
}

/// An error unless every backend stored every event by `close`: a run whose events were
/// left in a spool does not count.
fn check_delivered(trail: &AuditTrail) -> Result<()> {
    let last = trail.statistics().last_sequence;
    for b in trail.statistics().per_backend {
        if b.delivered_sequence < last {
            return Err(Error::backend(format!(
                "backend `{}` stored events up to sequence {} of {last} by close ({} spooled, {} dropped); the run does not count",
                b.name, b.delivered_sequence, b.spooled_events, b.dropped
            )));
        }
    }
    Ok(())
}
