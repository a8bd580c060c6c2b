//! Backend plugins: loading shared libraries built against `audit-plugin-api`, checking them,
//! and adapting an opened instance to [`StorageBackend`].
//!
//! Loading a library runs its code (its initializers, then `open`): only load files you
//! trust. The `sha256` pin in the configuration is the way to trust exactly one build;
//! the permission checks refuse files that someone other than root or this user could have
//! replaced.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use abi_stable::StableAbi;
use abi_stable::library::{LibraryError, RawLibrary, lib_header_from_path};
use abi_stable::prefix_type::PrefixRefTrait;
use abi_stable::std_types::{RResult, RSlice, RStr, RString};
use async_trait::async_trait;
use audit_plugin_api::ext::{
    ExtensionExport, ExtensionFn, HEALTH_V1, HealthV1_Ref, VALIDATE_V1, ValidateV1_Ref,
};
use audit_plugin_api::{BackendBox, ErrorKind, PluginError, PluginModule_Ref, Record};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use crate::backend::{Batch, ChainHead, StorageBackend};
use audit_format::error::{CallErrorKind, Error, Result};

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
    /// `validate/1`).
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

/// The capability modules a plugin exports that this host knows (docs/plugin-abi.md).
#[derive(Clone, Copy, Default)]
struct Capabilities {
    health: Option<HealthV1_Ref>,
    validate: Option<ValidateV1_Ref>,
}

impl Capabilities {
    /// As `audit plugin inspect` lists them.
    fn names(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.health.is_some() {
            out.push("health/1".to_owned());
        }
        if self.validate.is_some() {
            out.push("validate/1".to_owned());
        }
        out
    }
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

fn plugin_error(path: &Path, message: impl Into<String>) -> Error {
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

/// Looks up, in the library at `path` whose root module has loaded (so its `abi_stable` ABI
/// is checked), the capabilities this host knows. An absent one is `None`; one whose layout
/// does not match this host's refuses the library.
#[expect(
    unsafe_code,
    reason = "a capability symbol is looked up by name and its module checked by abi_stable"
)]
fn find_capabilities(path: &Path) -> Result<Capabilities> {
    let lib = RawLibrary::load_at(path).map_err(|e| library_error(path, e))?;
    // SAFETY: `export_health!` builds this export from a `HealthV1_Ref`.
    let health = unsafe { capability::<HealthV1_Ref>(&lib, path, "health", HEALTH_V1) }?;
    // SAFETY: `export_validate!` builds this export from a `ValidateV1_Ref`.
    let validate = unsafe { capability::<ValidateV1_Ref>(&lib, path, "validate", VALIDATE_V1) }?;
    // Libraries are never unloaded: the modules point into this one.
    std::mem::forget(lib);
    Ok(Capabilities { health, validate })
}

/// The module of capability `name` (symbol `symbol`) of `lib`, loaded from `path`: `None`
/// when the library does not export it; refused when its layout is not `R`'s.
///
/// # Safety
/// `lib`'s root module has loaded (its `abi_stable` ABI is checked), and `symbol`, when
/// exported, is an [`ExtensionFn`] whose export was built from an `R`.
#[expect(
    unsafe_code,
    reason = "a capability symbol is looked up by name and its module checked by abi_stable"
)]
unsafe fn capability<R>(
    lib: &RawLibrary,
    path: &Path,
    name: &str,
    symbol: &str,
) -> Result<Option<R>>
where
    R: PrefixRefTrait + StableAbi,
{
    // SAFETY: the interface reserves `audit_backend_ext_*` for `ExtensionFn`s.
    let Ok(f) = (unsafe { lib.get::<ExtensionFn>(symbol.as_bytes()) }) else {
        return Ok(None);
    };
    let export: ExtensionExport = f();
    // SAFETY: guaranteed by the caller; `into_module` checks the layout against ours.
    unsafe { export.into_module::<R>() }
        .map(Some)
        .map_err(|e| Error::Plugin {
            library: path.to_path_buf(),
            message: format!(
                "its `{name}` capability ({symbol}) does not match this host's (an altered copy of the interface); rebuild the plugin; run with --verbose for abi_stable's layout report"
            ),
            details: Some(e.to_string()),
        })
}

