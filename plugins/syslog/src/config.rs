//! The plugin's `config` table: keys, defaults and the offline checks `validate` and `open`
//! share.

use audit_plugin_api::PluginError;
use serde::Deserialize;

/// Shown by `audit plugin inspect`.
pub(crate) const HELP: &str = "\
address (string, required): the syslog server as host:port (a name, an IPv4 address or
    [IPv6]), for example \"siem.example:6514\".
transport (\"tls\" | \"tcp\", default \"tls\"): TLS needs tls.ca_file; tcp sends in clear text.
framing (\"octet-counting\" | \"lf\", default \"octet-counting\"): RFC 6587 framing.
format (\"json\" | \"cef\" | \"leef\", default \"json\"): the MSG part: the canonical JSON line,
    ArcSight CEF or QRadar LEEF (docs/backends/syslog.md has the field mappings).
app_name (string, default \"audit\"): RFC 5424 APP-NAME, 1-48 printable ASCII characters.
facility (string, default \"authpriv\"): kern, user, mail, daemon, auth, syslog, lpr, news,
    uucp, cron, authpriv, ftp, ntp, security, console, clock, local0 .. local7.
hostname (string, default the event's hostname): RFC 5424 HOSTNAME, 1-255 printable ASCII.
enterprise_number (string, default \"32473\"): the private enterprise number in the
    structured-data id audit@N (32473 is reserved for documentation; use your own).
tls.ca_file (string, required with transport \"tls\"): PEM file of the CA(s) that sign the
    server's certificate.
tls.cert_file, tls.key_file (string, optional, together): PEM client certificate and key, for
    servers that require mutual TLS.
tls.server_name (string, default the host of `address`): the name the server certificate must
    carry.
connect_timeout_ms (integer, default 10000): per connection attempt, TLS handshake included.
write_timeout_ms (integer, default 30000): longest a blocked write may wait for the server.
cef_vendor, cef_product, cef_version (string, defaults \"audit-trail\", \"audit\", the plugin
    version): the CEF header's device fields (also used by LEEF).
leef_version (\"1.0\" | \"2.0\", default \"2.0\"): LEEF 1.0 separates attributes with a tab,
    2.0 with the delimiter declared in its header (^).";

/// `transport`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// TLS over TCP (RFC 5425).
    #[default]
    Tls,
    /// Plain TCP (RFC 6587).
    Tcp,
}

/// `framing` (RFC 6587).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Framing {
    /// `LEN SP MSG`: keeps any message whole.
    #[default]
    OctetCounting,
    /// `MSG LF`: every format here escapes line breaks, so this is safe too.
    Lf,
}

/// `format`: what goes into MSG.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// The canonical JSON line, byte for byte.
    #[default]
    Json,
    /// ArcSight Common Event Format.
    Cef,
    /// IBM QRadar Log Event Extended Format.
    Leef,
}

/// `leef_version`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum LeefVersion {
    /// Tab-separated attributes.
    #[serde(rename = "1.0")]
    V1,
    /// Attributes separated by the delimiter in the header (`^`).
    #[default]
    #[serde(rename = "2.0")]
    V2,
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
    /// The name to verify; default the host of `address`.
    pub server_name: Option<String>,
}

const fn default_connect_timeout_ms() -> u64 {
    10_000
}

const fn default_write_timeout_ms() -> u64 {
    30_000
}

fn default_app_name() -> String {
    "audit".to_owned()
}

fn default_facility() -> String {
    "authpriv".to_owned()
}

fn default_enterprise_number() -> String {
    "32473".to_owned()
}

fn default_cef_vendor() -> String {
    "audit-trail".to_owned()
}

fn default_cef_product() -> String {
    "audit".to_owned()
}

fn default_cef_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// The configuration keys.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `host:port`.
    pub address: String,
    /// TLS or plain TCP.
    #[serde(default)]
    pub transport: Transport,
    /// RFC 6587 framing.
    #[serde(default)]
    pub framing: Framing,
    /// The MSG format.
    #[serde(default)]
    pub format: Format,
    /// RFC 5424 APP-NAME.
    #[serde(default = "default_app_name")]
    pub app_name: String,
    /// Facility name.
    #[serde(default = "default_facility")]
    pub facility: String,
    /// RFC 5424 HOSTNAME; default the event's.
    pub hostname: Option<String>,
    /// The enterprise number in `audit@N`.
    #[serde(default = "default_enterprise_number")]
    pub enterprise_number: String,
    /// TLS settings.
    #[serde(default)]
    pub tls: TlsConfig,
    /// Per connection attempt.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Per blocked write.
    #[serde(default = "default_write_timeout_ms")]
    pub write_timeout_ms: u64,
    /// CEF/LEEF vendor.
    #[serde(default = "default_cef_vendor")]
    pub cef_vendor: String,
    /// CEF/LEEF product.
    #[serde(default = "default_cef_product")]
    pub cef_product: String,
    /// CEF/LEEF product version.
    #[serde(default = "default_cef_version")]
    pub cef_version: String,
    /// LEEF 1.0 or 2.0.
    #[serde(default)]
    pub leef_version: LeefVersion,
}

/// A checked configuration: the keys plus what was derived from them.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The keys as given.
    pub config: Config,
    /// The host part of `address` (brackets removed).
    pub host: String,
    /// The port of `address`.
    pub port: u16,
    /// The facility's code (0-23).
    pub facility_code: u8,
}

/// The facility names of RFC 5424 section 6.2.1 (with the usual Linux names), by code.
const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "security", "console", "clock", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

/// Whether `s` is 1..=`max` printable US-ASCII characters (RFC 5424 PRINTUSASCII).
pub(crate) fn is_print_ascii(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| (33..=126).contains(&b))
}

fn bad(key: &str, fix: &str) -> PluginError {
    PluginError::config(format!("config `{key}`: {fix}"))
}

impl Config {
    /// Parses and checks `config_json` without touching the network or the files.
    ///
    /// # Errors
    /// A configuration error naming the key.
    pub fn parse(config_json: &str) -> Result<Parsed, PluginError> {
        let config: Config = serde_json::from_str(config_json)
            .map_err(|e| PluginError::config(format!("config: {e}")))?;
        let (host, port) = split_address(&config.address)?;
        let facility_code = FACILITIES
            .iter()
            .position(|f| *f == config.facility)
            .and_then(|p| u8::try_from(p).ok())
            .ok_or_else(|| {
                bad(
                    "facility",
                    &format!(
                        "unknown facility {:?}; one of {}",
                        config.facility,
                        FACILITIES.join(", ")
                    ),
                )
            })?;
        if !is_print_ascii(&config.app_name, 48) {
            return Err(bad(
                "app_name",
                "1 to 48 printable ASCII characters, no spaces (RFC 5424 APP-NAME)",
            ));
        }
        if let Some(h) = &config.hostname
            && !is_print_ascii(h, 255)
        {
            return Err(bad(
                "hostname",
                "1 to 255 printable ASCII characters, no spaces (RFC 5424 HOSTNAME)",
            ));
        }
        let en = &config.enterprise_number;
        if en.is_empty()
            || en
                .split('.')
                .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(bad(
                "enterprise_number",
                "a private enterprise number: digits, optionally dotted (32473, 32473.1)",
            ));
        }
        for (key, ms) in [
            ("connect_timeout_ms", config.connect_timeout_ms),
            ("write_timeout_ms", config.write_timeout_ms),
        ] {
            if ms == 0 {
                return Err(bad(key, "must be at least 1 (milliseconds)"));
            }
        }
        check_tls(&config)?;
        Ok(Parsed {
            config,
            host,
            port,
            facility_code,
        })
    }
}

/// `host:port`, `[v6]:port`.
fn split_address(address: &str) -> Result<(String, u16), PluginError> {
    let fix = "host:port, for example \"siem.example:6514\" or \"[::1]:514\"";
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| bad("address", &format!("{address:?} has no port; {fix}")))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(bad("address", &format!("{address:?} has no host; {fix}")));
    }
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| {
            bad(
                "address",
                &format!("{address:?}: the port is not 1-65535; {fix}"),
            )
        })?;
    Ok((host.to_owned(), port))
}

