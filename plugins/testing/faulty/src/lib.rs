//! Test fixture, not shipped: a backend plugin whose `config` says how to misbehave, and
//! which records what it received so tests can check for loss and duplicates.
//!
//! Built against the current interface, it also exports the `health`, `validate`, `stats` and
//! `refuse` capabilities.
//!
//! Keys: `panic_in` (`"validate"`, `"open"`, `"write_batch"`, `"flush"`, `"health"`,
//! `"statistics"`, `"close"`), `open_sleep_ms` (`open`
//! first sleeps this long: a plugin whose connection hangs), `fail_writes` (the
//! first N `write_batch` calls return a retryable error), `fatal` (every `write_batch`
//! returns a fatal error), `sleep_ms` (each `write_batch` first sleeps this long),
//! `hang_on_write` (the Nth `write_batch` call, 1-based, never returns), `fail_while_exists`
//! (every `write_batch` returns a retryable error while this file exists: a test switches an
//! outage on and off), `open_fail_while_exists` (`open` returns a retryable error while
//! this file exists: a server down at start), `record` (a file that receives one `sequence_number` per line for every
//! record accepted; a sequence number already recorded there is skipped, as a real backend
//! de-duplicates at-least-once delivery), `last_line` (the line `last_line` returns, verbatim:
//! the store's head the fixture claims), `forge_last_line` (`"ahead"`, `"fork"` or
//! `"garbage"`: `last_line` returns a forgery of the `last_line` given; see [`Forge`]),
//! `refuse_sequences` (through the `refuse` capability, these sequence numbers are refused
//! and not stored), `refuse_event_type` (records of this event type are refused),
//! `refuse_reason` (the reason given; default `fixture refuses this record`), `refuse_broken`
//! (`"foreign"`: also refuses a sequence number that is not in the batch; `"empty_reason"`:
//! gives an empty reason; for the conformance kit's `refusal` check).
//!
//! Without `last_line` configured, `last_line` returns the line of the highest sequence
//! number this instance stored (nothing after a reopen: the fixture keeps no store).

use std::fs::{File, OpenOptions};
use std::io::Write;

use audit_plugin_api::ext::Refusal;
use audit_plugin_api::{
    Backend, Health, PluginError, Record, Refuse, Stats, Validate, export_backend, export_health,
    export_refuse, export_stats, export_validate,
};
use serde::Deserialize;

/// The fixture's configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Which call panics.
    pub panic_in: Option<String>,
    /// Sleep this many milliseconds in `open`.
    #[serde(default)]
    pub open_sleep_ms: u64,
    /// How many `write_batch` calls fail (retryable) before they succeed.
    #[serde(default)]
    pub fail_writes: u64,
    /// Every `write_batch` fails fatally.
    #[serde(default)]
    pub fatal: bool,
    /// Sleep this many milliseconds in each `write_batch`.
    #[serde(default)]
    pub sleep_ms: u64,
    /// The Nth `write_batch` call (1-based) hangs forever.
    pub hang_on_write: Option<u64>,
    /// Fail (retryable) while this file exists.
    pub fail_while_exists: Option<String>,
    /// `open` fails (retryable, as when a server is down) while this file exists.
    pub open_fail_while_exists: Option<String>,
    /// Where to record received sequence numbers.
    pub record: Option<String>,
    /// What `last_line` returns (default: nothing stored); with `forge_last_line`, the
    /// genuine line the forgery is made from.
    pub last_line: Option<String>,
    /// Return a forgery of `last_line` instead.
    pub forge_last_line: Option<Forge>,
    /// Sequence numbers the `refuse` capability refuses.
    #[serde(default)]
    pub refuse_sequences: Vec<u64>,
    /// An event type the `refuse` capability refuses.
    pub refuse_event_type: Option<String>,
    /// The reason given for a refusal.
    pub refuse_reason: Option<String>,
    /// How the refusals break the contract, if they do.
    pub refuse_broken: Option<Broken>,
}

/// How the fixture's refusals break the `refuse` contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Broken {
    /// Also refuses sequence number `u64::MAX`, which no batch holds.
    Foreign,
    /// Gives an empty reason.
    EmptyReason,
}

/// How `last_line` forges the head it returns from the configured `last_line` (a genuine
/// line of the trail, stored with SHA-256).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Forge {
    /// The same event at sequence number + 5000, chained after the genuine line (its
    /// `previous_hash` is the genuine checksum) and checksummed with SHA-256: a
    /// self-consistent line ahead of the trail.
    Ahead,
    /// The same sequence number and `previous_hash` with another message, checksum
    /// recomputed with SHA-256: a store that forked.
    Fork,
    /// The genuine line with its message altered and the checksum left as it was: a line
    /// that does not verify.
    Garbage,
}

