//! Backend plugins: loading shared libraries built against `audit-plugin-api`, checking them,
//! and adapting an opened instance to [`StorageBackend`].
//!
//! Loading a library runs its code (its initializers, then `open`): only load files you
//! trust. The `sha256` pin in the configuration is the way to trust exactly one build;
//! the permission checks refuse files that someone other than root or this user could have
//! replaced.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::Duration;

use abi_stable::library::{LibraryError, lib_header_from_path};
use abi_stable::std_types::{RResult, RStr};
use audit_plugin_api::{ErrorKind, PluginModule_Ref};
use sha2::{Digest, Sha256};

use audit_format::error::{Error, Result};

mod capabilities;
mod instance;
mod permissions;

use capabilities::{Capabilities, find_capabilities};
use instance::{Command, serve};
pub use instance::{DEFAULT_CALL_TIMEOUT, PluginBackend, with_plugin_records};
use permissions::check_permissions;

/// What a plugin library says about itself (`audit plugin inspect`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PluginInfo {
    /// The library file.
    pub path: PathBuf,
    /// The plugin's name.
    pub name: String,
    /// The plugin's version.
    pub version: String,
    /// The `audit-plugin-api` version it was built against.
    pub plugin_api: String,
    /// One line about what it does.
    pub description: String,
    /// Its configuration keys.
    pub config_help: String,
    /// The capabilities it exports that this host uses, as `name/version` (`health/1`,
    /// `validate/1`, `read/1`, `seal/1`).
    pub capabilities: Vec<String>,
}

/// How to load a plugin library.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Refuse the file unless its SHA-256 is this (hex, either case).
    pub sha256: Option<String>,
    /// Skip the ownership and write-permission checks.
    pub allow_insecure_permissions: bool,
}

