//! The TOML configuration: `[trail]`, `[trail.policy]`, `[trail.integrity]`, `[[backends]]`.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

mod backends;
mod backfill;
mod describe;
mod entry;
mod interpolate;
mod keys;
mod locate;
mod policy;
mod sealing;

pub use entry::BackendEntry;
pub use keys::{MAX_KEY_FILE_BYTES, read_key_file, read_signing_key_file};
use locate::{column_of, key_at_line, line_of, snippet, with_suggestion};

use crate::file::DEFAULT_MAX_FILE_BYTES;
use crate::settings::{
    DEFAULT_FLUSH_INTERVAL_MS, DEFAULT_QUEUE_CAPACITY, DEFAULT_SHUTDOWN_TIMEOUT_MS, Durability,
    OnFull,
};
use audit_format::error::{ConfigError, Error, Result};
use audit_format::policy::CompliancePolicy;
use audit_format::record::Integrity;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    trail: RawTrail,
    #[serde(default)]
    backends: Vec<Spanned<toml::Table>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTrail {
    storage_path: Option<Spanned<String>>,
    plugin_dir: Option<Spanned<String>>,
    durability: Option<Durability>,
    flush_interval_ms: Option<Spanned<u64>>,
    shutdown_timeout_ms: Option<u64>,
    queue_capacity: Option<Spanned<usize>>,
    on_full: Option<OnFull>,
    allow_insecure_permissions: Option<bool>,
    file_mode: Option<Spanned<String>>,
    #[serde(default)]
    policy: policy::RawPolicy,
    #[serde(default)]
    integrity: RawIntegrity,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawIntegrity {
    hmac_key_file: Option<Spanned<String>>,
    signing_key_file: Option<Spanned<String>>,
    seal_interval_ms: Option<Spanned<u64>>,
}

/// The text being parsed and where it came from: for errors naming the file, the line and
/// the key, for relative paths and for `${...}` interpolation.
struct Cx<'a> {
    text: &'a str,
    path: &'a Path,
    /// The configuration file's directory, absolute.
    base: PathBuf,
}

impl Cx<'_> {
    /// `p` against the file's directory, `.` components and repeated or trailing `/`
    /// removed (which never changes what it names; `..` is kept: it may cross a symlink).
    fn resolve(&self, p: &Path) -> PathBuf {
        let joined = if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        };
        joined.components().collect()
    }

    fn err(&self, line: Option<usize>, key: &str, message: String) -> Error {
        ConfigError {
            file: self.path.to_path_buf(),
            line,
            column: None,
            key: key.to_owned(),
            message,
        }
        .into()
    }

    /// A TOML syntax or type error: line and column, the key, the message and the line with
    /// a caret under what the parser pointed at.
    fn syntax_error(&self, e: &toml::de::Error) -> Error {
        let message = with_suggestion(e.message().trim());
        let Some(span) = e.span() else {
            return self.err(None, "(document)", message);
        };
        ConfigError {
            file: self.path.to_path_buf(),
            line: Some(line_of(self.text, span.start)),
            column: u32::try_from(column_of(self.text, span.start)).ok(),
            key: key_at_line(self.text, line_of(self.text, span.start)),
            message: format!("{message}\n{}", snippet(self.text, span)),
        }
        .into()
    }

    /// A path setting after `${...}` interpolation, resolved, with its line.
    fn path_value(
        &self,
        value: Option<Spanned<String>>,
        key: &str,
    ) -> Result<Option<(Option<usize>, PathBuf)>> {
        let Some(v) = value else { return Ok(None) };
        let line = Some(line_of(self.text, v.span().start));
        let text = interpolate::expand(v.get_ref(), key, &self.base)
            .map_err(|m| self.err(line, key, m))?;
        Ok(Some((line, self.resolve(Path::new(&text)))))
    }
}

/// How lines are checksummed, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntegrityConfig {
    /// Plain SHA-256.
    Sha256,
    /// HMAC-SHA256 with the key in this file.
    HmacKeyFile(PathBuf),
}

