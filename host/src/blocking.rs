//! A blocking facade over [`crate::AuditTrail`], for programs without an async runtime.
//!
//! Every method waits for what the async method of the same name awaits, on one small
//! current-thread tokio runtime the facade starts on first use and shares process-wide (the
//! trail's writer and lanes run on their own threads either way). The facade is `Send` and
//! `Sync`: share it between threads with an `Arc` or a `&`.
//!
//! ```no_run
//! use audit_host::{AuditEventType, AuditTrail};
//!
//! fn main() -> audit_host::Result<()> {
//!     let trail = AuditTrail::builder()
//!         .storage_path("audit_logs")
//!         .build_blocking()?;
//!     trail
//!         .log_event(AuditEventType::ConfigChanged, "raised rate limit")
//!         .user_id("alice")
//!         .record()?;
//!     assert_eq!(trail.verify_chain()?.events, 1);
//!     trail.close() // drains the queue, fdatasyncs, releases the directory lock
//! }
//! ```
//!
//! Inside an async runtime (a `tokio` task, `block_on`, or `spawn_blocking`), where tokio
//! would panic, every blocking call returns [`Error::BlockingInRuntime`] and does nothing:
//! use the async [`crate::AuditTrail`] there ([`AuditTrail::as_async`] gives it).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chrono::{DateTime, Utc};

use crate::statistics::{Receipt, Statistics};
use crate::trail::builder::AuditTrailBuilder;
use crate::trail::pending::{event_setters, forward};
use crate::{StorageBackend, global};
use audit_format::error::{Error, Result};
use audit_format::event::{AuditEvent, AuditEventType, AuditLogLevel, ErrorReport};
use audit_format::policy::CompliancePolicy;
use audit_format::query::EventQuery;
use audit_format::verify::VerifyReport;

/// Runs `future` to completion on the facade's runtime, or refuses inside a runtime.
///
/// For the async API's calls the facade has no method for (`trail.as_async().…`, or the
/// process-wide trail's `close`: `run("close", get_audit_trail()?.close())`).
///
/// # Errors
/// [`Error::BlockingInRuntime`] naming `call` when called inside an async runtime; what
/// `future` returns.
pub fn run<T>(call: &'static str, future: impl Future<Output = Result<T>>) -> Result<T> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::BlockingInRuntime { call });
    }
    runtime()?.block_on(future)
}

/// The facade's runtime: current-thread, started on first use, never dropped (so no
/// runtime is ever dropped inside another).
fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .thread_name("audit-blocking")
        .build()
        .map_err(|e| {
            Error::backend(format!(
                "cannot start the runtime of audit_host::blocking: {e}"
            ))
        })?;
    // A racing thread may have set one first: that one is used, this one dropped here,
    // outside any runtime.
    Ok(RUNTIME.get_or_init(|| rt))
}

/// A blocking [`crate::AuditTrail`]: the same trail, methods that return once the async
/// method would have completed.
#[derive(Debug)]
pub struct AuditTrail {
    inner: crate::AuditTrail,
}

impl From<crate::AuditTrail> for AuditTrail {
    fn from(inner: crate::AuditTrail) -> Self {
        Self { inner }
    }
}

impl AuditTrailBuilder {
    /// [`build`](Self::build), wrapped in the blocking facade.
    ///
    /// # Errors
    /// As [`build`](Self::build).
    pub fn build_blocking(self) -> Result<AuditTrail> {
        self.build().map(AuditTrail::from)
    }
}

impl AuditTrail {
    /// [`crate::AuditTrail::new`], blocking.
    ///
    /// # Errors
    /// As [`crate::AuditTrail::new`].
    pub fn new(
        policy: Option<CompliancePolicy>,
        storage_path: Option<PathBuf>,
        backend: Option<Box<dyn StorageBackend>>,
    ) -> Result<Self> {
        crate::AuditTrail::new(policy, storage_path, backend).map(Self::from)
    }

    /// [`crate::AuditTrail::from_config_file`], blocking.
    ///
    /// # Errors
    /// As [`crate::AuditTrail::from_config_file`].
    pub fn from_config_file(path: impl AsRef<Path>) -> Result<Self> {
        crate::AuditTrail::from_config_file(path).map(Self::from)
    }

    /// The async trail underneath (for use inside a runtime, or methods not mirrored here).
    pub fn as_async(&self) -> &crate::AuditTrail {
        &self.inner
    }

    /// The async trail, unwrapped.
    pub fn into_async(self) -> crate::AuditTrail {
        self.inner
    }

    /// [`crate::AuditTrail::log`]: returns the event id once it is accepted.
    ///
    /// # Errors
    /// As [`crate::AuditTrail::log`]; [`Error::BlockingInRuntime`].
    pub fn log(&self, event: AuditEvent) -> Result<String> {
        run(
            "audit_host::blocking::AuditTrail::log",
            self.inner.log(event),
        )
    }

    /// [`crate::AuditTrail::log_receipt`].
    ///
    /// # Errors
    /// As [`crate::AuditTrail::log`]; [`Error::BlockingInRuntime`].
    pub fn log_receipt(&self, event: AuditEvent) -> Result<Receipt> {
        run(
            "audit_host::blocking::AuditTrail::log_receipt",
            self.inner.log_receipt(event),
        )
    }

    /// [`crate::AuditTrail::log_ref`].
    ///
    /// # Errors
    /// As [`crate::AuditTrail::log`]; [`Error::BlockingInRuntime`].
    pub fn log_ref(&self, event: &AuditEvent) -> Result<Receipt> {
        run(
            "audit_host::blocking::AuditTrail::log_ref",
            self.inner.log_ref(event),
        )
    }

