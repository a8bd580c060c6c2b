//! In-process test backends.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use audit_host::{AuditRecord, Batch, Error, Result, StorageBackend, async_trait};

/// A backend that keeps every record it is given, in memory, and can be told to misbehave:
/// fail its next writes or flushes (retryable), fail every write (it never recovers), fail
/// fatally, panic, or stall inside a call.
///
/// Each `write_batch` is one call: the failure switches apply to the whole batch. Share it
/// with the trail as `Box::new(Arc::clone(&backend))` to inspect it afterwards.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    /// `None`: the trait's default name.
    name: Option<&'static str>,
    records: Mutex<Vec<AuditRecord>>,
    fail_writes: AtomicUsize,
    fail_flushes: AtomicUsize,
    fatal: AtomicBool,
    panic_writes: AtomicUsize,
    stall: AtomicBool,
    write_calls: AtomicU64,
    flushes: AtomicU64,
}

/// A backend that only has the trait's defaults, to lend [`MemoryBackend`] its default name.
#[derive(Debug)]
struct Unnamed;

#[async_trait]
impl StorageBackend for Unnamed {
    async fn write(&self, _record: &AuditRecord) -> Result<()> {
        unreachable!("only its name is used")
    }
    async fn flush(&self) -> Result<()> {
        unreachable!("only its name is used")
    }
    async fn close(&self) -> Result<()> {
        unreachable!("only its name is used")
    }
}

static UNNAMED: Unnamed = Unnamed;

impl MemoryBackend {
    /// A backend that does not name itself (it has the trait's default name, `custom`).
    pub fn new() -> Self {
        Self::default()
    }

    /// A backend called `name` (the name also chooses its spool directory).
    pub fn named(name: &'static str) -> Self {
        Self {
            name: Some(name),
            ..Self::default()
        }
    }

    /// The next `n` write calls fail with a retryable error, `disk on fire`.
    pub fn fail_next_writes(&self, n: usize) {
        self.fail_writes.store(n, Ordering::SeqCst);
    }

    /// Every write call fails with a retryable error from now on: it never recovers.
    pub fn fail_writes_forever(&self) {
        self.fail_next_writes(usize::MAX);
    }

    /// The next `n` flushes fail with a retryable error, `fsync failed`.
    pub fn fail_next_flushes(&self, n: usize) {
        self.fail_flushes.store(n, Ordering::SeqCst);
    }

    /// Every write call fails with a fatal error, `disk gone`, from now on.
    pub fn fail_fatally(&self) {
        self.fatal.store(true, Ordering::SeqCst);
    }

    /// The next `n` write calls panic with `index out of bounds in vendor code`.
    pub fn panic_next_writes(&self, n: usize) {
        self.panic_writes.store(n, Ordering::SeqCst);
    }

    /// While `true`, a write call blocks its thread (it has started, see
    /// [`write_calls`](Self::write_calls)) until this is set back to `false`.
    pub fn stall(&self, on: bool) {
        self.stall.store(on, Ordering::SeqCst);
    }

    /// The records stored, in the order they arrived.
    pub fn records(&self) -> Vec<AuditRecord> {
        self.records.lock().expect("lock").clone()
    }

    /// The sequence numbers of the records stored, in the order they arrived.
    pub fn sequences(&self) -> Vec<u64> {
        let records = self.records.lock().expect("lock");
        records.iter().map(AuditRecord::sequence_number).collect()
    }

    /// Write calls made, failed ones included (a batch is one call).
    pub fn write_calls(&self) -> u64 {
        self.write_calls.load(Ordering::SeqCst)
    }

    /// Flushes that succeeded.
    pub fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::SeqCst)
    }

    /// Takes one from `counter` if it is not zero.
    fn take_one(counter: &AtomicUsize) -> bool {
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    fn store<'a>(&self, records: impl IntoIterator<Item = &'a AuditRecord>) -> Result<()> {
        self.write_calls.fetch_add(1, Ordering::SeqCst);
        while self.stall.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        if Self::take_one(&self.panic_writes) {
            panic!("index out of bounds in vendor code");
        }
        if self.fatal.load(Ordering::SeqCst) {
            return Err(Error::Fatal {
                message: "disk gone".into(),
            });
        }
        if Self::take_one(&self.fail_writes) {
            return Err(Error::backend("disk on fire"));
        }
        self.records
            .lock()
            .expect("lock")
            .extend(records.into_iter().cloned());
        Ok(())
    }
}

#[async_trait]
impl StorageBackend for MemoryBackend {
    fn name(&self) -> &str {
        self.name.unwrap_or_else(|| UNNAMED.name())
    }
    async fn write(&self, record: &AuditRecord) -> Result<()> {
        self.store([record])
    }
    async fn write_batch(&self, batch: &Batch) -> Result<()> {
        self.store(batch.iter())
    }
    async fn flush(&self) -> Result<()> {
        if Self::take_one(&self.fail_flushes) {
            return Err(Error::backend("fsync failed"));
        }
        self.flushes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn close(&self) -> Result<()> {
        Ok(())
    }
}
