//! The elasticsearch kind against a real osmem-server (an OpenSearch-API server; one per
//! test, tests/common/osmem.rs): every event stored exactly once, re-deliveries answered 409
//! and not stored again, a mapping error refused with the server's reason while the rest of
//! the batch is stored, read-back in sequence order, a server that comes up late, and TLS
//! with a CA made for the test.

mod common;

use audit_backend_http::{HttpBackend, open};
use audit_plugin_api::{Backend, ErrorKind, Health, Refuse, Stats};
use common::osmem::{Osmem, osmem};
use common::{event_with, events, records};

/// The tests run one at a time: each starts servers on "free" ports, and one keeps a port
/// closed on purpose (`Osmem::stopped`) that another test's server could otherwise take.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn config(o: &Osmem, index: &str) -> String {
    format!(
        r#"{{"kind":"elasticsearch","url":"{}","index":"{index}"}}"#,
        o.url()
    )
}

fn stat(b: &mut HttpBackend, name: &str) -> u64 {
    b.statistics()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("counter {name}"))
}

#[test]
fn three_thousand_events_are_stored_exactly_once_and_read_back_in_order() {
    let _serial = serial();
    let Some(o) = osmem() else { return };
    let mut b = open(&config(&o, "audit-%Y.%m")).expect("open");
    assert_eq!(b.last_line().expect("empty index"), None);
    let evs = events(1..=3_000);
    for chunk in evs.chunks(250) {
        b.write_batch(&records(chunk)).expect("batch stored");
    }
    // A re-delivery of the middle (what the host does after a failed flush): 409s, no copy.
    b.write_batch(&records(&evs[1_000..1_500]))
        .expect("re-delivery");
    assert_eq!(stat(&mut b, "events_stored"), 3_000);
    assert_eq!(stat(&mut b, "duplicates_skipped"), 500);
    let docs = o.documents("audit-*");
    assert_eq!(docs.len(), 3_000, "each event once");
    for (doc, e) in docs.iter().zip(&evs) {
        assert_eq!(doc.0, e.event_id, "_id is the event id");
        assert_eq!(doc.1, e.line, "the line byte for byte");
    }
    assert_eq!(b.last_line().expect("last"), Some(evs[2_999].line.clone()));
    let page = b.read_from(2_990, 100).expect("read");
    let want: Vec<String> = evs[2_989..].iter().map(|e| e.line.clone()).collect();
    assert_eq!(page, want);
    assert!(b.health().expect("health").contains("3000 events stored"));
    b.close().expect("close");
}

#[test]
fn a_mapping_error_refuses_that_event_and_stores_the_rest() {
    let _serial = serial();
    let Some(o) = osmem() else { return };
    let mut b = open(&config(&o, "refusals")).expect("open");
    // `metadata.k` is mapped as text by the first batch; an object there is a mapping error.
    let first = events(1..=10);
    b.write_batch(&records(&first)).expect("first batch");
    let mut second: Vec<_> = (11..=20).map(common::event).collect();
    second[4] = event_with(15, serde_json::json!({"k": {"nested": 1}}));
    let mut refused = Vec::new();
    b.write_batch_refusing(&records(&second), &mut refused)
        .expect("the rest is stored");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].sequence_number, 15);
    let reason = refused[0].reason.as_str();
    assert!(reason.contains("mapper_parsing_exception"), "{reason}");
    assert!(reason.contains("HTTP 400"), "{reason}");
    let ids: Vec<String> = o.documents("refusals").into_iter().map(|d| d.0).collect();
    assert_eq!(ids.len(), 19);
    assert!(!ids.contains(&second[4].event_id));
    assert_eq!(stat(&mut b, "events_refused"), 1);
    // Without the refuse capability the same batch cannot be stored: a fatal error naming it.
    let e = b
        .write_batch(&records(&second))
        .expect_err("refused record");
    assert_eq!(e.kind, ErrorKind::Fatal);
    assert!(e.message.contains("sequence 15"), "{}", e.message);
}

#[test]
fn a_server_that_is_down_is_retryable_and_gets_everything_once_it_is_up() {
    let _serial = serial();
    let Some(mut o) = Osmem::stopped() else {
        return;
    };
    let mut b = open(&config(&o, "late")).expect("open makes no request");
    let evs = events(1..=500);
    let e = b.write_batch(&records(&evs)).expect_err("nothing listens");
    assert_eq!(e.kind, ErrorKind::Retryable, "{e}");
    assert!(b.health().is_err());
    o.start();
    b.write_batch(&records(&evs))
        .expect("delivered after the start");
    assert_eq!(o.documents("late").len(), 500);
}