    /// [`crate::AuditTrail::log_event`]: chain setters, then [`record`](PendingEvent::record).
    pub fn log_event(
        &self,
        event_type: AuditEventType,
        message: impl Into<String>,
    ) -> PendingEvent<'_> {
        PendingEvent {
            trail: self,
            event: AuditEvent::new(event_type, message),
        }
    }

    /// [`crate::AuditTrail::log_security_event`]: level `security`.
    pub fn log_security_event(
        &self,
        event_type: AuditEventType,
        message: impl Into<String>,
    ) -> PendingEvent<'_> {
        self.pending(self.inner.log_security_event(event_type, message))
    }

    /// [`crate::AuditTrail::log_data_access`].
    pub fn log_data_access(&self, resource: &str, operation: &str) -> PendingEvent<'_> {
        self.pending(self.inner.log_data_access(resource, operation))
    }

    /// [`crate::AuditTrail::log_error`].
    pub fn log_error(&self, report: ErrorReport) -> PendingEvent<'_> {
        self.pending(self.inner.log_error(report))
    }

    /// The event an async shorthand built, to record blocking.
    fn pending(&self, built: crate::PendingEvent<'_>) -> PendingEvent<'_> {
        PendingEvent {
            trail: self,
            event: built.into_event(),
        }
    }

    /// [`crate::AuditTrail::flush`]: returns once everything accepted is durable.
    ///
    /// # Errors
    /// As [`crate::AuditTrail::flush`]; [`Error::BlockingInRuntime`].
    pub fn flush(&self) -> Result<()> {
        run(
            "audit_host::blocking::AuditTrail::flush",
            self.inner.flush(),
        )
    }

    /// [`crate::AuditTrail::close`]: drains, fdatasyncs and closes every backend.
    ///
    /// # Errors
    /// As [`crate::AuditTrail::close`]; [`Error::BlockingInRuntime`].
    pub fn close(&self) -> Result<()> {
        run(
            "audit_host::blocking::AuditTrail::close",
            self.inner.close(),
        )
    }

    /// [`crate::AuditTrail::get_events`]: matching events, newest first.
    ///
    /// # Errors
    /// As [`crate::AuditTrail::get_events`]; [`Error::BlockingInRuntime`].
    pub fn get_events(&self, query: &EventQuery) -> Result<Vec<AuditEvent>> {
        run(
            "audit_host::blocking::AuditTrail::get_events",
            self.inner.get_events(query),
        )
    }

    /// [`crate::AuditTrail::verify_chain`].
    ///
    /// # Errors
    /// As [`crate::AuditTrail::verify_chain`]; [`Error::BlockingInRuntime`].
    pub fn verify_chain(&self) -> Result<VerifyReport> {
        run(
            "audit_host::blocking::AuditTrail::verify_chain",
            self.inner.verify_chain(),
        )
    }

    /// [`crate::AuditTrail::statistics`] (never blocks, allowed anywhere).
    pub fn statistics(&self) -> Statistics {
        self.inner.statistics()
    }

    /// [`crate::AuditTrail::durable_sequence`] (never blocks, allowed anywhere).
    pub fn durable_sequence(&self) -> u64 {
        self.inner.durable_sequence()
    }

    /// The policy in force.
    pub fn policy(&self) -> &CompliancePolicy {
        self.inner.policy()
    }

    /// The directories of the file backends, in configuration order.
    pub fn file_dirs(&self) -> &[PathBuf] {
        self.inner.file_dirs()
    }
}

/// An event being built by [`AuditTrail::log_event`] and friends; [`record`](Self::record)
/// records it.
#[must_use = "an event is recorded only when record() is called"]
#[derive(Debug)]
pub struct PendingEvent<'a> {
    trail: &'a AuditTrail,
    event: AuditEvent,
}

impl PendingEvent<'_> {
    event_setters!();

    /// The event as built so far.
    pub fn event(&self) -> &AuditEvent {
        &self.event
    }

    /// Records the event; returns its id once it is accepted (as awaiting
    /// [`crate::PendingEvent`] does).
    ///
    /// # Errors
    /// As [`crate::AuditTrail::log`]; [`Error::BlockingInRuntime`].
    pub fn record(self) -> Result<String> {
        self.trail.log(self.event)
    }
}

/// [`crate::audit_error`], blocking.
///
/// # Errors
/// As [`crate::audit_error`]; [`Error::BlockingInRuntime`].
pub fn audit_error(
    report: ErrorReport,
    operation: Option<&str>,
    component: Option<&str>,
) -> Result<String> {
    run(
        "audit_host::blocking::audit_error",
        global::audit_error(report, operation, component),
    )
}

/// [`crate::audit_security_event`], blocking.
///
/// # Errors
/// As [`crate::audit_security_event`]; [`Error::BlockingInRuntime`].
pub fn audit_security_event(
    event_type: AuditEventType,
    message: &str,
    user_id: Option<&str>,
    client_ip: Option<&str>,
) -> Result<String> {
    run(
        "audit_host::blocking::audit_security_event",
        global::audit_security_event(event_type, message, user_id, client_ip),
    )
}

/// [`crate::audit_data_access`], blocking.
///
/// # Errors
/// As [`crate::audit_data_access`]; [`Error::BlockingInRuntime`].
pub fn audit_data_access(resource: &str, operation: &str, user_id: Option<&str>) -> Result<String> {
    run(
        "audit_host::blocking::audit_data_access",
        global::audit_data_access(resource, operation, user_id),
    )
}
