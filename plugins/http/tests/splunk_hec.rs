//! The splunk-hec kind against the HEC server of these tests (tests/common/hec.rs, Splunk's
//! documented protocol; not Splunk itself): 3,000 events stored once each and durable only
//! after `flush` saw every ackId confirmed; acks delayed 2 s make `flush` wait; an ack that
//! never confirms makes the request go again; 503 busy is retried; a bad token, a token
//! without acknowledgement, and an invalid event.

mod common;

use std::time::{Duration, Instant};

use audit_backend_http::{HttpBackend, open};
use audit_plugin_api::{Backend, ErrorKind, Health, Refuse, Stats};
use common::hec::{Hec, Knobs};
use common::{events, records};

fn stat(b: &mut HttpBackend, name: &str) -> u64 {
    b.statistics()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("counter {name}"))
}

fn token_file(dir: &std::path::Path, token: &str) -> String {
    let p = dir.join("token");
    std::fs::write(&p, format!("{token}\n")).expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    p.display().to_string()
}

/// An instance against `hec` with the right token and `extra` keys.
fn backend(hec: &Hec, dir: &std::path::Path, extra: &str) -> HttpBackend {
    let cfg = format!(
        r#"{{"kind":"splunk-hec","url":"{}","token_file":"{}"{extra}}}"#,
        hec.url(),
        token_file(dir, "hec-t0ken")
    );
    open(&cfg).unwrap_or_else(|e| panic!("open {cfg}: {e}"))
}

/// The `sequence_number`s of the events the collector took, in order.
fn sequences(hec: &Hec) -> Vec<u64> {
    hec.events()
        .iter()
        .map(|e| e["event"]["sequence_number"].as_u64().expect("seq"))
        .collect()
}

#[test]
fn three_thousand_events_are_durable_once_every_ack_is_confirmed() {
    let hec = Hec::start(Knobs::default());
    let dir = tempfile::tempdir().expect("dir");
    let mut b = backend(
        &hec,
        dir.path(),
        r#","index":"audit","source":"billing","sourcetype":"audit:json""#,
    );
    let evs = events(1..=3_000);
    for chunk in evs.chunks(100) {
        b.write_batch(&records(chunk)).expect("accepted");
    }
    assert_eq!(stat(&mut b, "events_stored"), 0, "not durable before flush");
    assert!(
        b.health()
            .expect("health")
            .contains("30 requests awaiting acknowledgement")
    );
    b.flush().expect("every ackId confirmed");
    assert_eq!(stat(&mut b, "events_stored"), 3_000);
    let got = hec.events();
    assert_eq!(got.len(), 3_000, "each event once");
    for (env, e) in got.iter().zip(&evs) {
        assert_eq!(
            env["event"].to_string(),
            e.line,
            "the canonical line as `event`"
        );
        assert_eq!(env["index"], "audit");
        assert_eq!(env["source"], "billing");
        assert_eq!(env["sourcetype"], "audit:json");
        assert!(env["time"].as_f64().is_some_and(|t| t > 1.7e9), "{env}");
    }
    let reqs = hec.server.requests();
    let channels: std::collections::BTreeSet<_> = reqs
        .iter()
        .filter_map(|r| r.header("x-splunk-request-channel").map(str::to_owned))
        .collect();
    assert_eq!(channels.len(), 1, "one channel per instance");
    let channel = channels.into_iter().next().expect("channel");
    assert_eq!(channel.len(), 36, "a UUID: {channel}");
    assert!(
        reqs.iter()
            .all(|r| r.header("authorization") == Some("Splunk hec-t0ken"))
    );
}

#[test]
fn acks_delayed_two_seconds_make_flush_wait() {
    let hec = Hec::start(Knobs {
        ack_delay: Duration::from_secs(2),
        ..Knobs::default()
    });
    let dir = tempfile::tempdir().expect("dir");
    let mut b = backend(&hec, dir.path(), "");
    let started = Instant::now();
    b.write_batch(&records(&events(1..=50))).expect("accepted");
    b.flush().expect("confirmed after the delay");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "flush returned before the ack"
    );
    assert_eq!(stat(&mut b, "events_stored"), 50);
    assert_eq!(stat(&mut b, "unacknowledged_resent"), 0);
    assert_eq!(sequences(&hec).len(), 50);
}

