//! The builder a [`TrailConfig`] makes: its settings, its integrity, and its backends
//! (every plugin loaded, checked and opened, errors naming the entry).

use std::path::PathBuf;
use std::time::Duration;

use super::settings::AuditTrailBuilder;
use crate::config::{BackendConfig, TrailConfig, read_signing_key_file};
use crate::plugin::LoadedPlugin;
use audit_format::error::{ConfigError, Error, Result};

impl AuditTrailBuilder {
    /// A builder with everything `config` sets: its settings, its integrity (the key file is
    /// read now) and its backends (plugins are loaded and opened now).
    ///
    /// # Errors
    /// [`Error::Config`] when the key file became unreadable or invalid; [`Error::Plugin`]
    /// when a plugin cannot be loaded, rejects its configuration (its `validate` capability,
    /// called for every plugin before any is opened), or cannot be opened.
    pub fn from_config(config: &TrailConfig) -> Result<Self> {
        let mut b = Self::default()
            .policy(config.policy.clone())
            .storage_path(config.storage_path.clone())
            .durability(config.durability)
            .flush_interval(Duration::from_millis(config.flush_interval_ms))
            .shutdown_timeout(Duration::from_millis(config.shutdown_timeout_ms))
            .queue_capacity(config.queue_capacity)
            .on_full(config.on_full)
            .allow_insecure_permissions(config.allow_insecure_permissions)
            .file_mode(config.file_mode)
            .integrity(config.integrity()?)
            .seal_interval(Duration::from_millis(config.seal_interval_ms));
        if let Some(key) = &config.signing_key_file {
            b = b.signing_key(read_signing_key_file(key).map_err(|message| {
                Error::from(ConfigError {
                    file: config.source.clone(),
                    line: None,
                    column: None,
                    key: "trail.integrity.signing_key_file".into(),
                    message,
                })
            })?);
        }
        let loaded = load_plugins(config)?;
        check_before_open(config, &loaded)?;
        for (index, (backend, plugin)) in config.backends.iter().zip(loaded).enumerate() {
            b = b.configured_backend(config, index, backend, plugin)?;
        }
        Ok(b)
    }

    /// Adds entry `index` (0-based) of `config`'s backends (`loaded`: a plugin's library,
    /// loaded already). Errors loading or opening a plugin name the entry
    /// (`backends[N] "NAME" (FILE:LINE)`).
    fn configured_backend(
        self,
        config: &TrailConfig,
        index: usize,
        backend: &BackendConfig,
        loaded: Option<crate::plugin::LoadedPlugin>,
    ) -> Result<Self> {
        Ok(match backend {
            BackendConfig::File {
                name,
                path,
                max_file_bytes,
                ..
            } => self.named_file_backend(name.clone(), path.clone(), *max_file_bytes),
            BackendConfig::Plugin {
                name,
                config_json,
                call_timeout_ms,
                open_timeout_ms,
                options,
                ..
            } => {
                let loaded = match loaded {
                    Some(l) => l,
                    None => config
                        .load_plugin(backend)
                        .map_err(|e| config.entry(index, &backend.configured_name()).annotate(e))?,
                };
                let name = name.clone().unwrap_or_else(|| loaded.info().name.clone());
                let entry = config.entry(index, &name);
                let (opened, deferred) = loaded
                    .open_or_defer(&name, config_json, Duration::from_millis(*open_timeout_ms))
                    .map_err(|e| entry.annotate(e))?;
                if let Some(e) = deferred {
                    // What it connects to is down: start, spool its events, open it on retry.
                    tracing::warn!(
                        backend = %name,
                        entry = %entry,
                        error = %e,
                        "backend `{name}` could not open ({entry}: {e}); starting without it: its events are kept in its spool and each retry opens it again"
                    );
                } else {
                    tracing::debug!(
                        backend = %name,
                        entry = %entry,
                        plugin = %loaded.info().name,
                        version = %loaded.info().version,
                        "backend `{name}` opened ({entry})"
                    );
                }
                let opened = opened
                    .with_call_timeout(Duration::from_millis(*call_timeout_ms))
                    .with_entry(plugin_entry(&entry, loaded.info()));
                self.backend_with(Box::new(opened), options.clone())
            }
        })
    }
}

/// Loads every plugin library of `config`'s backends (`None` for a file backend) before
/// anything is opened.
fn load_plugins(config: &TrailConfig) -> Result<Vec<Option<LoadedPlugin>>> {
    // Every library is loaded first: a plugin without `name` is named by the plugin, and
    // no two backends may share a directory (checked before anything is opened).
    let mut loaded = Vec::with_capacity(config.backends.len());
    for (index, backend) in config.backends.iter().enumerate() {
        loaded.push(match backend {
            BackendConfig::Plugin { .. } => Some(
                config
                    .load_plugin(backend)
                    .map_err(|e| config.entry(index, &backend.configured_name()).annotate(e))?,
            ),
            BackendConfig::File { .. } => None,
        });
    }
    Ok(loaded)
}

/// Refuses, before any backend is opened, two backends sharing a directory and a plugin
/// whose `validate` rejects its configuration.
fn check_before_open(config: &TrailConfig, loaded: &[Option<LoadedPlugin>]) -> Result<()> {
    let names: Vec<Option<String>> = config
        .backends
        .iter()
        .zip(loaded)
        .map(|(backend, plugin)| match (backend, plugin) {
            (BackendConfig::Plugin { name: None, .. }, Some(p)) => Some(p.info().name.clone()),
            _ => Some(backend.configured_name()),
        })
        .collect();
    if let Some(p) = crate::preflight::directory_collisions(config, &names)
        .into_iter()
        .next()
    {
        // Shown as `backends[N] "NAME" (FILE:LINE): KEY: MESSAGE`, as `audit config
        // check` prints it.
        return Err(ConfigError {
            file: PathBuf::new(),
            line: p.entry.line,
            column: None,
            key: format!("{}: {}", p.entry, p.key),
            message: p.message,
        }
        .into());
    }
    // Every plugin that exports `validate` checks its configuration before any backend
    // is opened: a mistake fails start-up before anything connects or is created.
    for (index, (backend, plugin)) in config.backends.iter().zip(loaded).enumerate() {
        if let (BackendConfig::Plugin { config_json, .. }, Some(plugin), Some(name)) =
            (backend, plugin, &names[index])
            && let Some(Err(e)) = plugin.validate(config_json)
        {
            return Err(config.entry(index, name).annotate(e));
        }
    }
    Ok(())
}

/// How a plugin backend's call errors name it: its entry, and the plugin when the entry's
/// `name` is not the plugin's own.
fn plugin_entry(entry: &crate::config::BackendEntry, info: &crate::plugin::PluginInfo) -> String {
    if entry.name == info.name {
        entry.to_string()
    } else {
        format!("{entry}, plugin `{}`", info.name)
    }
}

impl TrailConfig {
    /// A builder with everything this configuration sets: [`AuditTrailBuilder::from_config`].
    ///
    /// # Errors
    /// As [`AuditTrailBuilder::from_config`].
    pub fn builder(&self) -> Result<AuditTrailBuilder> {
        AuditTrailBuilder::from_config(self)
    }
}
