//! An opened plugin instance: its dedicated thread, the calls the host sends it, and its
//! [`StorageBackend`] adapter.

use std::borrow::Cow;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use abi_stable::std_types::{RSlice, RStr, RString, RVec};
use async_trait::async_trait;
use audit_plugin_api::{BackendBox, ErrorKind, PluginError, Record};
use tokio::sync::oneshot;

use super::capabilities::Capabilities;
use crate::backend::{Batch, ChainHead, Refusal, StorageBackend};
use crate::sealing::SealWitness;
use audit_format::error::{CallErrorKind, Error, Result};

type Reply<T> = oneshot::Sender<Result<T, PluginError>>;

pub(super) enum Command {
    Write(Batch, Reply<()>),
    /// A write through the `refuse` capability when exported (else the vtable's).
    WriteRefusing(Batch, Reply<Vec<Refusal>>),
    Flush(Reply<()>),
    LastLine(Reply<Option<String>>),
    Health(Reply<Option<String>>),
    Statistics(Reply<Vec<(String, u64)>>),
    ReadFrom(u64, u32, Reply<Option<Vec<String>>>),
    /// A seal for the `seal` capability, from the seal thread (a plain channel: it is not async).
    Seal(String, mpsc::Sender<Result<(), PluginError>>),
    Close(Reply<()>),
}

impl Command {
    /// Answers the call without the instance: `Close` and `Statistics` succeed (nothing to
    /// close, no counters), every other call fails with `e`.
    fn answer_unopened(self, e: &PluginError) {
        match self {
            Self::Write(_, reply) | Self::Flush(reply) => drop(reply.send(Err(e.clone()))),
            Self::WriteRefusing(_, reply) => drop(reply.send(Err(e.clone()))),
            Self::LastLine(reply) => drop(reply.send(Err(e.clone()))),
            Self::Health(reply) => drop(reply.send(Err(e.clone()))),
            Self::ReadFrom(_, _, reply) => drop(reply.send(Err(e.clone()))),
            Self::Seal(_, reply) => drop(reply.send(Err(e.clone()))),
            Self::Statistics(reply) => drop(reply.send(Ok(Vec::new()))),
            Self::Close(reply) => drop(reply.send(Ok(()))),
        }
    }
}

/// The plugin thread before its instance is open (its first `open` failed with a retryable
/// error and the host started anyway): each call tries `open` again first, and fails with
/// the open error (``not open yet: ...``) until it succeeds. Returns the instance and the
/// call that opened it, or `None` at `Close` or when the host goes away.
pub(super) fn open_on_demand(
    open: impl Fn() -> Result<Box<dyn Instance>, PluginError>,
    rx: &mpsc::Receiver<Command>,
) -> Option<(Box<dyn Instance>, Command)> {
    while let Ok(cmd) = rx.recv() {
        match cmd {
            Command::Close(_) => {
                cmd.answer_unopened(&PluginError::retryable("not open"));
                return None;
            }
            // Polled after flushes: no reason to connect for it.
            Command::Statistics(_) => {
                cmd.answer_unopened(&PluginError::retryable("not open"));
                continue;
            }
            _ => {}
        }
        match open() {
            Ok(instance) => return Some((instance, cmd)),
            Err(e) => cmd.answer_unopened(&PluginError {
                kind: e.kind,
                message: format!("not open yet: {}", e.message).into(),
            }),
        }
    }
    None
}

/// What the plugin thread drives: an opened instance of either ABI (a Rust plugin's
/// `BackendBox` with its capabilities, or a C plugin's instance and function table), so the
/// thread, the timeouts, the lanes and the kit have one copy for both. Capabilities the
/// plugin does not offer answer with their documented defaults (`None`, no counters, a
/// write that stores or fails whole).
pub(super) trait Instance {
    /// Stores `batch`; with `refusing`, through the refusal capability when offered.
    fn write(
        &mut self,
        batch: &[crate::AuditRecord],
        refusing: bool,
    ) -> Result<Vec<Refusal>, PluginError>;
    fn flush(&mut self) -> Result<(), PluginError>;
    fn last_line(&mut self) -> Result<Option<String>, PluginError>;
    fn health(&mut self) -> Result<Option<String>, PluginError>;
    /// The instance's counters (none without the capability); an error shows in the
    /// backend's health, it does not fail delivery.
    fn statistics(&mut self) -> Result<Vec<(String, u64)>, PluginError>;
    fn read_from(&mut self, from: u64, limit: u32) -> Result<Option<Vec<String>>, PluginError>;
    /// Keeps a seal line (the `seal` capability: a witness of the trail's seals).
    fn seal(&mut self, line: &str) -> Result<(), PluginError> {
        let _ = line;
        Err(PluginError::fatal("the plugin does not export `seal`"))
    }
    /// Releases the instance; no call follows.
    fn close(&mut self) -> Result<(), PluginError>;
}