/// One configured backend.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendConfig {
    /// The built-in file backend.
    File {
        /// A name for messages (default `file`).
        name: String,
        /// The directory (absolute, or relative to the working directory when the config
        /// came from a string).
        path: PathBuf,
        /// Size rotation threshold (0: never).
        max_file_bytes: u64,
        /// The line of the `[[backends]]` entry (`None`: no entry, the default backend at
        /// `trail.storage_path`).
        line: Option<usize>,
    },
    /// A backend plugin (shared library).
    Plugin {
        /// A name for messages (default: the plugin's own name).
        name: Option<String>,
        /// The library file, resolved (a bare name is looked up in `trail.plugin_dir`).
        library: PathBuf,
        /// Refuse the library unless its SHA-256 is this.
        sha256: Option<String>,
        /// Skip the ownership/permission checks on the library.
        allow_insecure_permissions: bool,
        /// The `config` table, as the JSON handed to the plugin's `open`.
        config_json: String,
        /// How long one call may take before it counts as a retryable failure.
        call_timeout_ms: u64,
        /// How long the plugin's `open` may take before start-up fails (default:
        /// `call_timeout_ms`).
        open_timeout_ms: u64,
        /// `required`, `spool_max_bytes`, `spool_dir` (resolved), `retry_initial_ms`,
        /// `retry_max_ms`, `backfill`, `refuse`.
        options: crate::BackendOptions,
        /// The line of the `[[backends]]` entry, for messages.
        line: Option<usize>,
    },
}

/// A validated configuration with every path resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrailConfig {
    /// The file it came from.
    pub source: PathBuf,
    /// `trail.storage_path`.
    pub storage_path: PathBuf,
    /// `trail.durability`.
    pub durability: Durability,
    /// `trail.flush_interval_ms`.
    pub flush_interval_ms: u64,
    /// `trail.shutdown_timeout_ms`.
    pub shutdown_timeout_ms: u64,
    /// `trail.queue_capacity`.
    pub queue_capacity: usize,
    /// `trail.on_full`.
    pub on_full: OnFull,
    /// `trail.allow_insecure_permissions`: accept storage and spool directories writable by
    /// group or others or owned by another user (unsafe; default `false`).
    pub allow_insecure_permissions: bool,
    /// `trail.file_mode`: the mode of new audit files (default 0o600).
    pub file_mode: u32,
    /// `[trail.policy]`.
    pub policy: CompliancePolicy,
    /// `[trail.integrity]`.
    pub integrity: IntegrityConfig,
    /// `trail.integrity.signing_key_file`: seals are signed with this key (`None`: no seals).
    pub signing_key_file: Option<PathBuf>,
    /// `trail.integrity.seal_interval_ms` (default 60,000).
    pub seal_interval_ms: u64,
    /// `[[backends]]`, or one file backend at `storage_path` when there are none.
    pub backends: Vec<BackendConfig>,
}

impl BackendConfig {
    /// The line of its `[[backends]]` entry in the configuration file, when it has one.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::File { line, .. } | Self::Plugin { line, .. } => *line,
        }
    }

    /// The name it is configured with: a file backend's name; a plugin backend's `name`, or
    /// else its library's file name (the plugin's own name is known once it is loaded).
    pub fn configured_name(&self) -> String {
        match self {
            Self::File { name, .. } => name.clone(),
            Self::Plugin { name, library, .. } => name.clone().unwrap_or_else(|| {
                library.file_name().map_or_else(
                    || library.display().to_string(),
                    |f| f.to_string_lossy().into_owned(),
                )
            }),
        }
    }
}

