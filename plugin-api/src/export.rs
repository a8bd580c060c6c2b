//! The `export_*!` macros a plugin library invokes once each: `export_backend!` for its root
//! module, one per capability it implements (docs/plugin-abi.md). Exported at the crate root.

#[allow(unused_imports, reason = "intra-doc links of the macros' docs")]
use crate::{Backend, Health, PluginError, ReadBack, Refuse, Stats, Validate, Witness, ext};

/// Exports a [`Backend`] as a plugin library's root module.
///
/// `open` is a `fn(&str) -> Result<B, PluginError>` receiving the backend's `config` table
/// as JSON. Every call is guarded against panics: a panic becomes a fatal error and the
/// instance is not called again. The plugin's version is
/// its crate's `CARGO_PKG_VERSION`.
///
/// ```
/// use audit_plugin_api::{Backend, PluginError, Record, export_backend};
/// struct Null;
/// impl Backend for Null {
///     fn write_batch(&mut self, _: &[Record<'_>]) -> Result<(), PluginError> { Ok(()) }
///     fn flush(&mut self) -> Result<(), PluginError> { Ok(()) }
///     fn close(&mut self) -> Result<(), PluginError> { Ok(()) }
/// }
/// export_backend! {
///     name: "null",
///     description: "Discards everything (an example)",
///     config_help: "No keys.",
///     open: |_config: &str| Ok(Null),
/// }
/// # fn main() {
/// // What the host sees after loading the library:
/// let module = audit_backend_root_module();
/// assert_eq!(module.name().as_str(), "null");
/// let opened = (module.open())(audit_plugin_api::abi_stable::std_types::RStr::from_str("{}"));
/// assert!(opened.is_ok());
/// # }
/// ```
#[macro_export]
macro_rules! export_backend {
    (
        name: $name:expr,
        description: $description:expr,
        config_help: $config_help:expr,
        open: $open:expr $(,)?
    ) => {
        /// The plugin's root module, found by the host when it loads the library.
        #[::abi_stable::export_root_module]
        pub fn audit_backend_root_module() -> $crate::PluginModule_Ref {
            use ::abi_stable::prefix_type::PrefixTypeTrait;
            $crate::PluginModule {
                name: ::abi_stable::std_types::RStr::from_str($name),
                version: ::abi_stable::std_types::RStr::from_str(env!("CARGO_PKG_VERSION")),
                description: ::abi_stable::std_types::RStr::from_str($description),
                config_help: ::abi_stable::std_types::RStr::from_str($config_help),
                open: audit_backend_open,
            }
            .leak_into_prefix()
        }

        /// Opens an instance; panics are caught and returned as fatal errors.
        #[::abi_stable::sabi_extern_fn]
        pub fn audit_backend_open(
            config_json: ::abi_stable::std_types::RStr<'_>,
        ) -> ::abi_stable::std_types::RResult<$crate::BackendBox, $crate::PluginError> {
            $crate::__private::open_guarded(config_json, $open)
        }
    };
}

/// Exports the `health` capability ([`ext::HealthV1`]) for the backend type `$backend`, which
/// implements [`Health`]; use it beside [`export_backend!`], whose `open` returns that type.
/// A host that knows the capability finds it when it loads the library; a host that does not
/// (1.0) never looks for it.
///
/// ```
/// use audit_plugin_api::{Backend, Health, PluginError, Record, export_backend, export_health};
/// struct Null;
/// impl Backend for Null {
///     fn write_batch(&mut self, _: &[Record<'_>]) -> Result<(), PluginError> { Ok(()) }
///     fn flush(&mut self) -> Result<(), PluginError> { Ok(()) }
///     fn close(&mut self) -> Result<(), PluginError> { Ok(()) }
/// }
/// impl Health for Null {
///     fn health(&mut self) -> Result<String, PluginError> { Ok("ok".into()) }
/// }
/// export_backend! { name: "null", description: "", config_help: "", open: |_: &str| Ok(Null) }
/// export_health!(Null);
/// # fn main() {
/// use audit_plugin_api::abi_stable::std_types::RStr;
/// let open = audit_backend_root_module().open();
/// let mut instance = open(RStr::from_str("{}")).into_result().expect("opens");
/// let export = audit_backend_ext_health_v1();
/// // SAFETY: built by `export_health!` in this very crate.
/// let health = unsafe { export.into_module::<audit_plugin_api::ext::HealthV1_Ref>() }.expect("same layout");
/// assert_eq!(health.health()(&mut instance).into_result().expect("healthy").as_str(), "ok");
/// # }
/// ```
#[macro_export]
macro_rules! export_health {
    ($backend:ty) => {
        /// The `health` capability, version 1, found by the host by this symbol's name.
        #[unsafe(no_mangle)]
        pub extern "C" fn audit_backend_ext_health_v1() -> $crate::ext::ExtensionExport {
            use ::abi_stable::prefix_type::PrefixTypeTrait;
            $crate::ext::ExtensionExport::new(
                $crate::ext::HealthV1 {
                    health: audit_backend_health_v1,
                }
                .leak_into_prefix(),
            )
        }

        /// The instance's health; panics are caught and returned as fatal errors.
        #[::abi_stable::sabi_extern_fn]
        pub fn audit_backend_health_v1(
            instance: &mut $crate::BackendBox,
        ) -> ::abi_stable::std_types::RResult<::abi_stable::std_types::RString, $crate::PluginError>
        {
            $crate::__private::health_guarded::<$backend>(instance)
        }
    };
}

