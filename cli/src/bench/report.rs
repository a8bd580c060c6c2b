//! Printing a scenario's result: one JSON line (`--json`, the contract) or one line of text.

use super::engine::BenchResult;
use super::verify::VerifyResult;

/// `--verify`'s result: a JSON line, or one line of text.
pub(crate) fn print_verify(v: &VerifyResult, json: bool) {
    if json {
        println!("{}", serde_json::to_string(v).unwrap_or_default());
    } else {
        println!(
            "verify: {:.0} MB/s over {:.0} MB; SHA-256 alone {:.0} MB/s; ratio {:.2}",
            v.verify_mb_per_s, v.megabytes, v.sha256_mb_per_s, v.ratio_to_sha256
        );
    }
}

/// A scenario's result: a JSON line, or one line of text.
pub(crate) fn print_bench(r: &BenchResult, json: bool) {
    if json {
        println!("{}", serde_json::to_string(r).unwrap_or_default());
    } else {
        println!(
            "{}: {} events, {} producer(s), {}, {}: {:.0} events/s ({:.1} MB/s, {:.0} B/event); baseline {:.0} events/s, ratio {:.2}; log_event p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us; peak RSS {:.1} MiB",
            r.scenario,
            r.events,
            r.producers,
            r.durability,
            r.backend,
            r.events_per_s,
            r.mb_per_s,
            r.bytes_per_event,
            r.baseline_events_per_s,
            r.ratio_to_baseline,
            r.p50_us,
            r.p99_us,
            r.p999_us,
            r.peak_rss_bytes as f64 / (1024.0 * 1024.0)
        );
    }
}