impl TrailConfig {
    /// Reads and validates a configuration file.
    ///
    /// # Errors
    /// [`Error::Config`] naming the file, the line and the key.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            line: None,
            column: None,
            key: "(file)".into(),
            message: format!("cannot read the configuration file: {e}"),
        })?;
        Self::parse(&text, path)
    }

    /// Validates configuration text; relative paths resolve against `path`'s directory.
    ///
    /// # Errors
    /// [`Error::Config`] naming the file, the line and the key.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        // Relative paths resolve against the config file's directory, made absolute so a
        // library path never turns into a bare name the dynamic loader would search for.
        let base = std::path::absolute(path)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_default();
        let cx = Cx { text, path, base };
        let raw: RawConfig = toml::from_str(text).map_err(|e| cx.syntax_error(&e))?;
        let t = raw.trail;
        let policy = policy::parse(t.policy, &cx)?;
        let flush_interval_ms = match t.flush_interval_ms {
            Some(v) if *v.get_ref() == 0 => {
                return Err(cx.err(
                    Some(line_of(text, v.span().start)),
                    "trail.flush_interval_ms",
                    "must be at least 1 (milliseconds)".into(),
                ));
            }
            Some(v) => v.into_inner(),
            None => DEFAULT_FLUSH_INTERVAL_MS,
        };
        let queue_capacity = match t.queue_capacity {
            Some(v) if *v.get_ref() == 0 => {
                return Err(cx.err(
                    Some(line_of(text, v.span().start)),
                    "trail.queue_capacity",
                    "must be at least 1 (events)".into(),
                ));
            }
            Some(v) => v.into_inner(),
            None => DEFAULT_QUEUE_CAPACITY,
        };
        let file_mode = match &t.file_mode {
            Some(v) => parse_file_mode(v.get_ref()).map_err(|why| {
                cx.err(Some(line_of(text, v.span().start)), "trail.file_mode", why)
            })?,
            None => audit_format::store::DEFAULT_FILE_MODE,
        };
        let storage_path = cx
            .path_value(t.storage_path, "trail.storage_path")?
            .map_or_else(|| cx.resolve(Path::new("audit_logs")), |(_, p)| p);
        let plugin_dir = cx.path_value(t.plugin_dir, "trail.plugin_dir")?;
        let signing_key_file = cx.path_value(
            t.integrity.signing_key_file,
            "trail.integrity.signing_key_file",
        )?;
        let (signing_key_file, seal_interval_ms) =
            sealing::parse(signing_key_file, t.integrity.seal_interval_ms, text)
                .map_err(|(line, key, message)| cx.err(line, key, message))?;
        let integrity =
            match cx.path_value(t.integrity.hmac_key_file, "trail.integrity.hmac_key_file")? {
                None => IntegrityConfig::Sha256,
                Some((line, key_path)) => {
                    read_key_file(&key_path)
                        .map_err(|m| cx.err(line, "trail.integrity.hmac_key_file", m))?;
                    IntegrityConfig::HmacKeyFile(key_path)
                }
            };
        let mut backends = backends::parse(
            raw.backends,
            &cx,
            &storage_path,
            plugin_dir.as_ref().map(|(_, p)| p.as_path()),
        )?;
        if backends.is_empty() {
            backends.push(BackendConfig::File {
                name: "file".into(),
                path: storage_path.clone(),
                max_file_bytes: DEFAULT_MAX_FILE_BYTES,
                line: None,
            });
        }
        Ok(Self {
            source: path.to_path_buf(),
            storage_path,
            durability: t.durability.unwrap_or_default(),
            flush_interval_ms,
            shutdown_timeout_ms: t.shutdown_timeout_ms.unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT_MS),
            queue_capacity,
            on_full: t.on_full.unwrap_or_default(),
            allow_insecure_permissions: t.allow_insecure_permissions.unwrap_or(false),
            file_mode,
            policy,
            integrity,
            signing_key_file,
            seal_interval_ms,
            backends,
        })
    }

    /// The [`Integrity`] this configuration selects (reads the key file).
    ///
    /// # Errors
    /// [`Error::Config`] when the key file became unreadable or invalid.
    pub fn integrity(&self) -> Result<Integrity> {
        match &self.integrity {
            IntegrityConfig::Sha256 => Ok(Integrity::Sha256),
            IntegrityConfig::HmacKeyFile(p) => read_key_file(p).map_err(|message| {
                ConfigError {
                    file: self.source.clone(),
                    line: None,
                    column: None,
                    key: "trail.integrity.hmac_key_file".into(),
                    message,
                }
                .into()
            }),
        }
    }

    /// Where backend `index` (0-based, as in [`TrailConfig::backends`]) is configured, named
    /// `name` (for a plugin without a `name`: the plugin's own, once loaded).
    pub fn entry(&self, index: usize, name: &str) -> BackendEntry {
        BackendEntry {
            index: index + 1,
            name: name.to_owned(),
            file: self.source.clone(),
            line: self.backends.get(index).and_then(BackendConfig::line),
        }
    }

    /// Loads (and checks) the library of a plugin backend without opening an instance.
    ///
    /// # Errors
    /// [`Error::Plugin`] naming the library and what to do.
    pub fn load_plugin(&self, backend: &BackendConfig) -> Result<crate::plugin::LoadedPlugin> {
        match backend {
            BackendConfig::Plugin {
                library,
                sha256,
                allow_insecure_permissions,
                ..
            } => crate::plugin::LoadedPlugin::load(
                library,
                &crate::plugin::LoadOptions {
                    sha256: sha256.clone(),
                    allow_insecure_permissions: *allow_insecure_permissions,
                },
            ),
            BackendConfig::File { .. } => Err(Error::backend("not a plugin backend")),
        }
    }
}