#[test]
fn small_max_batch_bytes_splits_a_batch_into_several_requests() {
    let _serial = serial();
    let Some(o) = osmem() else { return };
    let cfg = format!(
        r#"{{"kind":"elasticsearch","url":"{}","index":"split","max_batch_bytes":4096}}"#,
        o.url()
    );
    let mut b = open(&cfg).expect("open");
    let evs = events(1..=100);
    b.write_batch(&records(&evs)).expect("stored");
    assert!(stat(&mut b, "requests_sent") > 5);
    assert_eq!(o.documents("split").len(), 100);
}

#[test]
fn tls_with_the_tests_ca_and_an_untrusted_server_named_by_key() {
    let _serial = serial();
    let Some(o) = osmem() else { return };
    let dir = tempfile::tempdir().expect("dir");
    common::make_certs(dir.path());
    let port = common::tls_proxy::start(dir.path(), o.port, false);
    let ca = dir.path().join("ca.pem");
    let cfg = format!(
        r#"{{"kind":"elasticsearch","url":"https://localhost:{port}","index":"tls","tls":{{"ca_file":"{}"}}}}"#,
        ca.display()
    );
    let mut b = open(&cfg).expect("open");
    let evs = events(1..=300);
    b.write_batch(&records(&evs)).expect("stored over TLS");
    assert_eq!(b.read_from(1, 1_000).expect("read over TLS").len(), 300);
    // The webpki roots do not hold the test CA: a configuration error naming tls.ca_file.
    let untrusted =
        format!(r#"{{"kind":"elasticsearch","url":"https://localhost:{port}","index":"tls"}}"#);
    let mut b = open(&untrusted).expect("open");
    let e = b.write_batch(&records(&evs)).expect_err("untrusted");
    assert_eq!(e.kind, ErrorKind::Config, "{e}");
    assert!(e.message.contains("tls.ca_file"), "{}", e.message);
    // insecure_skip_verify accepts it (tests only).
    let insecure = format!(
        r#"{{"kind":"elasticsearch","url":"https://localhost:{port}","index":"tls","tls":{{"insecure_skip_verify":true}}}}"#
    );
    let mut b = open(&insecure).expect("open");
    b.write_batch(&records(&evs)).expect("re-delivery, 409s");
    assert_eq!(stat(&mut b, "duplicates_skipped"), 300);
}

#[test]
fn bad_config_and_unsafe_secret_files_name_the_key() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("dir");
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "secret\n").expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    let cfg = format!(
        r#"{{"kind":"elasticsearch","url":"http://127.0.0.1:1","index":"a","username":"u","password_file":"{}"}}"#,
        pw.display()
    );
    let e = open(&cfg).expect_err("group-readable");
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(
        e.message.contains("password_file") && e.message.contains("chmod 600"),
        "{}",
        e.message
    );
    let e = open(r#"{"kind":"elasticsearch","url":"http://h"}"#).expect_err("no index");
    assert!(e.message.contains("`index`"), "{}", e.message);
}

#[test]
fn mutual_tls_with_a_client_certificate_and_without_one() {
    let _serial = serial();
    let Some(o) = osmem() else { return };
    let dir = tempfile::tempdir().expect("dir");
    common::make_certs(dir.path());
    let port = common::tls_proxy::start(dir.path(), o.port, true);
    let file = |n: &str| dir.path().join(n).display().to_string();
    let cfg = format!(
        r#"{{"kind":"elasticsearch","url":"https://127.0.0.1:{port}","index":"mtls","tls":{{"ca_file":"{}","cert_file":"{}","key_file":"{}"}}}}"#,
        file("ca.pem"),
        file("client.pem"),
        file("client.key")
    );
    let mut b = open(&cfg).expect("open");
    let evs = events(1..=100);
    b.write_batch(&records(&evs))
        .expect("stored over mutual TLS");
    assert_eq!(o.documents("mtls").len(), 100);
    // Without a client certificate the server refuses the session: retryable, naming the key.
    let cfg = format!(
        r#"{{"kind":"elasticsearch","url":"https://127.0.0.1:{port}","index":"mtls","tls":{{"ca_file":"{}"}}}}"#,
        file("ca.pem")
    );
    let mut b = open(&cfg).expect("open");
    let e = b
        .write_batch(&records(&evs))
        .expect_err("no client certificate");
    assert_eq!(e.kind, ErrorKind::Retryable, "{e}");
    assert!(e.message.contains("tls.cert_file"), "{}", e.message);
    // A key that does not fit the certificate is refused at open, naming tls.key_file.
    let cfg = format!(
        r#"{{"kind":"elasticsearch","url":"https://127.0.0.1:{port}","index":"mtls","tls":{{"ca_file":"{}","cert_file":"{}","key_file":"{}"}}}}"#,
        file("ca.pem"),
        file("client.pem"),
        file("server.key")
    );
    let e = open(&cfg).expect_err("mismatched key");
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(e.message.contains("tls.key_file"), "{}", e.message);
}

