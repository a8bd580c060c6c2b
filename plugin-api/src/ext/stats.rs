//! The `stats` capability, version 1: named counters of an instance that the host shows in its
//! statistics (`audit emit --stats`). Without it a backend has no plugin counters.

use abi_stable::StableAbi;
use abi_stable::std_types::{RString, RVec};

use crate::BackendBox;

/// The symbol of the `stats` capability, version 1.
pub const STATS_V1: &str = "audit_backend_ext_stats_v1";

/// One counter of an instance.
///
/// - `name`: `snake_case`, stable across releases (dashboards and alerts key on it), unique
///   within the instance, for example `rows_written`.
/// - `value`: monotonic since `open` (a count: `rows_written`) or a gauge (a current
///   amount: `open_connections`); say which in the plugin's docs.
#[repr(C)]
#[derive(Debug, Clone, PartialEq, Eq, StableAbi)]
pub struct Counter {
    /// The counter's name, `snake_case`.
    pub name: RString,
    /// Its value.
    pub value: u64,
}

/// The `stats` capability, version 1. The host calls `statistics` on the instance's thread
/// between other calls, at most every few seconds and once before `close`: it must be cheap
/// (values the instance keeps, no query to a server). Export it with
/// [`export_stats!`](crate::export_stats).
#[repr(C)]
#[derive(Debug, StableAbi)]
#[sabi(kind(Prefix(prefix_ref = StatsV1_Ref)))]
#[sabi(missing_field(panic))]
pub struct StatsV1 {
    /// The instance's counters, in a stable order. A panic inside returns no counters and
    /// makes the instance fail its next call (as after any panic).
    #[sabi(last_prefix_field)]
    pub statistics: extern "C" fn(instance: &mut BackendBox) -> RVec<Counter>,
}
