//! `Serialize`/`Deserialize` for [`AuditEvent`]: the 30 keys of the stored line, in its
//! (sorted) key order, with the line's value forms.

use serde::de::Error as _;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::model::AuditEvent;
use crate::canonical::write_timestamp;

/// The RFC 3339 text the line stores: UTC, microseconds, `Z`.
fn timestamp_text(ts: &chrono::DateTime<chrono::Utc>) -> String {
    let mut out = Vec::with_capacity(30);
    write_timestamp(&mut out, ts);
    // `write_timestamp` writes a quoted ASCII string.
    String::from_utf8_lossy(&out[1..out.len() - 1]).into_owned()
}

impl Serialize for AuditEvent {
    /// Every one of the 30 keys, `null` where the event has no value. An event read back
    /// from a stored line serializes to that line's object exactly (`serde_json::Value`
    /// equality; the text differs only in `\uXXXX` escapes and number spelling). An event
    /// not logged yet has `null` where the trail fills in a value (`event_id`, `timestamp`,
    /// `hostname`, `process_id`, `sequence_number`, `previous_hash`, `checksum`) and its own
    /// `compliance_level`, which the trail replaces with its policy's.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_struct("AuditEvent", 30)?;
        m.serialize_field("checksum", &self.checksum)?;
        m.serialize_field("client_ip", &self.client_ip)?;
        m.serialize_field("compliance_level", &self.compliance_level)?;
        m.serialize_field("component", &self.component)?;
        m.serialize_field("container_id", &self.container_id)?;
        m.serialize_field("contains_phi", &self.contains_phi)?;
        m.serialize_field("contains_pii", &self.contains_pii)?;
        m.serialize_field("data_classification", &self.data_classification)?;
        m.serialize_field("error_category", &self.error_category)?;
        m.serialize_field("error_context", &self.error_context)?;
        m.serialize_field("error_severity", &self.error_severity)?;
        m.serialize_field("event_id", &self.event_id)?;
        m.serialize_field("event_type", &self.event_type)?;
        m.serialize_field("hostname", &self.hostname)?;
        m.serialize_field("log_level", &self.log_level)?;
        m.serialize_field("message", &self.message)?;
        m.serialize_field("metadata", &self.metadata)?;
        m.serialize_field("operation", &self.operation)?;
        m.serialize_field("plugin_name", &self.plugin_name)?;
        m.serialize_field("previous_hash", &self.previous_hash)?;
        m.serialize_field("process_id", &self.process_id)?;
        m.serialize_field("regulatory_tags", &self.regulatory_tags)?;
        m.serialize_field("request_id", &self.request_id)?;
        m.serialize_field("retention_category", &self.retention_category)?;
        m.serialize_field("sequence_number", &self.sequence_number)?;
        m.serialize_field("session_id", &self.session_id)?;
        m.serialize_field("signature", &self.signature)?;
        m.serialize_field("timestamp", &self.timestamp.as_ref().map(timestamp_text))?;
        m.serialize_field("user_agent", &self.user_agent)?;
        m.serialize_field("user_id", &self.user_id)?;
        m.end()
    }
}

impl<'de> Deserialize<'de> for AuditEvent {
    /// A JSON object with event keys, checked as [`AuditEvent::from_json`] checks a stored
    /// line (chain fields allowed; an unknown key or a wrongly typed value is an error
    /// naming the key).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(d)?;
        Self::from_map(map, true).map_err(|e| D::Error::custom(crate::error::chain(&e)))
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::event::AuditEventType;

    #[test]
    fn a_new_event_has_every_key_and_nulls_where_the_trail_fills_in() {
        let ev = AuditEvent::new(AuditEventType::DataAccess, "m").user_id("alice");
        let v = serde_json::to_value(&ev).expect("serializes");
        let obj = v.as_object().expect("an object");
        assert_eq!(obj.len(), 30);
        assert_eq!(obj["user_id"], "alice");
        assert_eq!(obj["event_type"], "data_access");
        assert_eq!(obj["regulatory_tags"], serde_json::json!([]));
        for key in [
            "event_id",
            "timestamp",
            "sequence_number",
            "checksum",
            "hostname",
        ] {
            assert!(obj[key].is_null(), "{key}");
        }
        let back: AuditEvent = serde_json::from_value(v).expect("deserializes");
        assert_eq!(back, ev);
    }

    #[test]
    fn the_timestamp_has_the_line_form() {
        let ts = chrono::DateTime::parse_from_rfc3339("2026-02-03T04:05:06.7Z")
            .expect("rfc 3339")
            .with_timezone(&chrono::Utc);
        let ev = AuditEvent::new(AuditEventType::DataAccess, "m").timestamp(ts);
        let v = serde_json::to_value(&ev).expect("serializes");
        assert_eq!(v["timestamp"], "2026-02-03T04:05:06.700000Z");
    }

    #[test]
    fn an_unknown_key_is_refused_naming_it() {
        let e = serde_json::from_str::<AuditEvent>(
            r#"{"event_type":"data_access","message":"m","colour":"red"}"#,
        )
        .expect_err("unknown key");
        assert!(e.to_string().contains("`colour`"), "{e}");
    }
}
