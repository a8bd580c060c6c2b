//! Opening a session: the password, TLS, timeouts, the table check or creation and this
//! connection's staging table.

use std::time::Duration;

use audit_plugin_api::PluginError;
use audit_plugin_api::secrets::{read_secret_file, secret_from_env};
use postgres::{Client, NoTls};

use crate::config::{Parsed, TlsMode};
use crate::errors::classify;
use crate::sql::Sql;
use crate::tls::MakeRustls;

/// Everything needed to (re)connect, resolved once at `open`.
#[derive(Debug)]
pub(crate) struct Target {
    pg: postgres::Config,
    tls: Option<MakeRustls>,
    statement_timeout_ms: u64,
    create_table: bool,
    /// The instance's statements.
    pub(crate) sql: Sql,
    /// For `health` and messages: `user@host:port/db`.
    pub(crate) describe: String,
}

impl Target {
    /// Reads the password and the TLS files; warns once on stderr about a password in `url`.
    ///
    /// # Errors
    /// A configuration error naming `password_file`, `tls.*` or PGPASSWORD.
    pub(crate) fn new(parsed: Parsed) -> Result<Self, PluginError> {
        let table = parsed.qualified_table();
        let Parsed {
            config,
            mut pg,
            tls_mode,
        } = parsed;
        if let Some(path) = &config.password_file {
            let password = read_secret_file("password_file", path.as_ref())?;
            pg.password(password);
        } else if pg.get_password().is_some() {
            // A plugin's `tracing` events go to its own copy of the dispatcher, which the host's
            // subscriber never sees: plugins write to stderr (docs/extension-guide.md "Logging").
            eprintln!(
                "audit: backend plugin postgres: `url` holds a password, which anyone who reads the configuration can see; use password_file or PGPASSWORD"
            );
        } else if let Some(password) = secret_from_env("PGPASSWORD")? {
            pg.password(password);
        }
        pg.connect_timeout(Duration::from_millis(config.connect_timeout_ms));
        if config.statement_timeout_ms > 0 {
            // A silent network (no RST) fails the write instead of hanging on it.
            pg.tcp_user_timeout(Duration::from_millis(
                config.statement_timeout_ms.saturating_add(5_000),
            ));
        }
        if pg.get_application_name().is_none() {
            pg.application_name("audit-backend-postgres");
        }
        let tls = match tls_mode {
            TlsMode::Disable => {
                pg.ssl_mode(postgres::config::SslMode::Disable);
                None
            }
            mode => {
                pg.ssl_mode(postgres::config::SslMode::Require);
                Some(MakeRustls::new(mode, &config.tls)?)
            }
        };
        let describe = describe(&pg, &table);
        Ok(Self {
            sql: Sql::new(&table, &config.table),
            pg,
            tls,
            statement_timeout_ms: config.statement_timeout_ms,
            create_table: config.create_table,
            describe,
        })
    }

    /// A new session, with `statement_timeout` set and the staging table created.
    ///
    /// # Errors
    /// As [`classify`]: retryable when the server is unreachable, config for
    /// authentication, TLS and permission failures.
    pub(crate) fn connect(&self) -> Result<Client, PluginError> {
        let context = format!("connecting to {}", self.describe);
        let mut client = match &self.tls {
            Some(tls) => self.pg.connect(tls.clone()),
            None => self.pg.connect(NoTls),
        }
        .map_err(|e| classify(&context, &e))?;
        client
            .batch_execute(&format!(
                "SET statement_timeout = {}",
                self.statement_timeout_ms
            ))
            .map_err(|e| classify("setting statement_timeout", &e))?;
        client
            .batch_execute(&self.sql.create_staging)
            .map_err(|e| classify("creating the temporary staging table", &e))?;
        Ok(client)
    }

    /// Creates the table when it is missing (and `create_table`), then checks that this role
    /// may INSERT and SELECT in it, so a missing grant shows at start-up.
    ///
    /// # Errors
    /// A configuration error naming `table` (or `schema`/`create_table`).
    pub(crate) fn prepare_table(&self, client: &mut Client) -> Result<(), PluginError> {
        let t = &self.sql.table;
        let exists = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[t])
            .and_then(|row| row.try_get::<_, bool>(0))
            .map_err(|e| classify(&format!("looking up table {t}"), &e))?;
        if !exists {
            if !self.create_table {
                return Err(PluginError::config(format!(
                    "config `table`: table {t} does not exist (create_table = false); create it as docs/backends/postgres.md shows, or set create_table = true"
                )));
            }
            client
                .batch_execute(&self.sql.create)
                .map_err(|e| classify(&format!("config `table`: creating table {t}"), &e))?;
        }
        let row = client
            .query_one(
                "SELECT has_table_privilege($1, 'INSERT'), has_table_privilege($1, 'SELECT')",
                &[t],
            )
            .map_err(|e| classify(&format!("checking privileges on {t}"), &e))?;
        let insert: bool = row.get(0);
        let select: bool = row.get(1);
        if !(insert && select) {
            let user = self.pg.get_user().unwrap_or_default();
            return Err(PluginError::config(format!(
                "config `table`: role {user} may not {} table {t}; run GRANT INSERT, SELECT ON {t} TO {user} (docs/backends/postgres.md lists the grants)",
                match (insert, select) {
                    (false, false) => "INSERT into or SELECT from",
                    (false, true) => "INSERT into",
                    _ => "SELECT from",
                }
            )));
        }
        Ok(())
    }
}

fn describe(pg: &postgres::Config, table: &str) -> String {
    use postgres::config::Host;
    let host = match pg.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(p)) => p.display().to_string(),
        None => String::new(),
    };
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres {}@{host}:{port}/{} table {table}",
        pg.get_user().unwrap_or_default(),
        pg.get_dbname().unwrap_or_default()
    )
}
