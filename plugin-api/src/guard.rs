//! Panic containment for the plugin side of the boundary: what `export_backend!` wraps
//! around a [`Backend`] so that no panic reaches an `extern "C"` shim (which would abort).

use std::panic::{AssertUnwindSafe, catch_unwind};

use abi_stable::sabi_trait::TD_CanDowncast;
use abi_stable::std_types::{RErr, ROk, ROption, RResult, RSlice, RStr, RString};

use crate::{Backend, BackendBox, Health, PluginError, Record, StorageBackend, StorageBackend_TO};

/// Wraps a [`Backend`]: every call runs inside `catch_unwind`, and after a panic the
/// instance is never called again.
///
/// ```
/// use audit_plugin_api::__private::Guarded;
/// use audit_plugin_api::{Backend, ErrorKind, PluginError, Record, StorageBackend};
/// struct Boom;
/// impl Backend for Boom {
///     fn write_batch(&mut self, _: &[Record<'_>]) -> Result<(), PluginError> { panic!("kaboom") }
///     fn flush(&mut self) -> Result<(), PluginError> { Ok(()) }
///     fn close(&mut self) -> Result<(), PluginError> { Ok(()) }
/// }
/// let mut g = Guarded::new(Boom);
/// let err = g.write_batch(Default::default()).unwrap_err();
/// assert_eq!(err.kind, ErrorKind::Fatal);
/// assert!(err.message.as_str().contains("kaboom"));
/// assert!(g.flush().is_err(), "a panicked instance is not called again");
/// ```
#[derive(Debug)]
pub struct Guarded<B> {
    inner: B,
    panicked: Option<String>,
}

impl<B: Backend> Guarded<B> {
    /// Wraps `inner`.
    pub fn new(inner: B) -> Self {
        Self {
            inner,
            panicked: None,
        }
    }

    fn call(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut B) -> Result<(), PluginError>,
    ) -> RResult<(), PluginError> {
        if let Some(p) = &self.panicked {
            return RErr(PluginError::fatal(format!(
                "the plugin panicked earlier ({p}); it is not called again"
            )));
        }
        match catch_unwind(AssertUnwindSafe(|| f(&mut self.inner))) {
            Ok(Ok(())) => ROk(()),
            Ok(Err(e)) => RErr(e),
            Err(payload) => {
                let msg = format!("panicked in {what}: {}", panic_message(payload.as_ref()));
                self.panicked = Some(msg.clone());
                RErr(PluginError::fatal(msg))
            }
        }
    }
}

impl<B: Backend> StorageBackend for Guarded<B> {
    fn write_batch(&mut self, records: RSlice<'_, Record<'_>>) -> RResult<(), PluginError> {
        self.call("write_batch", |b| b.write_batch(records.as_slice()))
    }

    fn flush(&mut self) -> RResult<(), PluginError> {
        self.call("flush", Backend::flush)
    }

    fn last_line(&mut self) -> RResult<ROption<RString>, PluginError> {
        let mut line = None;
        match self.call("last_line", |b| {
            line = b.last_line()?;
            Ok(())
        }) {
            ROk(()) => ROk(line.map(RString::from).into()),
            RErr(e) => RErr(e),
        }
    }

    fn close(&mut self) -> RResult<(), PluginError> {
        self.call("close", Backend::close)
    }
}

/// The text of a panic payload.
///
/// ```
/// let payload = std::panic::catch_unwind(|| panic!("disk {} gone", 3)).unwrap_err();
/// assert_eq!(audit_plugin_api::__private::panic_message(payload.as_ref()), "disk 3 gone");
/// ```
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".to_owned())
}

/// Runs a plugin's `open` inside `catch_unwind` and boxes the result for the boundary. Used
/// by [`export_backend!`](crate::export_backend).
///
/// ```
/// use audit_plugin_api::__private::open_guarded;
/// use audit_plugin_api::{Backend, ErrorKind, PluginError, Record};
/// use audit_plugin_api::abi_stable::std_types::RStr;
/// struct Null;
/// impl Backend for Null {
///     fn write_batch(&mut self, _: &[Record<'_>]) -> Result<(), PluginError> { Ok(()) }
///     fn flush(&mut self) -> Result<(), PluginError> { Ok(()) }
///     fn close(&mut self) -> Result<(), PluginError> { Ok(()) }
/// }
/// fn open(_: &str) -> Result<Null, PluginError> { panic!("no config file") }
/// let Err(err) = open_guarded(RStr::from_str("{}"), open).into_result() else { panic!("opened") };
/// assert_eq!(err.kind, ErrorKind::Fatal);
/// assert!(err.message.as_str().contains("panicked in open: no config file"));
/// ```
///
/// # Errors
/// The plugin's own error, or a fatal error carrying the panic message.
pub fn open_guarded<B: Backend>(
    config_json: RStr<'_>,
    open: fn(&str) -> Result<B, PluginError>,
) -> RResult<BackendBox, PluginError> {
    match catch_unwind(AssertUnwindSafe(|| open(config_json.as_str()))) {
        // Downcastable, so that the capability shims (`export_health!`) find `B` again.
        Ok(Ok(backend)) => ROk(StorageBackend_TO::from_value(
            Guarded::new(backend),
            TD_CanDowncast,
        )),
        Ok(Err(e)) => RErr(e),
        Err(payload) => RErr(PluginError::fatal(format!(
            "panicked in open: {}",
            panic_message(payload.as_ref())
        ))),
    }
}

impl<B: Health> Guarded<B> {
    /// Calls [`Health::health`] guarded like every other call.
    pub fn health(&mut self) -> RResult<RString, PluginError> {
        let mut status = String::new();
        match self.call("health", |b| {
            status = b.health()?;
            Ok(())
        }) {
            ROk(()) => ROk(RString::from(status)),
            RErr(e) => RErr(e),
        }
    }
}

/// The `health` capability's shim: finds the plugin's `B` behind the instance the host
/// passes back. Used by [`export_health!`](crate::export_health).
///
/// # Errors
/// The backend's own error, a fatal error for a panic, or a fatal error if `instance` was not
/// opened by this library's `open`.
pub fn health_guarded<B: Health>(instance: &mut BackendBox) -> RResult<RString, PluginError> {
    match instance.obj.downcast_as_mut::<Guarded<B>>() {
        Ok(guarded) => guarded.health(),
        Err(_) => RErr(PluginError::fatal(
            "health: the instance was not opened by this plugin's `open`; this is a bug in the host",
        )),
    }
}
