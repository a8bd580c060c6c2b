//! The elasticsearch kind: `_bulk` NDJSON with `create` actions and `_id` = the event id, so
//! a re-delivery is answered 409 and stores nothing twice; each item's status decides its
//! fate (201 stored, 409 already stored, 400 refused, anything else retried alone). Read
//! back through `_search` sorted by `sequence_number`.

use std::time::Duration;

use audit_plugin_api::ext::Refusal;
use audit_plugin_api::{PluginError, Record};
use serde::Deserialize;

use crate::client::{Client, backoff, is_retryable_status};
use crate::config::Parsed;
use crate::index::expand;
use crate::split::chunks;

/// The kind's state: the index pattern and the URLs.
#[derive(Debug)]
pub(crate) struct Elastic {
    pattern: String,
    bulk_url: String,
    search_url: String,
    refresh_url: String,
    max_batch_bytes: usize,
    retries: u32,
    max_wait: Duration,
}

/// What one `write` did, for the counters.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub stored: u64,
    pub duplicates: u64,
    pub refused: u64,
    pub retried_items: u64,
    pub requests: u64,
    pub bytes: u64,
}

#[derive(Deserialize)]
struct BulkReply {
    #[serde(default)]
    errors: bool,
    #[serde(default)]
    items: Vec<BulkItem>,
}

#[derive(Deserialize)]
struct BulkItem {
    #[serde(alias = "index")]
    create: ItemResult,
}

#[derive(Deserialize)]
struct ItemResult {
    status: u16,
    error: Option<serde_json::Value>,
}

/// What happens to one `_bulk` item.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ItemFate {
    /// 200/201: stored now.
    Stored,
    /// 409: the `_id` was stored before (a re-delivery).
    AlreadyStored,
    /// 400: the server will never take it (mapping error); the reason.
    Refused(String),
    /// Anything else (429, 5xx, 403 cluster block, ...): send it again; the reason.
    Retry(String),
}

/// The fate of an item with `status` and `error`.
pub(crate) fn classify_item(status: u16, error: Option<&serde_json::Value>) -> ItemFate {
    let reason = || match error {
        Some(e) => {
            let kind = e.get("type").and_then(|v| v.as_str()).unwrap_or("error");
            let why = e.get("reason").and_then(|v| v.as_str()).unwrap_or("");
            format!("HTTP {status} {kind}: {why}")
        }
        None => format!("HTTP {status}"),
    };
    match status {
        200 | 201 => ItemFate::Stored,
        409 => ItemFate::AlreadyStored,
        400 => ItemFate::Refused(reason()),
        _ => ItemFate::Retry(reason()),
    }
}

/// The `_bulk` lines of `r`: the `create` action and the document, the canonical line's
/// fields plus `line`, the line itself (what `read` returns, byte for byte).
pub(crate) fn push_item(
    pattern: &str,
    r: &Record<'_>,
    out: &mut Vec<u8>,
) -> Result<(), PluginError> {
    let line = r.line();
    let Some(rest) = line.strip_prefix('{') else {
        return Err(PluginError::fatal(format!(
            "sequence {}: the line is not a JSON object",
            r.sequence_number
        )));
    };
    let index = expand(pattern, Some(r.timestamp.as_str()));
    let action = serde_json::json!({"create": {"_index": index, "_id": r.event_id.as_str()}});
    serde_json::to_writer(&mut *out, &action)
        .map_err(|e| PluginError::fatal(format!("encoding the bulk action: {e}")))?;
    out.extend_from_slice(b"\n{\"line\":");
    serde_json::to_writer(&mut *out, line)
        .map_err(|e| PluginError::fatal(format!("encoding the line: {e}")))?;
    if rest != "}" {
        out.push(b',');
    }
    out.extend_from_slice(rest.as_bytes());
    out.push(b'\n');
    Ok(())
}

impl Elastic {
    pub(crate) fn new(p: &Parsed) -> Self {
        let pattern = p.config.index.clone().unwrap_or_default();
        let search = expand(&pattern, None);
        Self {
            bulk_url: format!("{}/_bulk", p.base),
            search_url: format!(
                "{}/{search}/_search?ignore_unavailable=true&allow_no_indices=true",
                p.base
            ),
            refresh_url: format!(
                "{}/{search}/_refresh?ignore_unavailable=true&allow_no_indices=true",
                p.base
            ),
            pattern,
            max_batch_bytes: p.config.max_batch_bytes,
            retries: p.config.retries,
            max_wait: Duration::from_millis(p.config.max_retry_wait_ms),
        }
    }

