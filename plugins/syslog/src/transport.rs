//! The connection to the syslog server: TCP or TLS (rustls, ring), blocking with timeouts,
//! and the liveness check after each batch.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use audit_plugin_api::PluginError;
use rustls::pki_types::ServerName;
use rustls::{AlertDescription, ClientConfig, ClientConnection};

use crate::config::{Parsed, TlsConfig, Transport};

/// How long a fresh TLS connection waits for the server to reject the client (TLS 1.3
/// servers send a refused client certificate as an alert after the handshake).
const REJECT_WAIT: Duration = Duration::from_millis(300);

/// Where to connect and how.
#[derive(Debug)]
pub(crate) struct Target {
    host: String,
    port: u16,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    has_client_cert: bool,
    connect_timeout: Duration,
    write_timeout: Duration,
    /// `host:port` for messages.
    pub(crate) describe: String,
}

impl Target {
    /// Reads the TLS files (errors name the key).
    ///
    /// # Errors
    /// A configuration error naming `tls.ca_file`, `tls.cert_file`, `tls.key_file` or
    /// `tls.server_name`.
    pub(crate) fn new(p: &Parsed) -> Result<Self, PluginError> {
        let c = &p.config;
        let tls = match c.transport {
            Transport::Tcp => None,
            Transport::Tls => {
                let name = c.tls.server_name.clone().unwrap_or_else(|| p.host.clone());
                let name = ServerName::try_from(name.clone()).map_err(|e| {
                    PluginError::config(format!("config `tls.server_name`: {name:?}: {e}"))
                })?;
                Some((Arc::new(client_config(&c.tls)?), name))
            }
        };
        Ok(Self {
            host: p.host.clone(),
            port: p.port,
            tls,
            has_client_cert: c.tls.cert_file.is_some(),
            connect_timeout: Duration::from_millis(c.connect_timeout_ms),
            write_timeout: Duration::from_millis(c.write_timeout_ms),
            describe: format!("syslog {}", c.address),
        })
    }

    /// Connects (and completes the TLS handshake, then waits briefly for a rejection).
    ///
    /// # Errors
    /// Retryable when the server cannot be reached or closes the connection; a
    /// configuration error naming `tls.ca_file` when its certificate is not trusted.
    pub(crate) fn connect(&self) -> Result<Conn, PluginError> {
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| self.retryable("resolving the address", &e))?
            .collect();
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the name has no address");
        let mut tcp = None;
        for addr in &addrs {
            match TcpStream::connect_timeout(addr, self.connect_timeout) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let tcp = tcp.ok_or_else(|| self.retryable("connecting", &last))?;
        let io = |e: io::Error| self.retryable("configuring the socket", &e);
        tcp.set_nodelay(true).map_err(io)?;
        tcp.set_write_timeout(Some(self.write_timeout))
            .map_err(io)?;
        let Some((config, name)) = &self.tls else {
            return Ok(Conn { tcp, tls: None });
        };
        let tls = ClientConnection::new(config.clone(), name.clone())
            .map_err(|e| PluginError::fatal(format!("{}: TLS setup: {e}", self.describe)))?;
        let mut conn = Conn {
            tcp,
            tls: Some(Box::new(tls)),
        };
        conn.tcp
            .set_read_timeout(Some(self.connect_timeout))
            .map_err(io)?;
        conn.handshake()
            .map_err(|e| self.broken("TLS handshake", &e))?;
        conn.check(Some(REJECT_WAIT))
            .map_err(|e| self.broken("after the TLS handshake", &e))?;
        Ok(conn)
    }

    fn retryable(&self, doing: &str, e: &io::Error) -> PluginError {
        PluginError::retryable(format!("{}: {doing}: {e}", self.describe))
    }

