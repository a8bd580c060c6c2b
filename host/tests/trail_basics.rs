//! Default backend, custom backends, chain order under concurrency, restart, policy, alerts,
//! statistics and accessors.

mod common;

use std::sync::{Arc, Mutex};

use audit_host::{
    AlertReason, AuditEvent, AuditEventType, AuditLogLevel, AuditTrail, ComplianceLevel,
    CompliancePolicy, Error, ErrorReport, ErrorSeverity, EventQuery,
};
use common::*;

#[tokio::test]
async fn default_trail_writes_todays_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit_logs");
    let trail = AuditTrail::new(None, Some(path.clone()), None)?;
    let id = trail
        .log_event(AuditEventType::SystemStartup, "started")
        .component("api")
        .await?;
    trail.close().await?;
    let file = path.join(audit_host::todays_file_name());
    let text = std::fs::read_to_string(&file)?;
    let v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text.trim_end())?;
    assert_eq!(v.len(), 30, "all 30 keys present");
    assert_eq!(v["event_id"], id.as_str());
    assert_eq!(v["sequence_number"], 1);
    assert_eq!(v["previous_hash"], serde_json::Value::Null);
    assert_eq!(v["component"], "api");
    assert_eq!(v["process_id"], i64::from(std::process::id()));
    assert!(v["hostname"].as_str().is_some_and(|h| !h.is_empty()));
    assert!(
        v["timestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.len() == 27)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path)?.permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(
            std::fs::metadata(&file)?.permissions().mode() & 0o777,
            0o600
        );
    }
    Ok(())
}

#[tokio::test]
async fn custom_backend_receives_every_event_in_order() -> TestResult {
    let mem = Arc::new(MemoryBackend::named("memory"));
    let trail = AuditTrail::new(None, None, Some(Box::new(Arc::clone(&mem))))?;
    for i in 0..1000 {
        trail
            .log_event(AuditEventType::DataAccess, format!("read {i}"))
            .user_id(format!("u{i}"))
            .await?;
    }
    trail.close().await?;
    let records = mem.records();
    assert_eq!(records.len(), 1000);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.sequence_number(), i as u64 + 1);
        assert_eq!(r.event_type(), AuditEventType::DataAccess);
        assert_eq!(r.user_id().as_deref(), Some(format!("u{i}").as_str()));
        let ev = r.to_event()?;
        assert_eq!(ev.message, format!("read {i}"));
        assert_eq!(ev.checksum.as_deref(), Some(r.checksum()));
    }
    // Each record links to the one before.
    for w in records.windows(2) {
        assert_eq!(
            w[1].to_event()?.previous_hash.as_deref(),
            Some(w[0].checksum())
        );
    }
    Ok(())
}

#[test]
fn eight_tasks_ten_thousand_each_keep_one_chain() -> TestResult {
    let dir = tempfile::tempdir()?;
    let trail = Arc::new(AuditTrail::new(None, Some(dir.path().to_path_buf()), None)?);
    rt().block_on(async {
        let mut tasks = Vec::new();
        for t in 0..8 {
            let trail = Arc::clone(&trail);
            tasks.push(tokio::spawn(async move {
                for i in 0..10_000 {
                    trail
                        .log_event(AuditEventType::DataAccess, format!("t{t} e{i}"))
                        .user_id(format!("task{t}"))
                        .await?;
                }
                Ok::<_, Error>(())
            }));
        }
        for t in tasks {
            t.await.expect("task panicked")?;
        }
        trail.close().await
    })?;
    let seqs = sequences(dir.path());
    assert_eq!(seqs.len(), 80_000);
    assert!(
        seqs.iter().enumerate().all(|(i, &s)| s == i as u64 + 1),
        "file order == sequence order"
    );
    let report = verify(dir.path());
    assert_eq!(report.events, 80_000);
    // Timestamps never go backwards along the chain.
    let lines = all_lines(dir.path());
    let ts: Vec<String> = lines
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("json")["timestamp"]
                .as_str()
                .expect("ts")
                .to_owned()
        })
        .collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]));
    Ok(())
}

#[tokio::test]
async fn restart_continues_the_chain() -> TestResult {
    let dir = tempfile::tempdir()?;
    for round in 0..3 {
        let trail = AuditTrail::new(None, Some(dir.path().to_path_buf()), None)?;
        for i in 0..50 {
            trail
                .log_event(
                    AuditEventType::ConfigChanged,
                    format!("round {round} change {i}"),
                )
                .await?;
        }
        assert_eq!(trail.statistics().last_sequence, 50 * (round + 1));
        trail.close().await?;
    }
    let seqs = sequences(dir.path());
    assert_eq!(seqs, (1..=150).collect::<Vec<_>>());
    assert_eq!(verify(dir.path()).events, 150);
    Ok(())
}

