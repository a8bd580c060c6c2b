//! The bench engine behind `audit bench`: a real trail against a hand-written baseline
//! (docs/benchmarks.md).
//!
//! - [`engine`]: one scenario, its rounds and its `--json` result;
//! - [`baseline`]: the tightest loop doing the trail's work without the trail;
//! - [`plugin_bench`]: the plugins with a baseline of their own:
//!   [`postgres`] (scratch tables, a client loop), [`syslog`] (a sender loop) and [`http`]
//!   (scratch indices, a `_bulk` loop), all through the shared `client_loop` (built with
//!   their features);
//! - [`sample`], [`histogram`], [`store`]: the events logged, latencies, scratch directories;
//! - [`verify`]: `audit verify` against plain SHA-256;
//! - [`suite`] and [`ab`]: `--suite`, the standard scenarios in child processes.

pub(crate) mod ab;
pub(crate) mod baseline;
pub(crate) mod child;
#[cfg(any(
    feature = "postgres-bench",
    feature = "syslog-bench",
    feature = "http-bench"
))]
pub(crate) mod client_loop;
pub(crate) mod engine;
pub(crate) mod histogram;
pub(crate) mod http;
pub(crate) mod plugin_bench;
pub(crate) mod postgres;
pub(crate) mod report;
pub(crate) mod sample;
pub(crate) mod scenario;
pub(crate) mod store;
pub(crate) mod suite;
pub(crate) mod syslog;
pub(crate) mod verify;
