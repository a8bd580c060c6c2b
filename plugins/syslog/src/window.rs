//! The replay window: batches sent recently, which a server that closed the connection may
//! not have read. They are sent again first on the next connection, so a graceful server
//! stop turns into duplicates at the reconnect (same `seq`), not into lost events.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// At most this many bytes are kept: about what Linux socket buffers of both ends can hold
/// (autotuned up to 4 MiB to send, 6 MiB to receive).
pub(crate) const MAX_BYTES: usize = 8 << 20;

/// Batches sent longer than this before the connection broke are not replayed: a live
/// server reads within seconds.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(10);

/// The recent batches, oldest first, as framed bytes.
#[derive(Default)]
pub(crate) struct Window {
    batches: VecDeque<(Instant, Vec<u8>)>,
    bytes: usize,
    /// When the connection was found broken (ages count up to then, not to the replay).
    broken_at: Option<Instant>,
}

impl std::fmt::Debug for Window {
    // Sizes only: the batches hold up to MAX_BYTES of messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Window")
            .field("batches", &self.batches.len())
            .field("bytes", &self.bytes)
            .field("broken_at", &self.broken_at)
            .finish()
    }
}

impl Window {
    /// Remembers a batch that was sent and checked.
    pub(crate) fn push(&mut self, batch: &[u8]) {
        let now = Instant::now();
        self.batches.push_back((now, batch.to_vec()));
        self.bytes += batch.len();
        self.prune(now);
    }

    /// The connection broke: the window's ages stop here (an outage longer than
    /// [`MAX_AGE`] must not empty it).
    pub(crate) fn mark_broken(&mut self) {
        self.broken_at.get_or_insert_with(Instant::now);
    }

    /// The batches to send again on a new connection. They stay in the window, as sent now:
    /// they were just sent on the new connection too.
    pub(crate) fn replay(&mut self) -> Vec<Vec<u8>> {
        let now = Instant::now();
        let until = self.broken_at.take().unwrap_or(now);
        self.prune(until);
        self.batches
            .iter_mut()
            .map(|(at, b)| {
                *at = now;
                b.clone()
            })
            .collect()
    }

    /// Drops the oldest batches beyond [`MAX_BYTES`] or sent [`MAX_AGE`] before `now`.
    fn prune(&mut self, now: Instant) {
        while let Some((at, b)) = self.batches.front() {
            if self.bytes <= MAX_BYTES && now.saturating_duration_since(*at) <= MAX_AGE {
                break;
            }
            self.bytes -= b.len();
            self.batches.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_batches_within_the_byte_limit() {
        let mut w = Window::default();
        let big = vec![b'x'; MAX_BYTES / 2];
        w.push(b"first");
        w.push(&big);
        w.push(&big);
        let replay = w.replay();
        assert_eq!(replay.len(), 2, "the oldest batch went over the limit");
        assert!(replay.iter().all(|b| b.len() == MAX_BYTES / 2));
        w.push(b"last");
        assert_eq!(w.replay().last().map(Vec::as_slice), Some(&b"last"[..]));
    }

    #[test]
    fn ages_stop_when_the_connection_breaks() {
        let long_ago = Instant::now().checked_sub(MAX_AGE * 2).expect("clock");
        let old = |broken_at| Window {
            batches: VecDeque::from([(long_ago, b"old".to_vec())]),
            bytes: 3,
            broken_at,
        };
        let mut w = old(Some(long_ago + MAX_AGE / 2));
        assert_eq!(w.replay().len(), 1, "sent within MAX_AGE before the break");
        assert!(w.broken_at.is_none());
        assert!(old(None).replay().is_empty(), "too old without a break");
    }
}
