//! The plugin's `config` table: keys, defaults and the offline checks `validate` and `open`
//! share.

use std::collections::BTreeMap;

use audit_plugin_api::PluginError;
use serde::Deserialize;

/// Shown by `audit plugin inspect`.
pub(crate) const HELP: &str = "\
kind (\"elasticsearch\" | \"splunk-hec\" | \"webhook\", required): the API spoken.
url (string, required): http:// or https:// base URL: the Elasticsearch/OpenSearch node
    (\"https://es.example:9200\"), the HEC endpoint's host (\"https://splunk.example:8088\")
    or the webhook's full URL.
timeout_ms (integer, default 20000): longest one request may take, connect to last byte;
    below the backend's call_timeout_ms (30000), so a hanging server fails the call first.
max_batch_bytes (integer, default 5242880): a batch whose body would be larger is sent as
    several requests.
retries (integer, default 3): extra attempts within one call for a 408/429/5xx answer or the
    items _bulk could not store yet, with back-off; then the host retries the batch.
max_retry_wait_ms (integer, default 5000): the longest Retry-After the plugin waits within a
    call; a longer one becomes a retryable error at once (the host's back-off takes over).
    Keep retries x max_retry_wait_ms well below the backend's call_timeout_ms (30000).
headers (table of strings, default none): extra request headers, for example a tenant id.
tls.ca_file (string, optional): PEM file of the CA(s) that sign the server's certificate;
    default the webpki (Mozilla) roots.
tls.cert_file, tls.key_file (string, optional, together): PEM client certificate and key.
tls.insecure_skip_verify (bool, default false): accept any server certificate (tests only).
username (string, optional) with password_file (or AUDIT_HTTP_PASSWORD): HTTP Basic
    authentication (elasticsearch, webhook).
token_file (string, optional; else AUDIT_HTTP_TOKEN): elasticsearch `ApiKey TOKEN`,
    webhook `Bearer TOKEN`, splunk-hec `Splunk TOKEN` (required there). Secret files must
    not be group- or other-readable.
index (string): elasticsearch: required, the index, with optional %Y %m %d of the event's
    UTC date (\"audit-%Y.%m\"); splunk-hec: optional, the Splunk index.
source, sourcetype (string, optional; splunk-hec): the HEC event metadata (sourcetype
    default \"_json\").
ack (bool, default: when the server offers it; splunk-hec): indexer acknowledgement; flush
    waits until every ackId is confirmed. true: required (an answer without ackId is an error).
ack_timeout_ms (integer, default 10000; splunk-hec): re-send a request whose ackId is not
    confirmed within it; flush gives up (retryable) after twice that. Keep it below half the
    backend's call_timeout_ms.
channel (string, default a new UUID per instance; splunk-hec): X-Splunk-Request-Channel.
body (\"json\" | \"ndjson\", default \"json\"; webhook): a JSON array of the events or one
    event per line.
trail_id (string, default the first event's hostname; webhook): the Idempotency-Key's prefix.
signature_key_file (string, optional; webhook): HMAC-SHA256 key; the signature of the body
    goes in `signature_header` as sha256=HEX.
signature_header (string, default \"X-Audit-Signature\"; webhook).";

/// `kind`: which API the plugin speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Elasticsearch or OpenSearch `_bulk`.
    Elasticsearch,
    /// Splunk HTTP Event Collector.
    SplunkHec,
    /// A generic JSON webhook.
    Webhook,
}

/// `body` of the webhook kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyFormat {
    /// `[event,event,...]`.
    #[default]
    Json,
    /// One event per line.
    Ndjson,
}

/// The `tls` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The CA bundle (PEM).
    pub ca_file: Option<String>,
    /// Client certificate chain (PEM).
    pub cert_file: Option<String>,
    /// Client private key (PEM).
    pub key_file: Option<String>,
    /// Accept any server certificate.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

const fn default_timeout_ms() -> u64 {
    20_000
}
const fn default_max_batch_bytes() -> usize {
    5 * 1024 * 1024
}
const fn default_retries() -> u32 {
    3
}
const fn default_max_retry_wait_ms() -> u64 {
    5_000
}
const fn default_ack_timeout_ms() -> u64 {
    10_000
}
fn default_signature_header() -> String {
    "X-Audit-Signature".to_owned()
}

/// The configuration keys.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The API.
    pub kind: Kind,
    /// Base URL (webhook: the full URL).
    pub url: String,
    /// Per request.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Split larger request bodies.
    #[serde(default = "default_max_batch_bytes")]
    pub max_batch_bytes: usize,
    /// In-call attempts after the first.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Cap of a Retry-After waited for within a call.
    #[serde(default = "default_max_retry_wait_ms")]
    pub max_retry_wait_ms: u64,
    /// Extra headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// TLS settings.
    #[serde(default)]
    pub tls: TlsConfig,
    /// Basic auth user.
    pub username: Option<String>,
    /// Basic auth password file.
    pub password_file: Option<String>,
    /// Token file.
    pub token_file: Option<String>,
    /// Elasticsearch index pattern, or the Splunk index.
    pub index: Option<String>,
    /// HEC source.
    pub source: Option<String>,
    /// HEC sourcetype.
    pub sourcetype: Option<String>,
    /// HEC indexer acknowledgement.
    pub ack: Option<bool>,
    /// HEC ack deadline before a re-send.
    pub ack_timeout_ms: Option<u64>,
    /// HEC channel.
    pub channel: Option<String>,
    /// Webhook body format.
    pub body: Option<BodyFormat>,
    /// Webhook Idempotency-Key prefix.
    pub trail_id: Option<String>,
    /// Webhook HMAC key file.
    pub signature_key_file: Option<String>,
    /// Webhook signature header name.
    pub signature_header: Option<String>,
}

/// A checked configuration: the keys plus what was derived from them.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The keys as given.
    pub config: Config,
    /// `url` without a trailing `/`.
    pub base: String,
    /// `url` starts with `https://`.
    pub https: bool,
    /// HEC ack deadline (resolved default).
    pub ack_timeout_ms: u64,
    /// Webhook body (resolved default).
    pub body: BodyFormat,
    /// Webhook signature header (resolved default).
    pub signature_header: String,
}

pub(crate) fn bad(key: &str, fix: &str) -> PluginError {
    PluginError::config(format!("config `{key}`: {fix}"))
}

/// A header name: an RFC 9110 token.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl Config {
    /// Parses and checks `config_json` without touching the network or the files.
    ///
    /// # Errors
    /// A configuration error naming the key.
    pub fn parse(config_json: &str) -> Result<Parsed, PluginError> {
        let config: Config = serde_json::from_str(config_json)
            .map_err(|e| PluginError::config(format!("config: {e}")))?;
        let https = if config.url.starts_with("https://") {
            true
        } else if config.url.starts_with("http://") {
            false
        } else {
            return Err(bad(
                "url",
                &format!("{:?}: an http:// or https:// URL", config.url),
            ));
        };
        config
            .url
            .parse::<ureq::http::Uri>()
            .map_err(|e| bad("url", &format!("{:?}: {e}", config.url)))?;
        if config.timeout_ms == 0 {
            return Err(bad("timeout_ms", "at least 1"));
        }
        if config.max_batch_bytes < 1024 {
            return Err(bad("max_batch_bytes", "at least 1024"));
        }
        for (name, value) in &config.headers {
            if !is_token(name) || value.contains(['\r', '\n']) {
                return Err(bad(
                    &format!("headers.{name}"),
                    "a header name (letters, digits, -) with a one-line value",
                ));
            }
        }
        let t = &config.tls;
        if t.cert_file.is_some() != t.key_file.is_some() {
            return Err(bad(
                "tls.cert_file",
                "set tls.cert_file and tls.key_file together",
            ));
        }
        if !https && *t != TlsConfig::default() {
            return Err(bad(
                "tls",
                "applies to https:// URLs only; change `url` or drop `tls`",
            ));
        }
        if config.password_file.is_some() && config.username.is_none() {
            return Err(bad("username", "required with password_file (HTTP Basic)"));
        }
        config.check_kind_keys()?;
        Ok(Parsed {
            base: config.url.trim_end_matches('/').to_owned(),
            https,
            ack_timeout_ms: config.ack_timeout_ms.unwrap_or(default_ack_timeout_ms()),
            body: config.body.unwrap_or_default(),
            signature_header: config
                .signature_header
                .clone()
                .unwrap_or_else(default_signature_header),
            config,
        })
    }

    /// Keys that belong to one kind are refused with the others; required ones are there.
    fn check_kind_keys(&self) -> Result<(), PluginError> {
        let only = |key: &str, set: bool, kind: &str| {
            if set {
                Err(bad(key, &format!("applies to kind = \"{kind}\" only")))
            } else {
                Ok(())
            }
        };
        let hec = self.kind == Kind::SplunkHec;
        let webhook = self.kind == Kind::Webhook;
        if !hec {
            only("source", self.source.is_some(), "splunk-hec")?;
            only("sourcetype", self.sourcetype.is_some(), "splunk-hec")?;
            only("ack", self.ack.is_some(), "splunk-hec")?;
            only(
                "ack_timeout_ms",
                self.ack_timeout_ms.is_some(),
                "splunk-hec",
            )?;
            only("channel", self.channel.is_some(), "splunk-hec")?;
        }
        if !webhook {
            only("body", self.body.is_some(), "webhook")?;
            only("trail_id", self.trail_id.is_some(), "webhook")?;
            only(
                "signature_key_file",
                self.signature_key_file.is_some(),
                "webhook",
            )?;
            only(
                "signature_header",
                self.signature_header.is_some(),
                "webhook",
            )?;
        }
        match self.kind {
            Kind::Elasticsearch => {
                let index = self.index.as_deref().ok_or_else(|| {
                    bad(
                        "index",
                        "required with kind = \"elasticsearch\", e.g. \"audit-%Y.%m\"",
                    )
                })?;
                crate::index::check_index_pattern(index).map_err(|m| bad("index", &m))?;
            }
            Kind::SplunkHec => {
                if self.username.is_some() || self.password_file.is_some() {
                    return Err(bad(
                        "username",
                        "splunk-hec authenticates with token_file (or AUDIT_HTTP_TOKEN) only",
                    ));
                }
                if self.ack_timeout_ms == Some(0) {
                    return Err(bad("ack_timeout_ms", "at least 1"));
                }
                if let Some(c) = &self.channel
                    && !is_token(c)
                {
                    return Err(bad("channel", "a UUID (letters, digits and -)"));
                }
            }
            Kind::Webhook => {
                if let Some(h) = &self.signature_header
                    && !is_token(h)
                {
                    return Err(bad(
                        "signature_header",
                        "a header name (letters, digits, -)",
                    ));
                }
                if let Some(t) = &self.trail_id
                    && (t.is_empty() || t.contains(['\r', '\n']))
                {
                    return Err(bad("trail_id", "a non-empty one-line string"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn err(json: &str) -> String {
        Config::parse(json).expect_err(json).message.to_string()
    }

    #[test]
    fn parse_config() {
        let p = Config::parse(
            r#"{"kind":"elasticsearch","url":"https://es:9200/","index":"audit-%Y.%m","tls":{"ca_file":"/ca.pem"}}"#,
        )
        .expect("valid");
        assert_eq!(p.base, "https://es:9200");
        assert!(p.https);
        assert_eq!(p.config.timeout_ms, 20_000);
        let p = Config::parse(r#"{"kind":"splunk-hec","url":"http://h:8088"}"#).expect("valid");
        assert_eq!(p.config.ack, None, "on when the server offers it");
        assert_eq!(p.ack_timeout_ms, 10_000);
        assert!(err(r#"{"kind":"splunk-hec","url":"http://h","body":"json"}"#).contains("`body`"));
        assert!(
            err(r#"{"kind":"splunk-hec","url":"http://h","username":"u"}"#).contains("token_file")
        );
        let p = Config::parse(r#"{"kind":"webhook","url":"http://h/x","body":"ndjson"}"#)
            .expect("valid");
        assert_eq!(p.body, BodyFormat::Ndjson);
        assert_eq!(p.signature_header, "X-Audit-Signature");
    }

    #[test]
    fn errors_name_the_key() {
        assert!(err(r#"{"kind":"elasticsearch","url":"http://h"}"#).contains("`index`"));
        assert!(err(r#"{"kind":"kafka","url":"http://h"}"#).contains("kafka"));
        assert!(err(r#"{"kind":"webhook","url":"ftp://h"}"#).contains("`url`"));
        assert!(err(r#"{"kind":"webhook","url":"http://h","ack":true}"#).contains("`ack`"));
        assert!(err(r#"{"kind":"splunk-hec","url":"http://h","body":"json"}"#).contains("`body`"));
        assert!(
            err(r#"{"kind":"webhook","url":"http://h","tls":{"ca_file":"x"}}"#).contains("`tls`")
        );
        assert!(
            err(r#"{"kind":"webhook","url":"http://h","password_file":"p"}"#)
                .contains("`username`")
        );
        assert!(
            err(r#"{"kind":"webhook","url":"http://h","headers":{"a b":"c"}}"#)
                .contains("headers.a b")
        );
        assert!(err(r#"{"kind":"webhook","url":"http://h","nope":1}"#).contains("nope"));
        assert!(
            err(r#"{"kind":"elasticsearch","url":"http://h","index":"a-%H"}"#).contains("`index`")
        );
    }
}
