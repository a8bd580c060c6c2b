//! For `audit bench` (built with its `syslog-bench` feature): the baseline's sender, through
//! this crate's own formatter, framing, connection and TLS code, so the baseline sends
//! exactly the bytes the plugin sends and the ratio measures the trail, the ABI, the
//! delivery lane and the plugin's per-batch connection checks and replay window.

use audit_plugin_api::{PluginError, Record};

use crate::config::Config;
use crate::format::Formatter;
use crate::transport::{Conn, Target};

/// One connection to the configured server and the tightest loop over it: render a batch,
/// write it, nothing else (no liveness check, no replay window, no counters).
pub struct BenchSender {
    formatter: Formatter,
    target: Target,
    conn: Option<Conn>,
    buf: Vec<u8>,
    /// Bytes sent since `connect`.
    pub bytes_sent: u64,
}

impl std::fmt::Debug for BenchSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BenchSender")
            .field("target", &self.target.describe)
            .field("bytes_sent", &self.bytes_sent)
            .finish()
    }
}

impl BenchSender {
    /// Parses `config_json` as the plugin's `open` does and connects (TLS handshake included).
    ///
    /// # Errors
    /// As [`open`](crate::open).
    pub fn connect(config_json: &str) -> Result<Self, PluginError> {
        let parsed = Config::parse(config_json)?;
        let target = Target::new(&parsed)?;
        let conn = target.connect()?;
        Ok(Self {
            formatter: Formatter::new(parsed),
            target,
            conn: Some(conn),
            buf: Vec::new(),
            bytes_sent: 0,
        })
    }

    /// One batch: rendered and framed as `write_batch` does, written in one go.
    ///
    /// # Errors
    /// A fatal error for a line that is not a JSON object; a retryable one when sending fails.
    pub fn send(&mut self, records: &[Record<'_>]) -> Result<(), PluginError> {
        self.buf.clear();
        for r in records {
            self.formatter.render(r, &mut self.buf)?;
        }
        let Some(conn) = &mut self.conn else {
            return Err(PluginError::fatal("audit bench: the sender is closed"));
        };
        conn.send(&self.buf)
            .map_err(|e| self.target.broken("sending", &e))?;
        self.bytes_sent += self.buf.len() as u64;
        Ok(())
    }

    /// Ends the session (close_notify over TLS).
    ///
    /// # Errors
    /// A failed close.
    pub fn close(mut self) -> Result<(), PluginError> {
        match self.conn.take() {
            Some(c) => c
                .close()
                .map_err(|e| self.target.broken("closing the connection", &e)),
            None => Ok(()),
        }
    }
}
