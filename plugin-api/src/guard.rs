//! Panic containment for the plugin side of the boundary: what `export_backend!` wraps
//! around a [`Backend`] so that no panic reaches an `extern "C"` shim (which would abort).
//!
//! A panic inside a guarded call is reported once, by the host, as the call's fatal error
//! (`panicked in METHOD: MESSAGE (at FILE:LINE:COL)`). Rust's default panic hook would print
//! it a second time, as `thread '<unnamed>' panicked at ...`: a plugin built as a `cdylib`
//! carries its own copy of the standard library, whose hook the host's `set_hook` cannot
//! reach and which does not know the host's thread names. So the first guarded call installs
//! a hook in the plugin's copy that stays quiet for panics inside guarded calls (with
//! `RUST_BACKTRACE` set to anything but `0` it still hands them on) and hands every other
//! panic to the hook installed before it.

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

use abi_stable::sabi_trait::TD_CanDowncast;
use abi_stable::std_types::{RErr, ROk, ROption, RResult, RSlice, RStr, RString, RVec};

use crate::ext::{Counter, Refusal};
use crate::{
    Backend, BackendBox, Health, PluginError, ReadBack, Record, Refuse, Stats, StorageBackend,
    StorageBackend_TO, Validate, Witness,
};

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
        match quietly(what, || f(&mut self.inner)) {
            Ok(Ok(())) => ROk(()),
            Ok(Err(e)) => RErr(e),
            Err(msg) => {
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

thread_local! {
    /// Inside a guarded call on this thread.
    static GUARDED: Cell<bool> = const { Cell::new(false) };
    /// Where the last quiet panic on this thread happened.
    static PANICKED_AT: RefCell<Option<String>> = const { RefCell::new(None) };
}

static QUIET_HOOK: Once = Once::new();

/// Installs, once, the hook described in the module docs, in this library's copy of the
/// standard library.
fn install_quiet_hook() {
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if GUARDED.with(Cell::get) {
                let at = info
                    .location()
                    .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
                PANICKED_AT.with(|p| *p.borrow_mut() = at);
                let backtrace = std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0");
                if !backtrace {
                    return;
                }
            }
            previous(info);
        }));
    });
}

