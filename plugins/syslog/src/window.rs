//! The replay window: batches sent recently, which a server that closed the connection may
//! not have read. They are sent again first on the next connection, so a graceful server
//! stop turns into duplicates at the reconnect (same `seq`), not into lost events.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// At most this many bytes are kept (about what the socket buffers of both ends can hold).
pub(crate) const MAX_BYTES: usize = 4 << 20;

/// Batches older than this are not replayed: a live server reads within seconds.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(10);

/// The recent batches, oldest first, as framed bytes.
#[derive(Debug, Default)]
pub(crate) struct Window {
    batches: VecDeque<(Instant, Vec<u8>)>,
    bytes: usize,
}

impl Window {
    /// Remembers a batch that was sent and checked.
    pub(crate) fn push(&mut self, batch: &[u8]) {
        self.batches.push_back((Instant::now(), batch.to_vec()));
        self.bytes += batch.len();
        self.prune();
    }

    /// The batches to send again on a new connection (they stay in the window: they were
    /// just sent on the new connection too).
    pub(crate) fn replay(&mut self) -> Vec<Vec<u8>> {
        self.prune();
        self.batches.iter().map(|(_, b)| b.clone()).collect()
    }

    fn prune(&mut self) {
        while let Some((at, b)) = self.batches.front() {
            if self.bytes <= MAX_BYTES && at.elapsed() <= MAX_AGE {
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
}