fn check_tls(config: &Config) -> Result<(), PluginError> {
    let tls = &config.tls;
    if config.transport == Transport::Tcp {
        if *tls != TlsConfig::default() {
            return Err(bad(
                "tls",
                "transport \"tcp\" sends in clear text: remove the tls table or set transport = \"tls\"",
            ));
        }
        return Ok(());
    }
    if tls.ca_file.is_none() {
        return Err(bad(
            "tls.ca_file",
            "transport \"tls\" (the default) needs the CA that signs the server's certificate (a PEM file; for a public CA /etc/ssl/certs/ca-certificates.crt)",
        ));
    }
    if tls.cert_file.is_some() != tls.key_file.is_some() {
        return Err(bad(
            "tls.cert_file`/`tls.key_file",
            "give both (the client certificate and its key) or neither",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use audit_plugin_api::ErrorKind;

    #[test]
    fn defaults_and_values() {
        let p = Config::parse(r#"{"address":"siem.example:6514","tls":{"ca_file":"ca.pem"}}"#)
            .expect("valid");
        let c = &p.config;
        assert_eq!((p.host.as_str(), p.port), ("siem.example", 6514));
        assert_eq!(c.transport, Transport::Tls);
        assert_eq!(c.framing, Framing::OctetCounting);
        assert_eq!(c.format, Format::Json);
        assert_eq!((c.app_name.as_str(), p.facility_code), ("audit", 10));
        assert_eq!(c.enterprise_number, "32473");
        assert_eq!(c.leef_version, LeefVersion::V2);
        let p = Config::parse(
            r#"{"address":"[::1]:514","transport":"tcp","framing":"lf","format":"leef","leef_version":"1.0","facility":"local7","enterprise_number":"1.2"}"#,
        )
        .expect("valid");
        assert_eq!((p.host.as_str(), p.port, p.facility_code), ("::1", 514, 23));
        assert_eq!(p.config.leef_version, LeefVersion::V1);
    }

    #[test]
    fn bad_values_name_the_key() {
        for (json, key) in [
            (
                r#"{"address":"h:1","transport":"tcp","colour":1}"#,
                "unknown field `colour`",
            ),
            (r#"{}"#, "missing field `address`"),
            (r#"{"address":"h","transport":"tcp"}"#, "config `address`"),
            (r#"{"address":"h:0","transport":"tcp"}"#, "config `address`"),
            (
                r#"{"address":":514","transport":"tcp"}"#,
                "config `address`",
            ),
            (
                r#"{"address":"h:1","transport":"udp"}"#,
                "unknown variant `udp`",
            ),
            (
                r#"{"address":"h:1","transport":"tcp","framing":"nul"}"#,
                "unknown variant `nul`",
            ),
            (
                r#"{"address":"h:1","transport":"tcp","format":"xml"}"#,
                "unknown variant `xml`",
            ),
            (
                r#"{"address":"h:1","transport":"tcp","leef_version":"3"}"#,
                "unknown variant `3`",
            ),
            (
                r#"{"address":"h:1","transport":"tcp","facility":"local8"}"#,
                "config `facility`",
            ),
            (
                r#"{"address":"h:1","transport":"tcp","app_name":"a b"}"#,
                "config `app_name`",
            ),
            (
                r#"{"address":"h:1","transport":"tcp","hostname":""}"#,
                "config `hostname`",
            ),
            (
                r#"{"address":"h:1","transport":"tcp","enterprise_number":"x"}"#,
                "config `enterprise_number`",
            ),
            (
                r#"{"address":"h:1","transport":"tcp","write_timeout_ms":0}"#,
                "config `write_timeout_ms`",
            ),
            (r#"{"address":"h:1"}"#, "config `tls.ca_file`"),
            (
                r#"{"address":"h:1","tls":{"ca_file":"a","cert_file":"c"}}"#,
                "tls.key_file",
            ),
            (
                r#"{"address":"h:1","tls":{"ca_file":"a","colour":1}}"#,
                "unknown field `colour`",
            ),
            (
                r#"{"address":"h:1","transport":"tcp","tls":{"ca_file":"a"}}"#,
                "config `tls`",
            ),
        ] {
            let e = Config::parse(json).expect_err(json);
            assert_eq!(e.kind, ErrorKind::Config);
            assert!(e.message.as_str().contains(key), "{json}: {e}");
        }
    }

    #[test]
    fn help_lists_every_key() {
        for key in [
            "address",
            "transport",
            "framing",
            "format",
            "app_name",
            "facility",
            "hostname",
            "enterprise_number",
            "tls.ca_file",
            "tls.cert_file",
            "tls.key_file",
            "tls.server_name",
            "connect_timeout_ms",
            "write_timeout_ms",
            "cef_vendor",
            "cef_product",
            "cef_version",
            "leef_version",
        ] {
            assert!(HELP.contains(key), "{key}");
        }
    }
}
