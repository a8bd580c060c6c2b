//! The plugins with a baseline of their own (a hand-written client doing the plugin's
//! writes): [`postgres`](super::postgres), [`syslog`](super::syslog) and
//! [`http`](super::http) (kind elasticsearch), chosen by the name the scenario's plugin
//! library gives itself.

use std::collections::BTreeMap;

use audit_host::plugin::{LoadOptions, LoadedPlugin};
use audit_host::{AuditEvent, Result};

use super::http::HttpBench;
use super::postgres::PgBench;
use super::scenario::{BenchBackend, Scenario};
use super::syslog::SyslogBench;

/// A plugin's own baseline.
#[derive(Debug)]
pub(crate) enum PluginBench {
    /// Boxed: its scratch table holds the plugin's whole session.
    Postgres(Box<PgBench>),
    Syslog(SyslogBench),
    Http(HttpBench),
}

/// The name the scenario's plugin library gives itself, when it is a plugin.
fn plugin_name(scenario: &Scenario) -> Result<Option<String>> {
    let BenchBackend::Plugin { library, .. } = &scenario.backend else {
        return Ok(None);
    };
    let loaded = LoadedPlugin::load(library, &LoadOptions::default())?;
    Ok(Some(loaded.info().name.clone()))
}

impl PluginBench {
    /// The scenario's plugin's own baseline, if it has one (and audit was built with it).
    pub(crate) fn for_scenario(scenario: &Scenario) -> Result<Option<Self>> {
        let name = plugin_name(scenario)?;
        let name = name.as_deref();
        if let Some(pg) = PgBench::for_scenario(scenario, name)? {
            return Ok(Some(Self::Postgres(Box::new(pg))));
        }
        if let Some(http) = HttpBench::for_scenario(scenario, name)? {
            return Ok(Some(Self::Http(http)));
        }
        Ok(SyslogBench::for_scenario(scenario, name).map(Self::Syslog))
    }

    /// The scenario the trail runs (the postgres one stores into a scratch table).
    pub(crate) fn scenario(&self, scenario: &Scenario) -> Scenario {
        match self {
            Self::Postgres(p) => p.scenario(scenario),
            Self::Syslog(_) => scenario.clone(),
            Self::Http(h) => h.scenario(scenario),
        }
    }

    /// Before a trail run.
    pub(crate) fn before_trail(&mut self) -> Result<()> {
        match self {
            Self::Postgres(p) => p.before_trail(),
            Self::Syslog(_) | Self::Http(_) => Ok(()),
        }
    }

    /// After a trail run of `events`, with the plugin's `stats` counters at close: the bytes
    /// it stored or sent.
    pub(crate) fn after_trail(
        &mut self,
        events: usize,
        counters: &BTreeMap<String, u64>,
    ) -> Result<f64> {
        match self {
            Self::Postgres(p) => p.after_trail(events),
            Self::Syslog(s) => Ok(s.after_trail(events, counters)),
            Self::Http(h) => h.after_trail(events, counters),
        }
    }

    /// The baseline over `events` events: its seconds.
    pub(crate) fn baseline(&mut self, pool: &[AuditEvent], events: usize) -> Result<f64> {
        match self {
            Self::Postgres(p) => p.baseline(pool, events),
            Self::Syslog(s) => s.baseline(pool, events),
            Self::Http(h) => h.baseline(pool, events),
        }
    }
}
