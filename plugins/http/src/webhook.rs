//! The webhook kind: a POST of the batch's canonical lines (a JSON array or NDJSON) with an
//! `Idempotency-Key` a receiver de-duplicates retries by, and an optional HMAC-SHA256
//! signature of the body. 2xx delivered; 408/429/5xx retried (honouring `Retry-After`);
//! 401/403/404/405 configuration errors; 413 splits the request; any other 4xx refuses the
//! request's events.

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use audit_plugin_api::ext::Refusal;
use audit_plugin_api::secrets::read_secret_file;
use audit_plugin_api::{PluginError, Record};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::client::{Client, backoff, is_retryable_status};
use crate::config::{BodyFormat, Parsed};
use crate::split::chunks;

/// The kind's state.
pub(crate) struct Webhook {
    url: String,
    body: BodyFormat,
    trail_id: Option<String>,
    key: Option<Vec<u8>>,
    signature_header: String,
    max_batch_bytes: usize,
    retries: u32,
    max_wait: Duration,
}

impl std::fmt::Debug for Webhook {
    // Not the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.url)
            .field("body", &self.body)
            .field("signed", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

/// What one `write` did, for the counters.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub stored: u64,
    pub refused: u64,
    pub retried_requests: u64,
    pub requests: u64,
    pub bytes: u64,
}

/// `sha256=HEX` of the HMAC-SHA256 of `body` under `key`.
pub(crate) fn signature(key: &[u8], body: &[u8]) -> String {
    use std::fmt::Write as _;
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        unreachable!("HMAC takes keys of any length; this is a bug in audit-backend-http")
    };
    mac.update(body);
    let mut out = String::from("sha256=");
    for b in mac.finalize().into_bytes() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The `hostname` of a canonical line, the default trail id.
fn hostname(line: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v.get("hostname")?.as_str().map(str::to_owned)
}

impl Webhook {
    /// The kind's state; reads `signature_key_file`.
    ///
    /// # Errors
    /// A configuration error naming `signature_key_file`.
    pub(crate) fn new(p: &Parsed) -> Result<Self, PluginError> {
        let c = &p.config;
        let key = c
            .signature_key_file
            .as_deref()
            .map(|f| read_secret_file("signature_key_file", Path::new(f)).map(String::into_bytes))
            .transpose()?;
        Ok(Self {
            url: c.url.clone(),
            body: p.body,
            trail_id: c.trail_id.clone(),
            key,
            signature_header: p.signature_header.clone(),
            max_batch_bytes: c.max_batch_bytes,
            retries: c.retries,
            max_wait: Duration::from_millis(c.max_retry_wait_ms),
        })
    }

    /// The `Idempotency-Key` of `records`: the trail id, the first and the last sequence.
    pub(crate) fn idempotency_key(&self, records: &[Record<'_>]) -> String {
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return String::new();
        };
        let trail = self
            .trail_id
            .clone()
            .or_else(|| hostname(first.line()))
            .unwrap_or_else(|| "audit".to_owned());
        format!("{trail}-{}-{}", first.sequence_number, last.sequence_number)
    }

    fn body_of(&self, records: &[Record<'_>]) -> Vec<u8> {
        let mut body =
            Vec::with_capacity(records.iter().map(|r| r.line.len() + 1).sum::<usize>() + 2);
        match self.body {
            BodyFormat::Json => {
                body.push(b'[');
                for (i, r) in records.iter().enumerate() {
                    if i > 0 {
                        body.push(b',');
                    }
                    body.extend_from_slice(r.line().as_bytes());
                }
                body.push(b']');
            }
            BodyFormat::Ndjson => {
                for r in records {
                    body.extend_from_slice(r.line().as_bytes());
                    body.push(b'\n');
                }
            }
        }
        body
    }

    /// Delivers `records`, one request per `max_batch_bytes` part.
    ///
    /// # Errors
    /// Retryable after the retries; configuration for 401/403/404/405; fatal for a refusal
    /// when the host cannot take refusals (`refused` is `None`).
    pub(crate) fn write(
        &self,
        client: &Client,
        records: &[Record<'_>],
        mut refused: Option<&mut Vec<Refusal>>,
        out: &mut Outcome,
    ) -> Result<(), PluginError> {
        let sizes: Vec<usize> = records.iter().map(|r| r.line.len() + 1).collect();
        for part in chunks(&sizes, self.max_batch_bytes) {
            self.send_range(client, records, part, &mut refused, out)?;
        }
        Ok(())
    }

    /// POSTs `records[range]` until it is answered 2xx, refused, or the retries run out; a
    /// 413 splits the range in two.
    fn send_range(
        &self,
        client: &Client,
        records: &[Record<'_>],
        range: Range<usize>,
        refused: &mut Option<&mut Vec<Refusal>>,
        out: &mut Outcome,
    ) -> Result<(), PluginError> {
        let part = &records[range.clone()];
        let body = self.body_of(part);
        let key = self.idempotency_key(part);
        let sig = self.key.as_deref().map(|k| signature(k, &body));
        let mut headers = vec![("Idempotency-Key", key.as_str())];
        if let Some(s) = &sig {
            headers.push((self.signature_header.as_str(), s.as_str()));
        }
        let content_type = match self.body {
            BodyFormat::Json => "application/json",
            BodyFormat::Ndjson => "application/x-ndjson",
        };
        let mut attempt = 0;
        loop {
            let reply = client.send(&self.url, Some((content_type, &body)), &headers)?;
            out.requests += 1;
            out.bytes += body.len() as u64;
            match reply.status {
                200..=299 => {
                    out.stored += part.len() as u64;
                    return Ok(());
                }
                s if is_retryable_status(s) => {
                    attempt += 1;
                    match backoff(attempt, reply.retry_after, self.max_wait) {
                        Some(w) if attempt <= self.retries => {
                            out.retried_requests += 1;
                            std::thread::sleep(w);
                        }
                        _ => return Err(client.status_error("webhook POST", &reply)),
                    }
                }
                401 | 403 | 404 | 405 => return Err(client.status_error("webhook POST", &reply)),
                413 if part.len() > 1 => {
                    let mid = range.start + part.len() / 2;
                    self.send_range(client, records, range.start..mid, refused, out)?;
                    return self.send_range(client, records, mid..range.end, refused, out);
                }
                s => {
                    let reason = format!(
                        "the webhook refused the request with HTTP {s} (Idempotency-Key {key}): {}",
                        reply.snippet()
                    );
                    let Some(list) = refused else {
                        return Err(PluginError::fatal(format!(
                            "{reason}; this host cannot dead-letter events (it lacks the refuse capability)"
                        )));
                    };
                    out.refused += part.len() as u64;
                    list.extend(
                        part.iter()
                            .map(|r| Refusal::new(r.sequence_number, reason.clone())),
                    );
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn hmac_sha256_matches_rfc4231() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
