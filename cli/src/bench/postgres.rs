//! `audit bench` with the postgres plugin: the trail stores into a scratch table, and the
//! baseline is the tightest client loop doing the same writes (the same canonical lines, as
//! many transactions as the trail's run took, each a COPY into the staging table then
//! `INSERT ... SELECT ... ON CONFLICT DO NOTHING`) to the same server, through the plugin
//! crate's own code ([`audit_backend_postgres::bench`]). Built with the `postgres-bench`
//! feature; without it, a note says how to get this baseline and the file baseline is used.

use audit_host::Result;
use audit_host::plugin::{LoadOptions, LoadedPlugin};

use super::scenario::{BenchBackend, Scenario};

/// The plugin name that selects this baseline.
const POSTGRES: &str = "postgres";

/// The name the scenario's plugin library gives itself, when it is a plugin.
fn plugin_name(scenario: &Scenario) -> Result<Option<String>> {
    let BenchBackend::Plugin { library, .. } = &scenario.backend else {
        return Ok(None);
    };
    let loaded = LoadedPlugin::load(library, &LoadOptions::default())?;
    Ok(Some(loaded.info().name.clone()))
}

#[cfg(not(feature = "postgres-bench"))]
pub(crate) use without::PgBench;

#[cfg(feature = "postgres-bench")]
pub(crate) use with::PgBench;

#[cfg(not(feature = "postgres-bench"))]
mod without {
    use audit_host::{AuditEvent, Result};

    use super::super::scenario::Scenario;
    use super::{POSTGRES, plugin_name};

    /// Never built without the `postgres-bench` feature.
    #[derive(Debug)]
    pub(crate) enum PgBench {}

    impl PgBench {
        /// `None`, with a note on stderr when the plugin is the postgres one.
        pub(crate) fn for_scenario(scenario: &Scenario) -> Result<Option<Self>> {
            if plugin_name(scenario)?.as_deref() == Some(POSTGRES) {
                eprintln!(
                    "audit bench: the postgres plugin is compared with the file baseline here; for the hand-written PostgreSQL client baseline build audit with `cargo build --release -p audit-cli --features postgres-bench` (docs/benchmarks.md)"
                );
            }
            Ok(None)
        }

        pub(crate) fn scenario(&self, _: &Scenario) -> Scenario {
            match *self {}
        }

        pub(crate) fn before_trail(&mut self) -> Result<()> {
            match *self {}
        }

        pub(crate) fn after_trail(&mut self, _: usize) -> Result<f64> {
            match *self {}
        }

        pub(crate) fn baseline(&mut self, _: &[AuditEvent], _: usize) -> Result<f64> {
            match *self {}
        }
    }
}

#[cfg(feature = "postgres-bench")]
mod with {
    use std::time::Instant;

    use audit_backend_postgres::bench::{BenchTable, with_table};
    use audit_format::{ComplianceLevel, IdPool, LineEncoder};
    use audit_host::{AuditEvent, AuditRecord, Error, Integrity};
    use audit_plugin_api::abi_stable::std_types::RStr;
    use audit_plugin_api::{PluginError, Record};
    use chrono::Utc;

    use super::super::scenario::{BenchBackend, Scenario};
    use super::{POSTGRES, Result, plugin_name};

    /// The scratch tables' configurations and what the last trail run measured.
    #[derive(Debug)]
    pub(crate) struct PgBench {
        /// The plugin config with `table` = `audit_bench_<pid>_trail`.
        trail_config: String,
        /// The same with `audit_bench_<pid>_baseline`.
        baseline_config: String,
        /// The trail's table while a run writes into it.
        trail_table: Option<BenchTable>,
        /// Transactions per event of the last trail run (0: none measured yet).
        batches_per_event: f64,
    }

    fn pg_error(e: PluginError) -> Error {
        Error::backend(format!("audit bench, postgres baseline: {e}"))
    }

    impl PgBench {
        /// The bench tables when the scenario's plugin is the postgres one.
        pub(crate) fn for_scenario(scenario: &Scenario) -> Result<Option<Self>> {
            let BenchBackend::Plugin { config_json, .. } = &scenario.backend else {
                return Ok(None);
            };
            if plugin_name(scenario)?.as_deref() != Some(POSTGRES) {
                return Ok(None);
            }
            let pid = std::process::id();
            let table = |role: &str| with_table(config_json, &format!("audit_bench_{pid}_{role}"));
            Ok(Some(Self {
                trail_config: table("trail").map_err(pg_error)?,
                baseline_config: table("baseline").map_err(pg_error)?,
                trail_table: None,
                batches_per_event: 0.0,
            }))
        }

        /// `scenario` storing into the trail's bench table.
        pub(crate) fn scenario(&self, scenario: &Scenario) -> Scenario {
            let mut s = scenario.clone();
            if let BenchBackend::Plugin { config_json, .. } = &mut s.backend {
                config_json.clone_from(&self.trail_config);
            }
            s
        }