/// Exports the `validate` capability ([`ext::ValidateV1`]) for the type `$backend`, which
/// implements [`Validate`] (usually the backend type of [`export_backend!`], beside which this
/// goes). A host that knows the capability calls it before opening anything; a host that does
/// not (1.0) never looks for it.
///
/// ```
/// use audit_plugin_api::{Backend, ErrorKind, PluginError, Record, Validate};
/// use audit_plugin_api::{export_backend, export_validate};
/// struct Null;
/// impl Backend for Null {
///     fn write_batch(&mut self, _: &[Record<'_>]) -> Result<(), PluginError> { Ok(()) }
///     fn flush(&mut self) -> Result<(), PluginError> { Ok(()) }
///     fn close(&mut self) -> Result<(), PluginError> { Ok(()) }
/// }
/// impl Validate for Null {
///     // Keys and values only: no connection, no file.
///     fn validate(config_json: &str) -> Result<(), PluginError> {
///         if config_json.trim() == "{}" {
///             Ok(())
///         } else {
///             Err(PluginError::config("this backend takes no configuration keys"))
///         }
///     }
/// }
/// fn open(config_json: &str) -> Result<Null, PluginError> {
///     Null::validate(config_json)?;
///     Ok(Null)
/// }
/// export_backend! { name: "null", description: "", config_help: "", open: open }
/// export_validate!(Null);
/// # fn main() {
/// use audit_plugin_api::abi_stable::std_types::RStr;
/// let export = audit_backend_ext_validate_v1();
/// // SAFETY: built by `export_validate!` in this very crate.
/// let module = unsafe { export.into_module::<audit_plugin_api::ext::ValidateV1_Ref>() }.expect("same layout");
/// assert!(module.validate()(RStr::from_str("{}")).is_ok());
/// let err = module.validate()(RStr::from_str(r#"{"x":1}"#)).into_result().expect_err("refused");
/// assert_eq!(err.kind, ErrorKind::Config);
/// # }
/// ```
#[macro_export]
macro_rules! export_validate {
    ($backend:ty) => {
        /// The `validate` capability, version 1, found by the host by this symbol's name.
        #[unsafe(no_mangle)]
        pub extern "C" fn audit_backend_ext_validate_v1() -> $crate::ext::ExtensionExport {
            use ::abi_stable::prefix_type::PrefixTypeTrait;
            $crate::ext::ExtensionExport::new(
                $crate::ext::ValidateV1 {
                    validate: audit_backend_validate_v1,
                }
                .leak_into_prefix(),
            )
        }

        /// Checks a configuration without opening an instance; panics are caught and
        /// returned as fatal errors.
        #[::abi_stable::sabi_extern_fn]
        pub fn audit_backend_validate_v1(
            config_json: ::abi_stable::std_types::RStr<'_>,
        ) -> ::abi_stable::std_types::RResult<(), $crate::PluginError> {
            $crate::__private::validate_guarded::<$backend>(config_json)
        }
    };
}