#[tokio::test]
async fn second_writer_on_a_directory_is_refused_with_the_pid() -> TestResult {
    let dir = tempfile::tempdir()?;
    let trail = AuditTrail::new(None, Some(dir.path().to_path_buf()), None)?;
    let second = AuditTrail::new(None, Some(dir.path().to_path_buf()), None);
    match second {
        Err(e @ Error::DirectoryLocked { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
            assert!(
                msg.contains(&format!("this process (pid {})", std::process::id())),
                "{msg}"
            );
        }
        other => panic!("expected DirectoryLocked, got {other:?}"),
    }
    trail.close().await?;
    // Released on close: a new trail opens fine.
    AuditTrail::new(None, Some(dir.path().to_path_buf()), None)?
        .close()
        .await?;
    Ok(())
}

#[tokio::test]
async fn helpers_map_like_the_python_trail() -> TestResult {
    let dir = tempfile::tempdir()?;
    let policy = CompliancePolicy {
        level: ComplianceLevel::Sox,
        ..Default::default()
    };
    let trail = AuditTrail::new(Some(policy), Some(dir.path().to_path_buf()), None)?;
    trail
        .log_data_access("ledger/7", "delete")
        .user_id("alice")
        .await?;
    trail.log_data_access("ledger/7", "Update").await?;
    trail
        .log_security_event(AuditEventType::AuthorizationFailed, "denied")
        .client_ip("10.0.0.1")
        .await?;
    trail
        .log_error(
            ErrorReport::new("disk slow")
                .severity(ErrorSeverity::High)
                .category("io")
                .context("ms", 900),
        )
        .component("store")
        .await?;
    let events = trail
        .get_events(&EventQuery {
            limit: None,
            ..Default::default()
        })
        .await?;
    assert_eq!(events.len(), 4);
    // Newest first.
    assert_eq!(events[0].event_type, AuditEventType::ErrorOccurred);
    assert_eq!(events[0].log_level, AuditLogLevel::Error);
    assert_eq!(events[0].message, "Error occurred: disk slow");
    assert_eq!(
        events[0].error_context.as_ref().and_then(|c| c.get("ms")),
        Some(&serde_json::json!(900))
    );
    assert_eq!(events[1].log_level, AuditLogLevel::Security);
    assert_eq!(events[1].client_ip.as_deref(), Some("10.0.0.1"));
    assert_eq!(events[2].event_type, AuditEventType::DataModification);
    assert_eq!(events[3].event_type, AuditEventType::DataDeletion);
    assert_eq!(events[3].message, "Data delete on resource: ledger/7");
    assert_eq!(events[3].metadata["resource"], "ledger/7");
    assert!(
        events
            .iter()
            .all(|e| e.compliance_level == ComplianceLevel::Sox)
    );
    let only_alice = trail
        .get_events(&EventQuery {
            user_id: Some("alice".into()),
            ..Default::default()
        })
        .await?;
    assert_eq!(only_alice.len(), 1);
    let security = trail
        .get_events(&EventQuery {
            log_level: Some(AuditLogLevel::Security),
            ..Default::default()
        })
        .await?;
    assert_eq!(security.len(), 1);
    let stats = trail.statistics();
    assert_eq!(
        (
            stats.total_events,
            stats.error_events,
            stats.security_events
        ),
        (4, 1, 1)
    );
    assert_eq!(stats.durable_sequence, 4);
    let report = trail.verify_chain().await?;
    assert_eq!(report.events, 4);
    trail.close().await?;
    assert!(matches!(
        trail.log_event(AuditEventType::DataAccess, "late").await,
        Err(Error::Closed)
    ));
    Ok(())
}

#[tokio::test]
async fn disabled_policy_logs_nothing() -> TestResult {
    let mem = Arc::new(MemoryBackend::named("memory"));
    let policy = CompliancePolicy {
        enabled: false,
        ..Default::default()
    };
    let trail = AuditTrail::new(Some(policy), None, Some(Box::new(Arc::clone(&mem))))?;
    let id = trail
        .log_event(AuditEventType::DataAccess, "ignored")
        .await?;
    assert_eq!(id, "");
    trail.close().await?;
    assert!(mem.records().is_empty());
    Ok(())
}

#[tokio::test]
async fn unsupported_policy_fields_are_refused() {
    let policy = CompliancePolicy {
        encrypt_audit_logs: true,
        ..Default::default()
    };
    let mem = Arc::new(MemoryBackend::named("memory"));
    let err = AuditTrail::new(Some(policy), None, Some(Box::new(mem))).err();
    assert!(
        matches!(
            err,
            Some(Error::Unsupported {
                setting: "encrypt_audit_logs",
                ..
            })
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn alert_hook_receives_matching_events() -> TestResult {
    type Seen = Vec<(u64, Vec<AlertReason>)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let sink = Arc::clone(&seen);
    let mem = Arc::new(MemoryBackend::named("memory"));
    let trail = AuditTrail::builder()
        .policy(CompliancePolicy {
            level: ComplianceLevel::Gdpr,
            ..Default::default()
        })
        .backend(Box::new(Arc::clone(&mem)))
        .alert_hook(move |ev: &AuditEvent, reasons: &[AlertReason]| {
            sink.lock()
                .expect("lock")
                .push((ev.sequence_number.unwrap_or(0), reasons.to_vec()));
        })
        .build()?;
    trail.log_event(AuditEventType::DataAccess, "plain").await?;
    trail
        .log_data_access("crm/1", "read")
        .contains_pii(true)
        .await?;
    trail
        .log_event(AuditEventType::SystemShutdown, "panic")
        .log_level(AuditLogLevel::Critical)
        .await?;
    trail
        .log_security_event(AuditEventType::SecurityViolation, "tamper")
        .await?;
    trail.close().await?;
    let seen = seen.lock().expect("lock");
    assert_eq!(
        *seen,
        vec![
            (2, vec![AlertReason::PiiUnderGdpr]),
            (3, vec![AlertReason::CriticalError]),
            (4, vec![AlertReason::SecurityEvent]),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn imported_timestamp_and_id_are_kept() -> TestResult {
    let mem = Arc::new(MemoryBackend::named("memory"));
    let trail = AuditTrail::new(None, None, Some(Box::new(Arc::clone(&mem))))?;
    let ts = chrono::DateTime::parse_from_rfc3339("2024-02-29T23:59:59.5+01:00")?
        .with_timezone(&chrono::Utc);
    let ev = AuditEvent::new(AuditEventType::DataExport, "old")
        .timestamp(ts)
        .event_id("legacy-1");
    assert_eq!(trail.log(ev).await?, "legacy-1");
    trail.close().await?;
    let records = mem.records();
    assert!(
        records[0]
            .line()
            .contains(r#""timestamp":"2024-02-29T22:59:59.500000Z""#),
        "{}",
        records[0].line()
    );
    assert_eq!(records[0].event_id(), "legacy-1");
    Ok(())
}

#[test]
fn policy_settings_that_are_not_implemented_are_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let logs = dir.path().join("logs");
    let refused: [(CompliancePolicy, &str); 3] = [
        (
            CompliancePolicy {
                gdpr_data_subject_rights: true,
                ..Default::default()
            },
            "gdpr_data_subject_rights",
        ),
        (
            CompliancePolicy {
                hipaa_minimum_necessary: true,
                ..Default::default()
            },
            "hipaa_minimum_necessary",
        ),
        (
            CompliancePolicy {
                retention_days: 0,
                ..Default::default()
            },
            "retention_days",
        ),
    ];
    for (policy, field) in refused {
        match AuditTrail::builder()
            .storage_path(&logs)
            .policy(policy)
            .build()
        {
            Err(Error::Unsupported { setting, .. }) => assert_eq!(setting, field),
            other => panic!("expected {field} to be refused, got {other:?}"),
        }
    }
    assert!(!logs.exists());
    Ok(())
}

#[tokio::test]
async fn statistics_and_accessors_describe_the_running_trail() -> TestResult {
    let dir = tempfile::tempdir()?;
    let logs = dir.path().join("logs");
    let policy = CompliancePolicy {
        level: ComplianceLevel::Sox,
        retention_days: 30,
        ..Default::default()
    };
    let alerts = Arc::new(Mutex::new(0u32));
    let seen = Arc::clone(&alerts);
    let trail = AuditTrail::builder()
        .policy(policy.clone())
        .named_file_backend("primary", &logs, 0)
        .alert_hook(move |_, _| *seen.lock().expect("lock") += 1)
        .build()?;
    assert_eq!(trail.policy(), &policy);
    assert_eq!(trail.file_dirs(), std::slice::from_ref(&logs));
    let shown = format!("{trail:?}");
    assert!(
        shown.starts_with("AuditTrail") && shown.contains("\"primary\""),
        "{shown}"
    );
    trail
        .log_error(
            ErrorReport::new("db down")
                .severity(ErrorSeverity::Critical)
                .session_id("s-1")
                .request_id("r-1"),
        )
        .await?;
    trail
        .log_security_event(AuditEventType::AuthenticationFailed, "bad password")
        .await?;
    trail.log_data_access("ledger", "read").await?;
    trail.flush().await?;
    let stats = trail.statistics();
    assert_eq!(
        (
            stats.total_events,
            stats.error_events,
            stats.security_events,
            stats.alerts
        ),
        (3, 1, 1, 2)
    );
    assert_eq!(
        (
            stats.queue_size,
            stats.last_sequence,
            stats.durable_sequence
        ),
        (0, 3, 3)
    );
    assert_eq!(stats.last_error, None);
    assert_eq!(stats.backends, ["primary"]);
    assert_eq!(stats.policy.compliance_level, ComplianceLevel::Sox);
    assert_eq!(stats.policy.retention_days, 30);
    assert!(stats.policy.enabled && !stats.policy.encryption_enabled);
    assert_eq!(*alerts.lock().expect("lock"), 2);

    let events = trail.get_events(&EventQuery::default()).await?;
    assert_eq!(events.len(), 3);
    let error = &events[2];
    assert_eq!(error.session_id.as_deref(), Some("s-1"));
    assert_eq!(error.request_id.as_deref(), Some("r-1"));
    assert_eq!(error.compliance_level, ComplianceLevel::Sox);
    let none = trail
        .get_events(&EventQuery {
            limit: Some(0),
            ..Default::default()
        })
        .await?;
    assert!(none.is_empty());
    trail.close().await?;
    Ok(())
}
