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

#[cfg(test)]
mod tests {
    use std::io::Read as _;
    use std::net::TcpListener;

    use audit_plugin_api::Backend as _;
    use audit_plugin_api::abi_stable::std_types::{RNone, RStr};

    use super::*;

    /// The baseline's bytes on the wire are the plugin's: a real loopback socket reads both.
    #[test]
    fn the_sender_sends_what_the_plugin_sends() -> Result<(), Box<dyn std::error::Error>> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let config =
            format!(r#"{{"address":"127.0.0.1:{port}","transport":"tcp","format":"cef"}}"#);
        let line = r#"{"checksum":"ab","event_type":"login","hostname":"h","log_level":"info","message":"m|x=y","process_id":7,"sequence_number":1}"#;
        let record = Record {
            line: RStr::from_str(line),
            sequence_number: 1,
            timestamp: RStr::from_str("2026-12-03T11:41:03.000001Z"),
            timestamp_micros: 1_796_297_263_000_001,
            event_id: RStr::from_str("e-1"),
            event_type: RStr::from_str("login"),
            log_level: RStr::from_str("info"),
            user_id: RNone,
        };
        let records = [record, record];
        let mut plugin = crate::open(&config)?;
        let expected = plugin.render(&records)?;
        let (mut from_plugin, _) = listener.accept()?;
        plugin.write_batch(&records)?;
        plugin.close()?;
        let mut sender = BenchSender::connect(&config)?;
        let (mut from_sender, _) = listener.accept()?;
        sender.send(&records)?;
        assert_eq!(sender.bytes_sent, expected.len() as u64);
        sender.close()?;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        from_plugin.read_to_end(&mut a)?;
        from_sender.read_to_end(&mut b)?;
        assert_eq!(a, expected);
        assert_eq!(b, expected);
        Ok(())
    }
}