/// A Rust (`abi_stable`) plugin's instance and the capabilities its library exports.
pub(super) struct RustInstance {
    pub(super) instance: BackendBox,
    pub(super) capabilities: Capabilities,
}

impl Instance for RustInstance {
    fn write(
        &mut self,
        batch: &[crate::AuditRecord],
        refusing: bool,
    ) -> Result<Vec<Refusal>, PluginError> {
        let refuse = if refusing {
            self.capabilities.refuse
        } else {
            None
        };
        write_records(&mut self.instance, batch, refuse)
    }

    fn flush(&mut self) -> Result<(), PluginError> {
        self.instance.flush().into_result()
    }

    fn last_line(&mut self) -> Result<Option<String>, PluginError> {
        let last = self.instance.last_line().into_result();
        last.map(|l| l.map(RString::into_string).into_option())
    }

    fn health(&mut self) -> Result<Option<String>, PluginError> {
        match self.capabilities.health {
            Some(health) => (health.health())(&mut self.instance)
                .into_result()
                .map(|s| Some(s.into_string())),
            None => Ok(None),
        }
    }

    fn statistics(&mut self) -> Result<Vec<(String, u64)>, PluginError> {
        Ok(match self.capabilities.stats {
            Some(stats) => (stats.statistics())(&mut self.instance)
                .into_iter()
                .map(|c| (c.name.into_string(), c.value))
                .collect(),
            None => Vec::new(),
        })
    }

    fn read_from(&mut self, from: u64, limit: u32) -> Result<Option<Vec<String>>, PluginError> {
        match self.capabilities.read {
            Some(read) => (read.read_from())(&mut self.instance, from, limit)
                .into_result()
                .map(|page| Some(page.into_iter().map(RString::into_string).collect())),
            None => Ok(None),
        }
    }

    fn seal(&mut self, line: &str) -> Result<(), PluginError> {
        match self.capabilities.seal {
            Some(seal) => (seal.seal())(&mut self.instance, RStr::from_str(line)).into_result(),
            None => Err(PluginError::fatal("the plugin does not export `seal`")),
        }
    }

    fn close(&mut self) -> Result<(), PluginError> {
        self.instance.close().into_result()
    }
}

/// The plugin thread's loop: one call at a time, until `Close` or the host goes away.
/// `first` is a call received before the instance opened, served first.
pub(super) fn serve(
    instance: &mut dyn Instance,
    rx: &mpsc::Receiver<Command>,
    first: Option<Command>,
) {
    let mut first = first;
    while let Some(cmd) = first.take().or_else(|| rx.recv().ok()) {
        match cmd {
            Command::Write(batch, reply) => {
                let _ = reply.send(instance.write(&batch, false).map(drop));
            }
            Command::WriteRefusing(batch, reply) => {
                let _ = reply.send(instance.write(&batch, true));
            }
            Command::Flush(reply) => {
                let _ = reply.send(instance.flush());
            }
            Command::LastLine(reply) => {
                let _ = reply.send(instance.last_line());
            }
            Command::Health(reply) => {
                let _ = reply.send(instance.health());
            }
            Command::Statistics(reply) => {
                let _ = reply.send(instance.statistics());
            }
            Command::ReadFrom(from, limit, reply) => {
                let _ = reply.send(instance.read_from(from, limit));
            }
            Command::Seal(line, reply) => {
                let _ = reply.send(instance.seal(&line));
            }
            Command::Close(reply) => {
                let _ = reply.send(instance.close());
                return;
            }
        }
    }
    // The host dropped the backend without closing it: close it anyway.
    let _ = instance.close();
}

/// Hands records to a plugin instance the way every host call does: ids decoded (borrowed
/// when they need no unescaping), one `Record` view per line, one `write_batch` call (the
/// `refuse` capability's when given, returning its refusals).
fn write_records(
    instance: &mut BackendBox,
    batch: &[crate::AuditRecord],
    refuse: Option<audit_plugin_api::ext::RefuseV1_Ref>,
) -> Result<Vec<Refusal>, PluginError> {
    with_plugin_records(batch, |records| {
        let Some(refuse) = refuse else {
            return instance
                .write_batch(RSlice::from_slice(records))
                .into_result()
                .map(|()| Vec::new());
        };
        let mut refused = RVec::new();
        (refuse.write_batch())(instance, RSlice::from_slice(records), &mut refused)
            .into_result()?;
        Ok(refused
            .into_iter()
            .map(|r| Refusal {
                sequence_number: r.sequence_number,
                reason: r.reason.into_string(),
            })
            .collect())
    })
}

