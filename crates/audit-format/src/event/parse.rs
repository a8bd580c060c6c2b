//! Reading an [`AuditEvent`] from JSON: every key checked, the first bad one named.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::kinds::AuditEventType;
use super::model::AuditEvent;
use crate::error::{Error, Result};

impl AuditEvent {
    /// Parses a stored line (or any JSON object with event fields) into an event.
    ///
    /// # Errors
    /// [`Error::InvalidEvent`] naming the key when the JSON is invalid, a key is unknown, a
    /// required key is missing or a value has the wrong type.
    pub fn from_json(line: &str) -> Result<Self> {
        let map: Map<String, Value> = serde_json::from_str(line)
            .map_err(|e| Error::invalid("(line)", format!("not a JSON object: {e}")))?;
        Self::from_map(map, true)
    }

    /// Builds an event from a JSON object.
    ///
    /// With `allow_chain_fields = false` (input from `audit emit`), `sequence_number`,
    /// `previous_hash` and `checksum` are refused: the trail assigns them.
    ///
    /// # Errors
    /// [`Error::InvalidEvent`] naming the first offending key.
    pub fn from_map(map: Map<String, Value>, allow_chain_fields: bool) -> Result<Self> {
        let event_type = match map.get("event_type") {
            Some(v) => parse_enum::<AuditEventType>("event_type", v)?,
            None => return Err(Error::invalid("event_type", "required key is missing")),
        };
        let message = match map.get("message") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => return Err(type_error("message", "a string", other)),
            None => return Err(Error::invalid("message", "required key is missing")),
        };
        let mut ev = Self::new(event_type, message);
        for (key, value) in map {
            let k = key.as_str();
            match k {
                "event_type" | "message" => {}
                "event_id" => ev.event_id = opt_string(k, value)?,
                "timestamp" => ev.timestamp = timestamp_value(k, value)?,
                "log_level" => ev.log_level = parse_enum(k, &value)?,
                "compliance_level" => ev.compliance_level = parse_enum(k, &value)?,
                "component" => ev.component = opt_string(k, value)?,
                "operation" => ev.operation = opt_string(k, value)?,
                "user_id" => ev.user_id = opt_string(k, value)?,
                "session_id" => ev.session_id = opt_string(k, value)?,
                "request_id" => ev.request_id = opt_string(k, value)?,
                "client_ip" => ev.client_ip = opt_string(k, value)?,
                "user_agent" => ev.user_agent = opt_string(k, value)?,
                "container_id" => ev.container_id = opt_string(k, value)?,
                "plugin_name" => ev.plugin_name = opt_string(k, value)?,
                "hostname" => ev.hostname = opt_string(k, value)?,
                "error_category" => ev.error_category = opt_string(k, value)?,
                "error_severity" => ev.error_severity = opt_string(k, value)?,
                "data_classification" => ev.data_classification = opt_string(k, value)?,
                "retention_category" => ev.retention_category = opt_string(k, value)?,
                "signature" => ev.signature = opt_string(k, value)?,
                "process_id" => ev.process_id = process_id_value(k, value)?,
                "contains_pii" => ev.contains_pii = bool_value(k, value)?,
                "contains_phi" => ev.contains_phi = bool_value(k, value)?,
                "regulatory_tags" => ev.regulatory_tags = tags_value(k, value)?,
                "metadata" => ev.metadata = opt_object(k, value)?.unwrap_or_default(),
                "error_context" => ev.error_context = opt_object(k, value)?,
                "sequence_number" | "previous_hash" | "checksum" if !allow_chain_fields => {
                    return Err(Error::invalid(
                        k,
                        "is assigned by the trail and may not be given; remove it from the input",
                    ));
                }
                "sequence_number" => ev.sequence_number = sequence_value(k, value)?,
                "previous_hash" => ev.previous_hash = opt_string(k, value)?,
                "checksum" => ev.checksum = opt_string(k, value)?,
                _ => {
                    return Err(Error::invalid(
                        k,
                        "unknown key; put custom fields inside `metadata` (see docs/file-format.md for the 30 event keys)",
                    ));
                }
            }
        }
        Ok(ev)
    }
}

fn describe(v: &Value) -> String {
    let mut s = match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    };
    if s.len() > 60 {
        // Cut on a character boundary: the value may be any UTF-8 text.
        let mut end = 57;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    s
}

fn type_error(key: &str, expected: &str, found: &Value) -> Error {
    Error::invalid(
        key,
        format!("expected {expected}, found {}", describe(found)),
    )
}

fn opt_string(key: &str, v: Value) -> Result<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        other => Err(type_error(key, "a string or null", &other)),
    }
}

fn bool_value(key: &str, v: Value) -> Result<bool> {
    match v {
        Value::Bool(b) => Ok(b),
        other => Err(type_error(key, "true or false", &other)),
    }
}

fn parse_enum<T: FromStr<Err = String>>(key: &str, v: &Value) -> Result<T> {
    match v {
        Value::String(s) => s.parse().map_err(|e: String| Error::invalid(key, e)),
        other => Err(type_error(key, "a string", other)),
    }
}

fn timestamp_value(k: &str, value: Value) -> Result<Option<DateTime<Utc>>> {
    Ok(match value {
        Value::Null => None,
        Value::String(s) => Some(
            DateTime::parse_from_rfc3339(&s)
                .map_err(|e| {
                    Error::invalid(k, format!("`{s}` is not an RFC 3339 timestamp ({e}); use e.g. 2026-01-31T12:00:00.000000Z"))
                })?
                .with_timezone(&Utc),
        ),
        other => return Err(type_error(k, "an RFC 3339 timestamp string", &other)),
    })
}

fn process_id_value(k: &str, value: Value) -> Result<Option<i64>> {
    Ok(match value {
        Value::Null => None,
        Value::Number(n) if n.is_i64() => n.as_i64(),
        other => return Err(type_error(k, "an integer", &other)),
    })
}

fn tags_value(k: &str, value: Value) -> Result<Vec<String>> {
    Ok(match value {
        Value::Null => Vec::new(),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                other => Err(type_error(k, "an array of strings", &other)),
            })
            .collect::<Result<_>>()?,
        other => return Err(type_error(k, "an array of strings", &other)),
    })
}

/// An object, or `None` for null (`metadata` stores null as an empty object).
fn opt_object(k: &str, value: Value) -> Result<Option<Map<String, Value>>> {
    Ok(match value {
        Value::Null => None,
        Value::Object(m) => Some(m),
        other => return Err(type_error(k, "an object", &other)),
    })
}

fn sequence_value(k: &str, value: Value) -> Result<Option<u64>> {
    Ok(match value {
        Value::Null => None,
        Value::Number(n) if n.is_u64() => n.as_u64(),
        other => return Err(type_error(k, "a non-negative integer", &other)),
    })
}