/// Exports the `read` capability ([`ext::ReadV1`]) for the backend type `$backend`, which
/// implements [`ReadBack`]; use it beside [`export_backend!`], whose `open` returns that type.
/// A host that knows the capability reads the store back with it (`audit verify --config
/// FILE --backend NAME`); a host that does not (1.0) never looks for it.
///
/// ```
/// use audit_plugin_api::{Backend, PluginError, ReadBack, Record, export_backend, export_read};
/// struct Memory { lines: Vec<(u64, String)> }
/// impl Backend for Memory {
///     fn write_batch(&mut self, records: &[Record<'_>]) -> Result<(), PluginError> {
///         self.lines.extend(records.iter().map(|r| (r.sequence_number, r.line().to_owned())));
///         Ok(())
///     }
///     fn flush(&mut self) -> Result<(), PluginError> { Ok(()) }
///     fn close(&mut self) -> Result<(), PluginError> { Ok(()) }
/// }
/// impl ReadBack for Memory {
///     fn read_from(&mut self, from: u64, limit: u32) -> Result<Vec<String>, PluginError> {
///         let lines = self.lines.iter().filter(|(s, _)| *s >= from);
///         Ok(lines.take(limit as usize).map(|(_, l)| l.clone()).collect())
///     }
/// }
/// fn open(_: &str) -> Result<Memory, PluginError> {
///     Ok(Memory { lines: vec![(1, "one".into()), (2, "two".into()), (3, "three".into())] })
/// }
/// export_backend! { name: "memory", description: "", config_help: "", open: open }
/// export_read!(Memory);
/// # fn main() {
/// use audit_plugin_api::abi_stable::std_types::RStr;
/// let open = audit_backend_root_module().open();
/// let mut instance = open(RStr::from_str("{}")).into_result().expect("opens");
/// let export = audit_backend_ext_read_v1();
/// // SAFETY: built by `export_read!` in this very crate.
/// let read = unsafe { export.into_module::<audit_plugin_api::ext::ReadV1_Ref>() }.expect("same layout");
/// let page = read.read_from()(&mut instance, 2, 10).into_result().expect("reads");
/// assert_eq!(page.iter().map(|l| l.as_str()).collect::<Vec<_>>(), ["two", "three"]);
/// assert!(read.read_from()(&mut instance, 4, 10).into_result().expect("reads").is_empty());
/// # }
/// ```
#[macro_export]
macro_rules! export_read {
    ($backend:ty) => {
        /// The `read` capability, version 1, found by the host by this symbol's name.
        #[unsafe(no_mangle)]
        pub extern "C" fn audit_backend_ext_read_v1() -> $crate::ext::ExtensionExport {
            use ::abi_stable::prefix_type::PrefixTypeTrait;
            $crate::ext::ExtensionExport::new(
                $crate::ext::ReadV1 {
                    read_from: audit_backend_read_from_v1,
                }
                .leak_into_prefix(),
            )
        }

        /// The stored lines from `from_sequence` on, at most `limit`; panics are caught and
        /// returned as fatal errors.
        #[::abi_stable::sabi_extern_fn]
        pub fn audit_backend_read_from_v1(
            instance: &mut $crate::BackendBox,
            from_sequence: u64,
            limit: u32,
        ) -> ::abi_stable::std_types::RResult<
            ::abi_stable::std_types::RVec<::abi_stable::std_types::RString>,
            $crate::PluginError,
        > {
            $crate::__private::read_guarded::<$backend>(instance, from_sequence, limit)
        }
    };
}

