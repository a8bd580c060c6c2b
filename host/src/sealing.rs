//! The seal thread of a file backend with a signing key (`audit-seal`, nice 19): signs and
//! appends a seal ([`audit_format::seal`]) at `seal_interval` when events were added, and
//! after a rotation or a retention. The writer hands it the durable point after each
//! `fdatasync`, with the digests of the files it wrote (32 bytes of each line's checksum
//! hashed as the batch was written), so no seal reads back what the writer wrote; files
//! the writer did not write are read here, once, at start. The close seal is written by
//! the closing thread, at its own priority, once this thread has ended.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use audit_format::error::{Error, Result};
use audit_format::seal::snapshot::SealPoint;
use audit_format::seal::{FileDigest, SealReason, Sealer, SigningKey};
use chrono::Utc;

/// Default `seal_interval_ms`: one minute.
pub const DEFAULT_SEAL_INTERVAL_MS: u64 = 60_000;

/// A copy of every seal outside the audit directory: a plugin backend with the `seal`
/// capability. Called on the seal thread, after the seal is durable in the directory.
pub trait SealWitness: Send + Sync + fmt::Debug {
    /// For messages.
    fn name(&self) -> &str;
    /// Stores `line`, one seal as written in `.audit-seals/` (no newline).
    ///
    /// # Errors
    /// The backend's error; the seal thread reports it and goes on.
    fn witness(&self, line: &str) -> Result<()>;
}

/// How a trail seals its file backends.
#[derive(Clone)]
pub struct Sealing {
    /// The private key.
    pub key: Arc<SigningKey>,
    /// Seal at least this often while events are added.
    pub interval: Duration,
    /// Seal copies go to these.
    pub witnesses: Vec<Arc<dyn SealWitness>>,
}

impl fmt::Debug for Sealing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealing")
            .field("key", &self.key.public().id())
            .field("interval", &self.interval)
            .field("witnesses", &self.witnesses)
            .finish()
    }
}

#[derive(Debug, Default)]
struct State {
    point: Option<SealPoint>,
    /// The writer's digests offered since the thread last took them (the longest of each
    /// file): points replace each other, digests add up.
    digests: HashMap<String, FileDigest>,
    reason: Option<SealReason>,
    closing: bool,
}

#[derive(Debug, Default)]
struct Shared {
    st: Mutex<State>,
    cv: Condvar,
}