    /// Stores `records`: each `max_batch_bytes` part in one `_bulk` request, then only its
    /// items that may pass later again, up to `retries` times. Items answered 400 go to
    /// `refused`, or fail the call (fatal) when the host cannot take refusals (`None`).
    ///
    /// # Errors
    /// Retryable when items are still not stored after the retries; as `Client::send`.
    pub(crate) fn write(
        &self,
        client: &Client,
        records: &[Record<'_>],
        mut refused: Option<&mut Vec<Refusal>>,
        out: &mut Outcome,
    ) -> Result<(), PluginError> {
        let mut items = Vec::with_capacity(records.len());
        for r in records {
            let mut buf = Vec::with_capacity(r.line.len() + 160);
            push_item(&self.pattern, r, &mut buf)?;
            items.push(buf);
        }
        let sizes: Vec<usize> = items.iter().map(Vec::len).collect();
        for part in chunks(&sizes, self.max_batch_bytes) {
            let mut pending: Vec<usize> = part.collect();
            let mut attempt = 0;
            loop {
                let reply = self.send_items(client, &items, &pending, out)?;
                let (retry, why, retry_after) = match reply {
                    Err(reply) => (
                        pending.clone(),
                        client.status_error("_bulk", &reply),
                        reply.retry_after,
                    ),
                    Ok(bulk) => {
                        let retry = self.sort_items(records, &pending, &bulk, &mut refused, out)?;
                        let n = retry.len();
                        let why = PluginError::retryable(format!(
                            "_bulk {}: {n} items not stored yet, for example: {}",
                            client.describe,
                            first_retry_reason(records, &pending, &bulk)
                        ));
                        (retry, why, None)
                    }
                };
                if retry.is_empty() {
                    break;
                }
                attempt += 1;
                let wait = backoff(attempt, retry_after, self.max_wait);
                match wait {
                    Some(w) if attempt <= self.retries => std::thread::sleep(w),
                    _ => return Err(why),
                }
                out.retried_items += retry.len() as u64;
                pending = retry;
            }
        }
        Ok(())
    }

    /// POSTs the items `pending`; `Ok(Err(reply))` for a whole-request retryable status.
    fn send_items(
        &self,
        client: &Client,
        items: &[Vec<u8>],
        pending: &[usize],
        out: &mut Outcome,
    ) -> Result<Result<BulkReply, crate::client::Reply>, PluginError> {
        let mut body = Vec::with_capacity(pending.iter().map(|&i| items[i].len()).sum());
        for &i in pending {
            body.extend_from_slice(&items[i]);
        }
        let reply = client.send(&self.bulk_url, Some(("application/x-ndjson", &body)), &[])?;
        out.requests += 1;
        out.bytes += body.len() as u64;
        if is_retryable_status(reply.status) {
            return Ok(Err(reply));
        }
        if reply.status != 200 {
            return Err(client.status_error("_bulk", &reply));
        }
        let bulk: BulkReply = serde_json::from_slice(&reply.body).map_err(|e| {
            PluginError::fatal(format!(
                "_bulk {}: the answer is not a bulk response ({e}): {}",
                client.describe,
                reply.snippet()
            ))
        })?;
        if bulk.items.len() != pending.len() {
            return Err(PluginError::fatal(format!(
                "_bulk {}: {} items answered for {} sent",
                client.describe,
                bulk.items.len(),
                pending.len()
            )));
        }
        Ok(Ok(bulk))
    }

    /// Counts the items of `bulk` and returns those to send again.
    fn sort_items(
        &self,
        records: &[Record<'_>],
        pending: &[usize],
        bulk: &BulkReply,
        refused: &mut Option<&mut Vec<Refusal>>,
        out: &mut Outcome,
    ) -> Result<Vec<usize>, PluginError> {
        if !bulk.errors {
            out.stored += pending.len() as u64;
            return Ok(Vec::new());
        }
        let mut retry = Vec::new();
        for (&i, item) in pending.iter().zip(&bulk.items) {
            let seq = records[i].sequence_number;
            match classify_item(item.create.status, item.create.error.as_ref()) {
                ItemFate::Stored => out.stored += 1,
                ItemFate::AlreadyStored => out.duplicates += 1,
                ItemFate::Refused(reason) => match refused {
                    Some(list) => {
                        out.refused += 1;
                        list.push(Refusal::new(
                            seq,
                            format!("Elasticsearch refused the event: {reason}"),
                        ));
                    }
                    None => {
                        return Err(PluginError::fatal(format!(
                            "sequence {seq}: Elasticsearch refuses the event ({reason}); this host cannot dead-letter it (it lacks the refuse capability)"
                        )));
                    }
                },
                ItemFate::Retry(_) => retry.push(i),
            }
        }
        Ok(retry)
    }

    /// Stored lines with `sequence_number >= from`, ascending, at most `limit`.
    ///
    /// # Errors
    /// As `Client::send`; fatal when a hit has no `line`.
    pub(crate) fn read_from(
        &self,
        client: &Client,
        from: u64,
        limit: u32,
    ) -> Result<Vec<String>, PluginError> {
        let query = serde_json::json!({
            "size": limit,
            "sort": [{"sequence_number": {"order": "asc"}}],
            "query": {"range": {"sequence_number": {"gte": from}}},
            "_source": ["line"],
        });
        self.search(client, &query)
    }

    /// The line with the highest `sequence_number`, if any.
    ///
    /// # Errors
    /// As `read_from`.
    pub(crate) fn last_line(&self, client: &Client) -> Result<Option<String>, PluginError> {
        let query = serde_json::json!({
            "size": 1,
            "sort": [{"sequence_number": {"order": "desc"}}],
            "_source": ["line"],
        });
        Ok(self.search(client, &query)?.pop())
    }

    /// Refreshes the indices (so the last writes are searchable) and runs `query`.
    fn search(
        &self,
        client: &Client,
        query: &serde_json::Value,
    ) -> Result<Vec<String>, PluginError> {
        let r = client.send(&self.refresh_url, Some(("application/json", b"")), &[])?;
        if r.status != 200 {
            return Err(client.status_error("_refresh", &r));
        }
        let body = serde_json::to_vec(query)
            .map_err(|e| PluginError::fatal(format!("encoding the search: {e}")))?;
        let r = client.send(&self.search_url, Some(("application/json", &body)), &[])?;
        if r.status != 200 {
            return Err(client.status_error("_search", &r));
        }
        let v: serde_json::Value = serde_json::from_slice(&r.body).map_err(|e| {
            PluginError::fatal(format!("_search {}: not JSON ({e})", client.describe))
        })?;
        let hits = v["hits"]["hits"].as_array().cloned().unwrap_or_default();
        hits.iter()
            .map(|h| {
                h["_source"]["line"].as_str().map(str::to_owned).ok_or_else(|| {
                    PluginError::fatal(format!(
                        "_search {}: document {} in {} has no `line` field: the index holds documents this plugin did not write; point `index` at another index",
                        client.describe, h["_id"], h["_index"]
                    ))
                })
            })
            .collect()
    }
}

/// The first reason an item of `bulk` is to be retried, for the error message.
fn first_retry_reason(records: &[Record<'_>], pending: &[usize], bulk: &BulkReply) -> String {
    pending
        .iter()
        .zip(&bulk.items)
        .find_map(|(&i, item)| {
            match classify_item(item.create.status, item.create.error.as_ref()) {
                ItemFate::Retry(why) => {
                    Some(format!("sequence {}: {why}", records[i].sequence_number))
                }
                _ => None,
            }
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod test {
    use super::*;
    use serde_json::json;

    #[test]
    fn item_classification() {
        assert_eq!(classify_item(201, None), ItemFate::Stored);
        assert_eq!(
            classify_item(
                409,
                Some(&json!({"type":"version_conflict_engine_exception"}))
            ),
            ItemFate::AlreadyStored
        );
        let e = json!({"type":"mapper_parsing_exception","reason":"failed to parse field [x]"});
        assert_eq!(
            classify_item(400, Some(&e)),
            ItemFate::Refused(
                "HTTP 400 mapper_parsing_exception: failed to parse field [x]".to_owned()
            )
        );
        assert!(matches!(classify_item(429, None), ItemFate::Retry(_)));
        assert!(matches!(classify_item(503, None), ItemFate::Retry(_)));
        assert!(matches!(classify_item(403, None), ItemFate::Retry(_)));
    }
}