#[test]
fn an_ack_that_never_confirms_makes_the_request_go_again() {
    let hec = Hec::start(Knobs {
        never_confirm: |id| id == 0,
        ..Knobs::default()
    });
    let dir = tempfile::tempdir().expect("dir");
    let mut b = backend(&hec, dir.path(), r#","ack_timeout_ms":500"#);
    b.write_batch(&records(&events(1..=10)))
        .expect("accepted (ackId 0)");
    b.write_batch(&records(&events(11..=20)))
        .expect("accepted (ackId 1)");
    b.flush().expect("the re-sent request is confirmed");
    assert_eq!(stat(&mut b, "unacknowledged_resent"), 1);
    assert_eq!(stat(&mut b, "events_stored"), 20);
    // At least once: the first request's events were taken twice.
    let mut want: Vec<u64> = (1..=20).collect();
    want.extend(1..=10);
    assert_eq!(sequences(&hec), want);

    // Nothing ever confirms: flush gives up after 2 x ack_timeout_ms, retryable.
    let hec = Hec::start(Knobs {
        never_confirm: |_| true,
        ..Knobs::default()
    });
    let mut b = backend(&hec, dir.path(), r#","ack_timeout_ms":300"#);
    b.write_batch(&records(&events(1..=5))).expect("accepted");
    let e = b.flush().expect_err("never acknowledged");
    assert_eq!(e.kind, ErrorKind::Retryable, "{e}");
    assert!(e.message.contains("not acknowledged"), "{}", e.message);
    assert_eq!(stat(&mut b, "events_stored"), 0);
    // The host delivers the batch again; the instance holds nothing stale meanwhile.
    assert!(b.health().expect("health").contains("0 requests awaiting"));
}

#[test]
fn server_busy_is_retried_with_back_off() {
    let hec = Hec::start(Knobs {
        busy: 2,
        ..Knobs::default()
    });
    let dir = tempfile::tempdir().expect("dir");
    let mut b = backend(&hec, dir.path(), "");
    b.write_batch(&records(&events(1..=10)))
        .expect("accepted on the third try");
    b.flush().expect("flushed");
    assert_eq!(stat(&mut b, "requests_retried"), 2);
    assert_eq!(sequences(&hec), (1..=10).collect::<Vec<_>>());

    // Busy for longer than the retries: retryable, for the host to retry later.
    let hec = Hec::start(Knobs {
        busy: 10,
        ..Knobs::default()
    });
    let mut b = backend(&hec, dir.path(), r#","retries":1"#);
    let e = b.write_batch(&records(&events(1..=10))).expect_err("busy");
    assert_eq!(e.kind, ErrorKind::Retryable, "{e}");
    assert!(e.message.contains("503"), "{}", e.message);
}

#[test]
fn a_wrong_or_missing_token_names_token_file() {
    let hec = Hec::start(Knobs::default());
    let dir = tempfile::tempdir().expect("dir");
    let cfg = format!(
        r#"{{"kind":"splunk-hec","url":"{}","token_file":"{}"}}"#,
        hec.url(),
        token_file(dir.path(), "wrong")
    );
    let mut b = open(&cfg).expect("open");
    let e = b.write_batch(&records(&events(1..=3))).expect_err("403");
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(
        e.message.contains("token_file") && e.message.contains("Invalid token"),
        "{}",
        e.message
    );
    if std::env::var_os("AUDIT_HTTP_TOKEN").is_none() {
        let e = open(&format!(r#"{{"kind":"splunk-hec","url":"{}"}}"#, hec.url()))
            .expect_err("no token");
        assert!(e.message.contains("token_file"), "{}", e.message);
    }
}

#[test]
fn a_token_without_acknowledgement() {
    let hec = Hec::start(Knobs {
        ack: false,
        ..Knobs::default()
    });
    let dir = tempfile::tempdir().expect("dir");
    // Default: acknowledgement when the server offers it; this one does not.
    let mut b = backend(&hec, dir.path(), "");
    b.write_batch(&records(&events(1..=10))).expect("accepted");
    b.flush().expect("nothing to wait for");
    assert_eq!(stat(&mut b, "events_stored"), 10);
    // ack = true requires it: a configuration error saying so.
    let mut b = backend(&hec, dir.path(), r#","ack":true"#);
    let e = b
        .write_batch(&records(&events(11..=20)))
        .expect_err("no ackId");
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(e.message.contains("ack = false"), "{}", e.message);
}

#[test]
fn an_invalid_event_is_refused_and_the_others_stored() {
    let hec = Hec::start(Knobs {
        invalid: |seq| seq == 7,
        ..Knobs::default()
    });
    let dir = tempfile::tempdir().expect("dir");
    let mut b = backend(&hec, dir.path(), "");
    let mut refused = Vec::new();
    b.write_batch_refusing(&records(&events(1..=10)), &mut refused)
        .expect("the others accepted");
    b.flush().expect("flushed");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].sequence_number, 7);
    assert!(
        refused[0].reason.contains("Invalid data format"),
        "{}",
        refused[0].reason
    );
    let mut got = sequences(&hec);
    got.sort_unstable();
    assert_eq!(got, [1, 2, 3, 4, 5, 6, 8, 9, 10]);
}
