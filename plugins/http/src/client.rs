//! The HTTP client all kinds share: one ureq agent (keep-alive, rustls with the ring
//! provider), the credentials and extra headers, and the classification of transport errors
//! and status codes into retryable, fatal and configuration errors.

use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use audit_plugin_api::PluginError;
use audit_plugin_api::secrets::{read_secret_file, secret_from_env};
use ureq::Agent;
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig as UreqTls};

use crate::config::{Kind, Parsed};

/// The largest response body read (a `_bulk` answer of a big batch is a few MB).
const MAX_RESPONSE_BYTES: u64 = 256 * 1024 * 1024;

/// An answer: status, body, and `Retry-After` when the server sent one (in seconds).
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub retry_after: Option<Duration>,
}

impl Reply {
    /// The body as text, cut to 300 bytes, for error messages.
    pub(crate) fn snippet(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let mut end = text.len().min(300);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text[..end].trim().to_owned()
    }
}

/// The agent and what every request carries.
pub(crate) struct Client {
    agent: Agent,
    /// `Authorization` value, if any.
    auth: Option<String>,
    headers: Vec<(String, String)>,
    /// `url` for messages (no credentials are ever in it).
    pub describe: String,
}

impl std::fmt::Debug for Client {
    // Not the credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.describe)
            .finish_non_exhaustive()
    }
}

/// The password or token: the file when configured, else the environment variable.
fn secret(file: Option<&str>, file_key: &str, env: &str) -> Result<Option<String>, PluginError> {
    match file {
        Some(path) => read_secret_file(file_key, Path::new(path)).map(Some),
        None => secret_from_env(env),
    }
}