/// Runs `f`, turning a panic into `panicked in WHAT: MESSAGE (at FILE:LINE:COL)` without
/// printing it (the host reports the error).
fn quietly<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, String> {
    install_quiet_hook();
    let outer = GUARDED.with(|g| g.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(outer));
    result.map_err(|payload| {
        let msg = panic_message(payload.as_ref());
        match PANICKED_AT.with(RefCell::take) {
            Some(at) => format!("panicked in {what}: {msg} (at {at})"),
            None => format!("panicked in {what}: {msg}"),
        }
    })
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
    match quietly("open", || open(config_json.as_str())) {
        // Downcastable, so that the capability shims (`export_health!`) find `B` again.
        Ok(Ok(backend)) => ROk(StorageBackend_TO::from_value(
            Guarded::new(backend),
            TD_CanDowncast,
        )),
        Ok(Err(e)) => RErr(e),
        Err(msg) => RErr(PluginError::fatal(msg)),
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

impl<B: Witness> Guarded<B> {
    /// Calls [`Witness::seal`] guarded like every other call.
    pub fn seal(&mut self, seal_line: &str) -> RResult<(), PluginError> {
        self.call("seal", |b| b.seal(seal_line))
    }
}

/// The `seal` capability's shim: finds the plugin's `B` behind the instance the host passes
/// back. Used by [`export_seal!`](crate::export_seal).
///
/// # Errors
/// The backend's own error, a fatal error for a panic, or a fatal error if `instance` was not
/// opened by this library's `open`.
pub fn seal_guarded<B: Witness>(
    instance: &mut BackendBox,
    seal_line: RStr<'_>,
) -> RResult<(), PluginError> {
    match instance.obj.downcast_as_mut::<Guarded<B>>() {
        Ok(guarded) => guarded.seal(seal_line.as_str()),
        Err(_) => RErr(PluginError::fatal(
            "seal: the instance was not opened by this plugin's `open`; this is a bug in the host",
        )),
    }
}

impl<B: ReadBack> Guarded<B> {
    /// Calls [`ReadBack::read_from`] guarded like every other call.
    pub fn read_from(
        &mut self,
        from_sequence: u64,
        limit: u32,
    ) -> RResult<RVec<RString>, PluginError> {
        let mut lines = Vec::new();
        match self.call("read_from", |b| {
            lines = b.read_from(from_sequence, limit)?;
            Ok(())
        }) {
            ROk(()) => ROk(lines.into_iter().map(RString::from).collect()),
            RErr(e) => RErr(e),
        }
    }
}

/// The `read` capability's shim: finds the plugin's `B` behind the instance the host passes
/// back. Used by [`export_read!`](crate::export_read).
///
/// # Errors
/// The backend's own error, a fatal error for a panic, or a fatal error if `instance` was not
/// opened by this library's `open`.
pub fn read_guarded<B: ReadBack>(
    instance: &mut BackendBox,
    from_sequence: u64,
    limit: u32,
) -> RResult<RVec<RString>, PluginError> {
    match instance.obj.downcast_as_mut::<Guarded<B>>() {
        Ok(guarded) => guarded.read_from(from_sequence, limit),
        Err(_) => RErr(PluginError::fatal(
            "read_from: the instance was not opened by this plugin's `open`; this is a bug in the host",
        )),
    }
}

impl<B: Refuse> Guarded<B> {
    /// Calls [`Refuse::write_batch_refusing`] guarded like every other call (a panic is
    /// reported as `panicked in write_batch: ...`). The refusals reach `refused` only when
    /// the call succeeds.
    pub fn write_batch_refusing(
        &mut self,
        records: RSlice<'_, Record<'_>>,
        refused: &mut RVec<Refusal>,
    ) -> RResult<(), PluginError> {
        let mut out = Vec::new();
        let result = self.call("write_batch", |b| {
            b.write_batch_refusing(records.as_slice(), &mut out)
        });
        if result.is_ok() {
            refused.extend(out);
        }
        result
    }
}

/// The `refuse` capability's shim: finds the plugin's `B` behind the instance the host
/// passes back. Used by [`export_refuse!`](crate::export_refuse).
///
/// # Errors
/// The backend's own error, a fatal error for a panic, or a fatal error if `instance` was not
/// opened by this library's `open`.
pub fn refuse_guarded<B: Refuse>(
    instance: &mut BackendBox,
    records: RSlice<'_, Record<'_>>,
    refused: &mut RVec<Refusal>,
) -> RResult<(), PluginError> {
    match instance.obj.downcast_as_mut::<Guarded<B>>() {
        Ok(guarded) => guarded.write_batch_refusing(records, refused),
        Err(_) => RErr(PluginError::fatal(
            "refuse: the instance was not opened by this plugin's `open`; this is a bug in the host",
        )),
    }
}

impl<B: Stats> Guarded<B> {
    /// Calls [`Stats::statistics`] guarded like every other call: after a panic (in it or
    /// earlier) there are no counters, and the instance's next call reports the panic.
    pub fn statistics(&mut self) -> RVec<Counter> {
        let mut counters = Vec::new();
        let _ = self.call("statistics", |b| {
            counters = b.statistics();
            Ok(())
        });
        counters
            .into_iter()
            .map(|(name, value)| Counter {
                name: name.into(),
                value,
            })
            .collect()
    }
}

/// The `stats` capability's shim: finds the plugin's `B` behind the instance the host passes
/// back. Used by [`export_stats!`](crate::export_stats). No counters when `instance` was not
/// opened by this library's `open` (a bug in the host) or the instance panicked.
pub fn stats_guarded<B: Stats>(instance: &mut BackendBox) -> RVec<Counter> {
    match instance.obj.downcast_as_mut::<Guarded<B>>() {
        Ok(guarded) => guarded.statistics(),
        Err(_) => RVec::new(),
    }
}

/// The `validate` capability's shim: runs [`Validate::validate`] inside `catch_unwind`. Used
/// by [`export_validate!`](crate::export_validate).
///
/// ```
/// use audit_plugin_api::__private::validate_guarded;
/// use audit_plugin_api::{ErrorKind, PluginError, Validate};
/// use audit_plugin_api::abi_stable::std_types::RStr;
/// struct Picky;
/// impl Validate for Picky {
///     fn validate(config_json: &str) -> Result<(), PluginError> {
///         if config_json == "{}" { Ok(()) } else { panic!("cannot parse {config_json}") }
///     }
/// }
/// assert!(validate_guarded::<Picky>(RStr::from_str("{}")).is_ok());
/// let Err(err) = validate_guarded::<Picky>(RStr::from_str("[")).into_result() else { panic!("valid") };
/// assert_eq!(err.kind, ErrorKind::Fatal);
/// assert!(err.message.as_str().starts_with("panicked in validate: cannot parse ["));
/// ```
///
/// # Errors
/// The plugin's own error, or a fatal error carrying the panic message.
pub fn validate_guarded<B: Validate>(config_json: RStr<'_>) -> RResult<(), PluginError> {
    match quietly("validate", || B::validate(config_json.as_str())) {
        Ok(Ok(())) => ROk(()),
        Ok(Err(e)) => RErr(e),
        Err(msg) => RErr(PluginError::fatal(msg)),
    }
}
