//! The plugin's `config` table: keys, defaults and the offline checks `validate` and `open`
//! share.

use std::str::FromStr;

use audit_plugin_api::PluginError;
use postgres::config::Host;
use serde::Deserialize;

/// Shown by `audit plugin inspect`.
pub(crate) const HELP: &str = "\
url (string, required): a libpq connection string, URI (postgresql://audit@db.example:5432/audit)
    or key/value (host=/run/postgresql port=5432 user=audit dbname=audit); Unix sockets too.
    Put no password here (a warning is printed): use password_file or PGPASSWORD.
password_file (string, optional): a file holding the password (mode 600, owned by this user or
    root). Without it: a password in `url`, else the PGPASSWORD environment variable.
schema (string, optional): the table's schema (default: the server's search_path).
table (string, default \"audit_events\"): letters, digits and _ only.
create_table (bool, default true): create the table and its indexes if missing; false for a
    writer role that may only INSERT and SELECT.
tls.mode (\"disable\" | \"require\" | \"verify-full\", default verify-full over TCP, disable over
    a Unix socket): require encrypts without checking the server; verify-full also checks its
    certificate against tls.ca_file and its name against the host in `url`.
tls.ca_file (string): PEM file of the CA(s) that sign the server certificate; needed by
    verify-full (a public CA: /etc/ssl/certs/ca-certificates.crt).
tls.cert_file, tls.key_file (string, optional, together): a PEM client certificate and key.
connect_timeout_ms (integer, default 10000): per connection attempt.
statement_timeout_ms (integer, default 30000; 0 = none): longest a batch may take on the
    server before it is cancelled and retried.";

/// `tls.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// No TLS.
    Disable,
    /// TLS, any server certificate (encryption against passive listeners only).
    Require,
    /// TLS, the certificate chains to `tls.ca_file` and names the host.
    VerifyFull,
}

/// The `tls` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Default: verify-full over TCP, disable over a Unix socket.
    pub mode: Option<TlsMode>,
    /// The CA bundle (PEM).
    pub ca_file: Option<String>,
    /// Client certificate chain (PEM).
    pub cert_file: Option<String>,
    /// Client private key (PEM).
    pub key_file: Option<String>,
}

impl TlsConfig {
    /// `mode` with its default for the host kind, checked against the other `tls` keys.
    fn check(&self, unix: bool) -> Result<TlsMode, PluginError> {
        let tls_mode = match (self.mode, unix) {
            (Some(mode), _) => mode,
            (None, true) => TlsMode::Disable,
            (None, false) => TlsMode::VerifyFull,
        };
        if unix && tls_mode != TlsMode::Disable {
            return Err(PluginError::config(
                "config `tls.mode`: PostgreSQL has no TLS over a Unix socket; use \"disable\" with a socket host, or a TCP host",
            ));
        }
        if tls_mode == TlsMode::VerifyFull && self.ca_file.is_none() {
            return Err(PluginError::config(
                "config `tls.ca_file`: tls.mode \"verify-full\" (the default over TCP) needs the CA that signs the server's certificate (a PEM file; for a public CA /etc/ssl/certs/ca-certificates.crt)",
            ));
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err(PluginError::config(
                "config `tls.cert_file`/`tls.key_file`: give both (the client certificate and its key) or neither",
            ));
        }
        if tls_mode == TlsMode::Disable && (self.ca_file.is_some() || self.cert_file.is_some()) {
            return Err(PluginError::config(
                "config `tls.mode`: \"disable\" with tls.ca_file or tls.cert_file set; remove them or choose \"verify-full\"",
            ));
        }
        Ok(tls_mode)
    }
}

const fn default_true() -> bool {
    true
}

const fn default_connect_timeout_ms() -> u64 {
    10_000
}

const fn default_statement_timeout_ms() -> u64 {
    30_000
}

fn default_table() -> String {
    "audit_events".to_owned()
}

/// The configuration keys.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// libpq connection string or URI.
    pub url: String,
    /// File holding the password.
    pub password_file: Option<String>,
    /// Schema of the table.
    pub schema: Option<String>,
    /// The table name.
    #[serde(default = "default_table")]
    pub table: String,
    /// Create the table if missing.
    #[serde(default = "default_true")]
    pub create_table: bool,
    /// TLS settings.
    #[serde(default)]
    pub tls: TlsConfig,
    /// Per connection attempt.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Server-side limit per statement; 0 = none.
    #[serde(default = "default_statement_timeout_ms")]
    pub statement_timeout_ms: u64,
}

/// A parsed configuration: the keys and the connection settings from `url`.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The keys as given.
    pub config: Config,
    /// `url`, parsed (no password applied yet).
    pub pg: postgres::Config,
    /// `tls.mode` with its default applied.
    pub tls_mode: TlsMode,
}