impl State {
    /// Keeps `p` as the point to seal, and adds its digests to those not yet taken.
    fn take_point(&mut self, p: &SealPoint) {
        for (name, d) in &p.digests {
            match self.digests.get(name) {
                Some(known) if known.size() > d.size() => {}
                _ => {
                    self.digests.insert(name.clone(), d.clone());
                }
            }
        }
        self.point = Some(SealPoint {
            last_sequence: p.last_sequence,
            last_checksum: p.last_checksum.clone(),
            file: p.file.clone(),
            len: p.len,
            digests: Vec::new(),
        });
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.st
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The running seal thread of one file backend.
#[derive(Debug)]
pub(crate) struct SealThread {
    shared: Arc<Shared>,
    handle: Mutex<Option<JoinHandle<Runner>>>,
}

impl SealThread {
    /// Opens `dir`'s seal chain (its last seal must verify under the key) and starts the
    /// thread.
    pub(crate) fn start(dir: &Path, sealing: &Sealing) -> Result<Self> {
        let sealer = Sealer::open(dir, Arc::clone(&sealing.key))?;
        let shared = Arc::new(Shared::default());
        let run = Runner {
            shared: Arc::clone(&shared),
            sealer,
            interval: sealing.interval,
            witnesses: sealing.witnesses.clone(),
            dir: dir.display().to_string(),
        };
        let handle = std::thread::Builder::new()
            .name("audit-seal".into())
            .spawn(move || run.run())
            .map_err(Error::io("cannot start the seal thread for", dir))?;
        Ok(Self {
            shared,
            handle: Mutex::new(Some(handle)),
        })
    }

    /// After a successful flush: the durable point, and a rotation or retention if one
    /// happened (which wakes the thread to seal now).
    pub(crate) fn offer(&self, point: Option<&SealPoint>, reason: Option<SealReason>) {
        let mut st = self.shared.lock();
        if let Some(p) = point {
            st.take_point(p);
        }
        if let Some(r) = reason {
            st.reason = Some(match st.reason {
                Some(SealReason::Retention) => SealReason::Retention,
                _ => r,
            });
            self.shared.cv.notify_one();
        }
    }

    /// Ends the thread, then seals what is durable (the store was flushed just before) on
    /// the calling thread, at its priority; the seal is durable when this returns.
    ///
    /// # Errors
    /// [`Error::Backend`](audit_format::Error) when the close seal could not be written.
    pub(crate) fn close(&self, point: Option<&SealPoint>) -> Result<()> {
        {
            let mut st = self.shared.lock();
            if let Some(p) = point {
                st.take_point(p);
            }
            st.closing = true;
            self.shared.cv.notify_one();
        }
        let handle = self
            .handle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let Some(handle) = handle else {
            return Ok(()); // closed before
        };
        let Ok(mut runner) = handle.join() else {
            return Err(Error::backend(
                "the seal thread panicked; the last events are not sealed",
            ));
        };
        let (point, digests) = {
            let mut st = self.shared.lock();
            (st.point.clone(), std::mem::take(&mut st.digests))
        };
        runner.sealer.learn(digests);
        match point {
            Some(p) => runner.seal(&p, SealReason::Close).map_err(Error::backend),
            None => Ok(()),
        }
    }
}

impl Drop for SealThread {
    fn drop(&mut self) {
        let _ = self.close(None);
    }
}

struct Runner {
    shared: Arc<Shared>,
    sealer: Sealer,
    interval: Duration,
    witnesses: Vec<Arc<dyn SealWitness>>,
    dir: String,
}

impl Runner {
    /// Seals at the interval and when woken with a reason, until closing; then returns
    /// itself for `close` to write the close seal.
    fn run(mut self) -> Self {
        lower_priority();
        if let Err(e) = self.sealer.prepare() {
            tracing::warn!(
                dir = %self.dir,
                error = %audit_format::error::DisplayChain(&e),
                "{e}; the next seal reads what it needs",
                e = audit_format::error::chain(&e)
            );
        }
        let mut due = Instant::now() + self.interval;
        let shared = Arc::clone(&self.shared);
        loop {
            let (point, reason, digests) = {
                let mut st = shared.lock();
                while st.reason.is_none() && !st.closing {
                    let now = Instant::now();
                    if now >= due {
                        break;
                    }
                    st = shared
                        .cv
                        .wait_timeout(st, due - now)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0;
                }
                if st.closing {
                    drop(st);
                    return self;
                }
                let reason = st.reason.take().unwrap_or(SealReason::Interval);
                (st.point.clone(), reason, std::mem::take(&mut st.digests))
            };
            self.sealer.learn(digests);
            if let Some(p) = &point
                && let Err(e) = self.seal(p, reason)
            {
                tracing::error!(dir = %self.dir, error = %e, "{e}; the next seal tries again");
            }
            due = Instant::now() + self.interval;
        }
    }

    fn seal(&mut self, point: &SealPoint, reason: SealReason) -> std::result::Result<(), String> {
        let line = self.sealer.seal(point, reason, Utc::now()).map_err(|e| {
            format!(
                "cannot seal {}: {e}",
                self.dir,
                e = audit_format::error::chain(&e)
            )
        })?;
        if let Some(line) = line {
            for w in &self.witnesses {
                if let Err(e) = w.witness(&line) {
                    tracing::warn!(
                        witness = %w.name(),
                        dir = %self.dir,
                        error = %audit_format::error::DisplayChain(&e),
                        "witness {} did not take the seal of {}: {e}",
                        w.name(),
                        self.dir,
                        e = audit_format::error::chain(&e)
                    );
                }
            }
        }
        Ok(())
    }
}

/// Runs this thread at nice 19: hashing competes with the producers and the writer only
/// for CPU time they leave idle (measured: at the default priority, the 1-producer bench
/// lost 10-30% on a loaded 2-core machine). Linux only (per-thread nice); a failure is
/// harmless and ignored.
#[cfg(target_os = "linux")]
fn lower_priority() {
    #[expect(
        unsafe_code,
        reason = "setpriority and gettid have no safe std equivalent"
    )]
    // SAFETY: both calls take plain integers and touch no memory of ours; `gettid` names
    // this very thread, so only its own priority changes.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, u32::try_from(tid).unwrap_or(0), 19);
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}
