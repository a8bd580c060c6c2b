//! [`AuditLayer`]: records a service's `tracing` events with target `audit` (or
//! `audit::...`) as audit events in an [`AuditTrail`]. Feature `tracing-layer`; the field
//! mapping and the back-pressure are in `docs/tracing.md`.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use crate::AuditTrail;
use audit_format::event::{AuditEvent, AuditEventType, AuditLogLevel, data_access_event_type};

/// The target an event must have (or start with, followed by `::`) to be recorded.
pub const AUDIT_TARGET: &str = "audit";

/// A `tracing_subscriber` layer that records every event whose target is `audit` or starts
/// with `audit::` in `trail`, mapping its fields to the event model (`docs/tracing.md`).
///
/// `on_event` is synchronous: it accepts the event into the trail's queue on the emitting
/// thread. With `on_full = "block"` it waits there for room (like `log_event`); it never
/// waits for the `fdatasync` (not in `sync` durability either: call
/// [`AuditTrail::flush`] for that). An event the trail does not accept (queue full with
/// `on_full = "fail"`, a failing required backend, a closed trail, a bad `timestamp`) is
/// counted in [`AuditLayerStats::failed`], kept as [`AuditLayerStats::last_error`], and
/// reported as a `tracing` error event with target `audit_host::tracing_layer` (never
/// recorded by the layer itself).
///
/// ```no_run
/// use std::sync::Arc;
/// use audit_host::{AuditLayer, AuditTrail};
/// use tracing_subscriber::prelude::*;
///
/// # async fn docs() -> audit_host::Result<()> {
/// let trail = Arc::new(AuditTrail::builder().storage_path("audit_logs").build()?);
/// let layer = AuditLayer::new(Arc::clone(&trail));
/// let stats = layer.stats();
/// tracing_subscriber::registry().with(layer).init();
/// tracing::info!(target: "audit", event_type = "data_access", user_id = "alice",
///     resource = "customers/42", action = "read", "read a customer");
/// trail.close().await?;
/// assert_eq!(stats.failed(), 0);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct AuditLayer {
    trail: Arc<AuditTrail>,
    stats: AuditLayerStats,
}

/// What an [`AuditLayer`] recorded and failed to record; cheap to clone, shared with the
/// layer.
#[derive(Debug, Clone, Default)]
pub struct AuditLayerStats {
    inner: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    recorded: AtomicU64,
    failed: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl AuditLayerStats {
    /// Events accepted by the trail.
    pub fn recorded(&self) -> u64 {
        self.inner.recorded.load(Ordering::Relaxed)
    }

    /// Events with an `audit` target the trail did not accept: these are NOT in the trail.
    pub fn failed(&self) -> u64 {
        self.inner.failed.load(Ordering::Relaxed)
    }

    /// The error of the last event not accepted.
    pub fn last_error(&self) -> Option<String> {
        self.inner
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl AuditLayer {
    /// A layer recording into `trail`.
    pub fn new(trail: Arc<AuditTrail>) -> Self {
        Self {
            trail,
            stats: AuditLayerStats::default(),
        }
    }

    /// The layer's counters, to read after the layer is moved into a subscriber.
    pub fn stats(&self) -> AuditLayerStats {
        self.stats.clone()
    }
}

/// Whether events with this target are recorded: `audit` or `audit::...`.
pub fn is_audit_target(target: &str) -> bool {
    target
        .strip_prefix(AUDIT_TARGET)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
}

impl<S: Subscriber> Layer<S> for AuditLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if !is_audit_target(meta.target()) {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let audit_event = fields.into_event(*meta.level());
        match self.trail.accept_blocking(&audit_event) {
            Ok(_) => {
                self.stats.inner.recorded.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                let failed = self.stats.inner.failed.fetch_add(1, Ordering::Relaxed) + 1;
                let text = audit_format::error::chain(&e);
                *self
                    .stats
                    .inner
                    .last_error
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(text.clone());
                // Where it came from, never its content (user ids, resources).
                tracing::error!(
                    target: "audit_host::tracing_layer",
                    failed,
                    callsite = %format_args!("{}:{}", meta.file().unwrap_or("?"), meta.line().unwrap_or(0)),
                    error = %text,
                    "an audit event from tracing was NOT recorded ({} so far): {text}",
                    failed
                );
            }
        }
    }
}

/// The event's fields, sorted into the event model as they arrive.
#[derive(Default)]
struct Fields {
    event_type: Option<String>,
    log_level: Option<String>,
    message: String,
    strings: Vec<(&'static str, String)>,
    contains_pii: bool,
    contains_phi: bool,
    tags: Vec<String>,
    metadata: Map<String, Value>,
}

/// Fields copied to the event field of the same name (`action` to `operation`).
const STRING_FIELDS: &[&str] = &[
    "event_id",
    "component",
    "operation",
    "action",
    "user_id",
    "session_id",
    "request_id",
    "client_ip",
    "user_agent",
    "container_id",
    "plugin_name",
    "hostname",
    "error_category",
    "error_severity",
    "data_classification",
    "retention_category",
];

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        let name = field.name();
        let text = || match &value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match name {
            "message" => self.message = text(),
            "event_type" => self.event_type = Some(text()),
            "log_level" => self.log_level = Some(text()),
            "contains_pii" => self.contains_pii = value.as_bool().unwrap_or(false),
            "contains_phi" => self.contains_phi = value.as_bool().unwrap_or(false),
            "regulatory_tags" => self.tags.extend(
                text()
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned),
            ),
            _ => match STRING_FIELDS.iter().find(|f| **f == name) {
                Some(f) => self.strings.push((f, text())),
                None => {
                    // `r#type` and friends: the raw-identifier prefix is not part of the key.
                    let key = name.strip_prefix("r#").unwrap_or(name);
                    self.metadata.insert(key.to_owned(), value);
                }
            },
        }
    }