    /// What a failed connection means: an untrusted server certificate is a configuration
    /// error naming `tls.ca_file`; a TLS alert or a close is retryable and names
    /// `tls.cert_file` when the server may have refused the client.
    pub(crate) fn broken(&self, doing: &str, e: &io::Error) -> PluginError {
        let rustls_err = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
        let message = format!("{}: {doing}: {e}", self.describe);
        match rustls_err {
            Some(rustls::Error::InvalidCertificate(_)) => PluginError::config(format!(
                "{message}; the server's certificate is not trusted: check `tls.ca_file` (the CA that signs it) and `tls.server_name` (a name in it)"
            )),
            Some(rustls::Error::AlertReceived(alert)) if refuses_client(*alert) => {
                PluginError::retryable(if self.has_client_cert {
                    format!(
                        "{message}; the server refused the client certificate: check `tls.cert_file` (signed by a CA the server trusts, with the name it expects)"
                    )
                } else {
                    format!(
                        "{message}; the server requires a client certificate: set `tls.cert_file` and `tls.key_file`"
                    )
                })
            }
            _ if self.tls.is_some()
                && e.kind() == io::ErrorKind::UnexpectedEof
                && !self.has_client_cert =>
            {
                PluginError::retryable(format!(
                    "{message}; if the server requires mutual TLS, set `tls.cert_file` and `tls.key_file`"
                ))
            }
            _ => PluginError::retryable(message),
        }
    }
}

/// Alerts a server sends when it does not accept the client.
fn refuses_client(alert: AlertDescription) -> bool {
    matches!(
        alert,
        AlertDescription::CertificateRequired
            | AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::AccessDenied
            | AlertDescription::HandshakeFailure
            | AlertDescription::DecryptError
    )
}

/// The rustls client configuration for the `tls` table.
fn client_config(tls: &TlsConfig) -> Result<ClientConfig, PluginError> {
    let builder = audit_plugin_tls::builder(audit_plugin_tls::provider())?.with_root_certificates(
        audit_plugin_tls::roots(tls.ca_file.as_deref().unwrap_or_default())?,
    );
    audit_plugin_tls::with_client_auth(builder, tls.cert_file.as_deref(), tls.key_file.as_deref())
}

/// An open connection.
#[derive(Debug)]
pub(crate) struct Conn {
    tcp: TcpStream,
    tls: Option<Box<ClientConnection>>,
}

impl Conn {
    fn handshake(&mut self) -> io::Result<()> {
        if let Some(tls) = &mut self.tls {
            while tls.is_handshaking() {
                tls.complete_io(&mut self.tcp)?;
            }
        }
        Ok(())
    }

    /// Writes `bytes` completely (bounded by the write timeout).
    pub(crate) fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.tls {
            None => self.tcp.write_all(bytes),
            Some(tls) => {
                let mut stream = rustls::Stream::new(tls.as_mut(), &mut self.tcp);
                stream.write_all(bytes)?;
                stream.flush()
            }
        }
    }

    /// Whether the server is still there: reads what it sent without blocking (or waiting
    /// up to `wait`). A close, a TLS alert or a reset is an error; anything else the server
    /// sent is discarded (a syslog server sends no data).
    pub(crate) fn check(&mut self, wait: Option<Duration>) -> io::Result<()> {
        match wait {
            Some(w) => self.tcp.set_read_timeout(Some(w))?,
            None => self.tcp.set_nonblocking(true)?,
        }
        let result = self.drain();
        self.tcp.set_nonblocking(false)?;
        result
    }

    fn drain(&mut self) -> io::Result<()> {
        let mut buf = [0u8; 4096];
        loop {
            let n = match &mut self.tls {
                None => self.tcp.read(&mut buf),
                Some(tls) => tls.read_tls(&mut self.tcp),
            };
            match n {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection",
                    ));
                }
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
            if let Some(tls) = &mut self.tls {
                tls.process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                loop {
                    match tls.reader().read(&mut buf) {
                        Ok(0) => {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "the server closed the TLS session (close_notify)",
                            ));
                        }
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }

    /// Ends the session politely (close_notify over TLS).
    pub(crate) fn close(mut self) -> io::Result<()> {
        if let Some(tls) = &mut self.tls {
            tls.send_close_notify();
            while tls.wants_write() {
                tls.write_tls(&mut self.tcp)?;
            }
        }
        self.tcp.shutdown(std::net::Shutdown::Both)
    }
}
