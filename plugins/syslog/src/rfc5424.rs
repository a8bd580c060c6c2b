//! RFC 5424 messages and RFC 6587 framing: pure functions over text.

use crate::config::Framing;

/// The UTF-8 byte order mark that starts an RFC 5424 MSG-UTF8.
pub(crate) const BOM: &str = "\u{feff}";

/// The header and structured data of one message.
#[derive(Debug)]
pub(crate) struct Header<'a> {
    /// Facility code (0-23).
    pub(crate) facility: u8,
    /// Severity (0-7).
    pub(crate) severity: u8,
    /// RFC 3339 timestamp.
    pub(crate) timestamp: &'a str,
    /// HOSTNAME, APP-NAME, PROCID, MSGID: `None` is the NILVALUE.
    pub(crate) hostname: Option<&'a str>,
    pub(crate) app_name: &'a str,
    pub(crate) procid: Option<&'a str>,
    pub(crate) msgid: Option<&'a str>,
    /// The SD-ID's enterprise number (`audit@N`).
    pub(crate) enterprise: &'a str,
    pub(crate) seq: u64,
    pub(crate) id: &'a str,
    pub(crate) chk: &'a str,
}

/// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [audit@N seq id chk] MSG`; a MSG with
/// any non-ASCII character starts with the BOM (MSG-UTF8), a pure ASCII one does not
/// (MSG-ANY), as section 6.4 allows.
pub(crate) fn message(h: &Header<'_>, msg: &str) -> String {
    let pri = u16::from(h.facility) * 8 + u16::from(h.severity);
    let bom = if msg.is_ascii() { "" } else { BOM };
    format!(
        "<{pri}>1 {} {} {} {} {} [audit@{} seq=\"{}\" id=\"{}\" chk=\"{}\"] {bom}{msg}",
        field(Some(h.timestamp), 32),
        field(h.hostname, 255),
        field(Some(h.app_name), 48),
        field(h.procid, 128),
        field(h.msgid, 32),
        h.enterprise,
        h.seq,
        param_value(h.id),
        param_value(h.chk),
    )
}

/// A header field: printable US-ASCII, at most `max` characters, `-` (NILVALUE) when
/// absent or empty. Other characters become `_` (the RFC allows no escaping there).
pub(crate) fn field(value: Option<&str>, max: usize) -> String {
    match value.filter(|v| !v.is_empty()) {
        None => "-".to_owned(),
        Some(v) => v
            .chars()
            .map(|c| if ('!'..='~').contains(&c) { c } else { '_' })
            .take(max)
            .collect(),
    }
}

/// PARAM-VALUE escaping (section 6.3.3): `"`, `\` and `]` get a backslash.
pub(crate) fn param_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Appends `msg` framed per RFC 6587: `LEN SP MSG` or `MSG LF`.
pub(crate) fn frame(framing: Framing, msg: &[u8], out: &mut Vec<u8>) {
    match framing {
        Framing::OctetCounting => {
            out.extend_from_slice(msg.len().to_string().as_bytes());
            out.push(b' ');
            out.extend_from_slice(msg);
        }
        Framing::Lf => {
            out.extend_from_slice(msg);
            out.push(b'\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>() -> Header<'a> {
        Header {
            facility: 10,
            severity: 5,
            timestamp: "2026-12-03T11:41:03.123456Z",
            hostname: Some("web 01"),
            app_name: "audit",
            procid: None,
            msgid: Some("authentication_failed_with_a_very_long_name"),
            enterprise: "32473",
            seq: 42,
            id: "a\"b\\c]d",
            chk: "ab12",
        }
    }

    #[test]
    fn header_sd_and_nil_values() {
        let m = message(&header(), r#"{"k":"v"}"#);
        assert_eq!(
            m,
            r#"<85>1 2026-12-03T11:41:03.123456Z web_01 audit - authentication_failed_with_a_ver [audit@32473 seq="42" id="a\"b\\c\]d" chk="ab12"] {"k":"v"}"#
        );
        let h = Header {
            hostname: None,
            msgid: Some(""),
            ..header()
        };
        assert!(
            message(&h, "x").starts_with("<85>1 2026-12-03T11:41:03.123456Z - audit - - [audit@")
        );
        assert_eq!(field(Some("é|x"), 255), "_|x");
        assert_eq!(field(Some(&"h".repeat(300)), 255).len(), 255);
    }

    #[test]
    fn bom_only_for_non_ascii() {
        let ascii = message(&header(), "plain");
        assert!(ascii.ends_with("] plain"));
        let utf8 = message(&header(), "Zoë ü");
        assert!(utf8.ends_with("] \u{feff}Zoë ü"));
    }

    #[test]
    fn framing() {
        let mut out = Vec::new();
        frame(Framing::OctetCounting, "añb\nc".as_bytes(), &mut out);
        frame(Framing::Lf, b"x", &mut out);
        assert_eq!(out, "6 añb\ncx\n".as_bytes());
    }
}
