//! `audit bench` with the syslog plugin: the trail sends to the configured server, and the
//! baseline is the tightest sender loop doing the same sends (the same messages, formatted
//! and framed by the plugin crate's own code, over its own TCP/TLS connection, in as many
//! batches as the trail's run took) to the same server (`audit_backend_syslog::bench`).
//! Built with the `syslog-bench` feature; without it, a note says how to get this baseline
//! and the file baseline is used.

/// The plugin name that selects this baseline.
const SYSLOG: &str = "syslog";

#[cfg(not(feature = "syslog-bench"))]
pub(crate) use without::SyslogBench;

#[cfg(feature = "syslog-bench")]
pub(crate) use with::SyslogBench;

#[cfg(not(feature = "syslog-bench"))]
mod without {
    use std::collections::BTreeMap;

    use audit_host::{AuditEvent, Result};

    use super::super::scenario::Scenario;
    use super::SYSLOG;

    /// Never built without the `syslog-bench` feature.
    #[derive(Debug)]
    pub(crate) enum SyslogBench {}

    impl SyslogBench {
        /// `None`, with a note on stderr when the plugin is the syslog one.
        pub(crate) fn for_scenario(_: &Scenario, plugin: Option<&str>) -> Option<Self> {
            if plugin == Some(SYSLOG) {
                eprintln!(
                    "audit bench: the syslog plugin is compared with the file baseline here; for the hand-written syslog sender baseline build audit with `cargo build --release -p audit-cli --features syslog-bench` (docs/benchmarks.md)"
                );
            }
            None
        }

        pub(crate) fn after_trail(&mut self, _: usize, _: &BTreeMap<String, u64>) -> f64 {
            match *self {}
        }

        pub(crate) fn baseline(&mut self, _: &[AuditEvent], _: usize) -> Result<f64> {
            match *self {}
        }
    }
}

#[cfg(feature = "syslog-bench")]
mod with {
    use std::collections::BTreeMap;

    use audit_backend_syslog::bench::BenchSender;
    use audit_host::{AuditEvent, Error, Result};
    use audit_plugin_api::PluginError;

    use super::super::client_loop::client_loop;
    use super::super::scenario::{BenchBackend, Scenario};
    use super::SYSLOG;

    /// The plugin configuration and what the last trail run measured.
    #[derive(Debug)]
    pub(crate) struct SyslogBench {
        config_json: String,
        /// Batches per event of the last trail run (0: none measured yet).
        batches_per_event: f64,
    }

    fn syslog_error(e: PluginError) -> Error {
        Error::backend(format!("audit bench, syslog baseline: {e}"))
    }

    impl SyslogBench {
        /// The sender's configuration when the scenario's plugin is the syslog one.
        pub(crate) fn for_scenario(scenario: &Scenario, plugin: Option<&str>) -> Option<Self> {
            let BenchBackend::Plugin { config_json, .. } = &scenario.backend else {
                return None;
            };
            (plugin == Some(SYSLOG)).then(|| Self {
                config_json: config_json.clone(),
                batches_per_event: 0.0,
            })
        }

        /// After a trail run of `events`, with the plugin's `stats` counters at close: the
        /// bytes it sent; the batches it took are kept for the baseline.
        pub(crate) fn after_trail(
            &mut self,
            events: usize,
            counters: &BTreeMap<String, u64>,
        ) -> f64 {
            let batches = counters.get("batches_sent").copied().unwrap_or(0);
            if batches > 0 {
                self.batches_per_event = batches as f64 / events.max(1) as f64;
            }
            eprintln!(
                "audit bench: syslog: the trail sent {events} events in {batches} batches ({:.0} events each); the baseline sends as many",
                events as f64 / batches.max(1) as f64
            );
            counters.get("bytes_sent").copied().unwrap_or(0) as f64
        }

        /// The baseline over `events` events on a new connection: its seconds (connecting
        /// and closing not counted, as the trail's plugin connects in `open`).
        pub(crate) fn baseline(&mut self, pool: &[AuditEvent], events: usize) -> Result<f64> {
            // As many batches as the trail's last run; before any, the writer's wake batch
            // (512 events).
            let batches = if self.batches_per_event > 0.0 {
                (self.batches_per_event * events as f64).round() as usize
            } else {
                events.div_ceil(512)
            };
            let mut sender = BenchSender::connect(&self.config_json).map_err(syslog_error)?;
            let seconds = client_loop(pool, events, batches, |records| {
                sender.send(records).map_err(syslog_error)
            });
            // Closed also after a failed loop; the loop's error is the one reported.
            let closed = sender.close().map_err(syslog_error);
            let seconds = seconds?;
            closed?;
            Ok(seconds)
        }
    }
}