/// Exports the `stats` capability ([`ext::StatsV1`]) for the backend type `$backend`, which
/// implements [`Stats`]; use it beside [`export_backend!`], whose `open` returns that type.
/// A host that knows the capability asks for the counters now and then; a host that does not
/// (1.0) never looks for it.
///
/// ```
/// use audit_plugin_api::{Backend, PluginError, Record, Stats, export_backend, export_stats};
/// #[derive(Default)]
/// struct Counting { records: u64 }
/// impl Backend for Counting {
///     fn write_batch(&mut self, records: &[Record<'_>]) -> Result<(), PluginError> {
///         self.records += records.len() as u64;
///         Ok(())
///     }
///     fn flush(&mut self) -> Result<(), PluginError> { Ok(()) }
///     fn close(&mut self) -> Result<(), PluginError> { Ok(()) }
/// }
/// impl Stats for Counting {
///     fn statistics(&mut self) -> Vec<(String, u64)> {
///         vec![("records_written".to_owned(), self.records)]
///     }
/// }
/// export_backend! { name: "counting", description: "", config_help: "", open: |_: &str| Ok(Counting::default()) }
/// export_stats!(Counting);
/// # fn main() {
/// use audit_plugin_api::abi_stable::std_types::RStr;
/// let open = audit_backend_root_module().open();
/// let mut instance = open(RStr::from_str("{}")).into_result().expect("opens");
/// let export = audit_backend_ext_stats_v1();
/// // SAFETY: built by `export_stats!` in this very crate.
/// let stats = unsafe { export.into_module::<audit_plugin_api::ext::StatsV1_Ref>() }.expect("same layout");
/// let counters = stats.statistics()(&mut instance);
/// assert_eq!(counters[0].name.as_str(), "records_written");
/// assert_eq!(counters[0].value, 0);
/// # }
/// ```
#[macro_export]
macro_rules! export_stats {
    ($backend:ty) => {
        /// The `stats` capability, version 1, found by the host by this symbol's name.
        #[unsafe(no_mangle)]
        pub extern "C" fn audit_backend_ext_stats_v1() -> $crate::ext::ExtensionExport {
            use ::abi_stable::prefix_type::PrefixTypeTrait;
            $crate::ext::ExtensionExport::new(
                $crate::ext::StatsV1 {
                    statistics: audit_backend_stats_v1,
                }
                .leak_into_prefix(),
            )
        }

        /// The instance's counters; a panic is caught (no counters, and the instance fails
        /// its next call).
        #[::abi_stable::sabi_extern_fn]
        pub fn audit_backend_stats_v1(
            instance: &mut $crate::BackendBox,
        ) -> ::abi_stable::std_types::RVec<$crate::ext::Counter> {
            $crate::__private::stats_guarded::<$backend>(instance)
        }
    };
}

/// Exports the `refuse` capability ([`ext::RefuseV1`]) for the backend type `$backend`, which
/// implements [`Refuse`]; use it beside [`export_backend!`], whose `open` returns that type.
/// A host that knows the capability calls it instead of the vtable's `write_batch`; a host
/// that does not (1.0) never looks for it and calls [`Backend::write_batch`].
///
/// ```
/// use audit_plugin_api::ext::Refusal;
/// use audit_plugin_api::{Backend, PluginError, Record, Refuse, export_backend, export_refuse};
/// /// Stores lines of up to 64 bytes.
/// struct Small { stored: Vec<u64> }
/// impl Backend for Small {
///     fn write_batch(&mut self, records: &[Record<'_>]) -> Result<(), PluginError> {
///         // Without the capability the batch is stored or failed whole.
///         if records.iter().any(|r| r.line().len() > 64) {
///             return Err(PluginError::fatal("a line is longer than 64 bytes"));
///         }
///         self.stored.extend(records.iter().map(|r| r.sequence_number));
///         Ok(())
///     }
///     fn flush(&mut self) -> Result<(), PluginError> { Ok(()) }
///     fn close(&mut self) -> Result<(), PluginError> { Ok(()) }
/// }
/// impl Refuse for Small {
///     fn write_batch_refusing(
///         &mut self,
///         records: &[Record<'_>],
///         refused: &mut Vec<Refusal>,
///     ) -> Result<(), PluginError> {
///         for r in records {
///             if r.line().len() > 64 {
///                 refused.push(Refusal::new(r.sequence_number, "line longer than 64 bytes"));
///             } else {
///                 self.stored.push(r.sequence_number);
///             }
///         }
///         Ok(())
///     }
/// }
/// export_backend! { name: "small", description: "", config_help: "", open: |_: &str| Ok(Small { stored: Vec::new() }) }
/// export_refuse!(Small);
/// # fn main() {
/// use audit_plugin_api::abi_stable::std_types::{RNone, RSlice, RStr, RVec};
/// let open = audit_backend_root_module().open();
/// let mut instance = open(RStr::from_str("{}")).into_result().expect("opens");
/// let export = audit_backend_ext_refuse_v1();
/// // SAFETY: built by `export_refuse!` in this very crate.
/// let module = unsafe { export.into_module::<audit_plugin_api::ext::RefuseV1_Ref>() }.expect("same layout");
/// let long = "x".repeat(100);
/// let record = |seq: u64, line: &'static str| Record {
///     line: RStr::from_str(line),
///     sequence_number: seq,
///     timestamp: RStr::from_str("2026-01-01T00:00:00.000000Z"),
///     timestamp_micros: 1_767_225_600_000_000,
///     event_id: RStr::from_str("e"),
///     event_type: RStr::from_str("data_access"),
///     log_level: RStr::from_str("info"),
///     user_id: RNone,
/// };
/// let long: &'static str = Box::leak(long.into_boxed_str());
/// let records = [record(1, "{}"), record(2, long), record(3, "{}")];
/// let mut refused = RVec::new();
/// module.write_batch()(&mut instance, RSlice::from_slice(&records), &mut refused)
///     .into_result()
///     .expect("stored but one");
/// assert_eq!(refused.as_slice(), [Refusal::new(2, "line longer than 64 bytes")]);
/// # }
/// ```
#[macro_export]
macro_rules! export_refuse {
    ($backend:ty) => {
        /// The `refuse` capability, version 1, found by the host by this symbol's name.
        #[unsafe(no_mangle)]
        pub extern "C" fn audit_backend_ext_refuse_v1() -> $crate::ext::ExtensionExport {
            use ::abi_stable::prefix_type::PrefixTypeTrait;
            $crate::ext::ExtensionExport::new(
                $crate::ext::RefuseV1 {
                    write_batch: audit_backend_refuse_write_batch_v1,
                }
                .leak_into_prefix(),
            )
        }

        /// Stores a batch but the records it refuses; panics are caught and returned as fatal
        /// errors.
        #[::abi_stable::sabi_extern_fn]
        pub fn audit_backend_refuse_write_batch_v1(
            instance: &mut $crate::BackendBox,
            records: ::abi_stable::std_types::RSlice<'_, $crate::Record<'_>>,
            refused: &mut ::abi_stable::std_types::RVec<$crate::ext::Refusal>,
        ) -> ::abi_stable::std_types::RResult<(), $crate::PluginError> {
            $crate::__private::refuse_guarded::<$backend>(instance, records, refused)
        }
    };
}