/// `trail.file_mode`: octal digits (`"0640"`), a mode [`check_file_mode`] allows.
///
/// [`check_file_mode`]: audit_format::store::check_file_mode
fn parse_file_mode(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    let mode = u32::from_str_radix(digits, 8)
        .ok()
        .filter(|_| !digits.is_empty() && digits.len() <= 4)
        .ok_or_else(|| {
            format!(
                "`{text}` is not an octal mode: write it as a string of octal digits, e.g. \"0640\""
            )
        })?;
    match audit_format::store::check_file_mode(mode) {
        Some(why) => Err(why),
        None => Ok(mode),
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::delivery::OnRefuse;

    fn parse(text: &str) -> Result<TrailConfig> {
        TrailConfig::parse(text, Path::new("/etc/audit/audit.toml"))
    }

    fn cfg_err(text: &str) -> ConfigError {
        match parse(text) {
            Err(Error::Config(e)) => e,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_and_relative_paths() -> Result<()> {
        let c = parse("")?;
        assert_eq!(c.storage_path, Path::new("/etc/audit/audit_logs"));
        let c = parse("[trail]\nstorage_path = \"./a//b/./c/\"\n")?;
        assert_eq!(
            c.storage_path.as_os_str(),
            "/etc/audit/a/b/c",
            "`.`, `//` and a trailing `/` are removed"
        );
        assert_eq!(c.durability, Durability::Batched);
        assert_eq!(c.queue_capacity, DEFAULT_QUEUE_CAPACITY);
        assert_eq!(c.backends.len(), 1);
        assert!(!c.allow_insecure_permissions);
        assert!(parse("[trail]\nallow_insecure_permissions = true\n")?.allow_insecure_permissions);
        let c = parse(
            "[trail]\nstorage_path = \"logs\"\ndurability = \"sync\"\n[[backends]]\ntype = \"file\"\npath = \"/abs\"\nmax_file_bytes = 10\n",
        )?;
        assert_eq!(c.storage_path, Path::new("/etc/audit/logs"));
        assert_eq!(c.durability, Durability::Sync);
        assert!(
            matches!(&c.backends[0], BackendConfig::File { path, max_file_bytes: 10, .. } if path == Path::new("/abs"))
        );
        Ok(())
    }

    #[test]
    fn refuse_defaults_to_dead_letter_and_fail_is_read() -> Result<()> {
        let plugin = "[[backends]]\ntype = \"plugin\"\nlibrary = \"/x.so\"\n";
        for (extra, want) in [
            ("", OnRefuse::DeadLetter),
            ("refuse = \"dead-letter\"\n", OnRefuse::DeadLetter),
            ("refuse = \"fail\"\n", OnRefuse::Fail),
        ] {
            let c = parse(&format!("{plugin}{extra}"))?;
            assert!(
                matches!(&c.backends[0], BackendConfig::Plugin { options, .. } if options.on_refuse == want),
                "{extra}"
            );
        }
        Ok(())
    }

    #[test]
    fn errors_name_key_and_line() {
        let e = cfg_err("[trail]\ncolour = 1\n");
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("unknown field `colour`"), "{e}");
        let e = cfg_err("[trail]\n\ndurability = \"fast\"\n");
        assert_eq!((e.line, e.key.as_str()), (Some(3), "trail.durability"));
        assert_eq!(e.column, Some(14));
        assert!(
            e.to_string()
                .starts_with("/etc/audit/audit.toml:3:14: trail.durability: "),
            "{e}"
        );
        assert!(
            e.message
                .ends_with("\n  |\n3 | durability = \"fast\"\n  |              ^^^^^^"),
            "{e}"
        );
        let e = cfg_err("[trail]\nqueue_capacity = \"many\"\n");
        assert_eq!((e.line, e.key.as_str()), (Some(2), "trail.queue_capacity"));
        let e = cfg_err("[trail]\nqueue_capacity = 0\n");
        assert_eq!((e.line, e.key.as_str()), (Some(2), "trail.queue_capacity"));
        let e = cfg_err("[trail.policy]\nlevel = \"hipaa\"\nencrypt_audit_logs = true\n");
        assert_eq!(
            (e.line, e.key.as_str()),
            (Some(3), "trail.policy.encrypt_audit_logs")
        );
        let e = cfg_err("[trail.policy]\narchive_after_days = 30\n");
        assert_eq!(
            (e.line, e.key.as_str()),
            (Some(2), "trail.policy.archive_after_days")
        );
        let e = cfg_err("[[backends]]\ntype = \"tape\"\n");
        assert_eq!((e.line, e.key.as_str()), (Some(2), "backends[1].type"));
        assert!(e.message.contains("tape"));
        let e = cfg_err("[[backends]]\ntype = \"file\"\nspeed = 3\n");
        assert!(e.message.contains("speed"), "{e}");
        let e = cfg_err("[trail.integrity]\nhmac_key_file = \"/nonexistent/key\"\n");
        assert_eq!(
            (e.line, e.key.as_str()),
            (Some(2), "trail.integrity.hmac_key_file")
        );
        let e = cfg_err("[trail\n");
        assert_eq!(e.line, Some(1));
        let plugin = "[[backends]]\ntype = \"plugin\"\nlibrary = \"/x.so\"\n";
        let e = cfg_err(&format!("{plugin}refuse = \"drop\"\n"));
        assert_eq!((e.line, e.key.as_str()), (Some(4), "backends[1].refuse"));
        assert!(e.message.contains("`drop` is not a refusal mode"), "{e}");
        let e = cfg_err(&format!("{plugin}required = false\nrefuse = \"fail\"\n"));
        assert_eq!((e.line, e.key.as_str()), (Some(5), "backends[1].refuse"));
        assert!(e.message.contains("needs required = true"), "{e}");
        let shown = cfg_err("[trail]\nflush_interval_ms = 0\n").to_string();
        assert!(
            shown.starts_with("/etc/audit/audit.toml:2: trail.flush_interval_ms:"),
            "{shown}"
        );
    }

    #[test]
    fn string_values_are_interpolated_after_parsing() -> Result<()> {
        let dir = tempfile::tempdir().map_err(Error::io("tempdir", Path::new("/tmp")))?;
        let secret = dir.path().join("token");
        std::fs::write(&secret, "s3cret \"quoted\"\n").map_err(Error::io("write", &secret))?;
        std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(Error::io("chmod", &secret))?;
        let text = format!(
            "[trail]\nstorage_path = \"${{HOME}}/logs\"\n[[backends]]\ntype = \"plugin\"\nlibrary = \"/x.so\"\n[backends.config]\ntoken = \"${{file:{}}}\"\nliteral = \"$${{HOME}}\"\n",
            secret.display()
        );
        let c = parse(&text)?;
        let home = std::env::var("HOME").unwrap_or_default();
        assert_eq!(c.storage_path, Path::new(&format!("{home}/logs")));
        let BackendConfig::Plugin { config_json, .. } = &c.backends[0] else {
            panic!("a plugin backend");
        };
        let config: serde_json::Value =
            serde_json::from_str(config_json).map_err(|e| Error::backend(e.to_string()))?;
        assert_eq!(config["token"], "s3cret \"quoted\"");
        assert_eq!(config["literal"], "${HOME}");
        assert!(
            !c.describe().contains("s3cret"),
            "config check's summary never shows a plugin's config values"
        );
        let e = cfg_err("[trail]\n\nstorage_path = \"${AUDIT_SURELY_UNSET_VARIABLE}\"\n");
        assert_eq!((e.line, e.key.as_str()), (Some(3), "trail.storage_path"));
        assert!(e.message.contains("AUDIT_SURELY_UNSET_VARIABLE"), "{e}");
        let e = cfg_err(
            "[[backends]]\ntype = \"plugin\"\nlibrary = \"/x.so\"\nconfig = { password = \"${file:/nonexistent/pw}\" }\n",
        );
        assert_eq!(
            (e.line, e.key.as_str()),
            (Some(4), "backends[1].config.password")
        );
        assert!(e.message.contains("/nonexistent/pw"), "{e}");
        Ok(())
    }
}