/// A loaded plugin library: inspect it, or open instances of its backend.
#[derive(Clone)]
pub struct LoadedPlugin {
    module: PluginModule_Ref,
    capabilities: Capabilities,
    info: PluginInfo,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

pub(super) fn plugin_error(path: &Path, message: impl Into<String>) -> Error {
    Error::Plugin {
        library: path.to_path_buf(),
        message: message.into(),
        details: None,
    }
}

/// Where a bare library name (`audit_backend_sqlite`) is found in `dir`: the platform's
/// file name for it (`libNAME.so`, `NAME.dll`, `libNAME.dylib`).
pub fn library_file_name(name: &str) -> String {
    format!(
        "{}{name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

/// Is `library` a bare name (no directory part, no extension) rather than a path?
pub fn is_bare_name(library: &str) -> bool {
    !library.contains(['/', '\\']) && Path::new(library).extension().is_none()
}

impl LoadedPlugin {
    /// Loads and checks the library at `path`: existence, permissions, the sha256 pin, that
    /// it is a shared library exporting an audit backend root module, and that it was built
    /// against a compatible `audit-plugin-api`. Libraries are never unloaded.
    ///
    /// # Errors
    /// [`Error::Plugin`] with a short message naming the file and what to do; for an
    /// incompatible interface, `details` holds `abi_stable`'s full layout report.
    pub fn load(path: &Path, opts: &LoadOptions) -> Result<Self> {
        // A relative path without a directory part (`libx.so`) would make the dynamic loader
        // search the system's library path instead of opening this file.
        let absolute =
            std::path::absolute(path).map_err(|e| plugin_error(path, format!("bad path: {e}")))?;
        let path = absolute.as_path();
        if !path.exists() {
            return Err(plugin_error(
                path,
                "file not found; build the plugin (for example `cargo build --release -p audit-backend-sqlite`) or fix `library` in the config",
            ));
        }
        if !opts.allow_insecure_permissions {
            check_permissions(path)?;
        }
        if let Some(pin) = &opts.sha256 {
            let bytes =
                std::fs::read(path).map_err(|e| plugin_error(path, format!("cannot read: {e}")))?;
            let actual: String = Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            if !actual.eq_ignore_ascii_case(pin.trim()) {
                return Err(plugin_error(
                    path,
                    format!(
                        "sha256 mismatch: expected {}, actual {actual}; the file is not the build that was pinned. Deploy the pinned build, or update `sha256` after checking the new one",
                        pin.trim()
                    ),
                ));
            }
        }
        let header = lib_header_from_path(path).map_err(|e| library_error(path, e))?;
        let theirs = header.version_strings();
        let plugin_api = theirs.version.to_string();
        let module = header.init_root_module::<PluginModule_Ref>().map_err(|e| {
            let mut err = library_error(path, e);
            if let Error::Plugin { message, .. } = &mut err
                && message.starts_with("incompatible type layouts")
            {
                let ours = audit_plugin_api::API_VERSION;
                *message = format!(
                    "built against audit-plugin-api {plugin_api}, but its types do not match this host's audit-plugin-api {ours} (an altered or incompatible copy of the interface). Rebuild the plugin against audit-plugin-api {ours}; run with --verbose for abi_stable's layout report"
                );
            }
            err
        })?;
        let capabilities = find_capabilities(path)?;
        let info = PluginInfo {
            path: path.to_path_buf(),
            name: module.name().to_string(),
            version: module.version().to_string(),
            plugin_api,
            description: module.description().to_string(),
            config_help: module.config_help().to_string(),
            capabilities: capabilities.names(),
        };
        Ok(Self {
            module,
            capabilities,
            info,
        })
    }

    /// What the plugin says about itself.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// Checks `config_json` (the backend's `config` table as JSON) with the plugin's
    /// `validate` capability, without opening an instance: `None` when the plugin does not
    /// export it (then only `open` can check the configuration). The plugin checks keys and
    /// values only; it connects nowhere and creates nothing. Runs on the calling thread.
    ///
    /// # Errors
    /// `Some(Err(`[`Error::Plugin`]`))` with the plugin's message (it names the key) when
    /// it rejects the configuration, or fails or panics while checking it.
    pub fn validate(&self, config_json: &str) -> Option<Result<()>> {
        let validate = self.capabilities.validate?;
        let plugin = &self.info.name;
        Some(
            match (validate.validate())(RStr::from_str(config_json)).into_result() {
                Ok(()) => Ok(()),
                Err(e) => {
                    let message = match e.kind {
                        ErrorKind::Config => {
                            format!("plugin `{plugin}` rejected its config: {}", e.message)
                        }
                        _ => format!(
                            "plugin `{plugin}` failed to validate its config: {}",
                            e.message
                        ),
                    };
                    Err(plugin_error(&self.info.path, message))
                }
            },
        )
    }

    /// Opens an instance with `config_json` (the backend's `config` table as JSON) and
    /// starts its dedicated thread. `name` is used in messages and statistics. `open` may
    /// take up to [`DEFAULT_CALL_TIMEOUT`]; [`LoadedPlugin::open_within`] sets the limit.
    ///
    /// # Errors
    /// As [`LoadedPlugin::open_within`].
    pub fn open(&self, name: &str, config_json: &str) -> Result<PluginBackend> {
        self.open_within(name, config_json, DEFAULT_CALL_TIMEOUT)
    }

    /// [`LoadedPlugin::open`], giving the plugin's `open` at most `timeout` (the
    /// `open_timeout_ms` of a `[[backends]]` entry). The plugin runs `open` on the instance's
    /// own thread; a plugin that has not answered in time is left running there (a thread
    /// cannot be stopped from outside) and, should it ever answer, its instance is closed.
    ///
    /// # Errors
    /// [`Error::Plugin`] when the plugin rejects its configuration (its message), fails or
    /// panics while opening, or does not answer within `timeout`.
    pub fn open_within(
        &self,
        name: &str,
        config_json: &str,
        timeout: Duration,
    ) -> Result<PluginBackend> {
        let open = self.module.open();
        let path = self.info.path.clone();
        let (tx, rx) = mpsc::channel::<Command>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<()>>();
        let config = config_json.to_owned();
        let plugin = self.info.name.clone();
        let capabilities = self.capabilities;
        let thread = std::thread::Builder::new()
            .name(format!("audit-plugin-{name}"))
            .spawn(move || {
                // The instance lives and dies on this thread: the host calls it from one
                // thread at a time, and a slow call never blocks an async runtime.
                let mut instance = match open(RStr::from_str(&config)) {
                    RResult::ROk(b) => b,
                    RResult::RErr(e) => {
                        let message = match e.kind {
                            ErrorKind::Config => {
                                format!("plugin `{plugin}` rejected its config: {}", e.message)
                            }
                            _ => format!("plugin `{plugin}` failed to open: {}", e.message),
                        };
                        let _ = ready_tx.send(Err(plugin_error(&path, message)));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                serve(&mut instance, &rx, capabilities);
            })
            .map_err(|e| {
                plugin_error(
                    &self.info.path,
                    format!("cannot start the plugin thread: {e}"),
                )
            })?;
        match ready_rx.recv_timeout(timeout) {
            Ok(Ok(())) => Ok(PluginBackend {
                name: name.to_owned(),
                tx: Mutex::new(tx),
                thread: Mutex::new(Some(thread)),
                call_timeout: DEFAULT_CALL_TIMEOUT,
                entry: None,
                witness: capabilities.seal.is_some(),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Err(plugin_error(
                &self.info.path,
                format!(
                    "plugin `{}` did not finish `open` within {} ms (open_timeout_ms; default call_timeout_ms); it is left running on its thread. Check that what it connects to is reachable, or raise open_timeout_ms",
                    self.info.name,
                    timeout.as_millis()
                ),
            )),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = thread.join();
                Err(plugin_error(
                    &self.info.path,
                    "the plugin thread stopped while opening",
                ))
            }
        }
    }
}

pub(super) fn library_error(path: &Path, e: LibraryError) -> Error {
    let (message, details) = match &e {
        LibraryError::OpenError { err, .. } => (
            format!("not a loadable shared library ({err}); `library` must name a .so/.dll/.dylib built with `export_backend!`"),
            None,
        ),
        LibraryError::GetSymbolError { .. } => (
            "a shared library, but not an audit backend plugin: it exports no abi_stable root module (plugins are built with audit_plugin_api::export_backend!)".to_owned(),
            None,
        ),
        LibraryError::IncompatibleVersionNumber { expected_version, actual_version, .. } => (
            format!(
                "incompatible interface version: the plugin was built against audit-plugin-api {actual_version}, this host uses {expected_version}; rebuild the plugin against audit-plugin-api {expected_version}"
            ),
            None,
        ),
        LibraryError::AbiInstability(report) => (
            "incompatible type layouts".to_owned(),
            Some(report.to_string()),
        ),
        LibraryError::InvalidAbiHeader(_) | LibraryError::InvalidCAbi { .. } => (
            "built with an incompatible version of abi_stable; rebuild the plugin against the host's audit-plugin-api".to_owned(),
            Some(e.to_string()),
        ),
        LibraryError::RootModule { err, .. } => (format!("its root module failed to initialize: {err}"), None),
        other => (format!("cannot load: {}", first_line(&other.to_string())), Some(other.to_string())),
    };
    Error::Plugin {
        library: path.to_path_buf(),
        message,
        details,
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn bare_names_and_file_names() {
        assert!(is_bare_name("audit_backend_sqlite"));
        assert!(!is_bare_name("./libaudit_backend_sqlite.so"));
        assert!(!is_bare_name("libaudit_backend_sqlite.so"));
        assert!(!is_bare_name("plugins/x"));
        #[cfg(target_os = "linux")]
        assert_eq!(
            library_file_name("audit_backend_sqlite"),
            "libaudit_backend_sqlite.so"
        );
    }
}
