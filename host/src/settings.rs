//! The trail's settings that every layer shares: durability, back-pressure, hooks, defaults.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use audit_format::event::AuditEvent;
use audit_format::policy::AlertReason;

/// When `log_event` returns relative to the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// `log_event` returns once the event is accepted (queued in order); the worker
    /// fdatasyncs at least every `flush_interval_ms`. The default.
    #[default]
    Batched,
    /// `log_event` returns only after the event's line is fdatasync'd. Concurrent callers
    /// share one fdatasync (group commit).
    Sync,
}

/// What `log_event` does when the bounded queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFull {
    /// Wait for space (back-pressure). The default.
    #[default]
    Block,
    /// Return [`Error::QueueFull`](crate::Error::QueueFull); the event is not recorded.
    Fail,
}

/// A clock for the trail; tests inject one to cross midnight deterministically.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;
/// Called for each accepted event that matches the policy's alert rules.
pub type AlertHook = Arc<dyn Fn(&AuditEvent, &[AlertReason]) + Send + Sync>;

/// Default bounded-queue capacity, in events.
pub const DEFAULT_QUEUE_CAPACITY: usize = 16_384;
/// Default time `close` keeps retrying a failing backend.
pub const DEFAULT_SHUTDOWN_TIMEOUT_MS: u64 = 5_000;
/// Default fdatasync interval in batched mode.
pub const DEFAULT_FLUSH_INTERVAL_MS: u64 = 200;
