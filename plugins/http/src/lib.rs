//! `audit-backend-http`: delivers audit events over HTTP to Elasticsearch/OpenSearch
//! (`_bulk`), Splunk's HTTP Event Collector (with indexer acknowledgement) or a webhook.
//!
//! ```toml
//! [[backends]]
//! type = "plugin"
//! library = "audit_backend_http"          # found in [trail] plugin_dir
//! config = { kind = "elasticsearch", url = "https://es.example:9200", index = "audit-%Y.%m", username = "audit", password_file = "/etc/audit/es-password", tls = { ca_file = "/etc/audit/es-ca.pem" } }
//! ```
//!
//! Delivery, per kind (docs/backends/http.md has the status-code tables):
//! - elasticsearch: `create` actions with `_id` = the event id, so a re-delivery stores
//!   nothing twice; per item, 201 stored, 409 already stored, 400 refused (the `refuse`
//!   capability: the host dead-letters it with the server's reason), anything else retried
//!   alone. Read back (`last_line`, the `read` capability) through `_search`.
//! - webhook: a POST of a JSON array or NDJSON with an `Idempotency-Key` (trail id, first and
//!   last sequence) and an optional HMAC-SHA256 signature; 2xx delivered, 408/429/5xx
//!   retried honouring `Retry-After`, another 4xx refuses the request's events. At least
//!   once: a receiver de-duplicates by the key or by `sequence_number`.
//!
//! - splunk-hec: `/services/collector/event` with a channel per instance; with indexer
//!   acknowledgement `flush` polls `/services/collector/ack` until every ackId is true,
//!   re-sending requests unconfirmed within `ack_timeout_ms`. At least once (HEC has no
//!   idempotency key).
//!
//! One blocking client (ureq on the workspace's rustls with the ring provider); 408, 429
//! and 5xx answers and transport failures are retryable, 401/403/404 configuration errors.
//!
//! [`mod@bench`] gives `audit bench` its `_bulk` baseline (docs/benchmarks.md).
//!
//! Capabilities: `validate` (keys and values, offline), `health`, `stats`, `refuse` and
//! `read` (elasticsearch; the other kinds cannot be read back: `last_line` is `None`).

pub mod bench;
mod client;
mod config;
mod elastic;
mod hec;
mod index;
mod split;
mod webhook;

use audit_plugin_api::ext::Refusal;
use audit_plugin_api::{
    Backend, Health, PluginError, ReadBack, Record, Refuse, Stats, Validate, export_backend,
    export_health, export_read, export_refuse, export_stats, export_validate,
};

pub use config::{BodyFormat, Config, Kind, Parsed, TlsConfig};

use client::Client;
use elastic::Elastic;
use hec::Hec;
use webhook::Webhook;

/// What the kind of an instance keeps.
#[derive(Debug)]
enum Api {
    Elasticsearch(Elastic),
    Webhook(Webhook),
    SplunkHec(Hec),
}

/// An instance: the client and the kind's state.
#[derive(Debug)]
pub struct HttpBackend {
    client: Client,
    api: Api,
    counters: Counters,
}

/// What the `stats` capability reports, counted since `open`.
#[derive(Debug, Default)]
struct Counters {
    events_stored: u64,
    duplicates_skipped: u64,
    events_refused: u64,
    items_retried: u64,
    requests_retried: u64,
    unacknowledged_resent: u64,
    requests_sent: u64,
    bytes_sent: u64,
}

impl Counters {
    fn add_hec(&mut self, out: &hec::Outcome) {
        self.events_stored += out.stored;
        self.events_refused += out.refused;
        self.requests_retried += out.retried_requests;
        self.unacknowledged_resent += out.resent_unacked;
        self.requests_sent += out.requests;
        self.bytes_sent += out.bytes;
    }
}

/// Parses the configuration and reads the secret and certificate files. No request is
/// made: the first batch (or `health`) finds out whether the server answers.
///
/// # Errors
/// A configuration error naming the key (bad keys or values, unreadable or unsafe files).
pub fn open(config_json: &str) -> Result<HttpBackend, PluginError> {
    let parsed = Config::parse(config_json)?;
    let api = match parsed.config.kind {
        Kind::Elasticsearch => Api::Elasticsearch(Elastic::new(&parsed)),
        Kind::Webhook => Api::Webhook(Webhook::new(&parsed)?),
        Kind::SplunkHec => Api::SplunkHec(Hec::new(&parsed)),
    };
    Ok(HttpBackend {
        client: Client::new(&parsed)?,
        api,
        counters: Counters::default(),
    })
}

