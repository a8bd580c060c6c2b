//! Delivery to the backends that have a worker of their own. The trail's writer offers each
//! batch to every backend's lane; the lane's worker thread delivers it, retries with back-off
//! and keeps what it cannot deliver in a durable spool. A slow, failing, hanging or panicking
//! backend holds up only its own lane.
//!
//! Order: the worker delivers, oldest first, (0) the lines its store lacks that a file
//! backend of the trail holds (`catch_up`, at start only), (1) batches it holds from memory that are not
//! yet acknowledged, (2) the spool, (3) the in-memory inbox. Whenever the writer spools, it
//! first moves the inbox into the spool, and a worker whose memory batches fail puts them in
//! front of the spool, so the backend always receives sequence order.
//!
//! - `lane`: the state the writer and the worker share, and the writer's calls.
//! - `worker`: the worker thread.
//! - `health`: the lane's condition as state machines.
//! - `backoff`: the retry delays.
//! - `options`: per-backend options and the lane's settings.
//! - `spool`: the spool on disk, and its reader.
//! - `catch_up`: reading back from a file backend what a store lacks at start.
//! - `dead_letter`: the file of records a backend refused.

mod backoff;
pub(crate) mod catch_up;
mod clock;
mod dead_letter;
mod health;
mod lane;
mod options;
pub(crate) mod spool;
#[cfg(test)]
mod test;
mod worker;

pub(crate) use backoff::{Backoff, Jitter};
pub(crate) use lane::{Lane, LaneEnd, LaneObserver, Offer};
pub use options::{BackendOptions, Backfill, DEFAULT_RETRY_INITIAL, DEFAULT_RETRY_MAX, OnRefuse};
pub(crate) use options::{LaneConfig, spool_dir_name};
