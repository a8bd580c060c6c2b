//! The webhook kind against a loopback HTTP server of the test (tests/common/server.rs) that
//! records every request: 3,000 events delivered once each as JSON arrays and as NDJSON, the
//! Idempotency-Key and HMAC signature, retries after 500, 429 with Retry-After and a hang
//! (the same key again), a 400 refusing the request's events with the server's answer, 401
//! naming the credentials keys, and 413 splitting the request.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use audit_backend_http::{HttpBackend, open};
use audit_plugin_api::{Backend, ErrorKind, Refuse, Stats};
use common::server::{Reply, Request, Server};
use common::{events, records};
use hmac::{Hmac, Mac};
use sha2::Sha256;

fn stat(b: &mut HttpBackend, name: &str) -> u64 {
    b.statistics()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("counter {name}"))
}

/// A server answering `first(n)` to request `n` (0-based) while it returns `Some`, then 200.
fn scripted(first: impl Fn(usize) -> Option<Reply> + Send + Sync + 'static) -> Server {
    let n = Arc::new(AtomicUsize::new(0));
    Server::start(move |_| {
        let i = n.fetch_add(1, Ordering::SeqCst);
        first(i).unwrap_or_else(|| Reply::new(200, "{}"))
    })
}

/// The lines in a request body (a JSON array or NDJSON).
fn lines_of(r: &Request) -> Vec<String> {
    let text = r.text();
    if text.starts_with('[') {
        let v: Vec<serde_json::Value> = serde_json::from_str(&text).expect("a JSON array");
        // The canonical lines are compact JSON with sorted keys: serde_json prints them back
        // the same (its maps are sorted), so compare re-serialized.
        v.iter().map(ToString::to_string).collect()
    } else {
        text.lines().map(str::to_owned).collect()
    }
}

fn secret_file(dir: &std::path::Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    p.display().to_string()
}

fn deliver_all(body: &str) {
    let s = scripted(|_| None);
    let dir = tempfile::tempdir().expect("dir");
    let key = secret_file(dir.path(), "hmac", "k3y\n");
    let token = secret_file(dir.path(), "token", "t0ken\n");
    let cfg = format!(
        r#"{{"kind":"webhook","url":"{}","body":"{body}","trail_id":"trail-a","signature_key_file":"{key}","token_file":"{token}","headers":{{"X-Tenant":"audit"}}}}"#,
        s.url("/hook")
    );
    let mut b = open(&cfg).expect("open");
    let evs = events(1..=3_000);
    for chunk in evs.chunks(100) {
        b.write_batch(&records(chunk)).expect("delivered");
    }
    let reqs = s.requests();
    assert_eq!(reqs.len(), 30);
    let mut seen = Vec::new();
    for (i, r) in reqs.iter().enumerate() {
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/hook"));
        let first = i * 100 + 1;
        assert_eq!(
            r.header("idempotency-key"),
            Some(format!("trail-a-{first}-{}", first + 99).as_str())
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(b"k3y").expect("key");
        mac.update(&r.body);
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            r.header("x-audit-signature"),
            Some(format!("sha256={hex}").as_str())
        );
        assert_eq!(r.header("authorization"), Some("Bearer t0ken"));
        assert_eq!(r.header("x-tenant"), Some("audit"));
        let ct = if body == "json" {
            "application/json"
        } else {
            "application/x-ndjson"
        };
        assert_eq!(r.header("content-type"), Some(ct));
        seen.extend(lines_of(r));
    }
    let want: Vec<String> = evs.iter().map(|e| e.line.clone()).collect();
    assert_eq!(seen, want, "each event once, in order, byte for byte");
    assert_eq!(stat(&mut b, "events_stored"), 3_000);
    assert_eq!(b.last_line().expect("not a store"), None);
}

#[test]
fn three_thousand_events_arrive_once_each_as_json_arrays() {
    deliver_all("json");
}

#[test]
fn three_thousand_events_arrive_once_each_as_ndjson() {
    deliver_all("ndjson");
}

#[test]
fn a_500_is_retried_with_the_same_idempotency_key() {
    let s = scripted(|i| (i == 0).then(|| Reply::new(500, "boom")));
    let cfg = format!(r#"{{"kind":"webhook","url":"{}"}}"#, s.url("/"));
    let mut b = open(&cfg).expect("open");
    let evs = events(1..=10);
    b.write_batch(&records(&evs))
        .expect("delivered on the second attempt");
    let reqs = s.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].header("idempotency-key"), Some("web-01-1-10"));
    assert_eq!(
        reqs[0].header("idempotency-key"),
        reqs[1].header("idempotency-key")
    );
    assert_eq!(reqs[0].body, reqs[1].body);
    assert_eq!(stat(&mut b, "requests_retried"), 1);
}

