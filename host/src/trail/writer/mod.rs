//! The writer thread: takes accepted events in batches, writes the trail's own (file)
//! backends, hands each batch to every lane, and syncs when due.
//!
//! | module | job |
//! |---|---|
//! | this one | the `Writer`, its start-up (resume every backend, start the lanes) |
//! | `serve` | the loop, as named phases over `Serve`, what it carries between rounds |
//! | `calls` | the calls into the backends: write, hand to the lanes, flush |
//! | `shutdown` | closing the lanes and the backends, and reporting the end |

mod calls;
mod serve;
mod shutdown;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::Utc;

use crate::backend::{ChainHead, StorageBackend};
use crate::catch_panics::catch_panics;
use crate::delivery::catch_up::{Decision, decide};
use crate::delivery::{Lane, LaneEnd, LaneObserver};
use crate::settings::Durability;
use audit_format::error::{Error, Result};
use audit_format::record::{ChainFields, Integrity, check_line};

use super::shared::Shared;

/// The writer thread's state and settings.
pub(in crate::trail) struct Writer {
    pub(in crate::trail) shared: Arc<Shared>,
    /// The built-in file backends: written by the writer thread itself.
    pub(in crate::trail) backends: Vec<Slot>,
    /// Every other backend: handed each batch, delivered by its own worker.
    pub(in crate::trail) lanes: Vec<LaneSlot>,
    pub(in crate::trail) durability: Durability,
    /// The longest time between syncs in batched mode.
    pub(in crate::trail) interval: Duration,
    pub(in crate::trail) shutdown_timeout: Duration,
    pub(in crate::trail) integrity: Integrity,
    pub(in crate::trail) queue_capacity: usize,
}

/// A backend the writer writes itself.
pub(in crate::trail) struct Slot {
    backend: Box<dyn StorageBackend>,
    /// Highest sequence number this backend has stored.
    written: u64,
    /// Its place in the statistics.
    index: usize,
}

impl Slot {
    pub(in crate::trail) fn new(backend: Box<dyn StorageBackend>, index: usize) -> Self {
        Self {
            backend,
            written: 0,
            index,
        }
    }
}

/// A backend with a worker of its own, as the writer sees it.
pub(in crate::trail) struct LaneSlot {
    lane: Arc<Lane>,
    /// Until the worker starts.
    backend: Option<Box<dyn StorageBackend>>,
    /// Highest sequence number handed to the lane.
    handed: u64,
    /// Its backend said where its store ends (`resume` answered).
    answered: bool,
    thread: Option<(JoinHandle<()>, Receiver<LaneEnd>)>,
}

impl LaneSlot {
    pub(in crate::trail) fn new(lane: Arc<Lane>, backend: Box<dyn StorageBackend>) -> Self {
        Self {
            lane,
            backend: Some(backend),
            handed: 0,
            answered: false,
            thread: None,
        }
    }
}

/// Runs a backend call to completion on the writer's runtime; a panic inside the backend
/// becomes an error instead of killing the writer thread (which would strand every caller).
fn block_on_caught<T>(
    rt: &tokio::runtime::Runtime,
    fut: impl Future<Output = Result<T>>,
) -> Result<T> {
    rt.block_on(catch_panics(fut))
}

/// Marks the writer stopped however it ends, so `close` and sync callers never wait on a
/// thread that is gone.
struct StopGuard(Arc<Shared>);

impl Drop for StopGuard {
    fn drop(&mut self) {
        self.0.lock().closing = true;
        self.0.space.notify_waiters();
        self.0.progress.send_if_modified(|p| {
            if p.stopped {
                return false;
            }
            p.stopped = true;
            p.abandoned = p.abandoned.max(1);
            if p.error.is_none() {
                p.error = Some((
                    "audit-writer".to_owned(),
                    Arc::new(Error::backend(
                        "the writer thread stopped unexpectedly; this is a bug in audit-host",
                    )),
                ));
            }
            true
        });
    }
}

/// Where a lane's store or spool says the chain ends, before the writer judges it.
struct Claim {
    /// The lane's place in `Writer::lanes`.
    lane: usize,
    head: ChainHead,
    /// "store" or "spool", for messages.
    whose: &'static str,
}

/// The head the trail continues after, and the lanes refused (with why).
type JudgedHead = (Option<ChainHead>, Vec<(usize, String)>);

