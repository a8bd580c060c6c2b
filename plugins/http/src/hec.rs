//! The splunk-hec kind: `POST /services/collector/event` with `Authorization: Splunk TOKEN`
//! and a channel per instance. With indexer acknowledgement each request's `ackId` is kept
//! with its body; `flush` polls `/services/collector/ack` until every one is true, re-sends
//! a request whose ackId is not confirmed within `ack_timeout_ms`, and only then reports
//! durable. HEC has no idempotency key: a re-send may index an event twice (at least once).

use std::time::{Duration, Instant};

use audit_plugin_api::ext::Refusal;
use audit_plugin_api::{PluginError, Record};
use serde::Deserialize;

use crate::client::{Client, Reply, backoff, is_retryable_status};
use crate::config::Parsed;
use crate::split::chunks;

/// A request the server took but has not acknowledged yet.
#[derive(Debug)]
struct Pending {
    ack_id: u64,
    body: Vec<u8>,
    events: u64,
    sent: Instant,
}

/// The kind's state.
#[derive(Debug)]
pub(crate) struct Hec {
    event_url: String,
    ack_url: String,
    pub(crate) health_url: String,
    channel: String,
    /// `Some(true)` required, `Some(false)` off, `None` when the server offers it.
    ack: Option<bool>,
    ack_timeout: Duration,
    /// `,"index":..,"source":..,"sourcetype":..,"event":`: what goes between time and line.
    between: Vec<u8>,
    max_batch_bytes: usize,
    retries: u32,
    max_wait: Duration,
    pending: Vec<Pending>,
}

/// What one call did, for the counters.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub stored: u64,
    pub refused: u64,
    pub retried_requests: u64,
    pub resent_unacked: u64,
    pub requests: u64,
    pub bytes: u64,
}

/// HEC's answer body: `{"text":"Success","code":0,"ackId":7}` or an error.
#[derive(Debug, Default, Deserialize)]
struct HecReply {
    #[serde(default)]
    text: String,
    code: Option<i64>,
    #[serde(rename = "ackId")]
    ack_id: Option<u64>,
    #[serde(rename = "invalid-event-number")]
    invalid_event: Option<usize>,
}

fn parse(r: &Reply) -> HecReply {
    serde_json::from_slice(&r.body).unwrap_or_default()
}

/// The metadata of every event of `p`, between its time and its line.
fn between(p: &Parsed) -> Vec<u8> {
    let c = &p.config;
    let mut meta = serde_json::Map::new();
    let sourcetype = c.sourcetype.clone().unwrap_or_else(|| "_json".to_owned());
    meta.insert("sourcetype".into(), sourcetype.into());
    if let Some(i) = &c.index {
        meta.insert("index".into(), i.clone().into());
    }
    if let Some(s) = &c.source {
        meta.insert("source".into(), s.clone().into());
    }
    // A map of strings always serializes: `{...}` without its braces, then the event key.
    let text = serde_json::Value::Object(meta).to_string();
    format!(",{},\"event\":", &text[1..text.len() - 1]).into_bytes()
}

impl Hec {
    pub(crate) fn new(p: &Parsed) -> Self {
        let c = &p.config;
        Self {
            event_url: format!("{}/services/collector/event", p.base),
            ack_url: format!("{}/services/collector/ack", p.base),
            health_url: format!("{}/services/collector/health", p.base),
            channel: c
                .channel
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            ack: c.ack,
            ack_timeout: Duration::from_millis(p.ack_timeout_ms),
            between: between(p),
            max_batch_bytes: c.max_batch_bytes,
            retries: c.retries,
            max_wait: Duration::from_millis(c.max_retry_wait_ms),
            pending: Vec::new(),
        }
    }

    /// Requests sent and not acknowledged yet.
    pub(crate) fn unacknowledged(&self) -> usize {
        self.pending.len()
    }

    /// The HEC event of `r`: its time, the configured metadata, the canonical line as `event`.
    fn push_event(&self, r: &Record<'_>, out: &mut Vec<u8>) {
        let micros = r.timestamp_micros;
        let time = format!(
            "{}.{:06}",
            micros.div_euclid(1_000_000),
            micros.rem_euclid(1_000_000)
        );
        out.extend_from_slice(b"{\"time\":");
        out.extend_from_slice(time.as_bytes());
        out.extend_from_slice(&self.between);
        out.extend_from_slice(r.line().as_bytes());
        out.push(b'}');
    }

    fn headers(&self) -> [(&str, &str); 1] {
        [("X-Splunk-Request-Channel", self.channel.as_str())]
    }