/// The forgery `forge` makes of `line`.
///
/// # Errors
/// `line` is not an audit event with its chain fields.
pub fn forge(line: &str, forge: Forge) -> Result<String, String> {
    use audit_format::AuditEvent;
    use audit_format::record::{ChainFields, Integrity, LineEncoder};
    if forge == Forge::Garbage {
        return Ok(line.replacen("\"message\":\"", "\"message\":\"altered ", 1));
    }
    let fields: ChainFields<'_> = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let mut ev = AuditEvent::from_json(line).map_err(|e| audit_format::error::chain(&e))?;
    let (Some(ts), Some(event_id)) = (ev.timestamp, ev.event_id.clone()) else {
        return Err("timestamp or event_id is missing".to_owned());
    };
    let hash = |h: &str| -> Result<[u8; 64], String> {
        h.as_bytes()
            .try_into()
            .map_err(|_| format!("`{h}` is not 64 hex digits"))
    };
    let (seq, prev) = match forge {
        Forge::Ahead => (
            fields.sequence_number + 5000,
            Some(hash(fields.checksum.as_deref().unwrap_or_default())?),
        ),
        Forge::Fork | Forge::Garbage => {
            ev.message = format!("forged: {}", ev.message);
            let prev = fields.previous_hash.as_deref().map(hash).transpose()?;
            (fields.sequence_number, prev)
        }
    };
    let mut encoder = LineEncoder::new();
    encoder.encode(
        &ev,
        &event_id,
        ev.hostname.as_deref().unwrap_or_default(),
        ev.process_id.unwrap_or_default(),
        ev.compliance_level,
    );
    let (record, _) = encoder.assemble(&ev, seq, prev.as_ref(), ts, &Integrity::Sha256);
    Ok(record.line().to_owned())
}

/// The misbehaving backend.
#[derive(Debug)]
pub struct Faulty {
    config: Config,
    record: Option<File>,
    /// The highest sequence number recorded.
    recorded: u64,
    writes: u64,
    /// The line of the highest sequence number stored by this instance.
    last_stored: Option<(u64, String)>,
    /// `write_batch` calls that failed.
    failed_writes: u64,
    /// Records newly recorded (a re-delivered sequence number is not counted).
    records_recorded: u64,
}

impl Faulty {
    /// Records `records` (those above the highest recorded) and remembers the last line.
    fn store<'r>(
        &mut self,
        records: impl Iterator<Item = &'r Record<'r>>,
    ) -> Result<(), PluginError> {
        let mut text = String::new();
        for r in records {
            if r.sequence_number > self.recorded {
                text.push_str(&format!("{}\n", r.sequence_number));
                self.recorded = r.sequence_number;
                self.records_recorded += 1;
            }
            if self
                .last_stored
                .as_ref()
                .is_none_or(|(seq, _)| r.sequence_number > *seq)
            {
                self.last_stored = Some((r.sequence_number, r.line().to_owned()));
            }
        }
        if let Some(f) = &mut self.record {
            f.write_all(text.as_bytes())
                .map_err(|e| PluginError::fatal(e.to_string()))?;
        }
        Ok(())
    }

    /// Whether the configuration refuses `r`.
    fn refuses(&self, r: &Record<'_>) -> bool {
        self.config.refuse_sequences.contains(&r.sequence_number)
            || self
                .config
                .refuse_event_type
                .as_deref()
                .is_some_and(|t| t == r.event_type.as_str())
    }

    fn maybe_panic(&self, call: &str) {
        if self.config.panic_in.as_deref() == Some(call) {
            panic!("fixture panic in {call}");
        }
    }
}

fn parse(config_json: &str) -> Result<Config, PluginError> {
    serde_json::from_str(config_json).map_err(|e| PluginError::config(format!("config: {e}")))
}

/// Opens the fixture.
///
/// # Errors
/// A configuration error for unknown keys or an unusable `record` file.
pub fn open(config_json: &str) -> Result<Faulty, PluginError> {
    let config = parse(config_json)?;
    if config.open_sleep_ms > 0 {
        std::thread::sleep(std::time::Duration::from_millis(config.open_sleep_ms));
    }
    if config.panic_in.as_deref() == Some("open") {
        panic!("fixture panic in open");
    }
    if let Some(flag) = &config.open_fail_while_exists
        && std::path::Path::new(flag).exists()
    {
        return Err(PluginError::retryable(format!(
            "fixture: cannot connect while {flag} exists"
        )));
    }
    let recorded = match &config.record {
        Some(path) => std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse::<u64>().ok())
            .max()
            .unwrap_or(0),
        None => 0,
    };
    let record = match &config.record {
        Some(path) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| PluginError::config(format!("config `record`: {path}: {e}")))?,
        ),
        None => None,
    };
    Ok(Faulty {
        config,
        record,
        recorded,
        writes: 0,
        last_stored: None,
        failed_writes: 0,
        records_recorded: 0,
    })
}

