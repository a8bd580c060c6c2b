//! One record to one framed syslog message, in the configured format.

use audit_plugin_api::{PluginError, Record};

use crate::cef::{self, Device};
use crate::config::{Format, Parsed};
use crate::event::{Event, syslog_severity};
use crate::leef;
use crate::rfc5424::{self, Header};

/// Renders records as configured.
#[derive(Debug)]
pub(crate) struct Formatter {
    parsed: Parsed,
}

impl Formatter {
    pub(crate) fn new(parsed: Parsed) -> Self {
        Self { parsed }
    }

    pub(crate) fn parsed(&self) -> &Parsed {
        &self.parsed
    }

    /// Appends `record`'s framed message to `out`.
    ///
    /// # Errors
    /// A fatal error when the line is not a JSON object.
    pub(crate) fn render(&self, record: &Record<'_>, out: &mut Vec<u8>) -> Result<(), PluginError> {
        let c = &self.parsed.config;
        let seq = record.sequence_number;
        let ev = Event::parse(record.line(), seq)?;
        let device = Device {
            vendor: &c.cef_vendor,
            product: &c.cef_product,
            version: &c.cef_version,
        };
        let msg = match c.format {
            Format::Json => record.line().to_owned(),
            Format::Cef => cef::message(&device, &ev, record.timestamp_micros),
            Format::Leef => leef::message(&device, c.leef_version, &ev),
        };
        let procid = ev.text("process_id");
        let header = Header {
            facility: self.parsed.facility_code,
            severity: syslog_severity(record.log_level.as_str()),
            timestamp: record.timestamp.as_str(),
            hostname: c.hostname.as_deref().or_else(|| ev.str("hostname")),
            app_name: &c.app_name,
            procid: procid.as_deref(),
            msgid: Some(record.event_type.as_str()),
            enterprise: &c.enterprise_number,
            seq,
            id: record.event_id.as_str(),
            chk: ev.str("checksum").unwrap_or_default(),
        };
        rfc5424::frame(c.framing, rfc5424::message(&header, &msg).as_bytes(), out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use audit_plugin_api::abi_stable::std_types::{RNone, RStr};

    fn render(config: &str, line: &str) -> String {
        let f = Formatter::new(Config::parse(config).expect("config"));
        let record = Record {
            line: RStr::from_str(line),
            sequence_number: 9,
            timestamp: RStr::from_str("2026-12-03T11:41:03.000001Z"),
            timestamp_micros: 1_796_297_263_000_001,
            event_id: RStr::from_str("e-9"),
            event_type: RStr::from_str("data_export"),
            log_level: RStr::from_str("warning"),
            user_id: RNone,
        };
        let mut out = Vec::new();
        f.render(&record, &mut out).expect("render");
        String::from_utf8(out).expect("utf-8")
    }

    const LINE: &str = r#"{"checksum":"ab","event_type":"data_export","hostname":"db-2","message":"caf\u00e9","process_id":12,"sequence_number":9}"#;

    #[test]
    fn json_over_lf_with_the_event_hostname() {
        let m = render(
            r#"{"address":"h:1","transport":"tcp","framing":"lf"}"#,
            LINE,
        );
        assert_eq!(
            m,
            format!(
                "<84>1 2026-12-03T11:41:03.000001Z db-2 audit 12 data_export [audit@32473 seq=\"9\" id=\"e-9\" chk=\"ab\"] {LINE}\n"
            )
        );
    }

    #[test]
    fn cef_octet_counted_with_configured_names_and_a_bom() {
        let m = render(
            r#"{"address":"h:1","transport":"tcp","format":"cef","hostname":"gw","app_name":"billing","facility":"local0","enterprise_number":"99.1"}"#,
            LINE,
        );
        let (len, msg) = m.split_once(' ').expect("octet count");
        assert_eq!(len.parse::<usize>().ok(), Some(msg.len()));
        assert!(
            msg.starts_with(
                "<132>1 2026-12-03T11:41:03.000001Z gw billing 12 data_export [audit@99.1 seq=\"9\""
            ),
            "{msg}"
        );
        assert!(
            msg.contains("\"] \u{feff}CEF:0|"),
            "non-ASCII MSG starts with the BOM: {msg}"
        );
        assert!(msg.contains(" msg=café "), "{msg}");
    }
}
