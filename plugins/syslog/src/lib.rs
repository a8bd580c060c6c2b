//! `audit-backend-syslog`: sends audit events to a syslog server (a SIEM's collector, rsyslog,
//! syslog-ng) as RFC 5424 messages over TCP or TLS.
//!
//! Each message carries the structured data `[audit@32473 seq="N" id="EVENT_ID"
//! chk="CHECKSUM"]` so a receiver can de-duplicate by `seq` and check the chain; MSG is the
//! canonical JSON line, CEF or LEEF (docs/backends/syslog.md has the mappings).
//!
//! ```toml
//! [[backends]]
//! type = "plugin"
//! library = "audit_backend_syslog"        # found in [trail] plugin_dir
//! config = { address = "siem.example:6514", format = "cef", tls = { ca_file = "/etc/audit/siem-ca.pem" } }
//! ```
//!
//! Delivery: syslog has no application acknowledgement. After each batch the plugin checks
//! the connection (a close, a reset or a TLS alert is an error) before it reports success;
//! a failed batch is retried whole on a new connection, after the batches of the last
//! seconds (the replay window: the server may not have read them before it closed), so
//! delivery is at least once and duplicates carry the same `seq`. A syslog store cannot be read back: `last_line` is `None`
//! and the host resumes the chain from its file backend, the local system of record.
//!
//! Capabilities: `validate` (keys and values, offline), `health` (connects) and `stats`.

pub mod bench;
mod cef;
mod config;
mod event;
mod format;
mod leef;
mod rfc5424;
mod transport;
mod window;

use audit_plugin_api::{
    Backend, Health, PluginError, Record, Stats, Validate, export_backend, export_health,
    export_stats, export_validate,
};

pub use config::{Config, Format, Framing, LeefVersion, Parsed, TlsConfig, Transport};

use format::Formatter;
use transport::{Conn, Target};
use window::Window;

/// An instance: the formatter, where to connect, and the current connection, if any.
pub struct SyslogBackend {
    formatter: Formatter,
    target: Target,
    conn: Option<Conn>,
    counters: Counters,
    buf: Vec<u8>,
    /// Recent batches the server may not have read yet; replayed on a new connection.
    window: Window,
}

impl std::fmt::Debug for SyslogBackend {
    // Not the buffered messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyslogBackend")
            .field("target", &self.target.describe)
            .field("connected", &self.conn.is_some())
            .field("counters", &self.counters)
            .field("window", &self.window)
            .finish()
    }
}

/// What the `stats` capability reports, counted since `open`.
#[derive(Debug, Default)]
struct Counters {
    messages_sent: u64,
    batches_sent: u64,
    bytes_sent: u64,
    reconnects: u64,
    resent_batches: u64,
    replayed_batches: u64,
}

/// Parses the configuration, reads the TLS files and connects.
///
/// # Errors
/// A configuration error naming the key (bad keys or values, unreadable certificates, a
/// server certificate not signed by `tls.ca_file`); a retryable error when the server
/// cannot be reached or refuses the client.
pub fn open(config_json: &str) -> Result<SyslogBackend, PluginError> {
    let parsed = Config::parse(config_json)?;
    let target = Target::new(&parsed)?;
    let conn = target.connect()?;
    Ok(SyslogBackend {
        formatter: Formatter::new(parsed),
        target,
        conn: Some(conn),
        counters: Counters::default(),
        buf: Vec::new(),
        window: Window::default(),
    })
}

