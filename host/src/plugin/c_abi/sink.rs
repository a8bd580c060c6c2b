//! The callbacks a C plugin hands strings back through (`audit_sink`, `audit_refusals`): the
//! host copies and checks each string during the call, so no memory crosses allocators and
//! a bad string becomes an error, not undefined behaviour.
#![expect(
    unsafe_code,
    reason = "the callbacks read strings a C plugin passes by pointer and length"
)]

use std::ffi::{c_char, c_void};

use audit_plugin_api::{ErrorKind, PluginError};

use crate::backend::Refusal;

/// The longest string a plugin may hand back in one call of a callback.
const MAX_STRING: usize = 64 << 20;

/// `audit_sink`.
#[repr(C)]
pub(in crate::plugin) struct RawSink {
    host_data: *mut c_void,
    put: unsafe extern "C" fn(*mut RawSink, *const c_char, usize),
}

/// `audit_refusals`.
#[repr(C)]
pub(in crate::plugin) struct RawRefusals {
    host_data: *mut c_void,
    refuse: unsafe extern "C" fn(*mut RawRefusals, u64, *const c_char, usize),
}

/// `audit_counters`.
#[repr(C)]
pub(in crate::plugin) struct RawCounters {
    host_data: *mut c_void,
    counter: unsafe extern "C" fn(*mut RawCounters, *const c_char, usize, u64),
}

struct Collected<T> {
    items: Vec<T>,
    /// The first string that was not acceptable, and why.
    bad: Option<String>,
}

impl<T> Default for Collected<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            bad: None,
        }
    }
}

/// The strings a plugin put into one sink during one call.
pub(in crate::plugin) struct StringSink {
    raw: RawSink,
    state: Box<Collected<String>>,
}

impl StringSink {
    pub(in crate::plugin) fn new() -> Self {
        Self {
            raw: RawSink {
                host_data: std::ptr::null_mut(),
                put,
            },
            state: Box::default(),
        }
    }

    /// The `audit_sink *` to pass to the plugin; valid while `self` is neither moved nor
    /// dropped.
    pub(in crate::plugin) fn raw(&mut self) -> *mut RawSink {
        self.raw.host_data = std::ptr::from_mut(&mut *self.state).cast();
        &raw mut self.raw
    }

    /// What was put, or why something put was refused.
    pub(in crate::plugin) fn take(self) -> Result<Vec<String>, String> {
        let state = *self.state;
        match state.bad {
            Some(why) => Err(why),
            None => Ok(state.items),
        }
    }

    /// At most one string (`last_line`, `health`).
    pub(in crate::plugin) fn take_one(self, what: &str) -> Result<Option<String>, PluginError> {
        let mut items = self.take().map_err(|why| bad_string(what, &why))?;
        if items.len() > 1 {
            return Err(PluginError::fatal(format!(
                "the C plugin's `{what}` put {} strings; it takes at most one",
                items.len()
            )));
        }
        Ok(items.pop())
    }
}

/// `audit_sink.put`: copies one string into the sink's state.
unsafe extern "C" fn put(sink: *mut RawSink, ptr: *const c_char, len: usize) {
    if sink.is_null() {
        return;
    }
    // SAFETY: `sink` is the pointer `StringSink::raw` handed to the plugin for this call
    // (header rule 4: never kept), so `host_data` points at its live `Collected<String>`.
    let state = unsafe { &mut *(*sink).host_data.cast::<Collected<String>>() };
    if state.bad.is_some() {
        return;
    }
    // SAFETY: the header requires `ptr` to point at `len` bytes for the call; `borrowed`
    // checks NULL and the length bound.
    match unsafe { borrowed(ptr, len) } {
        Ok(s) => state.items.push(s.to_owned()),
        Err(why) => state.bad = Some(why),
    }
}

/// The refusals a plugin reported during one `write_batch_refusing`.
pub(in crate::plugin) struct RefusalSink {
    raw: RawRefusals,
    state: Box<Collected<Refusal>>,
}