    /// Sends `records`: one request per `max_batch_bytes` part; with acknowledgement each
    /// is kept until `flush` sees its ackId confirmed.
    ///
    /// # Errors
    /// Retryable after the retries (503 busy, 5xx, transport); configuration for the token,
    /// index, channel or a disabled acknowledgement with `ack = true`; fatal for a refused
    /// event when the host cannot take refusals.
    pub(crate) fn write(
        &mut self,
        client: &Client,
        records: &[Record<'_>],
        mut refused: Option<&mut Vec<Refusal>>,
        out: &mut Outcome,
    ) -> Result<(), PluginError> {
        let mut events = Vec::with_capacity(records.len());
        for r in records {
            let mut e = Vec::with_capacity(r.line.len() + 120);
            self.push_event(r, &mut e);
            events.push(e);
        }
        let sizes: Vec<usize> = events.iter().map(Vec::len).collect();
        for part in chunks(&sizes, self.max_batch_bytes) {
            let mut idx: Vec<usize> = part.collect();
            while !idx.is_empty() {
                let body: Vec<u8> = idx
                    .iter()
                    .flat_map(|&i| events[i].iter().copied())
                    .collect();
                match self.send(client, &body, out)? {
                    Sent::Accepted(ack_id) => {
                        self.accepted(ack_id, body, idx.len() as u64, out)?;
                        idx.clear();
                    }
                    Sent::Invalid(n, reason) => {
                        let Some(list) = refused.as_deref_mut() else {
                            return Err(PluginError::fatal(format!(
                                "sequence {}: {reason}; this host cannot dead-letter it (it lacks the refuse capability)",
                                records[idx[n]].sequence_number
                            )));
                        };
                        list.push(Refusal::new(records[idx[n]].sequence_number, reason));
                        out.refused += 1;
                        // The others of the request are sent again (HEC may have indexed
                        // those before the invalid one: at least once).
                        idx.remove(n);
                    }
                }
            }
        }
        Ok(())
    }

    /// Books a request the server answered 200: pending its ackId, or stored.
    fn accepted(
        &mut self,
        ack_id: Option<u64>,
        body: Vec<u8>,
        events: u64,
        out: &mut Outcome,
    ) -> Result<(), PluginError> {
        match (ack_id, self.ack) {
            (Some(ack_id), Some(true) | None) => self.pending.push(Pending {
                ack_id,
                body,
                events,
                sent: Instant::now(),
            }),
            (None, Some(true)) => {
                return Err(PluginError::config(format!(
                    "HEC {}: the answer has no ackId: indexer acknowledgement is off for this token; enable it in Splunk or set `ack = false`",
                    self.event_url
                )));
            }
            (_, _) => out.stored += events,
        }
        Ok(())
    }

    /// POSTs one body, retrying 503 and other retryable answers in the call.
    fn send(&self, client: &Client, body: &[u8], out: &mut Outcome) -> Result<Sent, PluginError> {
        let mut attempt = 0;
        loop {
            let reply = client.send(
                &self.event_url,
                Some(("application/json", body)),
                &self.headers(),
            )?;
            out.requests += 1;
            out.bytes += body.len() as u64;
            let hec = parse(&reply);
            match reply.status {
                200 => return Ok(Sent::Accepted(hec.ack_id)),
                s if is_retryable_status(s) => {
                    attempt += 1;
                    match backoff(attempt, reply.retry_after, self.max_wait) {
                        Some(w) if attempt <= self.retries => {
                            out.retried_requests += 1;
                            std::thread::sleep(w);
                        }
                        _ => return Err(client.status_error("HEC event", &reply)),
                    }
                }
                400 => {
                    return self
                        .bad_request(client, &reply, &hec)
                        .map(|(n, why)| Sent::Invalid(n, why));
                }
                _ => return Err(client.status_error("HEC event", &reply)),
            }
        }
    }

    /// A 400: the event the server names (`invalid-event-number`) is refused; an index,
    /// channel or other request-level problem is an error naming the key.
    fn bad_request(
        &self,
        client: &Client,
        reply: &Reply,
        hec: &HecReply,
    ) -> Result<(usize, String), PluginError> {
        let msg = format!(
            "HEC {}: HTTP 400 code {:?}: {}",
            client.describe, hec.code, hec.text
        );
        match (hec.code, hec.invalid_event) {
            (Some(7), _) => Err(PluginError::config(format!(
                "{msg}; check `index` (it must exist and the token must be allowed to write to it)"
            ))),
            (Some(10 | 11), _) => Err(PluginError::config(format!(
                "{msg}; check `channel` (a UUID)"
            ))),
            (Some(6 | 12 | 13), Some(n)) => Ok((n, format!("the HEC refused the event: {msg}"))),
            _ => Err(PluginError::fatal(format!("{msg}: {}", reply.snippet()))),
        }
    }

    /// Waits until every pending ackId is confirmed, re-sending requests unconfirmed for
    /// `ack_timeout_ms`; gives up (retryable, pending cleared: the host delivers again)
    /// after twice that.
    ///
    /// # Errors
    /// Retryable as above or when the server cannot be reached; configuration when the
    /// server has acknowledgement disabled and `ack = true`.
    pub(crate) fn flush(&mut self, client: &Client, out: &mut Outcome) -> Result<(), PluginError> {
        let deadline = Instant::now() + 2 * self.ack_timeout;
        let mut pause = Duration::from_millis(20);
        while !self.pending.is_empty() {
            let result = self
                .poll(client, out)
                .and_then(|()| self.resend_expired(client, out));
            if let Err(e) = result {
                self.pending.clear();
                return Err(e);
            }
            if self.pending.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                let n = self.pending.len();
                self.pending.clear();
                return Err(PluginError::retryable(format!(
                    "HEC {}: {n} requests not acknowledged within 2 x ack_timeout_ms ({} ms); the host delivers them again",
                    client.describe,
                    self.ack_timeout.as_millis()
                )));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(500));
        }
        Ok(())
    }

