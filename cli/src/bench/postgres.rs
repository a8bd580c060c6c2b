//! `audit bench` with the postgres plugin: the trail stores into a scratch table, and the
//! baseline is the tightest client loop doing the same writes (the same canonical lines, as
//! many transactions as the trail's run took, each a COPY into the staging table then
//! `INSERT ... SELECT ... ON CONFLICT DO NOTHING`) to the same server, through the plugin
//! crate's own code (`audit_backend_postgres::bench`). Built with the `postgres-bench`
//! feature; without it, a note says how to get this baseline and the file baseline is used.

/// The plugin name that selects this baseline.
const POSTGRES: &str = "postgres";

#[cfg(not(feature = "postgres-bench"))]
pub(crate) use without::PgBench;

#[cfg(feature = "postgres-bench")]
pub(crate) use with::PgBench;

#[cfg(not(feature = "postgres-bench"))]
mod without {
    use audit_host::{AuditEvent, Result};

    use super::super::scenario::Scenario;
    use super::POSTGRES;

    /// Never built without the `postgres-bench` feature.
    #[derive(Debug)]
    pub(crate) enum PgBench {}

    impl PgBench {
        /// `None`, with a note on stderr when the plugin is the postgres one.
        pub(crate) fn for_scenario(_: &Scenario, plugin: Option<&str>) -> Result<Option<Self>> {
            if plugin == Some(POSTGRES) {
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
    use audit_backend_postgres::bench::{BenchTable, with_table};
    use audit_host::{AuditEvent, Error, Result};
    use audit_plugin_api::PluginError;

    use super::super::client_loop::client_loop;
    use super::super::scenario::{BenchBackend, Scenario};
    use super::POSTGRES;

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
        pub(crate) fn for_scenario(
            scenario: &Scenario,
            plugin: Option<&str>,
        ) -> Result<Option<Self>> {
            let BenchBackend::Plugin { config_json, .. } = &scenario.backend else {
                return Ok(None);
            };
            if plugin != Some(POSTGRES) {
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
            let seconds = client_loop(pool, events, batches, |records| {
                table.write(records).map_err(pg_error)
            });
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
}