impl RefusalSink {
    pub(in crate::plugin) fn new() -> Self {
        Self {
            raw: RawRefusals {
                host_data: std::ptr::null_mut(),
                refuse,
            },
            state: Box::default(),
        }
    }

    /// As [`StringSink::raw`].
    pub(in crate::plugin) fn raw(&mut self) -> *mut RawRefusals {
        self.raw.host_data = std::ptr::from_mut(&mut *self.state).cast();
        &raw mut self.raw
    }

    pub(in crate::plugin) fn take(self) -> Result<Vec<Refusal>, PluginError> {
        let state = *self.state;
        match state.bad {
            Some(why) => Err(bad_string("write_batch_refusing", &why)),
            None => Ok(state.items),
        }
    }
}

/// `audit_refusals.refuse`: records one refusal.
unsafe extern "C" fn refuse(
    refusals: *mut RawRefusals,
    sequence_number: u64,
    ptr: *const c_char,
    len: usize,
) {
    if refusals.is_null() {
        return;
    }
    // SAFETY: as in `put`: the pointer `RefusalSink::raw` handed over for this call.
    let state = unsafe { &mut *(*refusals).host_data.cast::<Collected<Refusal>>() };
    if state.bad.is_some() {
        return;
    }
    // SAFETY: as in `put`.
    match unsafe { borrowed(ptr, len) } {
        Ok(reason) => state.items.push(Refusal {
            sequence_number,
            reason: reason.to_owned(),
        }),
        Err(why) => state.bad = Some(why),
    }
}

/// The counters a plugin reported during one `statistics` call.
pub(in crate::plugin) struct CounterSink {
    raw: RawCounters,
    state: Box<Collected<(String, u64)>>,
}

impl CounterSink {
    pub(in crate::plugin) fn new() -> Self {
        Self {
            raw: RawCounters {
                host_data: std::ptr::null_mut(),
                counter,
            },
            state: Box::default(),
        }
    }

    /// As [`StringSink::raw`].
    pub(in crate::plugin) fn raw(&mut self) -> *mut RawCounters {
        self.raw.host_data = std::ptr::from_mut(&mut *self.state).cast();
        &raw mut self.raw
    }

    /// The counters, or why one name was refused.
    pub(in crate::plugin) fn take(self) -> Result<Vec<(String, u64)>, String> {
        let state = *self.state;
        match state.bad {
            Some(why) => Err(why),
            None => Ok(state.items),
        }
    }
}

/// `audit_counters.counter`: records one counter.
unsafe extern "C" fn counter(
    counters: *mut RawCounters,
    ptr: *const c_char,
    len: usize,
    value: u64,
) {
    if counters.is_null() {
        return;
    }
    // SAFETY: as in `put`: the pointer `CounterSink::raw` handed over for this call.
    let state = unsafe { &mut *(*counters).host_data.cast::<Collected<(String, u64)>>() };
    if state.bad.is_some() {
        return;
    }
    // SAFETY: as in `put`.
    match unsafe { borrowed(ptr, len) } {
        Ok(name) => state.items.push((name.to_owned(), value)),
        Err(why) => state.bad = Some(why),
    }
}

/// The string at `ptr`, `len` bytes, checked: not NULL unless empty, at most 64 MiB, UTF-8.
///
/// # Safety
/// `ptr`, when not NULL and `len` is at most the bound, points at `len` readable bytes that
/// stay valid and unchanged for `'a`.
pub(in crate::plugin) unsafe fn borrowed<'a>(
    ptr: *const c_char,
    len: usize,
) -> Result<&'a str, String> {
    if len == 0 {
        return Ok("");
    }
    if ptr.is_null() {
        return Err(format!("is NULL with a length of {len}"));
    }
    if len > MAX_STRING {
        return Err(format!("is {len} bytes long (at most {MAX_STRING})"));
    }
    // SAFETY: as the caller guarantees; `len` is bounded well below isize::MAX.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
    std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "is not UTF-8 (invalid bytes at offset {} of {len})",
            e.valid_up_to()
        )
    })
}

