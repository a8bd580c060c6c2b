//! Test harness: the real servers (osmem-server; the HEC and webhook servers of these
//! tests), events as the host hands them over, and certificates made with `openssl`.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test file uses part of the harness"
)]

pub mod hec;
pub mod osmem;
pub mod server;
pub mod tls_proxy;

use std::path::Path;
use std::process::Command;

use audit_plugin_api::Record;
use audit_plugin_api::abi_stable::std_types::{RNone, RStr};

/// One event's fields, as the host hands them over.
pub struct Ev {
    pub seq: u64,
    pub line: String,
    pub event_id: String,
    pub timestamp: String,
}

/// Event `seq`; `metadata` as given (a test makes one conflict with the index mapping).
pub fn event_with(seq: u64, metadata: serde_json::Value) -> Ev {
    let event_id = format!("00000000-0000-4000-8000-{seq:012}");
    let timestamp = format!(
        "2026-12-03T11:{:02}:{:02}.{:06}Z",
        seq / 60 % 60,
        seq % 60,
        seq
    );
    let v = serde_json::json!({
        "checksum": format!("{seq:064x}"),
        "event_id": event_id,
        "event_type": "data_access",
        "hostname": "web-01",
        "log_level": "info",
        "message": format!("read record \\u00e9 #{seq}"),
        "metadata": metadata,
        "previous_hash": null,
        "sequence_number": seq,
        "timestamp": timestamp,
    });
    Ev {
        seq,
        line: v.to_string(),
        event_id,
        timestamp,
    }
}

pub fn event(seq: u64) -> Ev {
    event_with(seq, serde_json::json!({"k": "v"}))
}

pub fn events(range: std::ops::RangeInclusive<u64>) -> Vec<Ev> {
    range.map(event).collect()
}

pub fn record(e: &Ev) -> Record<'_> {
    Record {
        line: RStr::from_str(&e.line),
        sequence_number: e.seq,
        timestamp: RStr::from_str(&e.timestamp),
        timestamp_micros: 1_796_297_000_000_000 + i64::try_from(e.seq).unwrap_or(0),
        event_id: RStr::from_str(&e.event_id),
        event_type: RStr::from_str("data_access"),
        log_level: RStr::from_str("info"),
        user_id: RNone,
    }
}

pub fn records(events: &[Ev]) -> Vec<Record<'_>> {
    events.iter().map(record).collect()
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ca.pem`/`ca.key`, `server.pem`/`server.key` for localhost and 127.0.0.1 and
/// `client.pem`/`client.key` (client authentication) signed by it, in `dir`.
pub fn make_certs(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=audit test ca",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").expect("ext");
    for args in [
        "req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=audit-client",
        "x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 -extfile client.ext",
    ] {
        openssl(dir, &args.split(' ').collect::<Vec<_>>());
    }
}
