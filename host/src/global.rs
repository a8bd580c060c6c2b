//! The process-wide trail and the Python module's helper functions.

use std::path::PathBuf;
use std::sync::Mutex;

use crate::trail::AuditTrail;
use audit_format::error::Result;
use audit_format::event::{AuditEventType, ErrorReport};
use audit_format::policy::CompliancePolicy;

static GLOBAL: Mutex<Option<&'static AuditTrail>> = Mutex::new(None);

/// The process-wide trail, created on first use with the default policy and a file backend
/// in `audit_logs/` (Python: `await get_audit_trail()`).
///
/// It is never dropped: call `get_audit_trail()?.close().await` before the process exits,
/// or events accepted in the last flush interval may be lost.
///
/// # Errors
/// As [`AuditTrail::new`] on first use.
pub fn get_audit_trail() -> Result<&'static AuditTrail> {
    get_audit_trail_with(None, None)
}

/// Like [`get_audit_trail`], with the policy and storage path used if this call creates it
/// (Python: `get_audit_trail(policy, storage_path)`). Ignored when it already exists, as in
/// Python.
///
/// # Errors
/// As [`AuditTrail::new`] on first use.
pub fn get_audit_trail_with(
    policy: Option<CompliancePolicy>,
    storage_path: Option<PathBuf>,
) -> Result<&'static AuditTrail> {
    let mut g = GLOBAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(t) = *g {
        return Ok(t);
    }
    let trail: &'static AuditTrail =
        Box::leak(Box::new(AuditTrail::new(policy, storage_path, None)?));
    *g = Some(trail);
    Ok(trail)
}

/// Installs `trail` as the process-wide trail (for example one built from a config file).
///
/// # Errors
/// Gives the trail back if one is already installed.
pub fn set_audit_trail(
    trail: AuditTrail,
) -> std::result::Result<&'static AuditTrail, Box<AuditTrail>> {
    let mut g = GLOBAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if g.is_some() {
        return Err(Box::new(trail));
    }
    let t: &'static AuditTrail = Box::leak(Box::new(trail));
    *g = Some(t);
    Ok(t)
}

/// Records an error on the process-wide trail (Python: `audit_error(error, operation=...,
/// component=...)`).
///
/// # Errors
/// As [`AuditTrail::log`].
pub async fn audit_error(
    report: ErrorReport,
    operation: Option<&str>,
    component: Option<&str>,
) -> Result<String> {
    let mut pending = get_audit_trail()?.log_error(report);
    if let Some(op) = operation {
        pending = pending.operation(op);
    }
    if let Some(c) = component {
        pending = pending.component(c);
    }
    pending.await
}

/// Records a security event on the process-wide trail (Python: `audit_security_event(event_type,
/// message, user_id=..., client_ip=...)`).
///
/// # Errors
/// As [`AuditTrail::log`].
pub async fn audit_security_event(
    event_type: AuditEventType,
    message: &str,
    user_id: Option<&str>,
    client_ip: Option<&str>,
) -> Result<String> {
    let mut pending = get_audit_trail()?.log_security_event(event_type, message);
    if let Some(u) = user_id {
        pending = pending.user_id(u);
    }
    if let Some(ip) = client_ip {
        pending = pending.client_ip(ip);
    }
    pending.await
}

/// Records a data access on the process-wide trail (Python: `log_data_access(resource,
/// operation, user_id=...)` on the global trail).
///
/// # Errors
/// As [`AuditTrail::log`].
pub async fn audit_data_access(
    resource: &str,
    operation: &str,
    user_id: Option<&str>,
) -> Result<String> {
    let mut pending = get_audit_trail()?.log_data_access(resource, operation);
    if let Some(u) = user_id {
        pending = pending.user_id(u);
    }
    pending.await
}
