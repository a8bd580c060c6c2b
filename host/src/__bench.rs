//! TEMPORARY SEAM for the `audit` CLI's bench engine and its criterion benchmarks
//! (`cli/src/bench/`, `cli/benches/hot_paths.rs`): the trail's per-event pieces, which are
//! crate-private. Not a stable API; it goes once the line encoder is public in `audit-format`.

use crate::event::{AuditEvent, ComplianceLevel};
use crate::record::{AuditRecord, Integrity, Prepared};

/// The trail's line encoder, one event at a time.
#[derive(Debug, Default)]
pub struct LineEncoder {
    prepared: Prepared,
}

impl LineEncoder {
    /// A new encoder (its buffer grows on the first event and is reused).
    #[inline]
    pub fn new() -> Self {
        Self::default()
    }

    /// Serializes everything but the chain fields and the timestamp (outside the trail's
    /// critical section), storing `compliance_level` "basic".
    #[inline]
    pub fn encode(&mut self, ev: &AuditEvent, event_id: &str, host: &str, pid: i64) {
        self.encode_as(ev, event_id, host, pid, ComplianceLevel::Basic);
    }

    /// [`encode`](Self::encode), storing `level` as the `compliance_level`.
    #[inline]
    pub fn encode_as(
        &mut self,
        ev: &AuditEvent,
        event_id: &str,
        host: &str,
        pid: i64,
        level: ComplianceLevel,
    ) {
        self.prepared.encode(ev, event_id, host, pid, level);
    }

    /// Assembles the final line and its checksum (inside the critical section).
    #[inline]
    pub fn assemble(
        &self,
        ev: &AuditEvent,
        sequence_number: u64,
        previous_hash: Option<&[u8; 64]>,
        timestamp: chrono::DateTime<chrono::Utc>,
        integrity: &Integrity,
    ) -> (AuditRecord, [u8; 64]) {
        self.prepared
            .assemble(ev, sequence_number, previous_hash, timestamp, integrity)
    }
}

/// The trail's generator of `event_id`s (random UUIDs drawn from the OS 32 at a time).
#[derive(Debug, Default)]
pub struct IdPool(crate::ids::IdPool);

impl IdPool {
    /// The next id, hyphenated.
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) when the operating system's generator failed.
    #[inline]
    pub fn next_id(&mut self) -> crate::Result<String> {
        self.0.next_id()
    }
}

/// The chain's checksum of a line without its checksum member (`body` is the line after its
/// opening `{`).
#[inline]
pub fn checksum_hex(integrity: &Integrity, body: &[u8]) -> [u8; 64] {
    integrity.checksum_hex(body)
}

/// Wraps records in a [`Batch`](crate::Batch) to hand to a backend.
#[inline]
pub fn batch(records: Vec<AuditRecord>) -> crate::Batch {
    crate::Batch::new(records)
}

/// Hands records to a plugin instance the way every host call does (one `write_batch`).
///
/// # Errors
/// The plugin's error.
#[inline]
pub fn write_records(
    instance: &mut audit_plugin_api::BackendBox,
    batch: &[AuditRecord],
) -> Result<(), audit_plugin_api::PluginError> {
    crate::plugin::write_records(instance, batch)
}
