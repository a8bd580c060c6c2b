//! The event's fields, read from the canonical line, and the severity scales each format uses.

use audit_plugin_api::PluginError;
use serde_json::{Map, Value};

/// One event: the canonical line parsed into its keys.
#[derive(Debug)]
pub(crate) struct Event {
    map: Map<String, Value>,
}

impl Event {
    /// Parses the canonical line.
    ///
    /// # Errors
    /// A fatal error when the line is not a JSON object (the host never sends one).
    pub(crate) fn parse(line: &str, seq: u64) -> Result<Self, PluginError> {
        match serde_json::from_str(line) {
            Ok(Value::Object(map)) => Ok(Self { map }),
            Ok(_) => Err(PluginError::fatal(format!(
                "event {seq}: the line is not a JSON object"
            ))),
            Err(e) => Err(PluginError::fatal(format!(
                "event {seq}: the line is not JSON: {e}"
            ))),
        }
    }

    /// A string field, `None` when absent, null or empty.
    pub(crate) fn str(&self, key: &str) -> Option<&str> {
        self.map
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// A field as text: strings as they are, other values as compact JSON; `None` when
    /// absent or null.
    pub(crate) fn text(&self, key: &str) -> Option<String> {
        match self.map.get(key)? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }

    /// The keys with a non-null value, in canonical (sorted) order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.map
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, _)| k.as_str())
    }

    /// `failure` for events that report a failure or an error, `success` otherwise (CEF
    /// `outcome`).
    pub(crate) fn outcome(&self) -> &'static str {
        let ty = self.str("event_type").unwrap_or_default();
        if ty.ends_with("_failed")
            || ty.ends_with("_denied")
            || ty == "error_occurred"
            || self.str("error_category").is_some()
        {
            "failure"
        } else {
            "success"
        }
    }
}

/// A custom key for a field no standard key covers: `audit` + the name in camel case
/// (`session_id` -> `auditSessionId`), letters only as CEF and LEEF keys require.
pub(crate) fn custom_key(field: &str) -> String {
    let mut key = String::from("audit");
    for part in field.split('_').filter(|p| !p.is_empty()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            key.extend(first.to_uppercase());
            key.push_str(chars.as_str());
        }
    }
    key
}

/// RFC 5424 severity (0 emergency .. 7 debug) for a `log_level`; unknown levels are notice.
pub(crate) fn syslog_severity(log_level: &str) -> u8 {
    match log_level {
        "debug" => 7,
        "info" => 6,
        "warning" => 4,
        "error" => 3,
        "critical" => 2,
        _ => 5, // security, and any level a newer writer adds: notice
    }
}

/// CEF severity (0-10) for a `log_level`; LEEF `sev` uses the same scale from 1.
pub(crate) fn cef_severity(log_level: &str) -> u8 {
    match log_level {
        "debug" => 0,
        "info" => 3,
        "warning" => 5,
        "error" => 7,
        "critical" => 10,
        _ => 8, // security
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_text_and_custom_keys() {
        let e = Event::parse(
            r#"{"a":null,"event_type":"authentication_failed","metadata":{"k":[1,"x"]},"n":3,"s":""}"#,
            1,
        )
        .expect("object");
        assert_eq!(e.text("metadata").as_deref(), Some(r#"{"k":[1,"x"]}"#));
        assert_eq!(e.text("n").as_deref(), Some("3"));
        assert_eq!(e.text("a"), None);
        assert_eq!(e.str("s"), None);
        assert_eq!(
            e.keys().collect::<Vec<_>>(),
            ["event_type", "metadata", "n", "s"]
        );
        assert_eq!(e.outcome(), "failure");
        assert_eq!(custom_key("session_id"), "auditSessionId");
        assert_eq!(custom_key("contains_phi"), "auditContainsPhi");
        assert!(
            Event::parse("[1]", 7)
                .expect_err("array")
                .message
                .as_str()
                .contains("event 7")
        );
    }

    #[test]
    fn severity_mapping() {
        let levels = [
            "debug", "info", "warning", "error", "critical", "security", "new",
        ];
        let syslog: Vec<u8> = levels.iter().map(|l| syslog_severity(l)).collect();
        assert_eq!(syslog, [7, 6, 4, 3, 2, 5, 5]);
        let cef: Vec<u8> = levels.iter().map(|l| cef_severity(l)).collect();
        assert_eq!(cef, [0, 3, 5, 7, 10, 8, 8]);
    }
}
