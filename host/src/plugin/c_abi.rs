//! C plugins (`plugin-api/include/audit_backend.h`): the library's one entry symbol, the
//! function table it returns, and the checks that turn a malformed table into an error
//! instead of undefined behaviour (docs/extension-guide.md, "Writing a plugin in C").
//!
//! The `repr(C)` types here mirror the header member for member; members are only appended
//! there, and the host reads nothing past the size a plugin reports.
#![expect(
    unsafe_code,
    reason = "calling a C plugin's entry and reading the table it returns is FFI"
)]

use std::ffi::{c_char, c_void};
use std::path::Path;

use abi_stable::library::RawLibrary;
use audit_plugin_api::PluginError;

mod instance;
mod sink;

pub(super) use instance::CInstance;
use sink::{RawSink, StringSink};

use super::{library_error, plugin_error};
use audit_format::error::Result;

/// The symbol every C plugin exports (`AUDIT_BACKEND_ENTRY_SYMBOL`).
pub(super) const ENTRY_SYMBOL: &str = "audit_backend_c_entry";

/// The C ABI this host speaks: `AUDIT_BACKEND_ABI_VERSION` of the header it mirrors.
pub const C_ABI_MAJOR: u32 = 1;
/// See [`C_ABI_MAJOR`].
pub const C_ABI_MINOR: u32 = 0;
const C_ABI_VERSION: u32 = (C_ABI_MAJOR << 16) | C_ABI_MINOR;

/// The longest name, version, description or config help a table may carry.
const MAX_TABLE_STRING: usize = 1 << 20;

/// `major.minor` of a `(major << 16) | minor` version.
pub(super) fn version_text(version: u32) -> String {
    format!("{}.{}", version >> 16, version & 0xffff)
}

/// `audit_str`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct CStr {
    pub(super) ptr: *const c_char,
    pub(super) len: usize,
}

/// `audit_record`.
#[repr(C)]
pub(super) struct CRecord {
    pub(super) line: CStr,
    pub(super) sequence_number: u64,
    pub(super) timestamp: CStr,
    pub(super) timestamp_micros: i64,
    pub(super) event_id: CStr,
    pub(super) event_type: CStr,
    pub(super) log_level: CStr,
    pub(super) user_id: CStr,
}

type OpenFn = unsafe extern "C" fn(*const c_char, usize, *mut *mut c_void, *mut RawSink) -> i32;
type WriteFn = unsafe extern "C" fn(*mut c_void, *const CRecord, usize, usize, *mut RawSink) -> i32;
type CallFn = unsafe extern "C" fn(*mut c_void, *mut RawSink) -> i32;
type OutputFn = unsafe extern "C" fn(*mut c_void, *mut RawSink, *mut RawSink) -> i32;
type ValidateFn = unsafe extern "C" fn(*const c_char, usize, *mut RawSink) -> i32;
type WriteRefusingFn = unsafe extern "C" fn(
    *mut c_void,
    *const CRecord,
    usize,
    usize,
    *mut sink::RawRefusals,
    *mut RawSink,
) -> i32;
type ReadFromFn = unsafe extern "C" fn(*mut c_void, u64, u32, *mut RawSink, *mut RawSink) -> i32;
type StatisticsFn = unsafe extern "C" fn(*mut c_void, *mut sink::RawCounters, *mut RawSink) -> i32;
type EntryFn = unsafe extern "C" fn(u32, *mut u32) -> *const CTable;

/// `struct audit_backend` of ABI 1.0. All-zero is a valid value (NULL pointers, `None`).
#[repr(C)]
#[derive(Clone, Copy)]
struct CTable {
    size: u32,
    abi_version: u32,
    name: CStr,
    version: CStr,
    description: CStr,
    config_help: CStr,
    open: Option<OpenFn>,
    write_batch: Option<WriteFn>,
    flush: Option<CallFn>,
    last_line: Option<OutputFn>,
    close: Option<CallFn>,
    validate: Option<ValidateFn>,
    health: Option<OutputFn>,
    write_batch_refusing: Option<WriteRefusingFn>,
    read_from: Option<ReadFromFn>,
    statistics: Option<StatisticsFn>,
}

