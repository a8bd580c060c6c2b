//! Starting a built trail: the shared state, the writer thread, and the chain resumed after
//! the last event the backends stored.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::backend::{ChainHead, StorageBackend};
use crate::delivery::{Lane, LaneConfig, LaneObserver};
use crate::settings::{AlertHook, Clock, Durability, OnFull};
use crate::statistics::{BackendState, BackendStatistics};
use audit_format::error::{Error, Result};
use audit_format::policy::CompliancePolicy;
use audit_format::record::{Integrity, MAX_SEQUENCE, check_line};

use super::AuditTrail;
use super::shared::Shared;
use super::writer::{LaneSlot, Slot, Writer};

/// A backend ready to start: written by the writer itself (`None`), or by a lane of its own.
pub(super) type OpenedBackend = (Box<dyn StorageBackend>, Option<LaneConfig>);

/// The trail's settings, validated by the builder.
pub(super) struct Setup {
    pub(super) policy: CompliancePolicy,
    pub(super) durability: Durability,
    pub(super) flush_interval: Duration,
    pub(super) shutdown_timeout: Duration,
    pub(super) queue_capacity: usize,
    pub(super) on_full: OnFull,
    pub(super) integrity: Integrity,
    pub(super) clock: Option<Clock>,
    pub(super) alert_hook: Option<AlertHook>,
    pub(super) file_dirs: Vec<PathBuf>,
}

/// The backends sorted for the writer: its own, and those with a lane.
struct Sorted {
    slots: Vec<Slot>,
    lane_slots: Vec<LaneSlot>,
    lanes: Vec<Arc<Lane>>,
    stats: Vec<BackendStatistics>,
}

impl Sorted {
    fn new(backends: Vec<OpenedBackend>) -> Result<Self> {
        let mut sorted = Self {
            slots: Vec::new(),
            lane_slots: Vec::new(),
            lanes: Vec::new(),
            stats: Vec::new(),
        };
        for (index, (backend, lane_cfg)) in backends.into_iter().enumerate() {
            let name = backend.name().to_owned();
            sorted.stats.push(BackendStatistics {
                name: name.clone(),
                required: lane_cfg.as_ref().is_none_or(|c| c.required),
                state: BackendState::Ok,
                ..BackendStatistics::default()
            });
            match lane_cfg {
                None => sorted.slots.push(Slot::new(backend, index)),
                Some(lane_cfg) => {
                    let lane = Arc::new(Lane::new(name, index, lane_cfg, 0)?);
                    sorted.lanes.push(Arc::clone(&lane));
                    sorted.lane_slots.push(LaneSlot::new(lane, backend));
                }
            }
        }
        Ok(sorted)
    }
}

impl AuditTrail {
    /// Starts the writer, which opens the backends, and continues the chain they stored.
    pub(super) fn start(setup: Setup, backends: Vec<OpenedBackend>) -> Result<Self> {
        let sorted = Sorted::new(backends)?;
        let shared = Arc::new(Shared::new(sorted.lanes, sorted.stats.clone()));
        let backend_names: Vec<String> = sorted.stats.into_iter().map(|s| s.name).collect();
        let (head_tx, head_rx) = std::sync::mpsc::channel();
        let writer = Writer {
            shared: Arc::clone(&shared),
            backends: sorted.slots,
            lanes: sorted.lane_slots,
            durability: setup.durability,
            interval: setup.flush_interval,
            shutdown_timeout: setup.shutdown_timeout,
            integrity: setup.integrity.clone(),
            queue_capacity: setup.queue_capacity,
        };
        let handle = writer.spawn(head_tx)?;
        let trail = Self {
            shared,
            worker: Mutex::new(Some(handle)),
            policy: setup.policy,
            durability: setup.durability,
            queue_capacity: setup.queue_capacity,
            on_full: setup.on_full,
            integrity: setup.integrity,
            clock: setup.clock,
            alert_hook: setup.alert_hook,
            file_dirs: setup.file_dirs,
            backend_names,
            hostname: gethostname::gethostname().to_string_lossy().into_owned(),
            pid: i64::from(std::process::id()),
        };
        let head = head_rx.recv().unwrap_or_else(|_| {
            Err(Error::backend(
                "the audit writer thread stopped while opening the backends",
            ))
        });
        if let Err(e) = head.and_then(|h| trail.resume_from(h)) {
            trail.stop_worker();
            return Err(e);
        }
        Ok(trail)
    }

    /// Continues the chain after `head`, the last event stored, once it verifies with this
    /// trail's integrity settings.
    fn resume_from(&self, head: Option<ChainHead>) -> Result<()> {
        let Some(head) = head else { return Ok(()) };
        if head.sequence_number >= MAX_SEQUENCE {
            return Err(Error::SequenceExhausted {
                last: head.sequence_number,
            });
        }
        let prev = match &head.anchor {
            // Retention removed every older file: the anchor holds the link.
            Some(anchor) => match anchor.previous_hash.as_deref() {
                None => None,
                Some(h) => Some(<[u8; 64]>::try_from(h.as_bytes()).map_err(|_| {
                    Error::Integrity(format!(
                        "cannot continue the stored chain from {}: its previous_hash `{h}` is not \
                         a checksum (64 hex digits). Restore the anchor, or move it aside to start \
                         a new chain at sequence 1",
                        head.location
                    ))
                })?),
            },
            None => {
                let fields =
                    check_line(head.line.as_bytes(), &self.integrity).map_err(|problem| {
                        Error::Integrity(format!(
                            "cannot continue the stored chain: the last event at {} does not \
                             verify with this trail's integrity settings ({problem}). Use the \
                             same [trail.integrity] key it was written with, or give this \
                             backend a new, empty store",
                            head.location
                        ))
                    })?;
                let mut prev = [0u8; 64];
                let checksum = fields.checksum.as_deref().unwrap_or_default();
                prev.copy_from_slice(checksum.as_bytes());
                Some(prev)
            }
        };
        let mut st = self.shared.lock();
        st.next_seq = head.sequence_number + 1;
        st.prev = prev;
        st.flush_target = head.sequence_number;
        drop(st);
        self.shared
            .dispatched
            .fetch_max(head.sequence_number, Ordering::AcqRel);
        self.shared.publish_durable();
        Ok(())
    }
}
