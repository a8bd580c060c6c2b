//! For `audit bench` (built with its `http-bench` feature): the `_bulk` baseline's sender,
//! through this crate's own document encoding and HTTP client (one keep-alive connection),
//! so the baseline sends exactly the bytes the plugin sends and the ratio measures the
//! trail, the ABI, the delivery lane and the plugin's per-item bookkeeping.

use audit_plugin_api::{PluginError, Record};

use crate::client::Client;
use crate::config::{Config, Kind};

/// `config_json` (an elasticsearch config) with `index` replaced.
///
/// # Errors
/// A configuration error when `config_json` is not an elasticsearch configuration.
pub fn with_index(config_json: &str, index: &str) -> Result<String, PluginError> {
    let mut v: serde_json::Value = serde_json::from_str(config_json)
        .map_err(|e| PluginError::config(format!("config: {e}")))?;
    if v.get("kind").and_then(|k| k.as_str()) != Some("elasticsearch") {
        return Err(PluginError::config(
            "the _bulk baseline needs kind = \"elasticsearch\"",
        ));
    }
    v["index"] = index.into();
    let out = v.to_string();
    Config::parse(&out)?;
    Ok(out)
}

/// One client for the configured node and the tightest `_bulk` loop over it: encode a
/// batch, POST it, check that no item failed; nothing else (no per-item bookkeeping, no
/// retries, no counters).
#[derive(Debug)]
pub struct BulkSender {
    client: Client,
    bulk_url: String,
    index_url: String,
    pattern: String,
    buf: Vec<u8>,
    /// Bytes sent since `connect`.
    pub bytes_sent: u64,
}

impl BulkSender {
    /// Parses `config_json` as the plugin's `open` does (kind elasticsearch, a plain index
    /// name) and builds the client; connects on the first send.
    ///
    /// # Errors
    /// As [`open`](crate::open); a configuration error for another kind or a date pattern.
    pub fn connect(config_json: &str) -> Result<Self, PluginError> {
        let parsed = Config::parse(config_json)?;
        let pattern = parsed.config.index.clone().unwrap_or_default();
        if parsed.config.kind != Kind::Elasticsearch || pattern.contains('%') {
            return Err(PluginError::config(
                "the _bulk baseline needs kind = \"elasticsearch\" and an index without date patterns",
            ));
        }
        Ok(Self {
            client: Client::new(&parsed)?,
            bulk_url: format!("{}/_bulk", parsed.base),
            index_url: format!("{}/{pattern}", parsed.base),
            pattern,
            buf: Vec::new(),
            bytes_sent: 0,
        })
    }

    /// One batch, encoded as `write_batch` does, in one `_bulk` request.
    ///
    /// # Errors
    /// A fatal error when the server answers anything but 200 without item errors.
    pub fn send(&mut self, records: &[Record<'_>]) -> Result<(), PluginError> {
        self.buf.clear();
        for r in records {
            crate::elastic::push_item(&self.pattern, r, &mut self.buf)?;
        }
        let reply = self.client.send(
            &self.bulk_url,
            Some(("application/x-ndjson", &self.buf)),
            &[],
        )?;
        const NO_ERRORS: &[u8] = b"\"errors\":false";
        let head = &reply.body[..reply.body.len().min(128)];
        if reply.status != 200 || !head.windows(NO_ERRORS.len()).any(|w| w == NO_ERRORS) {
            return Err(PluginError::fatal(format!(
                "audit bench: _bulk {}: HTTP {}: {}",
                self.client.describe,
                reply.status,
                reply.snippet()
            )));
        }
        self.bytes_sent += self.buf.len() as u64;
        Ok(())
    }

    /// Deletes the index (the bench's scratch index); a missing one is fine.
    ///
    /// # Errors
    /// When the server cannot be reached or refuses.
    pub fn delete_index(&self) -> Result<(), PluginError> {
        let r = self.client.delete(&self.index_url)?;
        if r.status == 200 || r.status == 404 {
            Ok(())
        } else {
            Err(self.client.status_error("DELETE", &r))
        }
    }
}