/// The smallest table this host accepts: every member of ABI 1.0.
const MIN_TABLE_SIZE: usize = std::mem::size_of::<CTable>();

/// A C plugin's functions, checked: the required ones present. Plain function pointers, so
/// the opener can move them to the instance's thread.
#[derive(Clone, Copy)]
pub(super) struct Functions {
    pub(super) open: OpenFn,
    pub(super) write_batch: WriteFn,
    pub(super) flush: CallFn,
    pub(super) last_line: Option<OutputFn>,
    pub(super) close: CallFn,
    pub(super) validate: Option<ValidateFn>,
    pub(super) health: Option<OutputFn>,
    pub(super) write_batch_refusing: Option<WriteRefusingFn>,
    pub(super) read_from: Option<ReadFromFn>,
    pub(super) statistics: Option<StatisticsFn>,
}

impl Functions {
    /// The capabilities, as `audit plugin inspect` lists them for Rust plugins.
    pub(super) fn capability_names(&self) -> Vec<String> {
        [
            ("health/1", self.health.is_some()),
            ("validate/1", self.validate.is_some()),
            ("read/1", self.read_from.is_some()),
            ("stats/1", self.statistics.is_some()),
            ("refuse/1", self.write_batch_refusing.is_some()),
        ]
        .into_iter()
        .filter(|(_, offered)| *offered)
        .map(|(name, _)| name.to_owned())
        .collect()
    }
}

/// What a C plugin's table says about it.
pub(super) struct CPlugin {
    pub(super) functions: Functions,
    pub(super) name: String,
    pub(super) version: String,
    /// `major.minor` of the ABI the plugin was built against.
    pub(super) abi: String,
    pub(super) description: String,
    pub(super) config_help: String,
}

