//! `audit bench` with the http plugin, kind elasticsearch: the trail stores into a scratch
//! index, and the baseline is the tightest `_bulk` loop doing the same sends (the same
//! documents, encoded by the plugin crate's own code, over its own keep-alive connection, in
//! as many requests as the trail's run took) into another scratch index on the same server
//! (`audit_backend_http::bench`); both indices are deleted after each run. Built with the
//! `http-bench` feature; without it (or for the other kinds), a note says so and the file
//! baseline is used.

/// The plugin name that selects this baseline.
const HTTP: &str = "http";

#[cfg(not(feature = "http-bench"))]
pub(crate) use without::HttpBench;

#[cfg(feature = "http-bench")]
pub(crate) use with::HttpBench;

#[cfg(not(feature = "http-bench"))]
mod without {
    use std::collections::BTreeMap;

    use audit_host::{AuditEvent, Result};

    use super::super::scenario::Scenario;
    use super::HTTP;

    /// Never built without the `http-bench` feature.
    #[derive(Debug)]
    pub(crate) enum HttpBench {}

    impl HttpBench {
        /// `None`, with a note on stderr when the plugin is the http one.
        pub(crate) fn for_scenario(_: &Scenario, plugin: Option<&str>) -> Result<Option<Self>> {
            if plugin == Some(HTTP) {
                eprintln!(
                    "audit bench: the http plugin is compared with the file baseline here; for the hand-written _bulk baseline (kind elasticsearch) build audit with `cargo build --release -p audit-cli --features http-bench` (docs/benchmarks.md)"
                );
            }
            Ok(None)
        }

        pub(crate) fn scenario(&self, _: &Scenario) -> Scenario {
            match *self {}
        }

        pub(crate) fn after_trail(&mut self, _: usize, _: &BTreeMap<String, u64>) -> Result<f64> {
            match *self {}
        }

        pub(crate) fn baseline(&mut self, _: &[AuditEvent], _: usize) -> Result<f64> {
            match *self {}
        }
    }
}

#[cfg(feature = "http-bench")]
mod with {
    use std::collections::BTreeMap;

    use audit_backend_http::bench::{BulkSender, with_index};
    use audit_host::{AuditEvent, Error, Result};
    use audit_plugin_api::PluginError;

    use super::super::client_loop::client_loop;
    use super::super::scenario::{BenchBackend, Scenario};
    use super::HTTP;

    /// The scratch indices' configurations and what the last trail run measured.
    #[derive(Debug)]
    pub(crate) struct HttpBench {
        /// The plugin config with `index` = `audit-bench-<pid>-trail`.
        trail_config: String,
        /// The same with `audit-bench-<pid>-baseline`.
        baseline_config: String,
        /// Requests per event of the last trail run (0: none measured yet).
        requests_per_event: f64,
    }

    fn http_error(e: PluginError) -> Error {
        Error::backend(format!("audit bench, _bulk baseline: {e}"))
    }

    impl HttpBench {
        /// The scratch indices when the scenario's plugin is the http one with kind
        /// elasticsearch; the other kinds get the file baseline, with a note.
        pub(crate) fn for_scenario(
            scenario: &Scenario,
            plugin: Option<&str>,
        ) -> Result<Option<Self>> {
            let BenchBackend::Plugin { config_json, .. } = &scenario.backend else {
                return Ok(None);
            };
            if plugin != Some(HTTP) {
                return Ok(None);
            }
            if !config_json.contains("\"elasticsearch\"") {
                eprintln!(
                    "audit bench: the http plugin's splunk-hec and webhook kinds are compared with the file baseline (the hand-written baseline is a _bulk loop)"
                );
                return Ok(None);
            }
            let pid = std::process::id();
            let index = |role: &str| with_index(config_json, &format!("audit-bench-{pid}-{role}"));
            Ok(Some(Self {
                trail_config: index("trail").map_err(http_error)?,
                baseline_config: index("baseline").map_err(http_error)?,
                requests_per_event: 0.0,
            }))
        }

        /// `scenario` storing into the trail's scratch index.
        pub(crate) fn scenario(&self, scenario: &Scenario) -> Scenario {
            let mut s = scenario.clone();
            if let BenchBackend::Plugin { config_json, .. } = &mut s.backend {
                config_json.clone_from(&self.trail_config);
            }
            s
        }

        /// After a trail run of `events`, with the plugin's `stats` counters at close: the
        /// bytes it sent; the requests it took are kept for the baseline; its index is
        /// deleted.
        pub(crate) fn after_trail(
            &mut self,
            events: usize,
            counters: &BTreeMap<String, u64>,
        ) -> Result<f64> {
            let requests = counters.get("requests_sent").copied().unwrap_or(0);
            if requests > 0 {
                self.requests_per_event = requests as f64 / events.max(1) as f64;
            }
            eprintln!(
                "audit bench: http: the trail sent {events} events in {requests} _bulk requests ({:.0} events each); the baseline sends as many",
                events as f64 / requests.max(1) as f64
            );
            BulkSender::connect(&self.trail_config)
                .and_then(|s| s.delete_index())
                .map_err(http_error)?;
            Ok(counters.get("bytes_sent").copied().unwrap_or(0) as f64)
        }

        /// The baseline over `events` events into a fresh scratch index: its seconds.
        pub(crate) fn baseline(&mut self, pool: &[AuditEvent], events: usize) -> Result<f64> {
            // As many requests as the trail's last run; before any, the writer's wake batch
            // (512 events).
            let batches = if self.requests_per_event > 0.0 {
                (self.requests_per_event * events as f64).round() as usize
            } else {
                events.div_ceil(512)
            };
            let mut sender = BulkSender::connect(&self.baseline_config).map_err(http_error)?;
            let seconds = client_loop(pool, events, batches, |records| {
                sender.send(records).map_err(http_error)
            });
            // Deleted also after a failed loop; the loop's error is the one reported.
            let deleted = sender.delete_index().map_err(http_error);
            let seconds = seconds?;
            deleted?;
            Ok(seconds)
        }
    }
}