#[test]
fn retry_after_is_honoured_and_a_long_one_goes_back_to_the_host() {
    let s = scripted(|i| (i == 0).then(|| Reply::new(429, "slow down").header("Retry-After", "1")));
    let cfg = format!(r#"{{"kind":"webhook","url":"{}"}}"#, s.url("/"));
    let mut b = open(&cfg).expect("open");
    let started = Instant::now();
    b.write_batch(&records(&events(1..=5)))
        .expect("delivered after the wait");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited Retry-After"
    );
    assert_eq!(s.requests().len(), 2);

    // A Retry-After beyond max_retry_wait_ms: no wait in the call, a retryable error.
    let s = scripted(|i| (i == 0).then(|| Reply::new(503, "busy").header("Retry-After", "3600")));
    let cfg = format!(
        r#"{{"kind":"webhook","url":"{}","max_retry_wait_ms":1000}}"#,
        s.url("/")
    );
    let mut b = open(&cfg).expect("open");
    let e = b
        .write_batch(&records(&events(1..=5)))
        .expect_err("given back");
    assert_eq!(e.kind, ErrorKind::Retryable, "{e}");
    assert!(e.message.contains("HTTP 503"), "{}", e.message);
    assert_eq!(s.requests().len(), 1);
    b.write_batch(&records(&events(1..=5)))
        .expect("the host's retry");
}

#[test]
fn a_hanging_server_times_out_and_the_retry_carries_the_same_key() {
    let s = scripted(|i| (i == 0).then(|| Reply::new(200, "{}").delay(Duration::from_secs(3))));
    let cfg = format!(
        r#"{{"kind":"webhook","url":"{}","timeout_ms":300}}"#,
        s.url("/")
    );
    let mut b = open(&cfg).expect("open");
    let evs = events(1..=20);
    let e = b.write_batch(&records(&evs)).expect_err("timed out");
    assert_eq!(e.kind, ErrorKind::Retryable, "{e}");
    b.write_batch(&records(&evs)).expect("the host's retry");
    let keys: BTreeSet<String> = s
        .requests()
        .iter()
        .filter_map(|r| r.header("idempotency-key").map(str::to_owned))
        .collect();
    assert_eq!(keys.into_iter().collect::<Vec<_>>(), ["web-01-1-20"]);
}

#[test]
fn a_400_refuses_the_requests_events_with_the_servers_answer() {
    let s =
        scripted(|i| (i == 1).then(|| Reply::new(400, r#"{"error":"schema: user_id required"}"#)));
    let cfg = format!(
        r#"{{"kind":"webhook","url":"{}","max_batch_bytes":1024}}"#,
        s.url("/")
    );
    let mut b = open(&cfg).expect("open");
    let evs = events(1..=12);
    let mut refused = Vec::new();
    b.write_batch_refusing(&records(&evs), &mut refused)
        .expect("the rest delivered");
    let reqs = s.requests();
    assert!(reqs.len() >= 3, "split by max_batch_bytes: {}", reqs.len());
    let second: Vec<u64> = lines_of(&reqs[1])
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("json")["sequence_number"]
                .as_u64()
                .expect("seq")
        })
        .collect();
    let got: Vec<u64> = refused.iter().map(|r| r.sequence_number).collect();
    assert_eq!(got, second, "exactly the events of the refused request");
    let reason = refused[0].reason.as_str();
    assert!(
        reason.contains("HTTP 400") && reason.contains("user_id required"),
        "{reason}"
    );
    assert_eq!(stat(&mut b, "events_refused"), second.len() as u64);
    assert_eq!(stat(&mut b, "events_stored"), 12 - second.len() as u64);

    // Without the refuse capability: fatal, naming the status.
    let s = scripted(|_| Some(Reply::new(422, "no")));
    let cfg = format!(r#"{{"kind":"webhook","url":"{}"}}"#, s.url("/"));
    let mut b = open(&cfg).expect("open");
    let e = b.write_batch(&records(&evs)).expect_err("refused");
    assert_eq!(e.kind, ErrorKind::Fatal);
    assert!(e.message.contains("HTTP 422"), "{}", e.message);
}

#[test]
fn a_401_is_a_configuration_error_and_a_413_splits_the_request() {
    let s = scripted(|_| Some(Reply::new(401, "who are you")));
    let cfg = format!(r#"{{"kind":"webhook","url":"{}"}}"#, s.url("/"));
    let mut b = open(&cfg).expect("open");
    let e = b.write_batch(&records(&events(1..=3))).expect_err("401");
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(e.message.contains("token_file"), "{}", e.message);

    // Answers 413 to any request of more than 4 events.
    let s = Server::start(|r: &Request| {
        if lines_of(r).len() > 4 {
            Reply::new(413, "too large")
        } else {
            Reply::new(204, "")
        }
    });
    let cfg = format!(
        r#"{{"kind":"webhook","url":"{}","body":"ndjson"}}"#,
        s.url("/")
    );
    let mut b = open(&cfg).expect("open");
    let evs = events(1..=16);
    b.write_batch(&records(&evs)).expect("delivered in parts");
    let delivered: Vec<String> = s
        .requests()
        .iter()
        .filter(|r| lines_of(r).len() <= 4)
        .flat_map(lines_of)
        .collect();
    let want: Vec<String> = evs.iter().map(|e| e.line.clone()).collect();
    assert_eq!(delivered, want);
}