/// The `checksum` member of a stored line ("" when it has none).
fn checksum_of(line: &str) -> String {
    serde_json::from_str::<ChainFields<'_>>(line)
        .ok()
        .and_then(|f| f.checksum.map(|c| c.into_owned()))
        .unwrap_or_default()
}

/// What the writer sends back once the backends are open: the last event stored anywhere.
type HeadSender = Sender<Result<Option<ChainHead>>>;

impl Writer {
    /// Starts the writer thread; it sends the chain head through `head_tx` once the backends
    /// answered, then serves until the trail closes.
    pub(in crate::trail) fn spawn(self, head_tx: HeadSender) -> Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || self.run(head_tx))
            .map_err(|e| Error::backend(format!("cannot start the audit writer thread: {e}")))
    }

    fn run(mut self, head_tx: HeadSender) {
        let _guard = StopGuard(Arc::clone(&self.shared));
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = head_tx.send(Err(Error::backend(format!(
                    "cannot start the writer runtime: {e}"
                ))));
                return;
            }
        };
        let head = rt.block_on(self.resume_all());
        let (head, source) = match head {
            Ok((h, source)) => (Ok(h), source),
            Err(e) => (Err(e), None),
        };
        let start = match &head {
            Ok(h) => h.as_ref().map_or(0, |h| h.sequence_number),
            Err(_) => 0,
        };
        for slot in &mut self.backends {
            slot.written = start;
        }
        self.shared.dispatched.store(start, Ordering::Release);
        if head.is_ok() {
            for slot in &mut self.lanes {
                slot.lane.set_start(start);
            }
        }
        let head = head.and_then(|h| self.start_lanes(source.as_deref()).map(|()| h));
        let failed = head.is_err();
        let _ = head_tx.send(head);
        if failed {
            // Nothing was accepted: close what was opened and stop.
            return self.finish(&rt, 0, start);
        }
        self.serve(&rt, start);
    }

    /// Reads every backend's chain head (and each spool's) and decides where the trail
    /// continues; the chain head belongs to the trail, not to a lane's backend:
    ///
    /// - With a file backend that holds events, the trail continues after the file
    ///   backend's head (the highest, with several). A lane whose store or spool ends ahead
    ///   of it, holds a different line at the same sequence number, or ends with a line that
    ///   does not verify, is failed (`Lane::fail_at_start`): never called until restart, its
    ///   events spooled. It never moves the head and never stops the start.
    /// - Otherwise (lanes only, or an empty file backend), the trail continues after the
    ///   highest head that verifies; lanes at that sequence number with another line are
    ///   failed (a fork), as are heads that do not verify.
    ///
    /// A lane's backend that cannot answer is tolerated when the writer has a backend of its
    /// own; its worker then delivers from its spool.
    ///
    /// Returns the head and the directory of the file backend that holds it (where lanes
    /// behind it catch up from).
    async fn resume_all(&mut self) -> Result<(Option<ChainHead>, Option<PathBuf>)> {
        let mut own: Option<(ChainHead, Option<PathBuf>)> = None;
        for slot in &self.backends {
            if let Some(h) = catch_panics(slot.backend.resume()).await?
                && own
                    .as_ref()
                    .is_none_or(|(b, _)| h.sequence_number > b.sequence_number)
            {
                own = Some((h, slot.backend.query_dir().map(Path::to_path_buf)));
            }
        }
        let has_own = !self.backends.is_empty();
        let mut claims = Vec::new();
        for (lane, slot) in self.lanes.iter_mut().enumerate() {
            if let Some(head) = slot.lane.spool_head()? {
                claims.push(Claim {
                    lane,
                    head,
                    whose: "spool",
                });
            }
            let Some(backend) = &slot.backend else {
                continue;
            };
            match catch_panics(backend.resume()).await {
                Ok(h) => {
                    slot.handed = h.as_ref().map_or(0, |h| h.sequence_number);
                    slot.answered = true;
                    if let Some(head) = h {
                        claims.push(Claim {
                            lane,
                            head,
                            whose: "store",
                        });
                    }
                }
                Err(e) if has_own => {
                    tracing::warn!(
                        backend = %slot.lane.name,
                        error = %audit_format::error::DisplayChain(&e),
                        "backend `{}` cannot say where its stored chain ends ({e}); starting anyway, it gets its spool and new events when it answers",
                        slot.lane.name, e = audit_format::error::chain(&e)
                    );
                    slot.handed = 0;
                }
                Err(e) => return Err(e),
            }
        }
        let (head, refused, source) = match own {
            Some((head, dir)) => {
                let refused = self.judge_against_file(&head, dir.as_deref(), &claims);
                (Some(head), refused, dir)
            }
            None => {
                let (head, refused) = self.judge_among_lanes(&claims)?;
                (head, refused, None)
            }
        };
        let mut failed: Vec<(usize, String)> = Vec::new();
        for (lane, why) in refused {
            match failed.iter_mut().find(|(l, _)| *l == lane) {
                Some((_, all)) => {
                    all.push_str("; ");
                    all.push_str(&why);
                }
                None => failed.push((lane, why)),
            }
        }
        for (lane, why) in failed {
            let lane = &self.lanes[lane].lane;
            lane.fail_at_start(Arc::new(Error::Integrity(why)), &*self.shared);
        }
        Ok((head, source))
    }

    /// With a file backend: every lane's claim is checked against the file backend's chain
    /// (`head`, in `dir`). Returns the lanes refused, with why.
    fn judge_against_file(
        &self,
        head: &ChainHead,
        dir: Option<&Path>,
        claims: &[Claim],
    ) -> Vec<(usize, String)> {
        let mut refused = Vec::new();
        // A file head that does not verify stops the start (`resume_from` says why): no lane
        // is judged against it.
        // With only an anchor left, the checksum of the file backend's last event is the
        // anchor's `previous_hash`.
        let file_sum = match &head.anchor {
            Some(anchor) => anchor.previous_hash.clone().unwrap_or_default(),
            None => match check_line(head.line.as_bytes(), &self.integrity) {
                Ok(fields) => fields.checksum.as_deref().unwrap_or_default().to_owned(),
                Err(_) => return refused,
            },
        };
        for c in claims {
            let seq = c.head.sequence_number;
            let sum = match self.verified_checksum(c) {
                Ok(sum) => sum,
                Err(why) => {
                    refused.push((c.lane, why));
                    continue;
                }
            };
            if seq > head.sequence_number {
                refused.push((
                    c.lane,
                    format!(
                        "its {} ends at sequence {seq}, ahead of the file backend, whose chain ends at sequence {} ({}): the file backend holds the trail's chain, which continues at {}",
                        c.whose,
                        head.sequence_number,
                        head.location,
                        head.sequence_number + 1
                    ),
                ));
                continue;
            }
            let theirs = if seq == head.sequence_number {
                Some((file_sum.clone(), head.location.clone()))
            } else {
                match dir.map(|d| audit_format::find_line(d, seq)) {
                    Some(Ok(Some(line))) => Some((checksum_of(&line.line), line.location)),
                    Some(Ok(None)) | None => None,
                    Some(Err(e)) => {
                        tracing::warn!(
                            backend = %self.lanes[c.lane].lane.name,
                            sequence = seq,
                            error = %audit_format::error::DisplayChain(&e),
                            "backend `{}`: cannot compare the end of its {} (sequence {seq}) with the file backend: {e}",
                            self.lanes[c.lane].lane.name, c.whose, e = audit_format::error::chain(&e)
                        );
                        None
                    }
                }
            };
            if let Some((file_sum, location)) = theirs
                && file_sum != sum
            {
                refused.push((
                    c.lane,
                    format!(
                        "its {} holds a different line at sequence {seq} than the file backend: checksum {sum} in it, {file_sum} in the file backend ({location}); the stores have forked, the file backend's chain is the trail's",
                        c.whose
                    ),
                ));
            }
        }
        refused
    }

    /// Without a file backend that holds events: the trail continues after the highest
    /// claim that verifies; when claims at that sequence number disagree, the line most lanes
    /// hold wins (the first in configuration order on a tie) and the others are refused.
    ///
    /// # Errors
    /// [`Error::Integrity`] when lanes report heads and none verifies (a wrong integrity key,
    /// most likely): starting at sequence 1 would fork every store.
    fn judge_among_lanes(&self, claims: &[Claim]) -> Result<JudgedHead> {
        let mut refused = Vec::new();
        let mut verified: Vec<(&Claim, String)> = Vec::new();
        for c in claims {
            match self.verified_checksum(c) {
                Ok(sum) => verified.push((c, sum)),
                Err(why) => refused.push((c.lane, why)),
            }
        }
        let Some(top) = verified.iter().map(|(c, _)| c.head.sequence_number).max() else {
            if refused.is_empty() {
                return Ok((None, refused));
            }
            let all: Vec<String> = refused
                .iter()
                .map(|(lane, why)| format!("backend `{}`: {why}", self.lanes[*lane].lane.name))
                .collect();
            return Err(Error::Integrity(format!(
                "cannot continue the stored chain: no backend's last line verifies with this trail's integrity settings ({}). Use the same [trail.integrity] key the stores were written with, or give these backends new, empty stores",
                all.join("; ")
            )));
        };
        let at_top: Vec<&(&Claim, String)> = verified
            .iter()
            .filter(|(c, _)| c.head.sequence_number == top)
            .collect();
        let lanes_holding = |sum: &str| {
            let mut lanes: Vec<usize> = at_top
                .iter()
                .filter(|(_, s)| s == sum)
                .map(|(c, _)| c.lane)
                .collect();
            lanes.dedup();
            lanes.len()
        };
        // `max_by_key` keeps the last of equals: search from the back to keep the first.
        let Some((winner, winner_sum)) = at_top
            .iter()
            .rev()
            .max_by_key(|(_, s)| lanes_holding(s))
            .map(|(c, s)| (*c, s.clone()))
        else {
            return Ok((None, refused));
        };
        let winner_name = &self.lanes[winner.lane].lane.name;
        for (c, sum) in &at_top {
            if *sum != winner_sum {
                refused.push((
                    c.lane,
                    format!(
                        "its {} holds a different line at sequence {top} than the {} of backend `{winner_name}`: checksum {sum} here, {winner_sum} there; the stores have forked, the trail continues from `{winner_name}`'s line",
                        c.whose, winner.whose
                    ),
                ));
            }
        }
        Ok((Some(winner.head.clone()), refused))
    }

    /// The checksum of a claim's line once it verifies with the trail's integrity settings;
    /// otherwise why not.
    fn verified_checksum(&self, c: &Claim) -> std::result::Result<String, String> {
        match check_line(c.head.line.as_bytes(), &self.integrity) {
            Ok(fields) => Ok(fields.checksum.as_deref().unwrap_or_default().to_owned()),
            Err(problem) => Err(format!(
                "its {} ends with sequence {}, whose line does not verify with this trail's integrity settings ({problem})",
                c.whose, c.head.sequence_number
            )),
        }
    }

    /// Starts every lane's worker. `handed` holds each backend's own head on entry. A lane
    /// whose store is behind the head gets the lines it lacks from the file backend in
    /// `source` first (`delivery::catch_up`).
    fn start_lanes(&mut self, source: Option<&Path>) -> Result<()> {
        for slot in &mut self.lanes {
            let Some(backend) = slot.backend.take() else {
                continue;
            };
            let start = slot.lane.durable();
            let stored = std::mem::replace(&mut slot.handed, start);
            // A lane refused at start is never called: what its store holds is not trusted.
            let fatal = slot.lane.is_fatal();
            let stored = if fatal { 0 } else { stored };
            let known = (!fatal && slot.answered).then_some(stored);
            let mut catch_up = None;
            match decide(&slot.lane, known, start, source, &self.integrity) {
                Decision::Nothing => {}
                Decision::CatchUp(c) => {
                    tracing::info!(
                        backend = %slot.lane.name,
                        "backend `{}`: {}",
                        slot.lane.name,
                        c.describe()
                    );
                    catch_up = Some(c);
                }
                // Behind with nowhere to catch up from: say so rather than let it pass
                // unnoticed.
                Decision::Gap(message) => {
                    tracing::warn!(backend = %slot.lane.name, "backend `{}`: {message}", slot.lane.name);
                    self.shared.update_stats(slot.lane.index, |s| {
                        s.last_error = Some(message);
                        s.last_error_at =
                            Some(Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
                    });
                }
            }
            slot.thread = Some(slot.lane.spawn_catching_up(
                backend,
                Arc::clone(&self.shared) as Arc<dyn LaneObserver>,
                stored,
                self.integrity.clone(),
                catch_up,
            )?);
        }
        Ok(())
    }

    fn set_error(&self, backend: &str, e: Arc<Error>) {
        self.shared.set_error(backend, e);
    }

    /// Clears a failure the writer reported (a lane clears its own).
    fn clear_error(&self) {
        let mut st = self.shared.lock();
        let ours = st.error.as_ref().is_some_and(|(b, _)| {
            !self
                .lanes
                .iter()
                .any(|l| l.lane.name == *b && l.lane.refusing())
        });
        if ours {
            st.error = None;
            drop(st);
            self.shared.progress.send_modify(|p| p.error = None);
        }
    }
}
