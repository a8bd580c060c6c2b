//! The baseline: the tightest hand-written loop doing the trail's work without the trail.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use audit_format::{ComplianceLevel, IdPool, LineEncoder};
use audit_host::{AuditEvent, Durability, Error, Integrity, Result};
use chrono::Utc;

use super::scenario::Scenario;
use super::store::fresh_dir;

/// The baseline over `events` events in a fresh directory: its seconds.
pub(crate) fn run_baseline(
    scenario: &Scenario,
    pool: &[AuditEvent],
    events: usize,
    producers: usize,
) -> Result<f64> {
    let base_dir = scenario.dir.join("baseline");
    fresh_dir(&base_dir)?;
    let sync_every = match scenario.durability {
        Durability::Sync => producers.min(64),
        Durability::Batched => 0,
    };
    baseline(pool, events, sync_every, &base_dir)
}

/// The tightest loop doing the trail's work without the trail: for each event, a UUID, the
/// timestamp, the canonical line, the SHA-256 chain, appended through a 256 KiB buffer with
/// one write per full buffer; fdatasync every `sync_every` events (0: at the end and every
/// 200 ms, like batched mode). Returns the seconds it took.
///
/// # Errors
/// File-system errors.
pub(crate) fn baseline(
    pool: &[AuditEvent],
    events: usize,
    sync_every: usize,
    dir: &Path,
) -> Result<f64> {
    let path = dir.join("baseline.jsonl");
    let mut file = File::create(&path).map_err(Error::io("cannot create", &path))?;
    let io = |e| Error::io("cannot write", &path)(e);
    let integrity = Integrity::Sha256;
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let pid = i64::from(std::process::id());
    let mut encoder = LineEncoder::new();
    let mut ids = IdPool::default();
    let mut prev: Option<[u8; 64]> = None;
    let mut buf: Vec<u8> = Vec::with_capacity(256 * 1024 + 4096);
    let started = Instant::now();
    let mut last_sync = started;
    for i in 0..events {
        let ev = &pool[i % pool.len()];
        let id = ids.next_id()?;
        encoder.encode(ev, &id, &host, pid, ComplianceLevel::Basic);
        let (record, hex) =
            encoder.assemble(ev, i as u64 + 1, prev.as_ref(), Utc::now(), &integrity);
        prev = Some(hex);
        buf.extend_from_slice(record.line().as_bytes());
        buf.push(b'\n');
        if sync_every > 0 {
            if (i + 1) % sync_every == 0 {
                file.write_all(&buf).map_err(io)?;
                buf.clear();
                file.sync_data().map_err(io)?;
            }
        } else if buf.len() >= 256 * 1024 {
            file.write_all(&buf).map_err(io)?;
            buf.clear();
            if last_sync.elapsed() >= Duration::from_millis(200) {
                file.sync_data().map_err(io)?;
                last_sync = Instant::now();
            }
        }
    }
    file.write_all(&buf).map_err(io)?;
    file.sync_data().map_err(io)?;
    Ok(started.elapsed().as_secs_f64())
}

#[cfg(test)]
mod test {
    use audit_format::LineEncoder;
    use audit_host::{ComplianceLevel, Integrity};
    use chrono::Utc;
    use serde_json::{Map, Value};

    use crate::bench::sample::sample_events;

    #[test]
    fn sample_lines_are_about_900_bytes() {
        let pool = sample_events(16);
        let mut p = LineEncoder::new();
        p.encode(
            &pool[3],
            "0b7c8f1e-3f57-4e8e-9d46-1c2a3b4c5d6e",
            "bench-host",
            4242,
            ComplianceLevel::Sox,
        );
        let (r, _) = p.assemble(
            &pool[3],
            123_456,
            Some(&[b'a'; 64]),
            Utc::now(),
            &Integrity::Sha256,
        );
        let len = r.line().len();
        assert!((850..1000).contains(&len), "{len}: {}", r.line());
        let v: Map<String, Value> = serde_json::from_str(r.line()).expect("json");
        assert!(
            v.values().filter(|x| x.is_null()).count() == 0,
            "all 30 fields present: {}",
            r.line()
        );
    }
}
