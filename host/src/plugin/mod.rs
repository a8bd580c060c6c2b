//! Backend plugins: loading shared libraries built against `audit-plugin-api` (Rust,
//! `abi_stable`) or `audit_backend.h` (C, any language with a C FFI), checking them, and
//! adapting an opened instance to [`StorageBackend`](crate::StorageBackend). Both kinds run behind one plugin
//! thread and one [`PluginBackend`]: a library that exports `audit_backend_c_entry` is a C
//! plugin, any other must export the `abi_stable` root module.
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
use audit_plugin_api::{ErrorKind, PluginError, PluginModule_Ref};
use sha2::{Digest, Sha256};

use audit_format::error::{Error, Result};

mod c_abi;
mod capabilities;
mod instance;
mod permissions;

pub use c_abi::{C_ABI_MAJOR, C_ABI_MINOR};
use capabilities::{Capabilities, find_capabilities};
use instance::{Command, Instance, RustInstance, serve};
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
    /// The `audit-plugin-api` version it was built against; for a C plugin, `C ABI
    /// MAJOR.MINOR` (the `audit_backend.h` it was built with).
    pub plugin_api: String,
    /// Which ABI it speaks.
    pub abi: PluginAbi,
    /// One line about what it does.
    pub description: String,
    /// Its configuration keys.
    pub config_help: String,
    /// The capabilities it exports that this host uses, as `name/version` (`health/1`,
    /// `validate/1`, `read/1`, `seal/1`).
    pub capabilities: Vec<String>,
}

/// The ABI a plugin library speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PluginAbi {
    /// Rust, built against `audit-plugin-api` (`abi_stable`).
    Rust,
    /// C, built against `plugin-api/include/audit_backend.h`.
    C,
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
    kind: Kind,
    info: PluginInfo,
}

