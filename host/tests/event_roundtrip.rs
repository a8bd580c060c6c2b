//! Events in and out: every field survives the trip through the canonical line, input JSON
//! is checked key by key, and timestamps keep their value (leap seconds) or are refused
//! (years outside 0000-9999).

mod common;

use std::sync::Arc;

use audit_host::{
    AuditEvent, AuditEventType, AuditLogLevel, AuditTrail, ComplianceLevel, CompliancePolicy,
    Error, ErrorReport, ErrorSeverity, EventQuery, StorageBackend,
};
use chrono::{DateTime, TimeZone, Utc};
use common::*;
use serde_json::{Map, Value, json};

#[tokio::test]
async fn every_field_round_trips() -> TestResult {
    let mem = Arc::new(MemoryBackend::new());
    let policy = CompliancePolicy {
        level: ComplianceLevel::PciDss,
        ..Default::default()
    };
    let trail = AuditTrail::new(Some(policy), None, Some(Box::new(Arc::clone(&mem))))?;
    assert_eq!(mem.name(), "custom");
    let mut ctx = serde_json::Map::new();
    ctx.insert("retries".into(), 3.into());
    ctx.insert(
        "nested".into(),
        serde_json::json!({"b": [1, "two", null], "a": "\u{1F600}"}),
    );
    let ts = chrono::DateTime::parse_from_rfc3339("2026-02-03T04:05:06.789012Z")?
        .with_timezone(&chrono::Utc);
    let event = AuditEvent::new(
        AuditEventType::DataModification,
        "changed \"limit\"\nnext line\tß",
    )
    .event_id("evt-42")
    .timestamp(ts)
    .log_level(AuditLogLevel::Warning)
    .component("gateway")
    .operation("update")
    .user_id("ü-user")
    .session_id("s-1")
    .request_id("r-1")
    .client_ip("2001:db8::1")
    .user_agent("curl/8")
    .container_id("c0ffee")
    .plugin_name("ratelimit")
    .hostname("override-host")
    .error_category("validation")
    .error_severity("low")
    .data_classification("restricted")
    .retention_category("7y")
    .signature("sig")
    .contains_pii(true)
    .contains_phi(true)
    .tag("pci")
    .tag("sox")
    .meta("old", 100)
    .meta("new", 500.5)
    .error_context(ctx.clone());
    let mut expected = event.clone();
    expected.process_id = Some(7);
    let event = AuditEvent {
        process_id: Some(7),
        ..event
    };
    assert_eq!(trail.log(event).await?, "evt-42");
    trail.close().await?;
    let records = mem.records();
    let back = records[0].to_event()?;
    expected.compliance_level = ComplianceLevel::PciDss;
    expected.sequence_number = Some(1);
    expected.previous_hash = None;
    expected.checksum = Some(records[0].checksum().to_owned());
    assert_eq!(back, expected);
    // Serialized, the event read back is the stored line's object, key for key.
    let stored: Value = serde_json::from_str(records[0].line())?;
    assert_eq!(serde_json::to_value(&back)?, stored);
    assert_eq!(serde_json::from_value::<AuditEvent>(stored)?, back);
    assert_eq!(records[0].log_level(), AuditLogLevel::Warning);
    assert_eq!(records[0].timestamp(), ts);
    assert!(records[0].line().is_ascii());
    Ok(())
}

#[tokio::test]
async fn events_and_reports_read_back_serialize_as_stored() -> TestResult {
    let dir = tempfile::tempdir()?;
    let trail = AuditTrail::builder().storage_path(dir.path()).build()?;
    trail
        .log_data_access("customers/\u{e9}", "read")
        .user_id("alice")
        .meta(
            "nested",
            json!({"a": [1, 2.5, null], "b": {"c": "\u{1F600}"}}),
        )
        .await?;
    trail
        .log_security_event(AuditEventType::AuthenticationFailed, "bad password")
        .client_ip("203.0.113.9")
        .await?;
    let events = trail.get_events(&EventQuery::default()).await?;
    let mut lines = all_lines(dir.path());
    lines.reverse(); // get_events: newest first
    assert_eq!(events.len(), 2);
    for (event, line) in events.iter().zip(&lines) {
        assert_eq!(
            serde_json::to_value(event)?,
            serde_json::from_str::<Value>(line)?
        );
    }
    let report = serde_json::to_value(trail.verify_chain().await?)?;
    assert_eq!(
        report,
        json!({"events": 2, "files": 1, "first_sequence": 1, "last_sequence": 2,
               "removed": null, "warnings": []})
    );
    let stats = serde_json::to_value(trail.statistics())?;
    assert_eq!(stats["total_events"], 2);
    assert_eq!(stats["security_events"], 1);
    trail.close().await?;
    Ok(())
}

