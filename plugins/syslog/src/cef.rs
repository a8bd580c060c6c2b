//! ArcSight CEF: `CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|Extension`.
//!
//! The mapping (docs/backends/syslog.md has it as a table): SignatureID and Name =
//! event_type, Severity from log_level, `rt` (ms since the epoch), `externalId` = event_id,
//! `suser` = user_id, `src` = client_ip (when an IP address), `act` = operation, `outcome`,
//! `cat` = component, `msg` = message, `dvchost` = hostname, `dvcpid` = process_id,
//! `requestClientApplication` = user_agent, `cn1` = sequence_number (`cn1Label=seq`); every
//! other field as `audit<CamelCase>` (`auditChecksum`, `auditMetadata` as compact JSON, ...).

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::event::{Event, cef_severity, custom_key};

/// The device fields of the header.
#[derive(Debug)]
pub(crate) struct Device<'a> {
    pub(crate) vendor: &'a str,
    pub(crate) product: &'a str,
    pub(crate) version: &'a str,
}

/// Fields mapped to a standard key (the rest become custom keys).
const MAPPED: [&str; 12] = [
    "event_type",
    "log_level",
    "timestamp",
    "event_id",
    "user_id",
    "operation",
    "component",
    "message",
    "hostname",
    "process_id",
    "user_agent",
    "sequence_number",
];

/// Header escaping: `\` and `|` get a backslash; a line break becomes a space (the header
/// allows none).
pub(crate) fn escape_header(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' | '|' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

/// Extension value escaping: `\`, `=`, and line breaks as `\n` / `\r`.
pub(crate) fn escape_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            _ => out.push(c),
        }
    }
    out
}

/// The CEF message for `ev`; `micros` is the event time in microseconds since the epoch.
pub(crate) fn message(d: &Device<'_>, ev: &Event, micros: i64) -> String {
    let ty = ev.str("event_type").unwrap_or("unknown");
    let level = ev.str("log_level").unwrap_or("info");
    let mut out = format!(
        "CEF:0|{}|{}|{}|{}|{}|{}|",
        escape_header(d.vendor),
        escape_header(d.product),
        escape_header(d.version),
        escape_header(ty),
        escape_header(ty),
        cef_severity(level),
    );
    let mut ext: Vec<(String, String)> = vec![("rt".into(), micros.div_euclid(1000).to_string())];
    let mut add = |key: &str, field: &str| {
        if let Some(v) = ev.text(field) {
            ext.push((key.to_owned(), v));
        }
    };
    add("externalId", "event_id");
    add("suser", "user_id");
    add("act", "operation");
    add("cat", "component");
    add("msg", "message");
    add("dvchost", "hostname");
    add("dvcpid", "process_id");
    add("requestClientApplication", "user_agent");
    add("cn1", "sequence_number");
    ext.push(("cn1Label".into(), "seq".into()));
    ext.push(("outcome".into(), ev.outcome().into()));
    for field in ev.keys().filter(|k| !MAPPED.contains(k)) {
        let Some(value) = ev.text(field) else {
            continue;
        };
        let key = match field {
            "client_ip" if value.parse::<IpAddr>().is_ok() => "src".to_owned(),
            _ => custom_key(field),
        };
        ext.push((key, value));
    }
    for (i, (k, v)) in ext.iter().enumerate() {
        let sep = if i == 0 { "" } else { " " };
        let _ = write!(out, "{sep}{k}={}", escape_value(v));
    }
    out
}

/// Splits an extension back into keys and unescaped values (for the tests).
#[cfg(test)]
pub(crate) fn parse_extension(ext: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let (mut key, mut val, mut in_key) = (String::new(), String::new(), true);
    let mut chars = ext.chars().peekable();
    while let Some(c) = chars.next() {
        if in_key {
            if c == '=' {
                in_key = false;
            } else {
                key.push(c);
            }
            continue;
        }
        match c {
            '\\' => match chars.next() {
                Some('n') => val.push('\n'),
                Some('r') => val.push('\r'),
                Some(o) => val.push(o),
                None => {}
            },
            ' ' => {
                // A space ends the value when the next word is `key=`.
                let rest: String = chars.clone().collect();
                let next_is_key = rest.split_once('=').is_some_and(|(k, _)| {
                    !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric())
                });
                if next_is_key {
                    pairs.push((std::mem::take(&mut key), std::mem::take(&mut val)));
                    in_key = true;
                } else {
                    val.push(' ');
                }
            }
            _ => val.push(c),
        }
    }
    pairs.push((key, val));
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"checksum":"c1","client_ip":"203.0.113.9","component":"a|b","event_id":"e-1","event_type":"authentication_failed","log_level":"security","message":"x=1 \\ y\nnext\rZoë ✓","metadata":{"k":"v=w"},"process_id":77,"sequence_number":5,"user_id":"al|ce"}"#;

    fn device() -> Device<'static> {
        Device {
            vendor: "Ven|dor\\",
            product: "audit",
            version: "1.0",
        }
    }

    #[test]
    fn header_escaping_and_mapping() {
        let ev = Event::parse(LINE, 5).expect("json");
        let m = message(&device(), &ev, 1_767_225_600_123_456);
        let prefix = r"CEF:0|Ven\|dor\\|audit|1.0|authentication_failed|authentication_failed|8|";
        assert!(m.starts_with(prefix), "{m}");
        let ext = parse_extension(&m[prefix.len()..]);
        let get = |k: &str| {
            ext.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("rt"), Some("1767225600123"));
        assert_eq!(get("suser"), Some("al|ce"));
        assert_eq!(get("src"), Some("203.0.113.9"));
        assert_eq!(get("msg"), Some("x=1 \\ y\nnext\rZoë ✓"));
        assert_eq!(get("cat"), Some("a|b"));
        assert_eq!(get("cn1"), Some("5"));
        assert_eq!(get("outcome"), Some("failure"));
        assert_eq!(get("dvcpid"), Some("77"));
        assert_eq!(get("auditChecksum"), Some("c1"));
        assert_eq!(get("auditMetadata"), Some(r#"{"k":"v=w"}"#));
        assert!(!m.contains('\n') && !m.contains('\r'));
        assert!(m.contains(r"msg=x\=1 \\ y\nnext\rZoë ✓ "), "{m}");
    }

    #[test]
    fn escaping() {
        assert_eq!(escape_header("a|b\\c\nd=e"), r"a\|b\\c d=e");
        assert_eq!(escape_value("a|b\\c\nd=e\r"), r"a|b\\c\nd\=e\r");
    }

    #[test]
    fn a_client_ip_that_is_no_address_stays_custom() {
        let ev = Event::parse(r#"{"client_ip":"unknown","event_type":"x"}"#, 1).expect("json");
        let m = message(&device(), &ev, 0);
        assert!(
            m.contains(" auditClientIp=unknown") && !m.contains(" src="),
            "{m}"
        );
    }
}
