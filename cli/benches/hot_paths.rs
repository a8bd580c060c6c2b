//! Criterion micro-benchmarks of the trail's hot paths: `cargo bench -p audit-cli`.
//!
//! - `canonical_line/*`: serializing one realistic event (all 30 fields, ~950-byte line), the
//!   part done outside the chain's critical section (`encode`) and the whole per-event work
//!   (`encode` + `assemble`: chain fields, timestamp, SHA-256 checksum).
//! - `chain/*`: the checksum alone over one stored line, SHA-256 and HMAC-SHA256.
//! - `plugin_abi/*`: one 256-record batch handed to a real plugin library (the no-op
//!   `audit-backend-faulty` test fixture, built beside this benchmark as a dev-dependency):
//!   the bare `write_batch` call through the `abi_stable` trait object, and the whole
//!   `PluginBackend::write_batch` the trail's writer makes (hand-off to the plugin's thread and
//!   the reply).
//!
//! Figures and how to read them: docs/benchmarks.md.

use std::hint::black_box;
use std::path::PathBuf;

use abi_stable::library::lib_header_from_path;
use abi_stable::std_types::{RResult, RSlice, RStr};
use audit_format::{ComplianceLevel, LineEncoder};
use audit_host::plugin::{LoadOptions, LoadedPlugin, library_file_name};
use audit_host::{AuditRecord, Batch, Integrity, StorageBackend};
use audit_plugin_api::{BackendBox, PluginModule_Ref};
use chrono::{TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sample::sample_events;

/// The events `audit bench` logs.
#[path = "../src/bench/sample.rs"]
mod sample;

const EVENT_ID: &str = "0b7c8f1e-3f57-4e8e-9d46-1c2a3b4c5d6e";
const BATCH: usize = 256;

/// A chain of `n` records as the trail would produce them.
fn records(n: usize) -> Vec<AuditRecord> {
    let pool = sample_events(n);
    let mut enc = LineEncoder::new();
    let mut prev: Option<[u8; 64]> = None;
    let ts = Utc
        .with_ymd_and_hms(2026, 11, 26, 12, 0, 0)
        .single()
        .expect("valid timestamp");
    pool.iter()
        .enumerate()
        .map(|(i, ev)| {
            enc.encode(ev, EVENT_ID, "bench-host", 4242, ComplianceLevel::Basic);
            let (rec, hex) = enc.assemble(ev, i as u64 + 1, prev.as_ref(), ts, &Integrity::Sha256);
            prev = Some(hex);
            rec
        })
        .collect()
}

fn canonical_line(c: &mut Criterion) {
    let pool = sample_events(16);
    let ev = &pool[3];
    let prev = [b'a'; 64];
    let ts = Utc::now();
    let mut enc = LineEncoder::new();
    enc.encode(ev, EVENT_ID, "bench-host", 4242, ComplianceLevel::Basic);
    let len = enc
        .assemble(ev, 123_456, Some(&prev), ts, &Integrity::Sha256)
        .0
        .line()
        .len();
    let mut g = c.benchmark_group("canonical_line");
    g.throughput(Throughput::Bytes(len as u64));
    g.bench_function("encode", |b| {
        b.iter(|| {
            enc.encode(
                black_box(ev),
                EVENT_ID,
                "bench-host",
                4242,
                ComplianceLevel::Basic,
            )
        });
    });
    g.bench_function("encode_assemble_sha256", |b| {
        b.iter(|| {
            enc.encode(
                black_box(ev),
                EVENT_ID,
                "bench-host",
                4242,
                ComplianceLevel::Basic,
            );
            enc.assemble(ev, 123_456, Some(&prev), ts, &Integrity::Sha256)
        });
    });
    g.finish();
}

fn chain(c: &mut Criterion) {
    let recs = records(4);
    let line = recs[3].line();
    // What the checksum covers: the line after its `{"checksum":"<64 hex>",` member.
    let body = &line.as_bytes()[line.find("\",").expect("checksum member") + 2..];
    let hmac = Integrity::hmac(&[7u8; 32]).expect("32-byte key");
    let mut g = c.benchmark_group("chain");
    g.throughput(Throughput::Bytes(body.len() as u64 + 1));
    g.bench_function("sha256", |b| {
        b.iter(|| Integrity::Sha256.checksum_hex(black_box(body)));
    });
    g.bench_function("hmac_sha256", |b| {
        b.iter(|| hmac.checksum_hex(black_box(body)));
    });
    g.finish();
}

/// A plugin library built beside this benchmark (plugins are dev-dependencies of audit-cli,
/// so `cargo bench` builds them into the same `deps/` directory).
fn plugin_lib(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let path = exe
        .parent()
        .expect("deps dir")
        .join(library_file_name(name));
    assert!(
        path.exists(),
        "{} is missing: run `cargo bench -p audit-cli`",
        path.display()
    );
    path
}

/// Hands `batch` to `instance` as the host does for every call: one `Record` view per line
/// (ids borrowed from the line), one `write_batch` call.
fn sabi_write_batch(instance: &mut BackendBox, batch: &[AuditRecord]) {
    audit_host::plugin::with_plugin_records(batch, |records| {
        instance
            .write_batch(RSlice::from_slice(black_box(records)))
            .into_result()
            .expect("write_batch");
    });
}

fn plugin_abi(c: &mut Criterion) {
    let lib = plugin_lib("audit_backend_faulty");
    let recs = records(BATCH);
    let bytes: usize = recs.iter().map(|r| r.line().len() + 1).sum();
    let mut g = c.benchmark_group("plugin_abi");
    g.throughput(Throughput::Elements(BATCH as u64));

    let module = lib_header_from_path(&lib)
        .and_then(|h| h.init_root_module::<PluginModule_Ref>())
        .expect("load the faulty fixture");
    let mut instance = match (module.open())(RStr::from_str("{}")) {
        RResult::ROk(b) => b,
        RResult::RErr(e) => panic!("open: {e}"),
    };
    g.bench_function("sabi_write_batch_256", |b| {
        b.iter(|| sabi_write_batch(&mut instance, &recs));
    });
    let _ = instance.close();

    let plugin = LoadedPlugin::load(&lib, &LoadOptions::default()).expect("load");
    let backend = plugin.open("bench", "{}").expect("open");
    let shared = Batch::from(recs);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    g.bench_function("plugin_backend_write_batch_256", |b| {
        b.iter(|| {
            rt.block_on(backend.write_batch(black_box(&shared)))
                .expect("write_batch");
        });
    });
    rt.block_on(backend.close()).expect("close");
    g.finish();
    eprintln!("plugin_abi: one batch is {BATCH} records, {bytes} bytes of lines");
}

criterion_group!(benches, canonical_line, chain, plugin_abi);
criterion_main!(benches);