fn map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn invalid(json: &str) -> (String, String) {
    match AuditEvent::from_json(json) {
        Err(Error::InvalidEvent { key, message }) => (key, message),
        other => panic!("expected InvalidEvent for {json}, got {other:?}"),
    }
}

#[test]
fn every_optional_key_may_be_null() -> TestResult {
    let ev = AuditEvent::from_json(
        &json!({
            "event_type": "data_access",
            "message": "m",
            "log_level": "warning",
            "compliance_level": "hipaa",
            "contains_pii": false,
            "contains_phi": true,
            "event_id": null, "timestamp": null, "component": null, "operation": null,
            "user_id": null, "session_id": null, "request_id": null, "client_ip": null,
            "user_agent": null, "container_id": null, "plugin_name": null, "hostname": null,
            "process_id": null, "error_context": null, "error_category": null,
            "error_severity": null, "data_classification": null, "regulatory_tags": null,
            "retention_category": null, "metadata": null, "sequence_number": null,
            "previous_hash": null, "checksum": null, "signature": null
        })
        .to_string(),
    )?;
    let mut want = AuditEvent::new(AuditEventType::DataAccess, "m")
        .log_level(AuditLogLevel::Warning)
        .contains_phi(true);
    want.compliance_level = ComplianceLevel::Hipaa;
    assert_eq!(ev, want);
    Ok(())
}

#[test]
fn a_wrongly_typed_value_is_named_with_what_was_expected_and_found() {
    let base = r#""event_type":"data_access","message":"m""#;
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"{"event_type":"data_access","message":5}"#,
            "message",
            "expected a string, found number 5",
        ),
        (
            r#""timestamp":1700000000"#,
            "timestamp",
            "expected an RFC 3339 timestamp string, found number 1700000000",
        ),
        (
            r#""process_id":"4242""#,
            "process_id",
            r#"expected an integer, found string "4242""#,
        ),
        (
            r#""process_id":1.5"#,
            "process_id",
            "expected an integer, found number 1.5",
        ),
        (
            r#""regulatory_tags":"sox""#,
            "regulatory_tags",
            r#"expected an array of strings, found string "sox""#,
        ),
        (
            r#""regulatory_tags":["sox",7]"#,
            "regulatory_tags",
            "expected an array of strings, found number 7",
        ),
        (
            r#""error_context":[]"#,
            "error_context",
            "expected an object, found an array",
        ),
        (
            r#""sequence_number":-1"#,
            "sequence_number",
            "expected a non-negative integer, found number -1",
        ),
        (
            r#""user_id":{}"#,
            "user_id",
            "expected a string or null, found an object",
        ),
        (
            r#""hostname":true"#,
            "hostname",
            "expected a string or null, found true",
        ),
        (
            r#""log_level":null"#,
            "log_level",
            "expected a string, found null",
        ),
        (
            r#""contains_pii":null"#,
            "contains_pii",
            "expected true or false, found null",
        ),
    ];
    for (fragment, key, message) in cases {
        let json = if fragment.starts_with('{') {
            (*fragment).to_owned()
        } else {
            format!("{{{base},{fragment}}}")
        };
        assert_eq!(
            invalid(&json),
            ((*key).to_owned(), (*message).to_owned()),
            "{json}"
        );
    }
}

#[test]
fn a_long_wrong_value_is_shortened_in_the_message_even_when_it_is_not_ascii() {
    let prefix = "expected an integer, found ";
    for filler in ["x", "é", "日本", "🦀"] {
        let long = filler.repeat(100);
        let (key, message) = invalid(
            &json!({"event_type": "data_access", "message": "m", "process_id": long}).to_string(),
        );
        assert_eq!(key, "process_id");
        let shown = message.strip_prefix(prefix).unwrap_or_default();
        assert!(
            shown.starts_with("string \"") && shown.ends_with("..."),
            "{message}"
        );
        assert!(shown.len() <= 60, "shortened to 60 bytes: {shown}");
        assert!(long.starts_with(&shown[8..shown.len() - 3]), "{shown}");
    }
}

#[test]
fn chain_fields_are_read_from_stored_lines_but_refused_from_input() -> TestResult {
    let stored = map(json!({
        "event_type": "data_access", "message": "m",
        "sequence_number": 7, "previous_hash": "ab", "checksum": "cd"
    }));
    let ev = AuditEvent::from_map(stored, true)?;
    assert_eq!(ev.sequence_number, Some(7));
    assert_eq!(ev.previous_hash.as_deref(), Some("ab"));
    assert_eq!(ev.checksum.as_deref(), Some("cd"));
    for key in ["sequence_number", "previous_hash", "checksum"] {
        let mut input = map(json!({"event_type": "data_access", "message": "m"}));
        input.insert(key.to_owned(), Value::Null);
        match AuditEvent::from_map(input, false) {
            Err(Error::InvalidEvent { key: k, message }) => {
                assert_eq!(k, key);
                assert!(message.contains("assigned by the trail"), "{message}");
            }
            other => panic!("expected {key} to be refused, got {other:?}"),
        }
    }
    Ok(())
}