fn library_error(path: &Path, e: LibraryError) -> Error {
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

#[cfg(unix)]
fn current_euid() -> u32 {
    #[expect(unsafe_code, reason = "geteuid has no safe std equivalent")]
    // SAFETY: geteuid takes no arguments, cannot fail and touches no memory of ours.
    unsafe {
        libc::geteuid()
    }
}

/// Refuses a library file, or its directory, that is writable by group or others or owned
/// by a user other than root or the current user: whoever can replace it can run code in
/// this process.
#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let euid = current_euid();
    let dir = path.parent().unwrap_or(Path::new("/"));
    // Through a symlink, the directory of the file actually loaded matters too.
    let real = std::fs::canonicalize(path)
        .map_err(|e| plugin_error(path, format!("cannot resolve the path: {e}")))?;
    let real_dir = real.parent().unwrap_or(Path::new("/"));
    let how = "set allow_insecure_permissions = true on this backend (--allow-insecure-permissions for `audit plugin inspect`)";
    for (what, p) in [
        ("library", path),
        ("directory", dir),
        ("directory", real_dir),
    ] {
        // `metadata` follows symlinks: for the library this is the real file.
        let meta = std::fs::metadata(p)
            .map_err(|e| plugin_error(path, format!("cannot stat {}: {e}", p.display())))?;
        let mode = meta.mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(plugin_error(
                path,
                format!(
                    "the {what} {} is writable by group or others (mode {mode:o}): anyone who can replace the file can run code in this process. Run `chmod go-w {}`, or {how}",
                    p.display(),
                    p.display()
                ),
            ));
        }
        if meta.uid() != 0 && meta.uid() != euid {
            return Err(plugin_error(
                path,
                format!(
                    "the {what} {} is owned by uid {}, neither root nor this user (uid {euid}); `chown` it, or {how}",
                    p.display(),
                    meta.uid()
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<()> {
    Ok(())
}

type Reply<T> = oneshot::Sender<Result<T, PluginError>>;

enum Command {
    Write(Batch, Reply<()>),
    Flush(Reply<()>),
    LastLine(Reply<Option<String>>),
    Health(Reply<Option<String>>),
    Close(Reply<()>),
}

/// The plugin thread's loop: one call at a time, until `Close` or the host goes away.
fn serve(instance: &mut BackendBox, rx: &mpsc::Receiver<Command>, capabilities: Capabilities) {
    while let Ok(cmd) = rx.recv() {
        match cmd {
            Command::Write(batch, reply) => {
                let result = write_records(instance, &batch);
                let _ = reply.send(result);
            }
            Command::Flush(reply) => {
                let _ = reply.send(instance.flush().into_result());
            }
            Command::LastLine(reply) => {
                let last = instance.last_line().into_result();
                let _ = reply.send(last.map(|l| l.map(RString::into_string).into_option()));
            }
            Command::Health(reply) => {
                let status = match capabilities.health {
                    Some(health) => (health.health())(instance)
                        .into_result()
                        .map(|s| Some(s.into_string())),
                    None => Ok(None),
                };
                let _ = reply.send(status);
            }
            Command::Close(reply) => {
                let _ = reply.send(instance.close().into_result());
                return;
            }
        }
    }
    // The host dropped the backend without closing it: close it anyway.
    let _ = instance.close();
}

/// Hands records to a plugin instance the way every host call does: ids decoded (borrowed
/// when they need no unescaping), one `Record` view per line, one `write_batch` call.
pub(crate) fn write_records(
    instance: &mut BackendBox,
    batch: &[crate::AuditRecord],
) -> Result<(), PluginError> {
    // Ids with escapes in the line are decoded; the common case borrows the line.
    let decoded: Vec<(Cow<'_, str>, Option<Cow<'_, str>>)> =
        batch.iter().map(|r| (r.event_id(), r.user_id())).collect();
    let records: Vec<Record<'_>> = batch
        .iter()
        .zip(decoded.iter())
        .map(|(r, (event_id, user_id))| Record {
            line: RStr::from_str(r.line()),
            sequence_number: r.sequence_number(),
            timestamp: RStr::from_str(r.timestamp_str()),
            timestamp_micros: r.timestamp().timestamp_micros(),
            event_id: RStr::from_str(event_id),
            event_type: RStr::from_str(r.event_type().as_str()),
            log_level: RStr::from_str(r.log_level().as_str()),
            user_id: user_id.as_deref().map(RStr::from_str).into(),
        })
        .collect();
    instance
        .write_batch(RSlice::from_slice(&records))
        .into_result()
}

/// A plugin instance adapted to [`StorageBackend`]: every call goes to the instance's
/// dedicated thread; the batch is shared with it (no line is copied) and the caller awaits
/// the reply without blocking its runtime.
#[derive(Debug)]
pub struct PluginBackend {
    name: String,
    tx: Mutex<mpsc::Sender<Command>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    call_timeout: Duration,
}

/// How long the host waits for one plugin call by default (`call_timeout_ms`).
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);

impl PluginBackend {
    /// Sets how long one call may take before it counts as a retryable failure (default
    /// [`DEFAULT_CALL_TIMEOUT`]). A call that times out keeps running in the plugin's thread
    /// (a thread cannot be stopped from outside); later calls queue behind it.
    #[must_use]
    pub fn with_call_timeout(self, timeout: Duration) -> Self {
        Self {
            call_timeout: timeout,
            ..self
        }
    }

    /// The instance's status from the plugin's `health` capability, or `None` when the plugin
    /// does not export it (its health is unknown).
    ///
    /// # Errors
    /// [`Error::PluginCall`] with the plugin's error, or a timeout.
    pub async fn health(&self) -> Result<Option<String>> {
        self.call(Command::Health).await
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T> {
        let (reply_tx, reply_rx) = oneshot::channel();
        let sent = self
            .tx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .send(make(reply_tx));
        if sent.is_err() {
            return Err(Error::backend(format!(
                "plugin backend `{}` is closed",
                self.name
            )));
        }
        let Ok(reply) = tokio::time::timeout(self.call_timeout, reply_rx).await else {
            return Err(Error::PluginCall {
                backend: self.name.clone(),
                kind: CallErrorKind::Retryable,
                message: format!(
                    "no answer within call_timeout_ms ({} ms); the call goes on in the plugin's thread, which cannot be stopped, and later calls wait behind it",
                    self.call_timeout.as_millis()
                ),
            });
        };
        match reply {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(Error::PluginCall {
                backend: self.name.clone(),
                kind: call_error_kind(e.kind),
                message: e.message.into_string(),
            }),
            Err(_) => Err(Error::backend(format!(
                "plugin backend `{}`: its thread stopped",
                self.name
            ))),
        }
    }
}

/// The plugin ABI's error kind as [`Error::PluginCall`] reports it.
fn call_error_kind(kind: ErrorKind) -> CallErrorKind {
    match kind {
        ErrorKind::Retryable => CallErrorKind::Retryable,
        ErrorKind::Fatal => CallErrorKind::Fatal,
        ErrorKind::Config => CallErrorKind::Config,
    }
}

#[async_trait]
impl StorageBackend for PluginBackend {
    fn name(&self) -> &str {
        &self.name
    }

    async fn write(&self, record: &crate::AuditRecord) -> Result<()> {
        self.write_batch(&Batch::new(vec![record.clone()])).await
    }

    async fn write_batch(&self, batch: &Batch) -> Result<()> {
        self.call(|reply| Command::Write(batch.clone(), reply))
            .await
    }

    async fn flush(&self) -> Result<()> {
        self.call(Command::Flush).await
    }

    async fn resume(&self) -> Result<Option<ChainHead>> {
        let Some(line) = self.call(Command::LastLine).await? else {
            return Ok(None);
        };
        let fields: audit_format::record::ChainFields<'_> =
            serde_json::from_str(&line).map_err(|e| {
                Error::backend(format!(
                    "plugin backend `{}`: its last stored line is not an audit event: {e}",
                    self.name
                ))
            })?;
        Ok(Some(ChainHead {
            sequence_number: fields.sequence_number,
            location: format!("the last line stored by plugin backend `{}`", self.name),
            line,
        }))
    }

    async fn close(&self) -> Result<()> {
        let result = self.call(Command::Close).await;
        // Join only a thread that answered: one stuck inside the plugin is left behind.
        if result.is_ok() {
            let handle = self
                .thread
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            if let Some(h) = handle {
                let _ = h.join();
            }
        }
        result
    }
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
