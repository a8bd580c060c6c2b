//! Acknowledgements waiting for their events to become durable (`emit --ack`).

use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use audit_host::Receipt;

pub(super) type Shared<T> = Arc<Mutex<T>>;

/// Locks the acknowledgements, also after a panic elsewhere (printing them must go on).
pub(super) fn lock(acks: &Shared<Acks>) -> MutexGuard<'_, Acks> {
    acks.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Acknowledgements waiting for their events to become durable (`emit --ack`).
#[derive(Default)]
pub(super) struct Acks {
    pub(super) pending: std::collections::VecDeque<Receipt>,
}

impl Acks {
    /// Prints every pending acknowledgement up to `durable` (all of them with `u64::MAX`).
    pub(super) fn print_durable(&mut self, durable: u64) {
        let stdout = io::stdout();
        let mut out = stdout.lock();
        while self
            .pending
            .front()
            .is_some_and(|r| r.sequence_number <= durable)
        {
            if let Some(r) = self.pending.pop_front() {
                let _ = writeln!(out, "{} {}", r.sequence_number, r.event_id);
            }
        }
        // Each acknowledgement leaves as soon as its event is durable.
        let _ = out.flush();
    }
}