#[test]
fn an_error_report_carries_its_ids_and_context_into_the_event() {
    let ev = ErrorReport::new("db down")
        .category("network")
        .severity(ErrorSeverity::High)
        .user_id("alice")
        .session_id("s-1")
        .request_id("r-9")
        .context("retries", 3)
        .into_event();
    assert_eq!(ev.event_type, AuditEventType::ErrorOccurred);
    assert_eq!(ev.message, "Error occurred: db down");
    assert_eq!(ev.log_level, AuditLogLevel::Error);
    assert_eq!(ev.user_id.as_deref(), Some("alice"));
    assert_eq!(ev.session_id.as_deref(), Some("s-1"));
    assert_eq!(ev.request_id.as_deref(), Some("r-9"));
    assert_eq!(ev.error_category.as_deref(), Some("network"));
    assert_eq!(ev.error_severity.as_deref(), Some("high"));
    assert_eq!(
        ev.error_context,
        Some(map(json!({
            "retries": 3, "message": "db down", "severity": "high", "category": "network"
        })))
    );

    let plain = ErrorReport::new("odd").into_event();
    assert_eq!(plain.log_level, AuditLogLevel::Warning, "default is medium");
    assert_eq!(plain.error_category, None);
    assert_eq!(
        plain.error_context,
        Some(map(json!({"message": "odd", "severity": "medium"})))
    );
    for (severity, level) in [
        (ErrorSeverity::Critical, AuditLogLevel::Critical),
        (ErrorSeverity::High, AuditLogLevel::Error),
        (ErrorSeverity::Medium, AuditLogLevel::Warning),
        (ErrorSeverity::Low, AuditLogLevel::Info),
        (ErrorSeverity::Info, AuditLogLevel::Info),
    ] {
        assert_eq!(
            ErrorReport::new("x")
                .severity(severity)
                .into_event()
                .log_level,
            level,
            "{severity}"
        );
    }
}

#[tokio::test]
async fn a_leap_second_timestamp_is_stored_and_read_back() -> TestResult {
    let dir = tempfile::tempdir()?;
    let leap = DateTime::parse_from_rfc3339("2016-12-31T23:59:60.5Z")?.with_timezone(&Utc);
    let trail = file_trail(dir.path())?;
    trail
        .log_event(AuditEventType::SystemStartup, "at a leap second")
        .timestamp(leap)
        .await?;
    let events = trail.get_events(&EventQuery::default()).await?;
    assert_eq!(events[0].timestamp, Some(leap));
    trail.close().await?;
    assert!(
        all_lines(dir.path())[0].contains("\"timestamp\":\"2016-12-31T23:59:60.500000Z\""),
        "{:?}",
        all_lines(dir.path())
    );
    assert_eq!(verify(dir.path()).events, 1);
    Ok(())
}

/// A year outside 0000-9999 has no RFC 3339 form and no daily file name: such an event
/// would be stored where verify, query and recovery never look (and its date would expire
/// every real file). It is refused; the stored chain is untouched.
#[tokio::test]
async fn an_event_dated_outside_years_0000_to_9999_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let trail = AuditTrail::builder()
        .storage_path(dir.path())
        .clock(|| at(2026, 3, 1))
        .build()?;
    log_n(&trail, 2).await?;
    let far = Utc
        .with_ymd_and_hms(10_000, 1, 1, 0, 0, 0)
        .single()
        .ok_or("time")?;
    let before = Utc
        .with_ymd_and_hms(-1, 12, 31, 0, 0, 0)
        .single()
        .ok_or("time")?;
    for ts in [far, before] {
        match trail
            .log_event(AuditEventType::DataAccess, "when?")
            .timestamp(ts)
            .await
        {
            Err(Error::InvalidEvent { key, message }) => {
                assert_eq!(key, "timestamp");
                assert!(message.contains("outside the years 0000-9999"), "{message}");
            }
            other => panic!("expected {ts} to be refused, got {other:?}"),
        }
    }
    // Year 0 is representable (and, older than the newest file, goes into it).
    let edge = Utc
        .with_ymd_and_hms(0, 1, 1, 0, 0, 0)
        .single()
        .ok_or("time")?;
    trail
        .log_event(AuditEventType::DataAccess, "first representable year")
        .timestamp(edge)
        .await?;
    log_n(&trail, 1).await?;
    let events = trail.get_events(&EventQuery::default()).await?;
    assert_eq!(events.len(), 4);
    assert_eq!(events[1].timestamp, Some(edge));
    trail.close().await?;
    assert_eq!(
        log_files(dir.path()),
        [dir.path().join("audit_2026-03-01.jsonl")]
    );
    assert_eq!(verify(dir.path()).events, 4);
    Ok(())
}