impl SyslogBackend {
    /// The messages of `records`, framed, as they go on the wire (what `write_batch` sends).
    ///
    /// # Errors
    /// A fatal error when a line is not a JSON object.
    pub fn render(&self, records: &[Record<'_>]) -> Result<Vec<u8>, PluginError> {
        let mut out = Vec::new();
        for r in records {
            self.formatter.render(r, &mut out)?;
        }
        Ok(out)
    }

    /// Sends `self.buf` on the current connection (opening one if needed: then the recent
    /// batches of the broken one go first) and checks the connection after it; any failure
    /// drops the connection.
    fn send_once(&mut self) -> Result<(), PluginError> {
        let fresh = self.conn.is_none();
        let conn = match &mut self.conn {
            Some(c) => c,
            slot => {
                let new = self.target.connect()?;
                self.counters.reconnects += 1;
                slot.insert(new)
            }
        };
        let target = &self.target;
        let mut result = conn
            .check(None)
            .map_err(|e| target.broken("before sending", &e));
        if fresh && result.is_ok() {
            let replay = self.window.replay();
            for batch in &replay {
                result = result.and_then(|()| {
                    conn.send(batch)
                        .map_err(|e| target.broken("resending recent batches", &e))
                });
            }
            self.counters.replayed_batches += replay.len() as u64;
        }
        let result = result
            .and_then(|()| {
                conn.send(&self.buf)
                    .map_err(|e| target.broken("sending", &e))
            })
            .and_then(|()| {
                conn.check(None)
                    .map_err(|e| target.broken("after sending", &e))
            });
        if result.is_err() {
            self.conn = None;
            self.window.mark_broken();
        }
        result
    }
}

impl Backend for SyslogBackend {
    fn write_batch(&mut self, records: &[Record<'_>]) -> Result<(), PluginError> {
        if records.is_empty() {
            return Ok(());
        }
        self.buf.clear();
        for r in records {
            self.formatter.render(r, &mut self.buf)?;
        }
        let had_conn = self.conn.is_some();
        if let Err(e) = self.send_once() {
            // A connection the server closed while idle: resend once on a new one. Anything
            // else goes back to the host, which retries the batch (and spools meanwhile).
            if !(had_conn && e.kind == audit_plugin_api::ErrorKind::Retryable) {
                return Err(e);
            }
            self.counters.resent_batches += 1;
            self.send_once()?;
        }
        self.window.push(&self.buf);
        let c = &mut self.counters;
        c.messages_sent += records.len() as u64;
        c.batches_sent += 1;
        c.bytes_sent += self.buf.len() as u64;
        Ok(())
    }

    /// Syslog servers cannot be read back: `None`. The host resumes its chain from the file
    /// backend (docs/backends/syslog.md).
    fn last_line(&mut self) -> Result<Option<String>, PluginError> {
        Ok(None)
    }

    fn flush(&mut self) -> Result<(), PluginError> {
        // Every batch was written and the connection checked; a syslog server offers no
        // stronger acknowledgement.
        Ok(())
    }

    fn close(&mut self) -> Result<(), PluginError> {
        match self.conn.take() {
            Some(c) => c
                .close()
                .map_err(|e| self.target.broken("closing the connection", &e)),
            None => Ok(()),
        }
    }
}

impl Health for SyslogBackend {
    fn health(&mut self) -> Result<String, PluginError> {
        if let Some(c) = &mut self.conn
            && c.check(None).is_err()
        {
            self.conn = None;
            self.window.mark_broken();
        }
        if self.conn.is_none() {
            self.conn = Some(self.target.connect()?);
            self.counters.reconnects += 1;
        }
        let p = self.formatter.parsed();
        Ok(format!(
            "{}: connected ({:?}, {:?} format), {} messages sent",
            self.target.describe, p.config.transport, p.config.format, self.counters.messages_sent
        ))
    }
}

/// The `validate` capability: the keys and values `open` would accept, checked offline (no
/// connection, no file read).
impl Validate for SyslogBackend {
    fn validate(config_json: &str) -> Result<(), PluginError> {
        Config::parse(config_json).map(drop)
    }
}

/// The `stats` capability: monotonic since `open`.
impl Stats for SyslogBackend {
    fn statistics(&mut self) -> Vec<(String, u64)> {
        let c = &self.counters;
        vec![
            ("messages_sent".to_owned(), c.messages_sent),
            ("batches_sent".to_owned(), c.batches_sent),
            ("bytes_sent".to_owned(), c.bytes_sent),
            ("reconnects".to_owned(), c.reconnects),
            ("resent_batches".to_owned(), c.resent_batches),
            ("replayed_batches".to_owned(), c.replayed_batches),
        ]
    }
}

export_validate!(SyslogBackend);
export_health!(SyslogBackend);
export_stats!(SyslogBackend);

export_backend! {
    name: "syslog",
    description: "Sends audit events to a syslog server: RFC 5424 over TCP or TLS (rustls), JSON, CEF or LEEF",
    config_help: config::HELP,
    open: open,
}