/// Standard base64 (RFC 4648), for HTTP Basic credentials.
pub(crate) fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for c in input.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= c.len() {
                out.push(char::from(T[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The `Authorization` header of the configuration, reading the secret files.
fn authorization(p: &Parsed) -> Result<Option<String>, PluginError> {
    let c = &p.config;
    let token = secret(c.token_file.as_deref(), "token_file", "AUDIT_HTTP_TOKEN")?;
    if let Some(user) = &c.username {
        let password = secret(
            c.password_file.as_deref(),
            "password_file",
            "AUDIT_HTTP_PASSWORD",
        )?
        .ok_or_else(|| {
            crate::config::bad(
                "password_file",
                "username is set: set password_file (a chmod 600 file) or AUDIT_HTTP_PASSWORD",
            )
        })?;
        return Ok(Some(format!(
            "Basic {}",
            base64(format!("{user}:{password}").as_bytes())
        )));
    }
    Ok(match (c.kind, token) {
        (Kind::SplunkHec, Some(t)) => Some(format!("Splunk {t}")),
        (Kind::SplunkHec, None) => {
            return Err(crate::config::bad(
                "token_file",
                "required with kind = \"splunk-hec\" (or set AUDIT_HTTP_TOKEN): the HEC token",
            ));
        }
        (Kind::Elasticsearch, Some(t)) => Some(format!("ApiKey {t}")),
        (Kind::Webhook, Some(t)) => Some(format!("Bearer {t}")),
        (_, None) => None,
    })
}

/// ureq's TLS settings from `tls.*`, with the ring provider of audit-plugin-tls. The files
/// are also loaded into a rustls `ClientConfig` by audit-plugin-tls, so a key that does not
/// fit its certificate is refused at `open` with the error the other plugins give.
fn tls_config(p: &Parsed) -> Result<UreqTls, PluginError> {
    let t = &p.config.tls;
    let provider = audit_plugin_tls::provider();
    let mut b = UreqTls::builder()
        .unversioned_rustls_crypto_provider(provider.clone())
        .disable_verification(t.insecure_skip_verify);
    if let Some(ca) = &t.ca_file {
        let roots = audit_plugin_tls::read_certs("tls.ca_file", ca)?;
        audit_plugin_tls::roots(ca)?;
        let certs: Vec<Certificate<'static>> = roots
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned())
            .collect();
        b = b.root_certs(RootCerts::Specific(Arc::new(certs)));
    }
    if let (Some(cert), Some(key)) = (&t.cert_file, &t.key_file) {
        let check = audit_plugin_tls::builder(provider)?
            .with_root_certificates(rustls::RootCertStore::empty());
        audit_plugin_tls::with_client_auth(check, Some(cert), Some(key))?;
        let chain: Vec<Certificate<'static>> = audit_plugin_tls::read_certs("tls.cert_file", cert)?
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned())
            .collect();
        let pem = std::fs::read(key)
            .map_err(|e| crate::config::bad("tls.key_file", &format!("{key}: {e}")))?;
        let key = PrivateKey::from_pem(&pem)
            .map_err(|e| crate::config::bad("tls.key_file", &format!("{key}: {e}")))?;
        b = b.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
    }
    Ok(b.build())
}

impl Client {
    /// The agent of `p`, reading the secret and certificate files (no connection yet).
    ///
    /// # Errors
    /// A configuration error naming the key of an unreadable or unsafe file.
    pub(crate) fn new(p: &Parsed) -> Result<Self, PluginError> {
        let c = &p.config;
        let mut config = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_millis(c.timeout_ms)))
            .max_redirects(0)
            .user_agent(concat!("audit-backend-http/", env!("CARGO_PKG_VERSION")));
        if p.https {
            config = config.tls_config(tls_config(p)?);
        }
        Ok(Self {
            agent: config.build().into(),
            auth: authorization(p)?,
            headers: c
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            describe: p.base.clone(),
        })
    }

    /// Sends one request (`POST` when `body` is given, else `GET`) and reads the answer;
    /// any status comes back as a [`Reply`].
    ///
    /// # Errors
    /// A transport failure, classified by [`Client::transport_error`].
    pub(crate) fn send(
        &self,
        url: &str,
        body: Option<(&str, &[u8])>,
        extra: &[(&str, &str)],
    ) -> Result<Reply, PluginError> {
        let what = if body.is_some() { "POST" } else { "GET" };
        let result = match body {
            Some((content_type, bytes)) => {
                let mut req = self.agent.post(url).header("Content-Type", content_type);
                req = self.decorate(req, extra);
                req.send(bytes)
            }
            None => self.decorate(self.agent.get(url), extra).call(),
        };
        self.reply(what, url, result)
    }

    /// `DELETE url` (the bench's scratch indices).
    ///
    /// # Errors
    /// As [`Client::send`].
    pub(crate) fn delete(&self, url: &str) -> Result<Reply, PluginError> {
        let result = self.decorate(self.agent.delete(url), &[]).call();
        self.reply("DELETE", url, result)
    }

    /// The answer of a request, read whole.
    fn reply(
        &self,
        what: &str,
        url: &str,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Reply, PluginError> {
        let mut resp = result.map_err(|e| self.transport_error(what, url, e))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("Retry-After")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut body = Vec::new();
        resp.body_mut()
            .as_reader()
            .take(MAX_RESPONSE_BYTES)
            .read_to_end(&mut body)
            .map_err(|e| {
                PluginError::retryable(format!("{what} {url}: reading the answer: {e}"))
            })?;
        Ok(Reply {
            status,
            body,
            retry_after,
        })
    }

    fn decorate<B>(
        &self,
        mut req: ureq::RequestBuilder<B>,
        extra: &[(&str, &str)],
    ) -> ureq::RequestBuilder<B> {
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        req
    }

    /// A transport failure: an untrusted certificate is a configuration error naming
    /// `tls.ca_file`; anything else (refused, reset, timeout, DNS) is retryable.
    fn transport_error(&self, what: &str, url: &str, e: ureq::Error) -> PluginError {
        let msg = format!("{what} {url}: {e}");
        // rustls' error arrives as itself or inside an io::Error.
        let tls = match &e {
            ureq::Error::Rustls(t) => Some(t),
            ureq::Error::Io(io) => io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()),
            _ => None,
        };
        match (tls, &e) {
            (Some(rustls::Error::InvalidCertificate(_)), _) => PluginError::config(format!(
                "{msg}; the server's certificate is not trusted: check `tls.ca_file` (the CA that signs it) and that `url`'s host is a name in it"
            )),
            (Some(rustls::Error::AlertReceived(_)), _) => PluginError::retryable(format!(
                "{msg}; if the server requires a client certificate, check `tls.cert_file` and `tls.key_file`"
            )),
            (_, ureq::Error::BadUri(_) | ureq::Error::Http(_)) => {
                PluginError::config(format!("{msg}; check `url` and `headers`"))
            }
            // With TLS 1.3 the server checks the client certificate after the client has
            // finished its handshake: a refusal can reach the client as a closed connection
            // while it sends, before it reads the alert.
            (_, ureq::Error::Io(io))
                if url.starts_with("https:")
                    && matches!(
                        io.kind(),
                        std::io::ErrorKind::BrokenPipe
                            | std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::ConnectionAborted
                            | std::io::ErrorKind::UnexpectedEof
                    ) =>
            {
                PluginError::retryable(format!(
                    "{msg}; the server closed the TLS connection: if it requires a client certificate, check `tls.cert_file` and `tls.key_file`"
                ))
            }
            _ => PluginError::retryable(msg),
        }
    }

    /// The error for a status that is not success: 401/403 name the credentials keys, 404
    /// the `url`, 408/429/5xx are retryable, anything else fatal (a request this plugin
    /// should not have built).
    pub(crate) fn status_error(&self, what: &str, r: &Reply) -> PluginError {
        let msg = format!(
            "{what} {}: HTTP {}: {}",
            self.describe,
            r.status,
            r.snippet()
        );
        match r.status {
            401 | 403 => PluginError::config(format!(
                "{msg}; check `token_file`, `username`/`password_file` (or AUDIT_HTTP_TOKEN, AUDIT_HTTP_PASSWORD) and the grants of that user"
            )),
            404 | 405 => PluginError::config(format!("{msg}; check `url`")),
            s if is_retryable_status(s) => PluginError::retryable(msg),
            _ => PluginError::fatal(msg),
        }
    }
}

/// 408, 429 and 5xx: the server may take the same request later.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}

/// The wait before in-call attempt `attempt` (1-based): the server's `Retry-After` when it
/// gave one (`None` when that exceeds `cap`: give the batch back to the host), else 100 ms
/// doubled per attempt.
pub(crate) fn backoff(
    attempt: u32,
    retry_after: Option<Duration>,
    cap: Duration,
) -> Option<Duration> {
    match retry_after {
        Some(d) if d > cap => None,
        Some(d) => Some(d),
        None => Some(Duration::from_millis(100 << attempt.min(6))),
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn retry_after_beyond_the_cap_gives_up() {
        let cap = Duration::from_secs(30);
        assert_eq!(
            backoff(1, Some(Duration::from_secs(2)), cap),
            Some(Duration::from_secs(2))
        );
        assert_eq!(backoff(1, Some(Duration::from_secs(60)), cap), None);
        assert_eq!(backoff(2, None, cap), Some(Duration::from_millis(400)));
        assert!(is_retryable_status(503) && is_retryable_status(429) && !is_retryable_status(400));
    }
}
