//! The in-process storage interface every backend implements.

use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;

use audit_format::error::Result;
use audit_format::record::AuditRecord;

pub use audit_format::ChainHead;

/// A batch of records handed to [`StorageBackend::write_batch`], in sequence order.
///
/// It dereferences to `[AuditRecord]`. Cloning it is one reference-count increment for the
/// whole batch, so a backend may hand it to a thread of its own without copying a line.
#[derive(Debug, Clone)]
pub struct Batch {
    records: Arc<Vec<AuditRecord>>,
    start: usize,
}

impl From<Vec<AuditRecord>> for Batch {
    fn from(records: Vec<AuditRecord>) -> Self {
        Self::new(records)
    }
}

impl Batch {
    /// A batch of `records`, which must be in sequence order (for testing a backend
    /// directly; the trail builds its own).
    pub fn new(records: Vec<AuditRecord>) -> Self {
        Self {
            records: Arc::new(records),
            start: 0,
        }
    }

    /// The records from index `start` on (the part a backend has not stored yet).
    pub(crate) fn skip(&self, start: usize) -> Self {
        Self {
            records: Arc::clone(&self.records),
            start: self.start + start,
        }
    }
}

impl Deref for Batch {
    type Target = [AuditRecord];

    fn deref(&self) -> &[AuditRecord] {
        &self.records[self.start..]
    }
}

/// A record a backend will never store, and why: what
/// [`StorageBackend::write_batch_refusing`] returns for each record it refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The refused record's sequence number (one of the batch's).
    pub sequence_number: u64,
    /// Why, for a person (the plugin's words).
    pub reason: String,
}

/// A place audit events are stored: the Rust counterpart of the Python trail's storage
/// protocol (`write`, `flush`, `close`).
///
/// The trail calls a backend from one worker at a time, in sequence order, with batches of
/// records that are already serialized and chained. Implement [`write`](Self::write); override
/// [`write_batch`](Self::write_batch) when the store can take many records in one call.
///
/// Contract:
/// - `write_batch` either stores the whole batch or returns an error; on error the trail
///   keeps the batch and delivers it again later (so a backend should ignore a
///   `sequence_number` it already stored).
/// - `flush` returns once everything written so far is durable.
/// - Errors are returned, never swallowed: the trail reports them to its callers.
///
/// ```
/// use audit_host::{async_trait, AuditRecord, StorageBackend, Result};
/// use std::sync::Mutex;
///
/// #[derive(Debug, Default)]
/// struct Memory(Mutex<Vec<String>>);
///
/// #[async_trait]
/// impl StorageBackend for Memory {
///     async fn write(&self, record: &AuditRecord) -> Result<()> {
///         self.0.lock().expect("poisoned").push(record.line().to_owned());
///         Ok(())
///     }
///     async fn flush(&self) -> Result<()> { Ok(()) }
///     async fn close(&self) -> Result<()> { Ok(()) }
/// }
/// ```
#[async_trait]
pub trait StorageBackend: Send + Sync + std::fmt::Debug {
    /// A short name for messages and statistics.
    fn name(&self) -> &str {
        "custom"
    }

    /// Stores one record.
    async fn write(&self, record: &AuditRecord) -> Result<()>;

    /// Stores a batch of records, in order. The default calls [`write`](Self::write) for each.
    async fn write_batch(&self, batch: &Batch) -> Result<()> {
        for record in batch.iter() {
            self.write(record).await?;
        }
        Ok(())
    }

    /// Stores a batch except the records it refuses, and returns those with the reason: `Ok`
    /// means every record not refused is stored, and the refused ones never will be. The trail
    /// writes them to the lane's dead-letter file (`dead-letter.jsonl` in the backend's spool
    /// directory) and counts them (`refused`) instead of retrying the batch. Refuse only what
    /// no retry can fix; return an error for anything else. The default refuses nothing: it
    /// calls [`write_batch`](Self::write_batch).
    async fn write_batch_refusing(&self, batch: &Batch) -> Result<Vec<Refusal>> {
        self.write_batch(batch).await.map(|()| Vec::new())
    }

    /// Makes everything written so far durable.
    async fn flush(&self) -> Result<()>;

    /// Flushes and releases resources. No call follows.
    async fn close(&self) -> Result<()>;

    /// The end of the chain already stored, if the backend can tell. The trail continues at
    /// the next sequence number. The default says "nothing stored".
    async fn resume(&self) -> Result<Option<ChainHead>> {
        Ok(None)
    }