impl Config {
    /// Parses and checks the JSON configuration, offline (no file is read, nothing
    /// connects).
    ///
    /// # Errors
    /// A configuration error naming the key.
    pub fn parse(json: &str) -> Result<Parsed, PluginError> {
        let c: Self =
            serde_json::from_str(json).map_err(|e| PluginError::config(format!("config: {e}")))?;
        check_identifier("table", &c.table)?;
        if let Some(schema) = &c.schema {
            check_identifier("schema", schema)?;
        }
        let pg = postgres::Config::from_str(&c.url).map_err(|e| {
            PluginError::config(format!(
                "config `url`: not a libpq connection string or URI ({e}); e.g. postgresql://audit@db.example:5432/audit or host=/run/postgresql dbname=audit"
            ))
        })?;
        if pg.get_user().is_none() {
            return Err(PluginError::config(
                "config `url`: no user; add one (postgresql://USER@HOST/DB or user=USER)",
            ));
        }
        if pg.get_hosts().is_empty() {
            return Err(PluginError::config(
                "config `url`: no host; add one (a name, an address, or a Unix socket directory such as /run/postgresql)",
            ));
        }
        let unix = pg.get_hosts().iter().any(|h| matches!(h, Host::Unix(_)));
        let tls_mode = c.tls.check(unix)?;
        if c.connect_timeout_ms == 0 {
            return Err(PluginError::config(
                "config `connect_timeout_ms`: must be at least 1",
            ));
        }
        if c.password_file.is_some() && pg.get_password().is_some() {
            return Err(PluginError::config(
                "config `password_file`: `url` holds a password too; remove it from `url`",
            ));
        }
        Ok(Parsed {
            config: c,
            pg,
            tls_mode,
        })
    }
}

impl Parsed {
    /// The table as SQL: `"schema"."table"` or `"table"`.
    pub fn qualified_table(&self) -> String {
        match &self.config.schema {
            Some(s) => format!("\"{s}\".\"{}\"", self.config.table),
            None => format!("\"{}\"", self.config.table),
        }
    }
}

fn check_identifier(key: &str, name: &str) -> Result<(), PluginError> {
    let valid = name
        .chars()
        .next()
        .is_some_and(|ch| ch.is_ascii_alphabetic() || ch == '_')
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        && name.len() <= 50;
    if valid {
        Ok(())
    } else {
        Err(PluginError::config(format!(
            "config `{key}`: `{name}` is not a valid name (letters, digits and _, not starting with a digit, at most 50)"
        )))
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use audit_plugin_api::ErrorKind;

    #[test]
    fn parse_config() {
        let p = Config::parse(
            r#"{"url":"postgresql://audit@db.example/audit","tls":{"ca_file":"ca.pem"}}"#,
        )
        .expect("valid");
        assert_eq!(
            (
                p.config.table.as_str(),
                p.config.create_table,
                p.tls_mode,
                p.config.connect_timeout_ms,
                p.config.statement_timeout_ms
            ),
            ("audit_events", true, TlsMode::VerifyFull, 10_000, 30_000)
        );
        assert_eq!(p.qualified_table(), "\"audit_events\"");
        let p = Config::parse(
            r#"{"url":"host=/run/postgresql user=audit dbname=audit","schema":"audit","table":"trail"}"#,
        )
        .expect("valid");
        assert_eq!(p.tls_mode, TlsMode::Disable);
        assert_eq!(p.qualified_table(), "\"audit\".\"trail\"");
        for (json, key) in [
            (
                r#"{"url":"postgresql://a@h/d","colour":1}"#,
                "unknown field `colour`",
            ),
            (r#"{}"#, "missing field `url`"),
            (
                r#"{"url":"postgresql://a@h/d","tls":{"mode":"disable","colour":1}}"#,
                "unknown field `colour`",
            ),
            (
                r#"{"url":"postgresql://a@h/d","tls":{"mode":"disable"},"table":"x; DROP"}"#,
                "config `table`",
            ),
            (
                r#"{"url":"postgresql://a@h/d","tls":{"mode":"disable"},"schema":"1x"}"#,
                "config `schema`",
            ),
            (r#"{"url":"postgresql://a@h:port/d"}"#, "config `url`"),
            (
                r#"{"url":"host=h dbname=d","tls":{"mode":"disable"}}"#,
                "config `url`: no user",
            ),
            (r#"{"url":"postgresql://a@h/d"}"#, "config `tls.ca_file`"),
            (
                r#"{"url":"postgresql://a@h/d","tls":{"mode":"sometimes"}}"#,
                "unknown variant `sometimes`",
            ),
            (
                r#"{"url":"host=/run/postgresql user=a","tls":{"mode":"require"}}"#,
                "config `tls.mode`",
            ),
            (
                r#"{"url":"postgresql://a@h/d","tls":{"mode":"require","cert_file":"c.pem"}}"#,
                "tls.key_file",
            ),
            (
                r#"{"url":"postgresql://a:pw@h/d","password_file":"p","tls":{"mode":"disable"}}"#,
                "config `password_file`",
            ),
            (
                r#"{"url":"postgresql://a@h/d","tls":{"mode":"disable"},"connect_timeout_ms":0}"#,
                "config `connect_timeout_ms`",
            ),
        ] {
            let e = Config::parse(json).expect_err(json);
            assert_eq!(e.kind, ErrorKind::Config);
            assert!(e.message.as_str().contains(key), "{json}: {e}");
        }
    }
}
