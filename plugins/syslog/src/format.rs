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