fn bad_string(what: &str, why: &str) -> PluginError {
    PluginError::fatal(format!(
        "the C plugin's `{what}` handed back a string that {why}"
    ))
}

/// The outcome of a C call from its status and the message it put into `error`; an
/// unknown status counts as fatal.
pub(in crate::plugin) fn finish(
    status: i32,
    what: &str,
    error: StringSink,
) -> Result<(), PluginError> {
    let message = match error.take() {
        Ok(parts) => parts.concat(),
        Err(why) => return Err(bad_string(what, &format!("{why} (its error message)"))),
    };
    let message = if message.is_empty() {
        format!("`{what}` failed without a message (status {status})")
    } else {
        message
    };
    let kind = match status {
        0 => return Ok(()),
        1 => ErrorKind::Retryable,
        3 => ErrorKind::Config,
        2 => ErrorKind::Fatal,
        other => {
            return Err(PluginError::fatal(format!(
                "`{what}` returned the unknown status {other}: {message}"
            )));
        }
    };
    Err(PluginError {
        kind,
        message: message.into(),
    })
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn borrowed_strings_are_checked() {
        // SAFETY: NULL is never read; the slices are live for the call.
        unsafe {
            assert_eq!(borrowed(std::ptr::null(), 0), Ok(""));
            assert_eq!(
                borrowed(std::ptr::null(), 3),
                Err("is NULL with a length of 3".to_owned())
            );
            let bad = b"ok\xff";
            assert_eq!(
                borrowed(bad.as_ptr().cast(), bad.len()),
                Err("is not UTF-8 (invalid bytes at offset 2 of 3)".to_owned())
            );
            let good = "h\u{e9}";
            assert_eq!(borrowed(good.as_ptr().cast(), good.len()), Ok(good));
            assert!(
                borrowed(good.as_ptr().cast(), MAX_STRING + 1)
                    .is_err_and(|e| e.contains("bytes long"))
            );
        }
    }

    #[test]
    fn a_sink_collects_what_is_put_and_remembers_the_first_bad_string() {
        let mut sink = StringSink::new();
        let raw = sink.raw();
        // SAFETY: `raw` is this live sink's; the strings are live for each call.
        unsafe {
            ((*raw).put)(raw, "one".as_ptr().cast(), 3);
            ((*raw).put)(raw, std::ptr::null(), 1);
            ((*raw).put)(raw, "two".as_ptr().cast(), 3);
        }
        assert_eq!(sink.take(), Err("is NULL with a length of 1".to_owned()));
    }

    #[test]
    fn statuses_map_to_error_kinds_and_unknown_ones_are_fatal() {
        let with = |status: i32, message: &str| {
            let mut error = StringSink::new();
            let raw = error.raw();
            // SAFETY: as above.
            unsafe { ((*raw).put)(raw, message.as_ptr().cast(), message.len()) };
            finish(status, "flush", error)
        };
        assert!(with(0, "").is_ok());
        assert!(
            matches!(with(1, "busy"), Err(e) if e.kind == ErrorKind::Retryable && e.message.as_str() == "busy")
        );
        assert!(matches!(with(2, "broken"), Err(e) if e.kind == ErrorKind::Fatal));
        assert!(matches!(with(3, "`path`"), Err(e) if e.kind == ErrorKind::Config));
        assert!(matches!(
            with(-7, "what"),
            Err(e) if e.kind == ErrorKind::Fatal && e.message.as_str() == "`flush` returned the unknown status -7: what"
        ));
        assert!(matches!(
            finish(1, "flush", StringSink::new()),
            Err(e) if e.message.as_str() == "`flush` failed without a message (status 1)"
        ));
    }
}
