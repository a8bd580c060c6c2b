//! IBM QRadar LEEF: `LEEF:1.0|Vendor|Product|Version|EventID|` + tab-separated attributes,
//! or `LEEF:2.0|Vendor|Product|Version|EventID|^|` + `^`-separated attributes.
//!
//! The mapping (docs/backends/syslog.md): EventID = event_type, `devTime` (with
//! `devTimeFormat`), `sev` (1-10 from log_level), `usrName` = user_id, `src` = client_ip
//! (when an IP address), `cat` = component, `identHostName` = hostname; every other field as
//! `audit<CamelCase>`.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::cef::{Device, escape_header};
use crate::config::LeefVersion;
use crate::event::{Event, cef_severity, custom_key};

/// The LEEF 2.0 attribute delimiter, declared in the header.
pub(crate) const DELIMITER_2: char = '^';

/// `devTime`'s format (Java SimpleDateFormat), matching what [`dev_time`] produces.
const DEV_TIME_FORMAT: &str = "yyyy-MM-dd'T'HH:mm:ss.SSSX";

const MAPPED: [&str; 5] = [
    "event_type",
    "log_level",
    "timestamp",
    "user_id",
    "component",
];

/// Attribute value escaping: `\`, the delimiter, and line breaks and tabs as `\n`, `\r`,
/// `\t`, so a value can never split an attribute or a message.
pub(crate) fn escape_value(v: &str, delimiter: char) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == delimiter => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// `2026-12-03T11:41:03.123456Z` -> `2026-12-03T11:41:03.123Z` (milliseconds, as
/// [`DEV_TIME_FORMAT`] reads).
pub(crate) fn dev_time(rfc3339: &str) -> String {
    match rfc3339.split_once('.') {
        Some((secs, frac)) => {
            let digits: String = frac
                .chars()
                .take_while(char::is_ascii_digit)
                .take(3)
                .collect();
            format!("{secs}.{digits:0<3}Z")
        }
        None => rfc3339.trim_end_matches('Z').to_owned() + ".000Z",
    }
}

/// The LEEF message for `ev`.
pub(crate) fn message(d: &Device<'_>, version: LeefVersion, ev: &Event) -> String {
    let ty = ev.str("event_type").unwrap_or("unknown");
    let (mut out, delim) = match version {
        LeefVersion::V1 => (String::from("LEEF:1.0|"), '\t'),
        LeefVersion::V2 => (String::from("LEEF:2.0|"), DELIMITER_2),
    };
    let _ = write!(
        out,
        "{}|{}|{}|{}|",
        escape_header(d.vendor),
        escape_header(d.product),
        escape_header(d.version),
        escape_header(ty),
    );
    if version == LeefVersion::V2 {
        out.push(DELIMITER_2);
        out.push('|');
    }
    let level = ev.str("log_level").unwrap_or("info");
    let mut attrs: Vec<(String, String)> = Vec::new();
    if let Some(ts) = ev.str("timestamp") {
        attrs.push(("devTime".into(), dev_time(ts)));
        attrs.push(("devTimeFormat".into(), DEV_TIME_FORMAT.into()));
    }
    attrs.push(("sev".into(), cef_severity(level).max(1).to_string()));
    if let Some(u) = ev.text("user_id") {
        attrs.push(("usrName".into(), u));
    }
    if let Some(c) = ev.text("component") {
        attrs.push(("cat".into(), c));
    }
    for field in ev.keys().filter(|k| !MAPPED.contains(k)) {
        let Some(value) = ev.text(field) else {
            continue;
        };
        let key = match field {
            "client_ip" if value.parse::<IpAddr>().is_ok() => "src".to_owned(),
            "hostname" => "identHostName".to_owned(),
            _ => custom_key(field),
        };
        attrs.push((key, value));
    }
    for (i, (k, v)) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(delim);
        }
        let _ = write!(out, "{k}={}", escape_value(v, delim));
    }
    out
}

/// Splits the attributes back into keys and unescaped values (for the tests).
#[cfg(test)]
pub(crate) fn parse_attributes(attrs: &str, delimiter: char) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut cur = String::new();
    let mut chars = attrs.chars();
    let mut push = |raw: &str| {
        if let Some((k, v)) = raw.split_once('=') {
            pairs.push((k.to_owned(), v.to_owned()));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => cur.push('\n'),
                Some('r') => cur.push('\r'),
                Some('t') => cur.push('\t'),
                Some(o) => cur.push(o),
                None => {}
            },
            c if c == delimiter => push(&std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    push(&cur);
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"client_ip":"::1","component":"b^i\tll","event_type":"data|export","hostname":"web-1","log_level":"debug","message":"a=b\\c\nd^e\tf Zoë","timestamp":"2026-12-03T11:41:03.123456Z","user_id":"bob"}"#;

    fn device() -> Device<'static> {
        Device {
            vendor: "V",
            product: "P|Q",
            version: "1",
        }
    }

    fn check(version: LeefVersion, prefix: &str, delim: char) {
        let ev = Event::parse(LINE, 1).expect("json");
        let m = message(&device(), version, &ev);
        assert!(m.starts_with(prefix), "{m}");
        assert!(!m.contains('\n') && !m.contains('\r'));
        let attrs = parse_attributes(&m[prefix.len()..], delim);
        let get = |k: &str| {
            attrs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("devTime"), Some("2026-12-03T11:41:03.123Z"));
        assert_eq!(get("sev"), Some("1"));
        assert_eq!(get("usrName"), Some("bob"));
        assert_eq!(get("src"), Some("::1"));
        assert_eq!(get("cat"), Some("b^i\tll"));
        assert_eq!(get("identHostName"), Some("web-1"));
        assert_eq!(get("auditMessage"), Some("a=b\\c\nd^e\tf Zoë"));
    }

    #[test]
    fn leef_1_is_tab_separated() {
        check(LeefVersion::V1, r"LEEF:1.0|V|P\|Q|1|data\|export|", '\t');
    }

    #[test]
    fn leef_2_declares_its_delimiter() {
        check(LeefVersion::V2, r"LEEF:2.0|V|P\|Q|1|data\|export|^|", '^');
    }

    #[test]
    fn dev_time_has_milliseconds() {
        assert_eq!(
            dev_time("2026-01-01T00:00:00.000001Z"),
            "2026-01-01T00:00:00.000Z"
        );
        assert_eq!(dev_time("2026-01-01T00:00:00Z"), "2026-01-01T00:00:00.000Z");
    }
}
