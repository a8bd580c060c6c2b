//! The library reports through `tracing`, to whatever subscriber the embedding service
//! installs (docs/operations.md#10-logging): a recovered torn line and a trail dropped without
//! `close()` arrive as events with their message and structured fields.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use audit_host::{AuditEventType, AuditTrail};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// One captured event: level, target and every field as text.
#[derive(Debug, Clone)]
struct Report {
    level: tracing::Level,
    target: String,
    fields: BTreeMap<String, String>,
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Report>>>);

impl Capture {
    fn reports(&self) -> Vec<Report> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields(BTreeMap::new());
        event.record(&mut fields);
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Report {
                level: *event.metadata().level(),
                target: event.metadata().target().to_owned(),
                fields: fields.0,
            });
    }
}

#[test]
fn a_recovered_torn_line_and_a_drop_without_close_are_reported_with_fields() -> TestResult {
    let dir = tempfile::tempdir()?;
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    {
        let trail = AuditTrail::builder().storage_path(dir.path()).build()?;
        runtime.block_on(async {
            trail.log_event(AuditEventType::DataAccess, "first").await?;
            trail.close().await
        })?;
    }
    let file = std::fs::read_dir(dir.path())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .ok_or("no audit file")?;
    let mut bytes = std::fs::read(&file)?;
    bytes.extend_from_slice(b"{\"torn");
    std::fs::write(&file, bytes)?;

    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::with_default(subscriber, || -> TestResult {
        let trail = AuditTrail::builder().storage_path(dir.path()).build()?;
        runtime.block_on(async { trail.log_event(AuditEventType::DataAccess, "second").await })?;
        drop(trail); // without close(): flushed, and said
        Ok(())
    })?;

    let reports = capture.reports();
    let torn = reports
        .iter()
        .find(|r| r.target == "audit_format::recover")
        .ok_or_else(|| format!("no recovery report in {reports:?}"))?;
    assert_eq!(torn.level, tracing::Level::WARN);
    assert_eq!(torn.fields["path"], file.display().to_string());
    assert_eq!(torn.fields["bytes"], "6");
    assert!(
        torn.fields["message"].starts_with("recovered a torn final line in "),
        "{torn:?}"
    );
    let dropped = reports
        .iter()
        .find(|r| r.fields["message"].starts_with("AuditTrail dropped without close()"))
        .ok_or_else(|| format!("no drop report in {reports:?}"))?;
    assert_eq!(dropped.level, tracing::Level::WARN);
    // How many were still queued depends on the writer's timing: only the field is checked.
    assert!(dropped.fields.contains_key("flushed"), "{dropped:?}");
    // The line itself is kept: both events are in the chain.
    let report = audit_host::verify_dir(dir.path(), &audit_host::Integrity::Sha256)?;
    assert_eq!(report.events, 2);
    Ok(())
}
