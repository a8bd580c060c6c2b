//! Reading a configured backend's store back, page by page, in sequence order: a file
//! backend's directory directly, a plugin's store through its `read` capability (the library
//! loaded and an instance opened with the entry's config, closed afterwards). What `audit
//! verify --config FILE --backend NAME` and `audit query --config FILE --backend NAME` read.

use std::path::{Path, PathBuf};
use std::time::Duration;

use audit_format::error::{ConfigError, Error, Result};
use audit_format::read::DirReader;

use crate::StorageBackend;
use crate::config::{BackendConfig, BackendEntry, TrailConfig};
use crate::plugin::{LoadedPlugin, PluginBackend};

/// How many lines one page holds (one `read_from` call).
pub const PAGE_LINES: u32 = 1000;

/// A configured backend's store, opened for reading back.
///
/// ```no_run
/// # async fn demo() -> audit_host::Result<()> {
/// use audit_host::config::TrailConfig;
/// use audit_host::readback::StoreReader;
/// let config = TrailConfig::load("audit.toml".as_ref())?;
/// let mut store = StoreReader::open(&config, "sqlite")?;
/// let mut lines = 0;
/// loop {
///     let page = store.next_page().await?;
///     if page.is_empty() {
///         break;
///     }
///     lines += page.len();
/// }
/// store.close().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct StoreReader {
    entry: BackendEntry,
    source: Source,
    /// The sequence number the next page starts at.
    next: u64,
    /// Why the next page cannot be found (the last line read is not an audit event):
    /// returned by the next call, after the caller has seen that line.
    stuck: Option<String>,
}

#[derive(Debug)]
enum Source {
    Directory(PathBuf, DirReader),
    Plugin(PluginBackend),
}

impl StoreReader {
    /// Opens backend `name` of `config` for reading: a file backend's directory, or a
    /// plugin's instance (its library loaded, `open` called with the entry's `config`).
    ///
    /// # Errors
    /// [`Error::Config`] when no backend is named `name` (the message lists the names);
    /// [`Error::Plugin`] naming the entry when its library cannot be loaded, it does not
    /// export the `read` capability, or it cannot be opened.
    pub fn open(config: &TrailConfig, name: &str) -> Result<Self> {
        let (index, found) = find_backend(config, name)?;
        let entry = config.entry(index, name);
        let source = match found {
            Found::Directory(path) => {
                let reader = DirReader::new(&path);
                Source::Directory(path, reader)
            }
            Found::Plugin(plugin) => {
                Source::Plugin(open_plugin(&entry, &plugin, &config.backends[index], name)?)
            }
        };
        Ok(Self {
            entry,
            source,
            next: 1,
            stuck: None,
        })
    }

    /// Where the backend is configured (`backends[N] "NAME" (FILE:LINE)`).
    pub fn entry(&self) -> &BackendEntry {
        &self.entry
    }

    /// A file backend's directory (`None` for a plugin): read it with
    /// [`verify_dir`](crate::verify_dir) or [`query_dir`](crate::query_dir) to also see its
    /// retention anchor and torn tail.
    pub fn directory(&self) -> Option<&Path> {
        match &self.source {
            Source::Directory(path, _) => Some(path),
            Source::Plugin(_) => None,
        }
    }

    /// The highest sequence number stored, when the store says (a plugin's `last_line`);
    /// `None` for an empty store or a directory. For progress displays.
    ///
    /// # Errors
    /// [`Error::PluginCall`] when the plugin fails.
    pub async fn last_sequence(&self) -> Result<Option<u64>> {
        match &self.source {
            Source::Directory(..) => Ok(None),
            Source::Plugin(p) => Ok(p.resume().await?.map(|h| h.sequence_number)),
        }
    }