/// Calls `f` with the `Record` views the host hands a plugin for `batch`: one per line, ids
/// decoded (borrowed from the line when they need no unescaping). Every host call, the
/// bench's plugin baselines and the ABI micro-benchmark build them here.
pub fn with_plugin_records<T>(
    batch: &[crate::AuditRecord],
    f: impl FnOnce(&[Record<'_>]) -> T,
) -> T {
    let decoded: Vec<(Cow<'_, str>, Option<Cow<'_, str>>)> =
        batch.iter().map(|r| (r.event_id(), r.user_id())).collect();
    let records: Vec<Record<'_>> = batch
        .iter()
        .zip(decoded.iter())
        .map(|(r, (event_id, user_id))| Record {
            line: RStr::from_str(r.line()),
            sequence_number: r.sequence_number(),
            timestamp: RStr::from_str(r.timestamp_str()),
            timestamp_micros: r.timestamp().timestamp_micros(),
            event_id: RStr::from_str(event_id),
            event_type: RStr::from_str(r.event_type().as_str()),
            log_level: RStr::from_str(r.log_level().as_str()),
            user_id: user_id.as_deref().map(RStr::from_str).into(),
        })
        .collect();
    f(&records)
}

/// A plugin instance adapted to [`StorageBackend`]: every call goes to the instance's
/// dedicated thread; the batch is shared with it (no line is copied) and the caller awaits
/// the reply without blocking its runtime.
#[derive(Debug)]
pub struct PluginBackend {
    pub(super) name: String,
    pub(super) tx: Mutex<mpsc::Sender<Command>>,
    pub(super) thread: Mutex<Option<JoinHandle<()>>>,
    pub(super) call_timeout: Duration,
    /// Where it is configured (`backends[N] "NAME" (FILE:LINE)`), for messages.
    pub(super) entry: Option<String>,
    /// It exports the `seal` capability: a witness of the trail's seals.
    pub(super) witness: bool,
}

/// How long the host waits for one plugin call by default (`call_timeout_ms`).
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);

impl PluginBackend {
    /// Sets how long one call may take before it counts as a retryable failure (default
    /// [`DEFAULT_CALL_TIMEOUT`]). A call that times out keeps running in the plugin's thread
    /// (a thread cannot be stopped from outside); later calls queue behind it.
    #[must_use]
    pub fn with_call_timeout(self, timeout: Duration) -> Self {
        Self {
            call_timeout: timeout,
            ..self
        }
    }

    /// Names `entry` (`backends[N] "NAME" (FILE:LINE)`, as [`BackendEntry`] displays it)
    /// in this instance's call errors instead of ``plugin backend `NAME` ``. The trail
    /// built from a configuration file sets it.
    ///
    /// [`BackendEntry`]: crate::config::BackendEntry
    #[must_use]
    pub fn with_entry(self, entry: impl std::fmt::Display) -> Self {
        Self {
            entry: Some(entry.to_string()),
            ..self
        }
    }

    /// How messages name this instance: its configuration entry, else
    /// ``plugin backend `NAME` ``.
    fn subject(&self) -> String {
        match &self.entry {
            Some(entry) => entry.clone(),
            None => format!("plugin backend `{}`", self.name),
        }
    }

    /// The instance's status from the plugin's `health` capability, or `None` when the plugin
    /// does not export it (its health is unknown).
    ///
    /// # Errors
    /// [`Error::PluginCall`] with the plugin's error, or a timeout.
    pub async fn health(&self) -> Result<Option<String>> {
        self.call(Command::Health).await
    }

    /// The instance's counters from the plugin's `stats` capability, in the plugin's order;
    /// empty when the plugin does not export it.
    ///
    /// # Errors
    /// A timeout, or the instance's thread stopped.
    pub async fn statistics(&self) -> Result<Vec<(String, u64)>> {
        self.call(Command::Statistics).await
    }

    /// Up to `limit` stored lines whose sequence number is `from` or higher, in sequence
    /// order (empty: nothing more), from the plugin's `read` capability; `None` when the
    /// plugin does not export it (its store cannot be read back).
    ///
    /// # Errors
    /// [`Error::PluginCall`] with the plugin's error, or a timeout.
    pub async fn read_from(&self, from: u64, limit: u32) -> Result<Option<Vec<String>>> {
        self.call(|reply| Command::ReadFrom(from, limit, reply))
            .await
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T> {
        let (reply_tx, reply_rx) = oneshot::channel();
        let sent = self
            .tx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .send(make(reply_tx));
        if sent.is_err() {
            return Err(Error::backend(format!("{} is closed", self.subject())));
        }
        let Ok(reply) = tokio::time::timeout(self.call_timeout, reply_rx).await else {
            return Err(Error::PluginCall {
                backend: self.name.clone(),
                entry: self.entry.clone(),
                kind: CallErrorKind::Retryable,
                message: format!(
                    "no answer within call_timeout_ms ({} ms); the call goes on in the plugin's thread, which cannot be stopped, and later calls wait behind it",
                    self.call_timeout.as_millis()
                ),
            });
        };
        match reply {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(Error::PluginCall {
                backend: self.name.clone(),
                entry: self.entry.clone(),
                kind: call_error_kind(e.kind),
                message: e.message.into_string(),
            }),
            Err(_) => Err(Error::backend(format!(
                "{}: its thread stopped",
                self.subject()
            ))),
        }
    }
}

/// A plugin with the `seal` capability as the seal thread calls it: a blocking call on the
/// instance's thread, waiting at most `call_timeout_ms`.
#[derive(Debug)]
struct PluginWitness {
    name: String,
    tx: Mutex<mpsc::Sender<Command>>,
    call_timeout: Duration,
}

impl SealWitness for PluginWitness {
    fn name(&self) -> &str {
        &self.name
    }

    fn witness(&self, line: &str) -> Result<()> {
        let (reply_tx, reply_rx) = mpsc::channel();
        let sent = self
            .tx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .send(Command::Seal(line.to_owned(), reply_tx));
        if sent.is_err() {
            return Err(Error::backend(format!("{} is closed", self.name)));
        }
        match reply_rx.recv_timeout(self.call_timeout) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::backend(format!("{}: {}", self.name, e.message))),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(Error::backend(format!(
                "{}: no answer within call_timeout_ms ({} ms)",
                self.name,
                self.call_timeout.as_millis()
            ))),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(Error::backend(format!("{}: its thread stopped", self.name)))
            }
        }
    }
}