    /// One `/services/collector/ack` round: confirmed requests count as stored.
    fn poll(&mut self, client: &Client, out: &mut Outcome) -> Result<(), PluginError> {
        let ids: Vec<u64> = self.pending.iter().map(|p| p.ack_id).collect();
        let body = serde_json::json!({ "acks": ids }).to_string();
        let reply = client.send(
            &self.ack_url,
            Some(("application/json", body.as_bytes())),
            &self.headers(),
        )?;
        if reply.status == 400 && parse(&reply).code == Some(14) && self.ack.is_none() {
            // The server takes events but not acknowledgement: 200 is all it promises.
            out.stored += self.pending.iter().map(|p| p.events).sum::<u64>();
            self.pending.clear();
            self.ack = Some(false);
            return Ok(());
        }
        if reply.status != 200 {
            return Err(client.status_error("HEC ack", &reply));
        }
        #[derive(Deserialize)]
        struct Acks {
            acks: std::collections::HashMap<String, bool>,
        }
        let acks: Acks = serde_json::from_slice(&reply.body).map_err(|e| {
            PluginError::retryable(format!(
                "HEC ack {}: unexpected answer ({e}): {}",
                client.describe,
                reply.snippet()
            ))
        })?;
        self.pending.retain(|p| {
            let done = acks
                .acks
                .get(&p.ack_id.to_string())
                .copied()
                .unwrap_or(false);
            if done {
                out.stored += p.events;
            }
            !done
        });
        Ok(())
    }

    /// Sends again the requests whose ackId was not confirmed within `ack_timeout_ms`.
    fn resend_expired(&mut self, client: &Client, out: &mut Outcome) -> Result<(), PluginError> {
        for i in 0..self.pending.len() {
            if self.pending[i].sent.elapsed() < self.ack_timeout {
                continue;
            }
            let body = std::mem::take(&mut self.pending[i].body);
            let sent = self.send(client, &body, out)?;
            let Sent::Accepted(Some(ack_id)) = sent else {
                return Err(PluginError::retryable(format!(
                    "HEC {}: a re-sent request was not accepted with an ackId",
                    client.describe
                )));
            };
            out.resent_unacked += 1;
            let p = &mut self.pending[i];
            (p.ack_id, p.body, p.sent) = (ack_id, body, Instant::now());
        }
        Ok(())
    }
}

/// How the server took a request.
enum Sent {
    /// 200, with the ackId when acknowledgement is on.
    Accepted(Option<u64>),
    /// 400 naming the event at this index of the request as invalid; the reason.
    Invalid(usize, String),
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn time_is_seconds_with_microseconds() {
        let p = crate::config::Config::parse(
            r#"{"kind":"splunk-hec","url":"http://h:8088","index":"audit","source":"billing"}"#,
        )
        .expect("valid");
        let hec = Hec::new(&p);
        let line = r#"{"a":1}"#;
        let r = Record {
            line: line.into(),
            sequence_number: 1,
            timestamp: "2026-01-01T00:00:00.000042Z".into(),
            timestamp_micros: 1_767_225_600_000_042,
            event_id: "e".into(),
            event_type: "t".into(),
            log_level: "info".into(),
            user_id: abi_stable::std_types::RNone,
        };
        let mut out = Vec::new();
        hec.push_event(&r, &mut out);
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            r#"{"time":1767225600.000042,"index":"audit","source":"billing","sourcetype":"_json","event":{"a":1}}"#
        );
        assert_eq!(hec.channel.len(), 36, "a UUID");
    }
}
