//! A small Splunk HTTP Event Collector for the tests, following Splunk's documented protocol
//! (not Splunk itself): the token check (401 code 2, 403 code 4), channels
//! (`X-Splunk-Request-Channel`, 400 code 10 without one when acknowledgement is on), events
//! as concatenated JSON objects (400 code 12 without `event`, code 6 with
//! `invalid-event-number` for one the test marks invalid), an `ackId` per request per
//! channel, `/services/collector/ack` answering each ackId once its delay has passed, acks
//! that never confirm, 503 code 9 "Server is busy", and `/services/collector/health`.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test file uses part of the harness"
)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::server::{Reply, Request, Server};

/// How the collector behaves.
pub struct Knobs {
    pub token: String,
    /// Indexer acknowledgement enabled for the token.
    pub ack: bool,
    /// An ackId confirms this long after it was issued.
    pub ack_delay: Duration,
    /// ackIds for which this is true never confirm.
    pub never_confirm: fn(u64) -> bool,
    /// The first this many event requests are answered 503 busy.
    pub busy: usize,
    /// An event whose `sequence_number` this returns true for is invalid (400 code 6).
    pub invalid: fn(u64) -> bool,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            token: "hec-t0ken".to_owned(),
            ack: true,
            ack_delay: Duration::ZERO,
            never_confirm: |_| false,
            busy: 0,
            invalid: |_| false,
        }
    }
}

#[derive(Default)]
struct State {
    /// Per channel: the next ackId and when each was issued.
    channels: HashMap<String, (u64, HashMap<u64, Instant>)>,
    /// Every event envelope taken, in order.
    events: Vec<serde_json::Value>,
    busy_left: usize,
}

/// The running collector.
pub struct Hec {
    pub server: Server,
    state: Arc<Mutex<State>>,
}

fn answer(status: u16, body: serde_json::Value) -> Reply {
    Reply::new(status, body.to_string())
}

impl Hec {
    pub fn start(knobs: Knobs) -> Self {
        let state = Arc::new(Mutex::new(State {
            busy_left: knobs.busy,
            ..State::default()
        }));
        let s = state.clone();
        let server =
            Server::start(move |r: &Request| handle(&knobs, &mut s.lock().expect("lock"), r));
        Self { server, state }
    }

    pub fn url(&self) -> String {
        self.server.url("")
    }

    /// Every event envelope taken so far.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.state.lock().expect("lock").events.clone()
    }
}

fn handle(k: &Knobs, st: &mut State, r: &Request) -> Reply {
    let path = r.path.split('?').next().unwrap_or_default();
    if path == "/services/collector/health" {
        return answer(
            200,
            serde_json::json!({"text": "HEC is healthy", "code": 17}),
        );
    }
    match r.header("authorization") {
        None => {
            return answer(
                401,
                serde_json::json!({"text": "Token is required", "code": 2}),
            );
        }
        Some(a) if a != format!("Splunk {}", k.token) => {
            return answer(403, serde_json::json!({"text": "Invalid token", "code": 4}));
        }
        Some(_) => {}
    }
    let channel = r.header("x-splunk-request-channel").map(str::to_owned);
    match path {
        "/services/collector/event" => {
            let Some(channel) = channel
                .filter(|_| k.ack)
                .or_else(|| (!k.ack).then(String::new))
            else {
                return answer(
                    400,
                    serde_json::json!({"text": "Data channel is missing", "code": 10}),
                );
            };
            if st.busy_left > 0 {
                st.busy_left -= 1;
                return answer(
                    503,
                    serde_json::json!({"text": "Server is busy", "code": 9}),
                );
            }
            let text = r.text();
            let mut batch = Vec::new();
            for (n, v) in serde_json::Deserializer::from_str(&text)
                .into_iter::<serde_json::Value>()
                .enumerate()
            {
                let Ok(v) = v else {
                    return answer(
                        400,
                        serde_json::json!({"text": "Invalid data format", "code": 6, "invalid-event-number": n}),
                    );
                };
                if v.get("event").is_none() {
                    return answer(
                        400,
                        serde_json::json!({"text": "Event field is required", "code": 12, "invalid-event-number": n}),
                    );
                }
                if (k.invalid)(v["event"]["sequence_number"].as_u64().unwrap_or(0)) {
                    return answer(
                        400,
                        serde_json::json!({"text": "Invalid data format", "code": 6, "invalid-event-number": n}),
                    );
                }
                batch.push(v);
            }
            if batch.is_empty() {
                return answer(400, serde_json::json!({"text": "No data", "code": 5}));
            }
            st.events.extend(batch);
            if !k.ack {
                return answer(200, serde_json::json!({"text": "Success", "code": 0}));
            }
            let ch = st.channels.entry(channel).or_default();
            let id = ch.0;
            ch.0 += 1;
            ch.1.insert(id, Instant::now());
            answer(
                200,
                serde_json::json!({"text": "Success", "code": 0, "ackId": id}),
            )
        }
        "/services/collector/ack" => {
            if !k.ack {
                return answer(
                    400,
                    serde_json::json!({"text": "ACK is disabled", "code": 14}),
                );
            }
            let Some(channel) = channel else {
                return answer(
                    400,
                    serde_json::json!({"text": "Data channel is missing", "code": 10}),
                );
            };
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            let ch = st.channels.entry(channel).or_default();
            let mut acks = serde_json::Map::new();
            for id in v["acks"].as_array().cloned().unwrap_or_default() {
                let id = id.as_u64().unwrap_or(u64::MAX);
                let done = ch.1.get(&id).is_some_and(|t| t.elapsed() >= k.ack_delay)
                    && !(k.never_confirm)(id);
                if done {
                    ch.1.remove(&id);
                }
                acks.insert(id.to_string(), done.into());
            }
            answer(200, serde_json::json!({ "acks": acks }))
        }
        _ => answer(
            404,
            serde_json::json!({"text": "The requested URL was not found on this server.", "code": 404}),
        ),
    }
}
