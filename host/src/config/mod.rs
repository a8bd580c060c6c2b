//! The TOML configuration: `[trail]`, `[trail.policy]`, `[trail.integrity]`, `[[backends]]`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

mod backfill;
mod describe;
mod entry;
mod keys;
mod locate;
mod sealing;

pub use entry::BackendEntry;
pub use keys::{MAX_KEY_FILE_BYTES, read_key_file, read_signing_key_file};
use locate::{key_at_line, line_of, line_of_key, with_suggestion};

use crate::delivery::OnRefuse;
use crate::file::DEFAULT_MAX_FILE_BYTES;
use crate::settings::{
    DEFAULT_FLUSH_INTERVAL_MS, DEFAULT_QUEUE_CAPACITY, DEFAULT_SHUTDOWN_TIMEOUT_MS, Durability,
    OnFull,
};
use audit_format::error::{ConfigError, Error, Result};
use audit_format::event::ComplianceLevel;
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
    storage_path: Option<PathBuf>,
    plugin_dir: Option<PathBuf>,
    durability: Option<Durability>,
    flush_interval_ms: Option<Spanned<u64>>,
    shutdown_timeout_ms: Option<u64>,
    queue_capacity: Option<Spanned<usize>>,
    on_full: Option<OnFull>,
    allow_insecure_permissions: Option<bool>,
    file_mode: Option<Spanned<String>>,
    #[serde(default)]
    policy: RawPolicy,
    #[serde(default)]
    integrity: RawIntegrity,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    level: Option<ComplianceLevel>,
    enabled: Option<bool>,
    retention_days: Option<u32>,
    retention_applies_to_imported: Option<bool>,
    archive_after_days: Option<Spanned<u32>>,
    encrypt_audit_logs: Option<bool>,
    require_integrity_check: Option<bool>,
    gdpr_data_subject_rights: Option<bool>,
    hipaa_minimum_necessary: Option<bool>,
    sox_change_control: Option<bool>,
    real_time_alerts: Option<bool>,
    alert_on_critical_errors: Option<bool>,
    alert_on_security_events: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawIntegrity {
    hmac_key_file: Option<Spanned<PathBuf>>,
    signing_key_file: Option<Spanned<PathBuf>>,
    seal_interval_ms: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPluginBackend {
    #[allow(dead_code, reason = "the tag, already matched")]
    r#type: String,
    name: Option<String>,
    library: String,
    sha256: Option<String>,
    required: Option<bool>,
    allow_insecure_permissions: Option<bool>,
    call_timeout_ms: Option<u64>,
    open_timeout_ms: Option<u64>,
    spool_max_bytes: Option<u64>,
    spool_dir: Option<PathBuf>,
    retry_initial_ms: Option<u64>,
    retry_max_ms: Option<u64>,
    backfill: Option<toml::Value>,
    refuse: Option<String>,
    config: Option<toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFileBackend {
    #[allow(dead_code, reason = "the tag, already matched")]
    r#type: String,
    name: Option<String>,
    path: Option<PathBuf>,
    max_file_bytes: Option<u64>,
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

/// The keys of one `[[backends]]` entry of type `kind`, with errors naming the entry.
fn backend_entry<T: serde::de::DeserializeOwned>(
    table: toml::Table,
    kind: &str,
    file: &Path,
    line: Option<usize>,
) -> Result<T> {
    toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| {
            ConfigError {
                file: file.to_path_buf(),
                line,
                key: "backends".to_owned(),
                message: format!(
                    "{} (in the [[backends]] entry with type = \"{kind}\")",
                    e.message().trim()
                ),
            }
            .into()
        })
}

/// The `refuse` key of a plugin entry: `"dead-letter"` (default) or `"fail"`, which needs
/// `required = true` (a backend that may degrade has nothing to fail closed).
fn parse_refuse(value: Option<&str>, required: bool) -> std::result::Result<OnRefuse, String> {
    match value {
        None | Some("dead-letter") => Ok(OnRefuse::DeadLetter),
        Some("fail") if required => Ok(OnRefuse::Fail),
        Some("fail") => Err(
            "\"fail\" fails the trail closed on a refused record, which needs required = true; with required = false use \"dead-letter\" (the default)".into(),
        ),
        Some(other) => Err(format!(
            "`{other}` is not a refusal mode; use \"dead-letter\" (refused records go to dead-letter.jsonl in the backend's spool directory) or \"fail\" (with required = true: a refusal fails the trail closed)"
        )),
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
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let err = |line: Option<usize>, key: &str, message: String| -> Error {
            ConfigError {
                file: path.to_path_buf(),
                line,
                key: key.to_owned(),
                message,
            }
            .into()
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            let key = line.map_or_else(|| "(document)".to_owned(), |l| key_at_line(text, l));
            err(line, &key, with_suggestion(e.message().trim()))
        })?;
        let t = raw.trail;
        let p = t.policy;
        if let Some(a) = p
            .archive_after_days
            .as_ref()
            .filter(|a| *a.get_ref() != CompliancePolicy::default().archive_after_days)
        {
            return Err(err(
                Some(line_of(text, a.span().start)),
                "trail.policy.archive_after_days",
                "archiving is not implemented; files stay in place until retention_days removes them. Remove this key (only the default, 90, is accepted)".into(),
            ));
        }
        let d = CompliancePolicy::default();
        let policy = CompliancePolicy {
            level: p.level.unwrap_or(d.level),
            enabled: p.enabled.unwrap_or(d.enabled),
            retention_days: p.retention_days.unwrap_or(d.retention_days),
            retention_applies_to_imported: p
                .retention_applies_to_imported
                .unwrap_or(d.retention_applies_to_imported),
            archive_after_days: d.archive_after_days,
            encrypt_audit_logs: p.encrypt_audit_logs.unwrap_or(d.encrypt_audit_logs),
            require_integrity_check: p
                .require_integrity_check
                .unwrap_or(d.require_integrity_check),
            gdpr_data_subject_rights: p
                .gdpr_data_subject_rights
                .unwrap_or(d.gdpr_data_subject_rights),
            hipaa_minimum_necessary: p
                .hipaa_minimum_necessary
                .unwrap_or(d.hipaa_minimum_necessary),
            sox_change_control: p.sox_change_control.unwrap_or(d.sox_change_control),
            real_time_alerts: p.real_time_alerts.unwrap_or(d.real_time_alerts),
            alert_on_critical_errors: p
                .alert_on_critical_errors
                .unwrap_or(d.alert_on_critical_errors),
            alert_on_security_events: p
                .alert_on_security_events
                .unwrap_or(d.alert_on_security_events),
        };
        if let Err(Error::Unsupported { setting, reason }) = policy.validate() {
            return Err(err(
                line_of_key(text, "trail.policy", setting),
                &format!("trail.policy.{setting}"),
                reason.to_owned(),
            ));
        }
        let flush_interval_ms = match t.flush_interval_ms {
            Some(v) if *v.get_ref() == 0 => {
                return Err(err(
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
                return Err(err(
                    Some(line_of(text, v.span().start)),
                    "trail.queue_capacity",
                    "must be at least 1 (events)".into(),
                ));
            }
            Some(v) => v.into_inner(),
            None => DEFAULT_QUEUE_CAPACITY,
        };
        let file_mode = match &t.file_mode {
            Some(v) => parse_file_mode(v.get_ref())
                .map_err(|why| err(Some(line_of(text, v.span().start)), "trail.file_mode", why))?,
            None => audit_format::store::DEFAULT_FILE_MODE,
        };
        let storage_path = resolve(
            &t.storage_path
                .unwrap_or_else(|| PathBuf::from("audit_logs")),
        );
        let (signing_key_file, seal_interval_ms) = sealing::parse(
            t.integrity.signing_key_file,
            t.integrity.seal_interval_ms,
            text,
            &resolve,
        )
        .map_err(|(line, key, message)| err(line, key, message))?;
        let integrity = match t.integrity.hmac_key_file {
            None => IntegrityConfig::Sha256,
            Some(k) => {
                let line = Some(line_of(text, k.span().start));
                let key_path = resolve(k.get_ref());
                read_key_file(&key_path)
                    .map_err(|m| err(line, "trail.integrity.hmac_key_file", m))?;
                IntegrityConfig::HmacKeyFile(key_path)
            }
        };
        let mut backends = Vec::new();
        // Plugin backends' explicit names, and where they appeared: a name names the
        // backend's statistics and its spool directory.
        let mut plugin_names: Vec<(String, Option<usize>)> = Vec::new();
        for b in raw.backends {
            let line = Some(line_of(text, b.span().start));
            let table = b.into_inner();
            let kind = match table.get("type") {
                Some(toml::Value::String(s)) => s.clone(),
                Some(_) => {
                    return Err(err(
                        line,
                        "backends.type",
                        "must be a string: \"file\" or \"plugin\"".into(),
                    ));
                }
                None => {
                    return Err(err(
                        line,
                        "backends.type",
                        "missing; every [[backends]] entry needs `type = \"file\"` or `type = \"plugin\"`".into(),
                    ));
                }
            };
            match kind.as_str() {
                "file" => {
                    let fb: RawFileBackend = backend_entry(table, "file", path, line)?;
                    backends.push(BackendConfig::File {
                        name: fb.name.unwrap_or_else(|| "file".to_owned()),
                        path: fb
                            .path
                            .as_deref()
                            .map_or_else(|| storage_path.clone(), resolve),
                        max_file_bytes: fb.max_file_bytes.unwrap_or(DEFAULT_MAX_FILE_BYTES),
                        line,
                    });
                }
                "plugin" => {
                    let pb: RawPluginBackend = backend_entry(table, "plugin", path, line)?;
                    if let Some(name) = &pb.name {
                        if let Some((_, first)) = plugin_names.iter().find(|(n, _)| n == name) {
                            return Err(err(
                                line,
                                "backends.name",
                                format!(
                                    "`{name}` is already the name of the backend at line {}; give each plugin backend its own name (it names its statistics and its spool directory)",
                                    first.map_or_else(|| "?".to_owned(), |l| l.to_string())
                                ),
                            ));
                        }
                        plugin_names.push((name.clone(), line));
                    }
                    let defaults = crate::BackendOptions::default();
                    let retry_initial_ms = pb
                        .retry_initial_ms
                        .unwrap_or(defaults.retry_initial.as_millis() as u64);
                    let retry_max_ms = pb
                        .retry_max_ms
                        .unwrap_or(defaults.retry_max.as_millis() as u64);
                    if retry_initial_ms == 0 {
                        return Err(err(
                            line,
                            "backends.retry_initial_ms",
                            "must be at least 1".into(),
                        ));
                    }
                    if retry_max_ms < retry_initial_ms {
                        return Err(err(
                            line,
                            "backends.retry_max_ms",
                            format!(
                                "{retry_max_ms} is less than retry_initial_ms ({retry_initial_ms}); the delay doubles from retry_initial_ms up to retry_max_ms"
                            ),
                        ));
                    }
                    if pb.call_timeout_ms == Some(0) {
                        return Err(err(
                            line,
                            "backends.call_timeout_ms",
                            "must be at least 1".into(),
                        ));
                    }
                    if pb.open_timeout_ms == Some(0) {
                        return Err(err(
                            line,
                            "backends.open_timeout_ms",
                            "must be at least 1".into(),
                        ));
                    }
                    let call_timeout_ms = pb
                        .call_timeout_ms
                        .unwrap_or(crate::plugin::DEFAULT_CALL_TIMEOUT.as_millis() as u64);
                    let mut options = defaults
                        .required(pb.required.unwrap_or(true))
                        .spool_max_bytes(
                            pb.spool_max_bytes.unwrap_or(crate::DEFAULT_SPOOL_MAX_BYTES),
                        )
                        .retry(
                            Duration::from_millis(retry_initial_ms),
                            Duration::from_millis(retry_max_ms),
                        );
                    if let Some(dir) = &pb.spool_dir {
                        options = options.spool_dir(resolve(dir));
                    }
                    if let Some(value) = &pb.backfill {
                        let choice = backfill::parse(value)
                            .map_err(|m| err(line, "backends.backfill", m))?;
                        options = options.backfill(choice);
                    }
                    let required = options.required;
                    let on_refuse = parse_refuse(pb.refuse.as_deref(), required)
                        .map_err(|m| err(line, "backends.refuse", m))?;
                    options = options.on_refuse(on_refuse);
                    if let Some(pin) = &pb.sha256
                        && (pin.len() != 64 || !pin.bytes().all(|b| b.is_ascii_hexdigit()))
                    {
                        return Err(err(
                            line,
                            "backends.sha256",
                            format!(
                                "`{pin}` is not a SHA-256 (64 hex digits); compute it with `sha256sum LIBRARY`"
                            ),
                        ));
                    }
                    let library = if crate::plugin::is_bare_name(&pb.library) {
                        let Some(dir) = &t.plugin_dir else {
                            return Err(err(
                                line,
                                "backends.library",
                                format!(
                                    "`{}` is a bare library name: set [trail] plugin_dir to the directory holding {}, or give a path",
                                    pb.library,
                                    crate::plugin::library_file_name(&pb.library)
                                ),
                            ));
                        };
                        resolve(dir).join(crate::plugin::library_file_name(&pb.library))
                    } else {
                        resolve(Path::new(&pb.library))
                    };
                    let config_json = serde_json::to_string(&pb.config.unwrap_or_default())
                        .map_err(|e| {
                            err(
                                line,
                                "backends.config",
                                format!("cannot be expressed as JSON: {e}"),
                            )
                        })?;
                    backends.push(BackendConfig::Plugin {
                        name: pb.name,
                        library,
                        sha256: pb.sha256,
                        allow_insecure_permissions: pb.allow_insecure_permissions.unwrap_or(false),
                        config_json,
                        call_timeout_ms,
                        open_timeout_ms: pb.open_timeout_ms.unwrap_or(call_timeout_ms),
                        options,
                        line,
                    });
                }
                other => {
                    return Err(err(
                        line,
                        "backends.type",
                        format!("unknown backend type `{other}`; expected \"file\" or \"plugin\""),
                    ));
                }
            }
        }
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
        assert!(e.message.contains("fast"), "{e}");
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
        assert_eq!(e.key, "backends.type");
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
        assert_eq!((e.line, e.key.as_str()), (Some(1), "backends.refuse"));
        assert!(e.message.contains("`drop` is not a refusal mode"), "{e}");
        let e = cfg_err(&format!("{plugin}required = false\nrefuse = \"fail\"\n"));
        assert_eq!(e.key, "backends.refuse");
        assert!(e.message.contains("needs required = true"), "{e}");
        let shown = cfg_err("[trail]\nflush_interval_ms = 0\n").to_string();
        assert!(
            shown.starts_with("/etc/audit/audit.toml:2: trail.flush_interval_ms:"),
            "{shown}"
        );
    }
}
