//! What [`AuditTrail::statistics`](crate::AuditTrail::statistics) reports: the trail's counters and each backend's delivery.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

/// What [`AuditTrail::log_receipt`](crate::AuditTrail::log_receipt) returns for an accepted event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Receipt {
    /// The sequence number the event got.
    pub sequence_number: u64,
    /// Its event id.
    pub event_id: String,
}

/// Snapshot returned by [`AuditTrail::statistics`](crate::AuditTrail::statistics).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Statistics {
    /// Events accepted since the trail started.
    pub total_events: u64,
    /// Of those, `error_occurred` events or level error/critical.
    pub error_events: u64,
    /// Of those, authentication/authorization failures and security violations.
    pub security_events: u64,
    /// Events passed to the alert hook.
    pub alerts: u64,
    /// Accepted events the writer has not yet written to every file backend and handed to
    /// every lane (what waits in a lane is in [`per_backend`](Self::per_backend)).
    pub queue_size: usize,
    /// The last sequence number assigned.
    pub last_sequence: u64,
    /// Every event up to this sequence number is durable in every file backend and in every
    /// required lane (flushed by its backend, or fdatasync'd in its spool).
    pub durable_sequence: u64,
    /// The current storage failure (`backend: error`), if any.
    pub last_error: Option<String>,
    /// The backends' names.
    pub backends: Vec<String>,
    /// Per backend, in configuration order: what it stored and how it failed.
    pub per_backend: Vec<BackendStatistics>,
    /// The policy, as the Python trail reports it.
    pub policy: PolicySummary,
}

/// One backend's part of [`Statistics`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BackendStatistics {
    /// The backend's name.
    pub name: String,
    /// `true` when `log_event` fails closed for it (the built-in file backend always is).
    pub required: bool,
    /// Whether it is delivering, and if not, why (see [`BackendState`]).
    pub state: BackendState,
    /// Events it stored (a re-delivery after a failure counts again).
    pub delivered: u64,
    /// Every event up to this sequence number is stored and flushed by it.
    pub delivered_sequence: u64,
    /// Calls (write or flush) that failed, of any kind.
    pub failed_calls: u64,
    /// Retryable failures (each is retried after a back-off).
    pub retried: u64,
    /// Fatal failures (panics included).
    pub fatal: u64,
    /// Events waiting in its spool on disk.
    pub spooled_events: u64,
    /// Bytes in its spool.
    pub spooled_bytes: u64,
    /// Events waiting in memory for its worker.
    pub queued: u64,
    /// Events dropped for it (`required = false` only: its spool was full or absent).
    pub dropped: u64,
    /// While it is caught up from the file backend at start: the sequence number the
    /// catch-up ends at; 0 otherwise.
    pub catching_up_to: u64,
    /// Events delivered to it from the file backend at start, to catch its store up.
    pub caught_up: u64,
    /// Records it refused ([`write_batch_refusing`](crate::StorageBackend::write_batch_refusing)):
    /// never stored by it; they are in its dead-letter file with the reason.
    pub refused: u64,
    /// The last error it returned (it may have recovered since).
    pub last_error: Option<String>,
    /// When that was: RFC 3339, UTC.
    pub last_error_at: Option<String>,
    /// The backend's own one-line status (a plugin's `health` capability), asked for at most
    /// every few seconds after a flush and once before close; `None`: unknown (not asked yet,
    /// or the backend does not tell). `error: ...` when asking failed.
    pub health: Option<String>,
    /// The backend's own counters (a plugin's `stats` capability), by name; asked for with
    /// `health`. Empty when it has none.
    pub counters: BTreeMap<String, u64>,
}

/// Where a backend's delivery stands; serialized and displayed as `ok`, `retrying`,
/// `stalled` or `fatal`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BackendState {
    /// Delivering.
    #[default]
    Ok,
    /// After a retryable failure: retried after a back-off.
    Retrying,
    /// Sync mode: a call has taken longer than the flush interval; its events are spooled
    /// meanwhile.
    Stalled,
    /// Not called again until restart; its events go to its spool.
    Fatal,
}

impl BackendState {
    /// The name it is serialized and displayed as.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Retrying => "retrying",
            Self::Stalled => "stalled",
            Self::Fatal => "fatal",
        }
    }
}

impl fmt::Display for BackendState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for BackendState {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for BackendState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The policy part of [`Statistics`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicySummary {
    /// The compliance level.
    pub compliance_level: crate::ComplianceLevel,
    /// Whether the trail records anything.
    pub enabled: bool,
    /// Retention in days.
    pub retention_days: u32,
    /// Always `false`: encryption at rest is refused, not faked.
    pub encryption_enabled: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backend_state_reads_as_before_it_was_an_enum() {
        for (state, name) in [
            (BackendState::Ok, "ok"),
            (BackendState::Retrying, "retrying"),
            (BackendState::Stalled, "stalled"),
            (BackendState::Fatal, "fatal"),
        ] {
            assert_eq!(state.to_string(), name);
            assert_eq!(state, name);
            assert_eq!(
                serde_json::to_string(&state).expect("serializes"),
                format!("\"{name}\"")
            );
        }
        assert_eq!(BackendState::default(), "ok");
    }
}