/// Exports the `seal` capability ([`ext::SealV1`]) for the backend type `$backend`, which
/// implements [`Witness`]; use it beside [`export_backend!`], whose `open` returns that type.
/// A host that knows the capability hands the plugin every seal it signs; a host that does
/// not never looks for it.
///
/// ```
/// use audit_plugin_api::{Backend, PluginError, Record, Witness, export_backend, export_seal};
/// #[derive(Default)]
/// struct Copy { seals: Vec<String> }
/// impl Backend for Copy {
///     fn write_batch(&mut self, _: &[Record<'_>]) -> Result<(), PluginError> { Ok(()) }
///     fn flush(&mut self) -> Result<(), PluginError> { Ok(()) }
///     fn close(&mut self) -> Result<(), PluginError> { Ok(()) }
/// }
/// impl Witness for Copy {
///     fn seal(&mut self, line: &str) -> Result<(), PluginError> {
///         self.seals.push(line.to_owned());
///         Ok(())
///     }
/// }
/// export_backend! { name: "copy", description: "", config_help: "", open: |_: &str| Ok(Copy::default()) }
/// export_seal!(Copy);
/// # fn main() {
/// use audit_plugin_api::abi_stable::std_types::RStr;
/// let open = audit_backend_root_module().open();
/// let mut instance = open(RStr::from_str("{}")).into_result().expect("opens");
/// let export = audit_backend_ext_seal_v1();
/// // SAFETY: built by `export_seal!` in this very crate.
/// let seal = unsafe { export.into_module::<audit_plugin_api::ext::SealV1_Ref>() }.expect("same layout");
/// seal.seal()(&mut instance, RStr::from_str("{}")).into_result().expect("stored");
/// # }
/// ```
#[macro_export]
macro_rules! export_seal {
    ($backend:ty) => {
        /// The `seal` capability, version 1, found by the host by this symbol's name.
        #[unsafe(no_mangle)]
        pub extern "C" fn audit_backend_ext_seal_v1() -> $crate::ext::ExtensionExport {
            use ::abi_stable::prefix_type::PrefixTypeTrait;
            $crate::ext::ExtensionExport::new(
                $crate::ext::SealV1 {
                    seal: audit_backend_seal_v1,
                }
                .leak_into_prefix(),
            )
        }

        /// Stores one seal line; panics are caught and returned as fatal errors.
        #[::abi_stable::sabi_extern_fn]
        pub fn audit_backend_seal_v1(
            instance: &mut $crate::BackendBox,
            seal_line: ::abi_stable::std_types::RStr<'_>,
        ) -> ::abi_stable::std_types::RResult<(), $crate::PluginError> {
            $crate::__private::seal_guarded::<$backend>(instance, seal_line)
        }
    };
}