/// The library's entry points, by ABI.
#[derive(Clone)]
enum Kind {
    Rust {
        module: PluginModule_Ref,
        capabilities: Capabilities,
    },
    /// Boxed: nine function pointers would make every `LoadedPlugin` larger.
    C(Box<c_abi::Functions>),
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
    /// it is a shared library exporting an audit backend, and that it was built against a
    /// compatible interface: a C plugin (it exports `audit_backend_c_entry`) the same C ABI
    /// major with a well-formed function table, a Rust plugin a compatible
    /// `audit-plugin-api`. Libraries are never unloaded.
    ///
    /// # Errors
    /// [`Error::Plugin`] with a short message naming the file and what to do; for an
    /// incompatible Rust interface, `details` holds `abi_stable`'s full layout report; for a
    /// C plugin of another ABI major, one line naming both versions.
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
        if let Some(c) = c_abi::load(path)? {
            let info = PluginInfo {
                path: path.to_path_buf(),
                name: c.name,
                version: c.version,
                plugin_api: format!("C ABI {}", c.abi),
                abi: PluginAbi::C,
                description: c.description,
                config_help: c.config_help,
                capabilities: c.functions.capability_names(),
            };
            return Ok(Self {
                kind: Kind::C(Box::new(c.functions)),
                info,
            });
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
            abi: PluginAbi::Rust,
            description: module.description().to_string(),
            config_help: module.config_help().to_string(),
            capabilities: capabilities.names(),
        };
        Ok(Self {
            kind: Kind::Rust {
                module,
                capabilities,
            },
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
        let verdict = match &self.kind {
            Kind::Rust { capabilities, .. } => {
                let validate = capabilities.validate?;
                (validate.validate())(RStr::from_str(config_json)).into_result()
            }
            Kind::C(functions) => c_abi::validate(functions, config_json)?,
        };
        let plugin = &self.info.name;
        Some(match verdict {
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
        })
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
        self.start(name, config_json, timeout, false)
            .map(|(backend, _)| backend)
    }

    /// [`LoadedPlugin::open_within`], except that a **retryable** failure of `open` (the
    /// server it connects to is down) does not fail: the instance starts unopened, with the
    /// open error returned beside it, and each later call tries `open` again first, failing
    /// with ``not open yet: ERROR`` until it succeeds; so the trail starts, spools this
    /// backend's events and delivers them once it opens. A configuration or fatal error, a
    /// panic, or no answer within `timeout` still fails.
    ///
    /// # Errors
    /// As [`LoadedPlugin::open_within`], except for retryable `open` failures.
    pub fn open_or_defer(
        &self,
        name: &str,
        config_json: &str,
        timeout: Duration,
    ) -> Result<(PluginBackend, Option<String>)> {
        self.start(name, config_json, timeout, true)
    }

    /// Starts the instance's thread and waits up to `timeout` for its first `open`; with
    /// `defer`, a retryable failure leaves it unopened (the error is returned beside it).
    fn start(
        &self,
        name: &str,
        config_json: &str,
        timeout: Duration,
        defer: bool,
    ) -> Result<(PluginBackend, Option<String>)> {
        let opener: Opener = match &self.kind {
            &Kind::Rust {
                module,
                capabilities,
            } => {
                let open = module.open();
                Box::new(move |config: &str| match open(RStr::from_str(config)) {
                    RResult::ROk(instance) => Ok(Box::new(RustInstance {
                        instance,
                        capabilities,
                    }) as Box<dyn Instance>),
                    RResult::RErr(e) => Err(e),
                })
            }
            Kind::C(functions) => {
                let functions = **functions;
                Box::new(move |config: &str| {
                    c_abi::CInstance::open(functions, config)
                        .map(|i| Box::new(i) as Box<dyn Instance>)
                })
            }
        };
        // Seals go to plugins that export the `seal` capability (C plugins have none).
        let witness =
            matches!(&self.kind, Kind::Rust { capabilities, .. } if capabilities.seal.is_some());
        let path = self.info.path.clone();
        let (tx, rx) = mpsc::channel::<Command>();
        // Ok(None): open; Ok(Some(error)): deferred after a retryable failure.
        let (ready_tx, ready_rx) = mpsc::channel::<Result<Option<String>>>();
        let config = config_json.to_owned();
        let plugin = self.info.name.clone();
        let thread = std::thread::Builder::new()
            .name(format!("audit-plugin-{name}"))
            .spawn(move || {
                // The instance lives and dies on this thread: the host calls it from one
                // thread at a time, and a slow call never blocks an async runtime.
                let open_now = || opener(&config);
                let (mut instance, first) = match open_now() {
                    Ok(instance) => {
                        let _ = ready_tx.send(Ok(None));
                        (instance, None)
                    }
                    Err(e) if defer && e.kind == ErrorKind::Retryable => {
                        let _ = ready_tx.send(Ok(Some(e.message.into_string())));
                        match instance::open_on_demand(open_now, &rx) {
                            Some((instance, call)) => (instance, Some(call)),
                            None => return,
                        }
                    }
                    Err(e) => {
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
                serve(instance.as_mut(), &rx, first);
            })
            .map_err(|e| {
                plugin_error(
                    &self.info.path,
                    format!("cannot start the plugin thread: {e}"),
                )
            })?;
        match ready_rx.recv_timeout(timeout) {
            Ok(Ok(deferred)) => Ok((
                PluginBackend {
                    name: name.to_owned(),
                    tx: Mutex::new(tx),
                    thread: Mutex::new(Some(thread)),
                    call_timeout: DEFAULT_CALL_TIMEOUT,
                    entry: None,
                    witness,
                },
                deferred,
            )),
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

/// Opens an instance on the plugin thread, for either ABI (again after a deferred open).
type Opener = Box<dyn Fn(&str) -> Result<Box<dyn Instance>, PluginError> + Send>;

pub(super) fn library_error(path: &Path, e: LibraryError) -> Error {
    let (message, details) = match &e {
        LibraryError::OpenError { err, .. } => (
            format!("not a loadable shared library ({err}); `library` must name a .so/.dll/.dylib built with `export_backend!`"),
            None,
        ),
        LibraryError::GetSymbolError { .. } => (
            "a shared library, but not an audit backend plugin: it exports neither an abi_stable root module (Rust plugins are built with audit_plugin_api::export_backend!) nor audit_backend_c_entry (C plugins use AUDIT_BACKEND_DEFINE_ENTRY from audit_backend.h)".to_owned(),
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