    fn into_event(mut self, level: Level) -> AuditEvent {
        let operation = self
            .strings
            .iter()
            .find(|(k, _)| *k == "operation" || *k == "action")
            .map(|(_, v)| v.clone());
        let event_type = match self.event_type.take() {
            None => operation
                .as_deref()
                .map_or(AuditEventType::DataAccess, data_access_event_type),
            Some(t) => AuditEventType::from_str(&t).unwrap_or_else(|_| {
                // Not a known type: recorded all the same (audit data is not dropped), as
                // `data_access` with the given text kept beside it.
                self.metadata
                    .insert("tracing_event_type".to_owned(), Value::String(t));
                AuditEventType::DataAccess
            }),
        };
        let log_level = self
            .log_level
            .take()
            .and_then(|l| AuditLogLevel::from_str(&l).ok())
            .unwrap_or(match level {
                Level::ERROR => AuditLogLevel::Error,
                Level::WARN => AuditLogLevel::Warning,
                Level::INFO => AuditLogLevel::Info,
                _ => AuditLogLevel::Debug,
            });
        let mut ev = AuditEvent::new(event_type, self.message)
            .log_level(log_level)
            .contains_pii(self.contains_pii)
            .contains_phi(self.contains_phi);
        for (k, v) in self.strings {
            let slot = match k {
                "event_id" => &mut ev.event_id,
                "component" => &mut ev.component,
                "operation" | "action" => &mut ev.operation,
                "user_id" => &mut ev.user_id,
                "session_id" => &mut ev.session_id,
                "request_id" => &mut ev.request_id,
                "client_ip" => &mut ev.client_ip,
                "user_agent" => &mut ev.user_agent,
                "container_id" => &mut ev.container_id,
                "plugin_name" => &mut ev.plugin_name,
                "hostname" => &mut ev.hostname,
                "error_category" => &mut ev.error_category,
                "error_severity" => &mut ev.error_severity,
                "data_classification" => &mut ev.data_classification,
                _ => &mut ev.retention_category,
            };
            *slot = Some(v);
        }
        ev.regulatory_tags = self.tags;
        ev.metadata = self.metadata;
        ev
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let v = serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number);
        self.put(field, v);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_owned()));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::String(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn audit_and_its_submodules_are_audit_targets_nothing_else() {
        assert!(is_audit_target("audit"));
        assert!(is_audit_target("audit::billing"));
        assert!(!is_audit_target("audit_host::delivery::worker"));
        assert!(!is_audit_target("auditor"));
        assert!(!is_audit_target("my_app"));
    }
}