/// Loads `path` as a C plugin when it exports [`ENTRY_SYMBOL`]: `None` when it does not (try
/// the Rust ABI). The library is never unloaded.
///
/// # Errors
/// A one-line [`Error::Plugin`](audit_format::error::Error::Plugin) when the library cannot
/// be opened, was built for another ABI major (naming both versions), returns no table, or
/// a malformed one (too small, a required function NULL, a string that is not UTF-8).
pub(super) fn load(path: &Path) -> Result<Option<CPlugin>> {
    let lib = RawLibrary::load_at(path).map_err(|e| library_error(path, e))?;
    // SAFETY: `audit_backend.h` reserves this name for the entry, of type `EntryFn`.
    let Ok(symbol) = (unsafe { lib.get::<EntryFn>(ENTRY_SYMBOL.as_bytes()) }) else {
        return Ok(None);
    };
    let entry: EntryFn = *symbol;
    // Libraries are never unloaded: the table and its functions point into this one.
    std::mem::forget(lib);
    let mut theirs: u32 = 0;
    // SAFETY: the entry's signature is fixed by the header for every ABI version; it writes
    // one u32 through the pointer, which points at a live local.
    let table = unsafe { entry(C_ABI_VERSION, &raw mut theirs) };
    let ours = version_text(C_ABI_VERSION);
    let mismatch = |theirs: u32| {
        let upgrade = if theirs >> 16 > C_ABI_MAJOR {
            format!(", or run a host that speaks C ABI {}.x", theirs >> 16)
        } else {
            String::new()
        };
        plugin_error(
            path,
            format!(
                "built against the C plugin ABI {} (audit_backend.h), but this host speaks C ABI {ours}; rebuild the plugin against this host's audit_backend.h (ABI {C_ABI_MAJOR}.x){upgrade}",
                version_text(theirs)
            ),
        )
    };
    if theirs >> 16 != C_ABI_MAJOR && theirs != 0 {
        return Err(mismatch(theirs));
    }
    if table.is_null() {
        let why = if theirs == 0 {
            "reported no ABI version".to_owned()
        } else {
            format!("reports ABI {}", version_text(theirs))
        };
        return Err(plugin_error(
            path,
            format!(
                "its {ENTRY_SYMBOL} returned no function table for this host's C ABI {ours} (the plugin {why}); it cannot serve this host: rebuild it with AUDIT_BACKEND_DEFINE_ENTRY from audit_backend.h"
            ),
        ));
    }
    // SAFETY: a non-NULL table starts with its size in every ABI version (read unaligned:
    // nothing checks the alignment of the pointer the plugin returned).
    let size = unsafe { table.cast::<u32>().read_unaligned() } as usize;
    if size < MIN_TABLE_SIZE {
        return Err(malformed(
            path,
            format!(
                "it reports a size of {size} bytes, but C ABI {ours} needs at least {MIN_TABLE_SIZE} (struct audit_backend with every 1.0 member); set `size` to sizeof(audit_backend) and rebuild against audit_backend.h"
            ),
        ));
    }
    let mut copy = std::mem::MaybeUninit::<CTable>::zeroed();
    let known = size.min(std::mem::size_of::<CTable>());
    // SAFETY: the plugin says its table has `size` bytes, of which the host reads only the
    // `known` it has members for, into a zeroed local; all-zero is a valid `CTable`, and the
    // plugin's bytes are its members (pointers, C function pointers, integers).
    let t = unsafe {
        std::ptr::copy_nonoverlapping(table.cast::<u8>(), copy.as_mut_ptr().cast::<u8>(), known);
        copy.assume_init()
    };
    if t.abi_version >> 16 != C_ABI_MAJOR {
        return Err(mismatch(t.abi_version));
    }
    let required = |name: &str, present: bool| {
        if present {
            Ok(())
        } else {
            Err(malformed(
                path,
                format!(
                    "its required function `{name}` is NULL; a C plugin implements open, write_batch, flush and close"
                ),
            ))
        }
    };
    required("open", t.open.is_some())?;
    required("write_batch", t.write_batch.is_some())?;
    required("flush", t.flush.is_some())?;
    required("close", t.close.is_some())?;
    let (Some(open), Some(write_batch), Some(flush), Some(close)) =
        (t.open, t.write_batch, t.flush, t.close)
    else {
        unreachable!("checked above; this is a bug in audit-host");
    };
    let text = |what: &str, s: CStr, required: bool| -> Result<String> {
        // SAFETY: the table's strings stay valid while the library is loaded (header rule 5);
        // `table_str` checks NULL, the length bound and UTF-8.
        match unsafe { table_str(s) } {
            Ok(v) if required && v.is_empty() => {
                Err(malformed(path, format!("its `{what}` is empty")))
            }
            Ok(v) => Ok(v),
            Err(why) => Err(malformed(path, format!("its `{what}` {why}"))),
        }
    };
    Ok(Some(CPlugin {
        functions: Functions {
            open,
            write_batch,
            flush,
            last_line: t.last_line,
            close,
            validate: t.validate,
            health: t.health,
            write_batch_refusing: t.write_batch_refusing,
            read_from: t.read_from,
            statistics: t.statistics,
        },
        name: text("name", t.name, true)?,
        version: text("version", t.version, true)?,
        abi: version_text(t.abi_version),
        description: text("description", t.description, false)?,
        config_help: text("config_help", t.config_help, false)?,
    }))
}

fn malformed(path: &Path, why: String) -> audit_format::error::Error {
    plugin_error(path, format!("a malformed C plugin function table: {why}"))
}

/// A string of the table, copied.
///
/// # Safety
/// `s.ptr`, when not NULL, points at `s.len` readable bytes.
unsafe fn table_str(s: CStr) -> std::result::Result<String, String> {
    if s.len > MAX_TABLE_STRING {
        return Err(format!(
            "is {} bytes long (at most {MAX_TABLE_STRING})",
            s.len
        ));
    }
    // SAFETY: as the caller guarantees; `borrowed` checks NULL.
    let text = unsafe { sink::borrowed(s.ptr, s.len) }?;
    Ok(text.to_owned())
}

/// Runs the plugin's `validate` on `config_json`: `None` when it does not offer it.
pub(super) fn validate(
    functions: &Functions,
    config_json: &str,
) -> Option<Result<(), PluginError>> {
    let validate = functions.validate?;
    let mut error = StringSink::new();
    // SAFETY: the config is borrowed for the call; the sink lives until it returns. The
    // header allows validate from any thread.
    let status = unsafe { validate(config_json.as_ptr().cast(), config_json.len(), error.raw()) };
    Some(sink::finish(status, "validate", error))
}
