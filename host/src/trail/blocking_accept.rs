//! Accepting an event from code that cannot `.await`: the `tracing` layer's `on_event`.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

use super::{AuditTrail, check_timestamp};
use crate::statistics::Receipt;
use audit_format::error::Result;
use audit_format::event::AuditEvent;

impl AuditTrail {
    /// Accepts `event` into the queue on the calling thread, as [`log_ref`](Self::log_ref)
    /// does, but never waits for durability (in `sync` mode too): with `on_full = "block"`
    /// the thread waits for room, with `"fail"` a full queue is `Error::QueueFull`.
    ///
    /// Does not poll anything that needs the caller's tokio runtime (the queue's `Notify`
    /// is runtime-agnostic), so it may run on a runtime's worker thread: the writer is a
    /// thread of its own and frees the room.
    pub(crate) fn accept_blocking(&self, event: &AuditEvent) -> Result<Receipt> {
        if !self.policy.enabled {
            return Ok(Receipt {
                sequence_number: 0,
                event_id: String::new(),
            });
        }
        check_timestamp(event)?;
        let event_id = self.event_id_for(event)?;
        let (seq, ts) = block_on(self.accept(event, &event_id))?;
        self.alert(event, &event_id, seq, ts);
        Ok(Receipt {
            sequence_number: seq,
            event_id,
        })
    }
}

/// Wakes the thread that polls the future.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `future` on this thread, parking it between wake-ups.
fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        // A wake-up before the park leaves the token set: the park returns at once.
        std::thread::park();
    }
}
