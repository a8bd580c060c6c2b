//! Delivery to the backends that have a worker of their own: one lane per backend, its
//! worker thread, and its durable spool.

pub(crate) mod lane;
pub(crate) mod spool;