    /// A directory of `audit_*.jsonl` files that `AuditTrail::get_events` can read, if this
    /// backend keeps one.
    fn query_dir(&self) -> Option<&Path> {
        None
    }

    /// A witness for the trail's seals, if this backend keeps a copy of them (a plugin with
    /// the `seal` capability). Asked once, when the trail is built.
    fn seal_witness(&self) -> Option<std::sync::Arc<dyn crate::sealing::SealWitness>> {
        None
    }

    /// A one-line status (what it is connected to, how far it got), shown in
    /// `BackendStatistics.health`. The default, `None`, is "unknown". The trail asks at most
    /// every few seconds, after a flush, and once before `close`.
    async fn health(&self) -> Result<Option<String>> {
        Ok(None)
    }

    /// Named counters (`snake_case`, stable), shown in `BackendStatistics.counters`. The
    /// default has none. Asked for with [`health`](Self::health); keep it cheap.
    async fn statistics(&self) -> Result<Vec<(String, u64)>> {
        Ok(Vec::new())
    }
}

/// Share a backend with the trail and keep a handle to it (for tests, or to inspect it).
#[async_trait]
impl<T: StorageBackend + ?Sized> StorageBackend for std::sync::Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    async fn write(&self, record: &AuditRecord) -> Result<()> {
        (**self).write(record).await
    }
    async fn write_batch(&self, batch: &Batch) -> Result<()> {
        (**self).write_batch(batch).await
    }
    async fn write_batch_refusing(&self, batch: &Batch) -> Result<Vec<Refusal>> {
        (**self).write_batch_refusing(batch).await
    }
    async fn flush(&self) -> Result<()> {
        (**self).flush().await
    }
    async fn close(&self) -> Result<()> {
        (**self).close().await
    }
    async fn resume(&self) -> Result<Option<ChainHead>> {
        (**self).resume().await
    }
    fn query_dir(&self) -> Option<&Path> {
        (**self).query_dir()
    }
    fn seal_witness(&self) -> Option<std::sync::Arc<dyn crate::sealing::SealWitness>> {
        (**self).seal_witness()
    }
    async fn health(&self) -> Result<Option<String>> {
        (**self).health().await
    }
    async fn statistics(&self) -> Result<Vec<(String, u64)>> {
        (**self).statistics().await
    }
}

#[cfg(test)]
mod test {
    use std::sync::Mutex;

    use super::*;
    use crate::{AuditEventType, AuditTrail};
    use audit_format::error::Error;

    /// Implements only what a backend must: `name`, `write_batch`, `resume` and `query_dir`
    /// are the trait's defaults.
    #[derive(Debug, Default)]
    struct Minimal {
        stored: Mutex<Vec<AuditRecord>>,
        fail_at: Option<u64>,
    }

    #[async_trait]
    impl StorageBackend for Minimal {
        async fn write(&self, record: &AuditRecord) -> Result<()> {
            if Some(record.sequence_number()) == self.fail_at {
                return Err(Error::backend("full"));
            }
            self.stored.lock().expect("lock").push(record.clone());
            Ok(())
        }
        async fn flush(&self) -> Result<()> {
            Ok(())
        }
        async fn close(&self) -> Result<()> {
            Ok(())
        }
    }

    fn sequences(b: &Minimal) -> Vec<u64> {
        let stored = b.stored.lock().expect("lock");
        stored.iter().map(AuditRecord::sequence_number).collect()
    }

    #[tokio::test]
    async fn the_defaults_store_each_record_and_stop_at_the_first_failure() -> Result<()> {
        // Shared through `Arc`: the trail drives the defaults through the forwarding impl.
        let shared = Arc::new(Minimal::default());
        let trail = AuditTrail::builder()
            .backend(Box::new(Arc::clone(&shared)))
            .build()?;
        for i in 0..5 {
            trail
                .log_event(AuditEventType::DataAccess, format!("e{i}"))
                .await?;
        }
        assert_eq!(trail.statistics().backends, ["custom"]);
        trail.close().await?;
        assert_eq!(sequences(&shared), [1, 2, 3, 4, 5]);
        assert_eq!(shared.resume().await?, None);
        assert_eq!(shared.query_dir(), None);

        let records = shared.stored.lock().expect("lock").clone();
        let failing = Minimal {
            fail_at: Some(3),
            ..Minimal::default()
        };
        let result = failing.write_batch(&Batch::new(records).skip(1)).await;
        assert!(matches!(result, Err(Error::Backend { message }) if message == "full"));
        assert_eq!(sequences(&failing), [2], "nothing after the failed record");
        Ok(())
    }
}
