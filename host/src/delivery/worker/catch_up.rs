//! The worker's side of a catch-up from the file backend: lines its store lacks are
//! delivered before anything else (held batches, the spool, the inbox all come after the
//! trail's head at start). After a failed call the worker falls back to what the backend
//! flushed, and the catch-up reads again from there.

use super::{Work, Worker};
use crate::backend::Batch;
use crate::delivery::clock::LaneClock;

impl<C: LaneClock> Worker<C> {
    /// Lines from the file backend are still to be written.
    pub(super) fn catching_up(&self) -> bool {
        self.catch_up
            .as_ref()
            .is_some_and(|c| self.stored.max(c.from - 1) < c.to)
    }

    /// The next page of the catch-up, or `None` when there is none (finished, stopped).
    pub(super) fn take_catch_up(&mut self) -> Option<Work> {
        let stored = self.stored;
        let cu = self.catch_up.as_mut()?;
        cu.count_delivered(stored);
        let delivered = cu.delivered;
        self.shared
            .update_stats(self.lane.index, &mut |s| s.caught_up = delivered);
        let cu = self.catch_up.as_mut()?;
        if stored.max(cu.from - 1) >= cu.to {
            self.catch_up_written();
            return None;
        }
        let name = &self.lane.name;
        match cu.read(stored.max(cu.from - 1) + 1) {
            Ok(page) => {
                if let Some((a, b)) = page.gap.filter(|_| cu.report_gap) {
                    cu.report_gap = false;
                    let message = format!(
                        "sequences {a}..={b} are no longer in the file backend {} (retention removed them) and cannot be caught up; its store goes on from sequence {}",
                        cu.dir().display(),
                        b + 1
                    );
                    tracing::warn!(backend = %name, first = a, last = b, "backend `{name}`: {message}");
                    self.note_error(message);
                }
                if page.records.is_empty() {
                    self.catch_up_written();
                    return None;
                }
                Some(Work {
                    batches: vec![Batch::new(page.records)],
                    from_spool: None,
                })
            }
            Err(e) => {
                let message = format!(
                    "catching up from the file backend stopped at sequence {}: {e}; it gets new events, sequences {}..={} stay missing from its store",
                    stored + 1,
                    stored.max(cu.from - 1) + 1,
                    cu.to,
                    e = audit_format::error::chain(&e)
                );
                tracing::error!(backend = %name, sequence = stored + 1, error = %audit_format::error::DisplayChain(&e), "backend `{name}`: {message}");
                self.catch_up = None;
                self.note_error(message);
                self.shared
                    .update_stats(self.lane.index, &mut |s| s.catching_up_to = 0);
                None
            }
        }
    }

    /// Everything to catch up is written: say so once, and let go of the catch-up once the
    /// backend flushed it (until then a failure makes it read again).
    fn catch_up_written(&mut self) {
        let (stored, flushed) = (self.stored, self.flushed);
        let Some(cu) = self.catch_up.as_mut() else {
            return;
        };
        cu.count_delivered(stored);
        if !cu.done_reported {
            cu.done_reported = true;
            tracing::info!(
                backend = %self.lane.name,
                sequence = cu.to,
                events = cu.delivered,
                "backend `{}`: caught up to sequence {} ({} events from the file backend)",
                self.lane.name,
                cu.to,
                cu.delivered
            );
            let delivered = cu.delivered;
            self.shared.update_stats(self.lane.index, &mut |s| {
                s.catching_up_to = 0;
                s.caught_up = delivered;
            });
        }
        if flushed.max(cu.from - 1) >= cu.to {
            self.catch_up = None;
        }
    }

    /// While stopping: a catch-up not finished is said, and left for the next start.
    pub(super) fn catch_up_unfinished(&self) {
        if self.catching_up()
            && let Some(cu) = &self.catch_up
        {
            tracing::warn!(
                backend = %self.lane.name,
                sequence = self.flushed,
                to = cu.to,
                "backend `{}`: the catch-up from the file backend stopped at sequence {} of {} (the trail closed); the next start goes on from there",
                self.lane.name,
                self.flushed,
                cu.to
            );
        }
    }

    /// Records `message` as the backend's last error in its statistics.
    fn note_error(&self, message: String) {
        self.shared.update_stats(self.lane.index, &mut |s| {
            s.last_error = Some(message.clone());
            s.last_error_at =
                Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
        });
    }
}