/// The plugin ABI's error kind as [`Error::PluginCall`] reports it.
fn call_error_kind(kind: ErrorKind) -> CallErrorKind {
    match kind {
        ErrorKind::Retryable => CallErrorKind::Retryable,
        ErrorKind::Fatal => CallErrorKind::Fatal,
        ErrorKind::Config => CallErrorKind::Config,
    }
}

#[async_trait]
impl StorageBackend for PluginBackend {
    fn name(&self) -> &str {
        &self.name
    }

    async fn write(&self, record: &crate::AuditRecord) -> Result<()> {
        self.write_batch(&Batch::new(vec![record.clone()])).await
    }

    async fn write_batch(&self, batch: &Batch) -> Result<()> {
        self.call(|reply| Command::Write(batch.clone(), reply))
            .await
    }

    /// Through the plugin's `refuse` capability when it exports it; otherwise the batch is
    /// stored or failed whole, as by [`write_batch`](StorageBackend::write_batch).
    async fn write_batch_refusing(&self, batch: &Batch) -> Result<Vec<Refusal>> {
        self.call(|reply| Command::WriteRefusing(batch.clone(), reply))
            .await
    }

    async fn flush(&self) -> Result<()> {
        self.call(Command::Flush).await
    }

    async fn resume(&self) -> Result<Option<ChainHead>> {
        let Some(line) = self.call(Command::LastLine).await? else {
            return Ok(None);
        };
        let fields: audit_format::record::ChainFields<'_> =
            serde_json::from_str(&line).map_err(|e| {
                Error::backend(format!(
                    "{}: its last stored line is not an audit event: {e}",
                    self.subject()
                ))
            })?;
        Ok(Some(ChainHead {
            sequence_number: fields.sequence_number,
            location: format!("the last line stored by plugin backend `{}`", self.name),
            line,
            anchor: None,
        }))
    }

    async fn health(&self) -> Result<Option<String>> {
        PluginBackend::health(self).await
    }

    async fn statistics(&self) -> Result<Vec<(String, u64)>> {
        PluginBackend::statistics(self).await
    }

    fn seal_witness(&self) -> Option<Arc<dyn SealWitness>> {
        self.witness.then(|| {
            Arc::new(PluginWitness {
                name: self.subject(),
                tx: Mutex::new(
                    self.tx
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .clone(),
                ),
                call_timeout: self.call_timeout,
            }) as Arc<dyn SealWitness>
        })
    }

    async fn close(&self) -> Result<()> {
        let result = self.call(Command::Close).await;
        // Join only a thread that answered: one stuck inside the plugin is left behind.
        if result.is_ok() {
            let handle = self
                .thread
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            if let Some(h) = handle {
                let _ = h.join();
            }
        }
        result
    }
}