    /// The next page of stored lines (at most [`PAGE_LINES`]), in sequence order; empty when
    /// everything was read. Each page starts after the sequence number of the previous
    /// page's last line.
    ///
    /// # Errors
    /// [`Error::Io`] when a directory cannot be read; [`Error::PluginCall`] when the plugin
    /// fails; [`Error::Backend`] after a page whose last line is not an audit event (the
    /// page after it cannot be found; that page is returned first, so a verifier reports the
    /// line).
    pub async fn next_page(&mut self) -> Result<Vec<String>> {
        if let Some(message) = self.stuck.take() {
            return Err(Error::backend(message));
        }
        let page = match &mut self.source {
            Source::Directory(_, reader) => reader.read_from(self.next, PAGE_LINES as usize)?,
            Source::Plugin(p) => p.read_from(self.next, PAGE_LINES).await?.ok_or_else(|| {
                Error::backend(format!(
                    "{}: the plugin stopped exporting `read`; this is a bug in audit-host",
                    self.entry
                ))
            })?,
        };
        if let Some(last) = page.last() {
            match serde_json::from_str::<audit_format::record::ChainFields<'_>>(last) {
                Ok(fields) => self.next = fields.sequence_number.saturating_add(1),
                Err(e) => {
                    self.stuck = Some(format!(
                        "{}: a stored line is not an audit event ({e}), so the lines after it cannot be read back; `audit verify` names its sequence",
                        self.entry
                    ));
                }
            }
        }
        Ok(page)
    }

    /// Closes a plugin's instance (a directory needs nothing).
    ///
    /// # Errors
    /// [`Error::PluginCall`] when the plugin fails to close.
    pub async fn close(self) -> Result<()> {
        match self.source {
            Source::Directory(..) => Ok(()),
            Source::Plugin(p) => p.close().await,
        }
    }
}

/// Opens an instance of `plugin` (configured as `backend`, at `entry`) for reading, once
/// it is known to export `read`.
fn open_plugin(
    entry: &BackendEntry,
    plugin: &LoadedPlugin,
    backend: &BackendConfig,
    name: &str,
) -> Result<PluginBackend> {
    let BackendConfig::Plugin {
        config_json,
        call_timeout_ms,
        open_timeout_ms,
        ..
    } = backend
    else {
        unreachable!("a file entry is found as a directory; this is a bug in audit-host")
    };
    let info = plugin.info();
    if !info.capabilities.iter().any(|c| c == "read/1") {
        return Err(entry.annotate(plugin_error(
            &info.path,
            format!(
                "plugin `{}` {} does not export the `read` capability ({}), so audit cannot read its store back; check the store with its own tools, or use a build of the plugin that exports `read` (it exports: {})",
                info.name,
                info.version,
                audit_plugin_api::ext::READ_V1,
                capability_list(&info.capabilities)
            ),
        )));
    }
    Ok(plugin
        .open_within(name, config_json, Duration::from_millis(*open_timeout_ms))
        .map_err(|e| entry.annotate(e))?
        .with_call_timeout(Duration::from_millis(*call_timeout_ms)))
}

/// How backend `name` was found.
enum Found {
    Directory(PathBuf),
    Plugin(Box<LoadedPlugin>),
}

/// The entry of `config` named `name`: a file backend's or a plugin's `name`, or else the
/// plugin's own name (its library is loaded to learn it).
fn find_backend(config: &TrailConfig, name: &str) -> Result<(usize, Found)> {
    let mut names = Vec::with_capacity(config.backends.len());
    for (index, backend) in config.backends.iter().enumerate() {
        let load = || {
            config
                .load_plugin(backend)
                .map_err(|e| config.entry(index, &backend.configured_name()).annotate(e))
        };
        match backend {
            BackendConfig::File { name: n, path, .. } if n == name => {
                return Ok((index, Found::Directory(path.clone())));
            }
            BackendConfig::Plugin { name: Some(n), .. } if n == name => {
                return Ok((index, Found::Plugin(Box::new(load()?))));
            }
            BackendConfig::Plugin { name: None, .. } => match load() {
                Ok(plugin) if plugin.info().name == name => {
                    return Ok((index, Found::Plugin(Box::new(plugin))));
                }
                Ok(plugin) => names.push(plugin.info().name.clone()),
                Err(e) => names.push(format!(
                    "{} (its library did not load: {e})",
                    backend.configured_name()
                )),
            },
            other => names.push(other.configured_name()),
        }
    }
    Err(ConfigError {
        file: config.source.clone(),
        line: None,
        column: None,
        key: "--backend".into(),
        message: format!(
            "no backend is named `{name}`; this configuration has: {}",
            names.join(", ")
        ),
    }
    .into())
}

fn capability_list(capabilities: &[String]) -> String {
    if capabilities.is_empty() {
        "none".to_owned()
    } else {
        capabilities.join(", ")
    }
}

fn plugin_error(path: &Path, message: String) -> Error {
    Error::Plugin {
        library: path.to_path_buf(),
        message,
        details: None,
    }
}
