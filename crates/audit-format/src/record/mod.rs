//! The canonical line and the record every backend receives: encoding (one pass, once per
//! event), checksums (SHA-256 or HMAC-SHA256 over the stored bytes) and parsing of the chain
//! fields back out of a stored line.

mod audit_record;
mod encode;
mod integrity;
mod python;

pub use audit_record::AuditRecord;

/// The highest sequence number a trail assigns (2^64 - 2). `u64::MAX` is never assigned, so
/// "the number after the last one" always exists; a chain that reached this number takes no
/// more events ([`Error::SequenceExhausted`](crate::Error::SequenceExhausted)).
pub const MAX_SEQUENCE: u64 = u64::MAX - 1;
pub use encode::LineEncoder;
pub use integrity::{ChainFields, Integrity, LineProblem, check_line, is_genesis};

#[cfg(test)]
mod test {
    use super::integrity::canonical_fields;
    use super::*;
    use crate::canonical::{hex_into, write_object};
    use crate::event::{AuditEvent, AuditEventType, AuditLogLevel, ComplianceLevel};
    use chrono::{TimeZone, Utc};
    use sha2::{Digest, Sha256};

    fn sample() -> AuditEvent {
        AuditEvent::new(AuditEventType::DataAccess, "read \"x\" é")
            .user_id("ü1")
            .meta("b", 2)
            .meta("a", "x")
    }

    /// Every field set, nothing to escape (the benchmark's second sample event).
    fn plain() -> AuditEvent {
        let mut ctx = serde_json::Map::new();
        ctx.insert("retries".into(), 1.into());
        let mut ev = AuditEvent::new(
            AuditEventType::DataModification,
            "user u00001 read customer record 00000001 from the billing ledger",
        )
        .log_level(AuditLogLevel::Info)
        .component("billing-service")
        .operation("read")
        .user_id("u00001")
        .session_id("s-9e3779b9")
        .request_id("r-85ebca6b")
        .client_ip("10.1.0.1")
        .user_agent("billing-client/4.2")
        .container_id("c0ffee")
        .plugin_name("ledger")
        .error_category("none")
        .error_severity("low")
        .data_classification("confidential")
        .retention_category("7y")
        .signature("sig-v1")
        .contains_pii(false)
        .tag("sox")
        .tag("pci")
        .meta("resource", "customers/1")
        .meta("rows", 1u64)
        .meta("region", "eu-west-1")
        .error_context(ctx);
        ev.compliance_level = ComplianceLevel::Sox;
        ev
    }

    #[test]
    fn stored_lines_are_read_back_in_place_unless_a_field_is_escaped() {
        let ts = Utc
            .with_ymd_and_hms(2026, 5, 6, 7, 8, 9)
            .single()
            .expect("ts");
        for (ev, fast) in [(plain(), true), (sample(), false)] {
            let mut p = LineEncoder::default();
            p.encode(&ev, "id-1", "host", 1, ev.compliance_level);
            let (rec, _) = p.assemble(&ev, 7, Some(&[b'a'; 64]), ts, &Integrity::Sha256);
            let quick =
                AuditRecord::from_stored_fast(rec.line(), &Integrity::Sha256).expect("verifies");
            assert_eq!(quick.is_some(), fast, "{}", rec.line());
            if let Some(q) = quick {
                assert_eq!(q, rec);
            }
            let back = AuditRecord::from_stored(rec.line(), &Integrity::Sha256).expect("rebuilt");
            assert_eq!(back, rec);
            assert_eq!(back.user_id(), rec.user_id());
            assert_eq!(back.previous_hash(), Some("a".repeat(64).as_str()));
        }
    }

    #[test]
    fn line_is_canonical_sorted_and_verifiable() {
        let ev = sample();
        let mut p = LineEncoder::default();
        p.encode(&ev, "id-1", "host", 1, ev.compliance_level);
        let ts = Utc
            .with_ymd_and_hms(2026, 5, 6, 7, 8, 9)
            .single()
            .expect("ts");
        let (rec, hex) = p.assemble(&ev, 7, Some(&[b'a'; 64]), ts, &Integrity::Sha256);
        let v: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(rec.line()).expect("json");
        assert_eq!(v.len(), 30);
        let keys: Vec<_> = v.keys().cloned().collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        // Re-serializing the parsed object canonically gives the same bytes.
        let mut again = Vec::new();
        write_object(&mut again, &v);
        assert_eq!(again, rec.line().as_bytes());
        assert!(rec.line().is_ascii());
        assert_eq!(rec.event_id(), "id-1");
        assert_eq!(rec.timestamp_str(), "2026-05-06T07:08:09.000000Z");
        assert_eq!(rec.user_id().as_deref(), Some("ü1"));
        assert_eq!(rec.checksum().as_bytes(), &hex);
        let fields = check_line(rec.line().as_bytes(), &Integrity::Sha256).expect("verifies");
        assert_eq!(fields.sequence_number, 7);
        // Checksum is SHA-256 of the line without its checksum member.
        let without = rec
            .line()
            .replacen(&format!("\"checksum\":\"{}\",", rec.checksum()), "", 1);
        let mut h = Sha256::new();
        h.update(without.as_bytes());
        let mut want = [0u8; 64];
        hex_into(&h.finalize(), &mut want);
        assert_eq!(want, hex);
    }

    #[test]
    fn the_fast_reader_agrees_with_the_json_parser() {
        let ev = sample()
            .meta("previous_hash", "x")
            .meta("sequence_number", 99);
        let mut p = LineEncoder::default();
        p.encode(&ev, "id-1", "host", 1, ev.compliance_level);
        for (seq, prev) in [(1, None), (123_456_789, Some([b'c'; 64]))] {
            let (rec, _) = p.assemble(&ev, seq, prev.as_ref(), Utc::now(), &Integrity::Sha256);
            let fast = canonical_fields(rec.line().as_bytes()).expect("canonical");
            let full: ChainFields<'_> = serde_json::from_str(rec.line()).expect("json");
            assert_eq!(fast.sequence_number, full.sequence_number);
            assert_eq!(fast.previous_hash, full.previous_hash);
            assert_eq!(fast.checksum, full.checksum);
        }
        // Not the canonical shape: left to the JSON parser.
        assert!(canonical_fields(br#"{"sequence_number":1}"#).is_none());
    }

    #[test]
    fn tampering_and_wrong_key_are_detected() {
        let ev = sample();
        let mut p = LineEncoder::default();
        p.encode(&ev, "id-1", "host", 1, ev.compliance_level);
        let key = Integrity::hmac(&[7u8; 32]).expect("key");
        let (rec, _) = p.assemble(&ev, 1, None, Utc::now(), &key);
        assert!(check_line(rec.line().as_bytes(), &key).is_ok());
        assert!(matches!(
            check_line(rec.line().as_bytes(), &Integrity::Sha256),
            Err(LineProblem::ChecksumMismatch { .. })
        ));
        let tampered = rec.line().replace("read", "reed");
        assert!(matches!(
            check_line(tampered.as_bytes(), &key),
            Err(LineProblem::ChecksumMismatch { .. })
        ));
        assert!(Integrity::hmac(&[1u8; 31]).is_err());
    }
}