/// osmem-server never answers an item 429; a `_bulk` stand-in does (tests/common/server.rs):
/// only the failed items are sent again, and items still failing after `retries` make the
/// call retryable.
#[test]
fn items_answered_429_or_503_are_sent_again_alone() {
    let _serial = serial();
    use common::server::{Reply, Request, Server};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let calls = std::sync::Arc::new(AtomicUsize::new(0));
    let n = calls.clone();
    let s = Server::start(move |r: &Request| {
        let call = n.fetch_add(1, Ordering::SeqCst);
        let actions = r.text().lines().step_by(2).count();
        let items: Vec<String> = (0..actions)
            .map(|i| {
                let status = match (call, i) {
                    (0, 1) => 429,
                    (0, 3) => 503,
                    _ => 201,
                };
                format!(r#"{{"create":{{"status":{status}}}}}"#)
            })
            .collect();
        Reply::new(
            200,
            format!(r#"{{"errors":true,"items":[{}]}}"#, items.join(",")),
        )
    });
    let cfg = format!(
        r#"{{"kind":"elasticsearch","url":"{}","index":"x"}}"#,
        s.url("")
    );
    let mut b = open(&cfg).expect("open");
    let evs = events(1..=5);
    b.write_batch(&records(&evs))
        .expect("stored after one retry");
    let reqs = s.requests();
    assert_eq!(reqs.len(), 2);
    let resent: Vec<String> = reqs[1]
        .text()
        .lines()
        .step_by(2)
        .map(str::to_owned)
        .collect();
    assert_eq!(resent.len(), 2, "only the two failed items: {resent:?}");
    assert!(resent[0].contains(&evs[1].event_id) && resent[1].contains(&evs[3].event_id));
    assert_eq!(stat(&mut b, "events_stored"), 5);
    assert_eq!(stat(&mut b, "items_retried"), 2);

    // An item that keeps failing: retryable once `retries` are spent.
    let s = Server::start(|_: &Request| {
        Reply::new(
            200,
            r#"{"errors":true,"items":[{"create":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}}]}"#,
        )
    });
    let cfg = format!(
        r#"{{"kind":"elasticsearch","url":"{}","index":"x","retries":1}}"#,
        s.url("")
    );
    let mut b = open(&cfg).expect("open");
    let e = b
        .write_batch(&records(&evs[..1]))
        .expect_err("still failing");
    assert_eq!(e.kind, ErrorKind::Retryable);
    assert!(e.message.contains("queue full"), "{}", e.message);
    assert_eq!(s.requests().len(), 2);
}

/// `audit bench`'s `_bulk` baseline sends the bytes the plugin sends (a recording server
/// reads both).
#[test]
fn the_bench_sender_sends_what_the_plugin_sends() {
    let _serial = serial();
    use common::server::{Reply, Request, Server};
    let s = Server::start(|_: &Request| Reply::new(200, r#"{"errors":false,"items":[]}"#));
    let cfg = format!(
        r#"{{"kind":"elasticsearch","url":"{}","index":"b"}}"#,
        s.url("")
    );
    let evs = events(1..=20);
    let mut sender = audit_backend_http::bench::BulkSender::connect(&cfg).expect("sender");
    sender.send(&records(&evs)).expect("sent");
    let mut b = open(&cfg).expect("open");
    // The stand-in answers no items: the plugin counts 20 answered for 0 and fails, after
    // sending the same body.
    let e = b
        .write_batch(&records(&evs))
        .expect_err("no items answered");
    assert!(
        e.message.contains("0 items answered for 20 sent"),
        "{}",
        e.message
    );
    let reqs = s.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].body, reqs[1].body);
    assert_eq!(sender.bytes_sent, reqs[0].body.len() as u64);
    assert_eq!(reqs[0].path, "/_bulk");
}
