//! `AuditLayer` under the global default subscriber (its own test binary: the global default
//! is process-wide): an event the trail does not accept is reported as a `tracing` error
//! event with target `audit_host::tracing_layer` that the other layers see, naming the
//! callsite and the error but not the event's content.

use std::sync::{Arc, Mutex};

use audit_host::{AuditLayer, AuditTrail};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Keeps the fields of every `audit_host::tracing_layer` event, as text.
#[derive(Clone, Default)]
struct Reports(Arc<Mutex<Vec<String>>>);

struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={value:?} ", field.name()));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Reports {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() == "audit_host::tracing_layer" {
            let mut text = Text(format!("{} ", event.metadata().level()));
            event.record(&mut text);
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(text.0);
        }
    }
}

#[tokio::test]
async fn an_event_not_recorded_is_reported_to_the_other_layers() -> TestResult {
    let dir = tempfile::tempdir()?;
    let trail = Arc::new(AuditTrail::builder().storage_path(dir.path()).build()?);
    let layer = AuditLayer::new(Arc::clone(&trail));
    let stats = layer.stats();
    let reports = Reports::default();
    tracing_subscriber::registry()
        .with(layer)
        .with(reports.clone())
        .try_init()?;

    tracing::info!(target: "audit", user_id = "alice", "recorded");
    trail.close().await?;
    tracing::info!(target: "audit", user_id = "secret-user", "after close");

    assert_eq!((stats.recorded(), stats.failed()), (1, 1));
    let reports = reports.0.lock().map_err(|e| e.to_string())?.clone();
    assert_eq!(reports.len(), 1, "{reports:?}");
    let report = &reports[0];
    assert!(report.starts_with("ERROR "), "{report}");
    assert!(report.contains("NOT recorded (1 so far)"), "{report}");
    assert!(report.contains("tracing_layer_report.rs:"), "{report}");
    assert!(!report.contains("secret-user"), "{report}");
    Ok(())
}
