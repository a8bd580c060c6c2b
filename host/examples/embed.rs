//! Embedding the trail in a service: log events from several tasks, close, verify.
//!
//! ```text
//! cargo run --release -p audit-host --example embed -- [EVENTS] [DIR]
//! ```
//!
//! Prints how long logging (accepting) and closing (draining and syncing) took. For real
//! measurements use the benchmarks; this is a usage example.

use std::sync::Arc;
use std::time::Instant;

use audit_host::{AuditEventType, AuditTrail, Integrity, verify_dir};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let events: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let dir = args.next().unwrap_or_else(|| "embed_audit_logs".to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()?;
    let trail = Arc::new(AuditTrail::new(None, Some(dir.clone().into()), None)?);
    let started = Instant::now();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..4)
            .map(|t| {
                let trail = Arc::clone(&trail);
                tokio::spawn(async move {
                    for i in 0..events / 4 {
                        trail
                            .log_data_access("customers/42", "read")
                            .user_id(format!("user-{t}"))
                            .meta("request", i)
                            .await?;
                    }
                    Ok::<_, audit_host::Error>(())
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        let logged = started.elapsed();
        trail
            .log_event(AuditEventType::SystemShutdown, "embed example done")
            .await?;
        trail.close().await?;
        let total = started.elapsed();
        let n = (events / 4) * 4 + 1;
        println!(
            "{n} events: accepted in {:.2?} ({:.0}/s), durable after close in {:.2?} ({:.0}/s)",
            logged,
            n as f64 / logged.as_secs_f64(),
            total,
            n as f64 / total.as_secs_f64()
        );
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    let report = verify_dir(dir.as_ref(), &Integrity::Sha256)?;
    println!(
        "verified: {} events in {} files",
        report.events, report.files
    );
    Ok(())
}
