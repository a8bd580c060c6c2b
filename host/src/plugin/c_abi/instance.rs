//! An opened C plugin instance behind the plugin thread's [`Instance`] interface: each call
//! passes borrowed records and host sinks, and checks what comes back.
#![expect(unsafe_code, reason = "calls into a C plugin's function table")]

use std::ffi::c_void;

use audit_plugin_api::{PluginError, Record};

use super::sink::{CounterSink, RefusalSink, StringSink};
use super::{CRecord, CStr, Functions};
use crate::backend::Refusal;
use crate::plugin::instance::{Instance, with_plugin_records};

/// A C plugin's instance pointer and its table's functions. Lives on its plugin thread.
pub(in crate::plugin) struct CInstance {
    functions: Functions,
    instance: *mut c_void,
    closed: bool,
}

impl CInstance {
    /// Runs the plugin's `open` with `config_json`.
    pub(in crate::plugin) fn open(
        functions: Functions,
        config_json: &str,
    ) -> Result<Self, PluginError> {
        let mut instance: *mut c_void = std::ptr::null_mut();
        let mut error = StringSink::new();
        // SAFETY: the config is borrowed for the call, `instance` and the sink outlive it.
        let status = unsafe {
            (functions.open)(
                config_json.as_ptr().cast(),
                config_json.len(),
                &raw mut instance,
                error.raw(),
            )
        };
        super::sink::finish(status, "open", error)?;
        Ok(Self {
            functions,
            instance,
            closed: false,
        })
    }

    fn write_records(
        &mut self,
        batch: &[crate::AuditRecord],
        refusing: bool,
    ) -> Result<Vec<Refusal>, PluginError> {
        with_plugin_records(batch, |records| {
            let c_records: Vec<CRecord> = records.iter().map(c_record).collect();
            let size = std::mem::size_of::<CRecord>();
            let mut error = StringSink::new();
            match self.functions.write_batch_refusing {
                Some(write) if refusing => {
                    let mut refused = RefusalSink::new();
                    // SAFETY: the records borrow `batch`'s lines for the call; the sinks
                    // outlive it; the instance is this plugin's, called from one thread.
                    let status = unsafe {
                        write(
                            self.instance,
                            c_records.as_ptr(),
                            c_records.len(),
                            size,
                            refused.raw(),
                            error.raw(),
                        )
                    };
                    super::sink::finish(status, "write_batch_refusing", error)?;
                    refused.take()
                }
                _ => {
                    // SAFETY: as above.
                    let status = unsafe {
                        (self.functions.write_batch)(
                            self.instance,
                            c_records.as_ptr(),
                            c_records.len(),
                            size,
                            error.raw(),
                        )
                    };
                    super::sink::finish(status, "write_batch", error).map(|()| Vec::new())
                }
            }
        })
    }

    /// Calls `f` (`last_line`, `health`), which puts at most one string.
    fn one_string(
        &mut self,
        what: &str,
        f: unsafe extern "C" fn(*mut c_void, *mut super::RawSink, *mut super::RawSink) -> i32,
    ) -> Result<Option<String>, PluginError> {
        let (mut out, mut error) = (StringSink::new(), StringSink::new());
        // SAFETY: the sinks outlive the call; the instance is this plugin's.
        let status = unsafe { f(self.instance, out.raw(), error.raw()) };
        super::sink::finish(status, what, error)?;
        out.take_one(what)
    }
}

/// A record as the header lays it out, borrowing the host's strings.
fn c_record(r: &Record<'_>) -> CRecord {
    let s = |v: &str| CStr {
        ptr: v.as_ptr().cast(),
        len: v.len(),
    };
    CRecord {
        line: s(r.line()),
        sequence_number: r.sequence_number,
        timestamp: s(r.timestamp.as_str()),
        timestamp_micros: r.timestamp_micros,
        event_id: s(r.event_id.as_str()),
        event_type: s(r.event_type.as_str()),
        log_level: s(r.log_level.as_str()),
        user_id: match r.user_id() {
            Some(u) => s(u),
            None => CStr {
                ptr: std::ptr::null(),
                len: 0,
            },
        },
    }
}

impl Instance for CInstance {
    fn write(
        &mut self,
        batch: &[crate::AuditRecord],
        refusing: bool,
    ) -> Result<Vec<Refusal>, PluginError> {
        self.write_records(batch, refusing)
    }

    fn flush(&mut self) -> Result<(), PluginError> {
        let mut error = StringSink::new();
        // SAFETY: the sink outlives the call; the instance is this plugin's.
        let status = unsafe { (self.functions.flush)(self.instance, error.raw()) };
        super::sink::finish(status, "flush", error)
    }

    fn last_line(&mut self) -> Result<Option<String>, PluginError> {
        match self.functions.last_line {
            Some(f) => self.one_string("last_line", f),
            None => Ok(None),
        }
    }

    fn health(&mut self) -> Result<Option<String>, PluginError> {
        match self.functions.health {
            Some(f) => self
                .one_string("health", f)
                .map(|s| Some(s.unwrap_or_default())),
            None => Ok(None),
        }
    }

    fn statistics(&mut self) -> Result<Vec<(String, u64)>, PluginError> {
        let Some(statistics) = self.functions.statistics else {
            return Ok(Vec::new());
        };
        let (mut counters, mut error) = (CounterSink::new(), StringSink::new());
        // SAFETY: the sinks outlive the call; the instance is this plugin's.
        let status = unsafe { statistics(self.instance, counters.raw(), error.raw()) };
        super::sink::finish(status, "statistics", error)?;
        counters.take().map_err(|why| {
            PluginError::fatal(format!(
                "the C plugin's `statistics` handed back a counter name that {why}"
            ))
        })
    }

    fn read_from(&mut self, from: u64, limit: u32) -> Result<Option<Vec<String>>, PluginError> {
        let Some(read) = self.functions.read_from else {
            return Ok(None);
        };
        let (mut lines, mut error) = (StringSink::new(), StringSink::new());
        // SAFETY: the sinks outlive the call; the instance is this plugin's.
        let status = unsafe { read(self.instance, from, limit, lines.raw(), error.raw()) };
        super::sink::finish(status, "read_from", error)?;
        let lines = lines.take().map_err(|why| {
            PluginError::fatal(format!(
                "the C plugin's `read_from` handed back a line that {why}"
            ))
        })?;
        if lines.len() > limit as usize {
            return Err(PluginError::fatal(format!(
                "the C plugin's `read_from` put {} lines; it was asked for at most {limit}",
                lines.len()
            )));
        }
        Ok(Some(lines))
    }

    fn close(&mut self) -> Result<(), PluginError> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        let mut error = StringSink::new();
        // SAFETY: the sink outlives the call; the plugin frees the instance, which is not
        // used again (`closed`).
        let status = unsafe { (self.functions.close)(self.instance, error.raw()) };
        super::sink::finish(status, "close", error)
    }
}