impl Backend for Faulty {
    fn write_batch(&mut self, records: &[Record<'_>]) -> Result<(), PluginError> {
        let result = self.try_write(records);
        if result.is_err() {
            self.failed_writes += 1;
        }
        result
    }

    fn flush(&mut self) -> Result<(), PluginError> {
        self.maybe_panic("flush");
        Ok(())
    }

    fn last_line(&mut self) -> Result<Option<String>, PluginError> {
        let Some(line) = &self.config.last_line else {
            return Ok(self.last_stored.as_ref().map(|(_, l)| l.clone()));
        };
        match self.config.forge_last_line {
            None => Ok(Some(line.clone())),
            Some(how) => forge(line, how)
                .map(Some)
                .map_err(|e| PluginError::config(format!("config `last_line`: {e}"))),
        }
    }

    fn close(&mut self) -> Result<(), PluginError> {
        self.maybe_panic("close");
        Ok(())
    }
}

impl Faulty {
    fn try_write(&mut self, records: &[Record<'_>]) -> Result<(), PluginError> {
        self.maybe_panic("write_batch");
        self.writes += 1;
        if self.config.hang_on_write == Some(self.writes) {
            loop {
                std::thread::park();
            }
        }
        if self.config.sleep_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(self.config.sleep_ms));
        }
        if self.config.fatal {
            return Err(PluginError::fatal("fixture: this backend is broken"));
        }
        if self.writes <= self.config.fail_writes {
            return Err(PluginError::retryable(format!(
                "fixture failure {} of {}",
                self.writes, self.config.fail_writes
            )));
        }
        if let Some(flag) = &self.config.fail_while_exists
            && std::path::Path::new(flag).exists()
        {
            return Err(PluginError::retryable(format!(
                "fixture outage: {flag} exists"
            )));
        }
        self.store(records.iter())
    }
}

/// The `health` capability: how many `write_batch` calls it had, the highest sequence number
/// recorded.
impl Health for Faulty {
    fn health(&mut self) -> Result<String, PluginError> {
        self.maybe_panic("health");
        Ok(format!(
            "ok: {} write calls, recorded up to sequence {}",
            self.writes, self.recorded
        ))
    }
}

export_health!(Faulty);

/// The `refuse` capability: the failures of `write_batch` first, then the records the
/// configuration refuses are left out and the rest stored.
impl Refuse for Faulty {
    fn write_batch_refusing(
        &mut self,
        records: &[Record<'_>],
        refused: &mut Vec<Refusal>,
    ) -> Result<(), PluginError> {
        self.write_batch(&[])?;
        let reason = match self.config.refuse_broken {
            Some(Broken::EmptyReason) => String::new(),
            _ => self
                .config
                .refuse_reason
                .clone()
                .unwrap_or_else(|| "fixture refuses this record".to_owned()),
        };
        let (no, yes): (Vec<&Record<'_>>, Vec<&Record<'_>>) =
            records.iter().partition(|r| self.refuses(r));
        refused.extend(
            no.iter()
                .map(|r| Refusal::new(r.sequence_number, reason.clone())),
        );
        if self.config.refuse_broken == Some(Broken::Foreign) {
            refused.push(Refusal::new(u64::MAX, reason));
        }
        self.store(yes.into_iter())
    }
}

export_refuse!(Faulty);

/// The `validate` capability: the keys `open` accepts; with `panic_in = "validate"` it
/// panics instead.
impl Validate for Faulty {
    fn validate(config_json: &str) -> Result<(), PluginError> {
        let config = parse(config_json)?;
        if config.panic_in.as_deref() == Some("validate") {
            panic!("fixture panic in validate");
        }
        Ok(())
    }
}

export_validate!(Faulty);

/// The `stats` capability: `write_calls`, `failed_writes` and `records_recorded` (all
/// monotonic since `open`).
impl Stats for Faulty {
    fn statistics(&mut self) -> Vec<(String, u64)> {
        self.maybe_panic("statistics");
        vec![
            ("write_calls".to_owned(), self.writes),
            ("failed_writes".to_owned(), self.failed_writes),
            ("records_recorded".to_owned(), self.records_recorded),
        ]
    }
}

export_stats!(Faulty);

export_backend! {
    name: "faulty",
    description: "Test fixture: fails, panics or records on command",
    config_help: "panic_in, open_sleep_ms, fail_writes, fatal, sleep_ms, hang_on_write, fail_while_exists, open_fail_while_exists, record, last_line, forge_last_line, refuse_sequences, refuse_event_type, refuse_reason, refuse_broken",
    open: open,
}