        /// Before a trail run: its table, created empty.
        pub(crate) fn before_trail(&mut self) -> Result<()> {
            self.trail_table = Some(BenchTable::fresh(&self.trail_config).map_err(pg_error)?);
            Ok(())
        }

        /// After a trail run of `events`: the stored bytes; the transactions it took are
        /// kept for the baseline; the table is dropped.
        pub(crate) fn after_trail(&mut self, events: usize) -> Result<f64> {
            let Some(mut table) = self.trail_table.take() else {
                return Ok(0.0);
            };
            let bytes = table.stored_bytes().map_err(pg_error)?;
            let tx = table.transactions().map_err(pg_error)?;
            table.drop_table().map_err(pg_error)?;
            self.batches_per_event = tx as f64 / events.max(1) as f64;
            eprintln!(
                "audit bench: postgres: the trail stored {events} events in {tx} transactions ({:.0} events each); the baseline writes as many",
                events as f64 / tx.max(1) as f64
            );
            Ok(bytes as f64)
        }

        /// The baseline over `events` events in a fresh table: its seconds.
        pub(crate) fn baseline(&mut self, pool: &[AuditEvent], events: usize) -> Result<f64> {
            // As many transactions as the trail's last run; before any, the writer's wake
            // batch (512 events).
            let batches = if self.batches_per_event > 0.0 {
                (self.batches_per_event * events as f64).round() as usize
            } else {
                events.div_ceil(512)
            };
            let mut table = BenchTable::fresh(&self.baseline_config).map_err(pg_error)?;
            let seconds = client_loop(&mut table, pool, events, batches.clamp(1, events.max(1)));
            // Dropped also after a failed loop; the loop's error is the one reported.
            let dropped = table.drop_table().map_err(pg_error);
            let seconds = seconds?;
            dropped?;
            Ok(seconds)
        }
    }

    /// A trail run that failed leaves its table: dropped here, a failure said on stderr.
    impl Drop for PgBench {
        fn drop(&mut self) {
            if let Some(table) = self.trail_table.take()
                && let Err(e) = table.drop_table()
            {
                eprintln!("audit bench: {}; drop it by hand", pg_error(e));
            }
        }
    }

    /// The tightest client loop: for each event a UUID, the timestamp, the canonical line
    /// and the SHA-256 chain (as the file baseline), collected into `batches` equal batches,
    /// each written as the plugin writes one. Returns the seconds it took.
    fn client_loop(
        table: &mut BenchTable,
        pool: &[AuditEvent],
        events: usize,
        batches: usize,
    ) -> Result<f64> {
        let integrity = Integrity::Sha256;
        let host = gethostname::gethostname().to_string_lossy().into_owned();
        let pid = i64::from(std::process::id());
        let mut encoder = LineEncoder::new();
        let mut ids = IdPool::default();
        let mut prev: Option<[u8; 64]> = None;
        let mut batch: Vec<AuditRecord> = Vec::with_capacity(events / batches + 1);
        let mut written = 0;
        let started = Instant::now();
        for i in 0..events {
            let ev = &pool[i % pool.len()];
            let id = ids.next_id()?;
            encoder.encode(ev, &id, &host, pid, ComplianceLevel::Basic);
            let (record, hex) =
                encoder.assemble(ev, i as u64 + 1, prev.as_ref(), Utc::now(), &integrity);
            prev = Some(hex);
            batch.push(record);
            // Batch `written` ends at event events * (written + 1) / batches.
            if (i + 1) * batches >= events * (written + 1) {
                write(table, &batch)?;
                batch.clear();
                written += 1;
            }
        }
        if !batch.is_empty() {
            write(table, &batch)?;
        }
        Ok(started.elapsed().as_secs_f64())
    }

    /// One batch, handed over as the host hands records to a plugin.
    fn write(table: &mut BenchTable, batch: &[AuditRecord]) -> Result<()> {
        let ids: Vec<_> = batch.iter().map(|r| (r.event_id(), r.user_id())).collect();
        let records: Vec<Record<'_>> = batch
            .iter()
            .zip(ids.iter())
            .map(|(r, (event_id, user_id))| Record {
                line: RStr::from_str(r.line()),
                sequence_number: r.sequence_number(),
                timestamp: RStr::from_str(r.timestamp_str()),
                timestamp_micros: r.timestamp().timestamp_micros(),
                event_id: RStr::from_str(event_id),
                event_type: RStr::from_str(r.event_type().as_str()),
                log_level: RStr::from_str(r.log_level().as_str()),
                user_id: user_id.as_deref().map(RStr::from_str).into(),
            })
            .collect();
        table.write(&records).map_err(pg_error)
    }
}