impl HttpBackend {
    fn write(
        &mut self,
        records: &[Record<'_>],
        refused: Option<&mut Vec<Refusal>>,
    ) -> Result<(), PluginError> {
        if records.is_empty() {
            return Ok(());
        }
        match &mut self.api {
            Api::Elasticsearch(es) => {
                let mut out = elastic::Outcome::default();
                let result = es.write(&self.client, records, refused, &mut out);
                let c = &mut self.counters;
                c.events_stored += out.stored;
                c.duplicates_skipped += out.duplicates;
                c.events_refused += out.refused;
                c.items_retried += out.retried_items;
                c.requests_sent += out.requests;
                c.bytes_sent += out.bytes;
                result
            }
            Api::Webhook(w) => {
                let mut out = webhook::Outcome::default();
                let result = w.write(&self.client, records, refused, &mut out);
                let c = &mut self.counters;
                c.events_stored += out.stored;
                c.events_refused += out.refused;
                c.requests_retried += out.retried_requests;
                c.requests_sent += out.requests;
                c.bytes_sent += out.bytes;
                result
            }
            Api::SplunkHec(h) => {
                let mut out = hec::Outcome::default();
                let result = h.write(&self.client, records, refused, &mut out);
                self.counters.add_hec(&out);
                result
            }
        }
    }

    /// Stored lines with `sequence_number >= from`, in order, at most `limit` (the `read`
    /// capability).
    ///
    /// # Errors
    /// A retryable error when the server cannot be reached; a configuration error for a
    /// kind that cannot be read back.
    pub fn read_from(&mut self, from: u64, limit: u32) -> Result<Vec<String>, PluginError> {
        match &self.api {
            Api::Elasticsearch(es) => es.read_from(&self.client, from, limit),
            Api::Webhook(_) | Api::SplunkHec(_) => Err(PluginError::config(
                "kind = \"webhook\" and \"splunk-hec\" cannot be read back: verify the trail's file backend instead",
            )),
        }
    }
}

impl Backend for HttpBackend {
    fn write_batch(&mut self, records: &[Record<'_>]) -> Result<(), PluginError> {
        self.write(records, None)
    }

    fn last_line(&mut self) -> Result<Option<String>, PluginError> {
        match &self.api {
            Api::Elasticsearch(es) => es.last_line(&self.client),
            // Not a store: the host resumes its chain from its file backend.
            Api::Webhook(_) | Api::SplunkHec(_) => Ok(None),
        }
    }

    fn flush(&mut self) -> Result<(), PluginError> {
        match &mut self.api {
            // Durable once every ackId is confirmed (docs/backends/http.md).
            Api::SplunkHec(h) => {
                let mut out = hec::Outcome::default();
                let result = h.flush(&self.client, &mut out);
                self.counters.add_hec(&out);
                result
            }
            // Each item was answered 201 or 409: with the default translog durability
            // ("request") the server fsynced it before answering.
            Api::Elasticsearch(_) => Ok(()),
            // Every request was answered 2xx: what the receiver does next is its own.
            Api::Webhook(_) => Ok(()),
        }
    }

    fn close(&mut self) -> Result<(), PluginError> {
        self.flush()
    }
}

impl Health for HttpBackend {
    fn health(&mut self) -> Result<String, PluginError> {
        if let Api::Webhook(_) = self.api {
            // A webhook URL need not answer anything but its POSTs: report, do not probe.
            return Ok(format!(
                "{}: {} events delivered, {} refused, {} requests",
                self.client.describe,
                self.counters.events_stored,
                self.counters.events_refused,
                self.counters.requests_sent
            ));
        }
        let (url, awaiting) = match &self.api {
            Api::SplunkHec(h) => (
                h.health_url.clone(),
                format!(", {} requests awaiting acknowledgement", h.unacknowledged()),
            ),
            _ => (format!("{}/", self.client.describe), String::new()),
        };
        let r = self.client.send(&url, None, &[])?;
        if r.status != 200 {
            return Err(self.client.status_error("health check", &r));
        }
        Ok(format!(
            "{}: reachable (HTTP {}), {} events stored, {} refused{awaiting}",
            self.client.describe,
            r.status,
            self.counters.events_stored,
            self.counters.events_refused
        ))
    }
}

/// The `validate` capability: the keys and values `open` would accept, checked offline (no
/// connection, no file read).
impl Validate for HttpBackend {
    fn validate(config_json: &str) -> Result<(), PluginError> {
        Config::parse(config_json).map(drop)
    }
}

/// The `refuse` capability: items the server rejects for good (a 400 mapping error) are
/// refused one by one; the rest of the batch is stored.
impl Refuse for HttpBackend {
    fn write_batch_refusing(
        &mut self,
        records: &[Record<'_>],
        refused: &mut Vec<Refusal>,
    ) -> Result<(), PluginError> {
        self.write(records, Some(refused))
    }
}

/// The `read` capability: `audit verify --config FILE --backend NAME` reads the index back.
impl ReadBack for HttpBackend {
    fn read_from(&mut self, from_sequence: u64, limit: u32) -> Result<Vec<String>, PluginError> {
        HttpBackend::read_from(self, from_sequence, limit)
    }
}

/// The `stats` capability: monotonic since `open`.
impl Stats for HttpBackend {
    fn statistics(&mut self) -> Vec<(String, u64)> {
        let c = &self.counters;
        vec![
            ("events_stored".to_owned(), c.events_stored),
            ("duplicates_skipped".to_owned(), c.duplicates_skipped),
            ("events_refused".to_owned(), c.events_refused),
            ("items_retried".to_owned(), c.items_retried),
            ("requests_retried".to_owned(), c.requests_retried),
            ("unacknowledged_resent".to_owned(), c.unacknowledged_resent),
            ("requests_sent".to_owned(), c.requests_sent),
            ("bytes_sent".to_owned(), c.bytes_sent),
        ]
    }
}

export_validate!(HttpBackend);
export_health!(HttpBackend);
export_stats!(HttpBackend);
export_refuse!(HttpBackend);
export_read!(HttpBackend);

export_backend! {
    name: "http",
    description: "Delivers audit events over HTTP: Elasticsearch/OpenSearch _bulk, Splunk HEC with indexer acknowledgement, or a webhook (rustls)",
    config_help: config::HELP,
    open: open,
}
