//! `audit emit` on SIGINT or SIGTERM.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use audit_host::AuditTrail;

use super::acks::{self, Acks, Shared};

/// On SIGINT or SIGTERM: stop taking input, close the trail (every accepted event is
/// written and synced), print the remaining acknowledgements, exit 130 or 143.
pub(super) fn on_signal_close(
    trail: &Arc<AuditTrail>,
    acks: &Shared<Acks>,
    interrupted: &Arc<AtomicBool>,
    ack: bool,
) -> io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    let (trail, acks, interrupted) = (trail.clone(), acks.clone(), interrupted.clone());
    std::thread::Builder::new()
        .name("audit-signals".into())
        .spawn(move || {
            let Some(signal) = signals.forever().next() else {
                return;
            };
            interrupted.store(true, Ordering::SeqCst);
            let name = if signal == SIGINT { "SIGINT" } else { "SIGTERM" };
            eprintln!(
                "audit emit: {name}: closing the trail; accepted events are written and synced first"
            );
            let closed = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .map_err(|e| e.to_string())
                .and_then(|rt| rt.block_on(trail.close()).map_err(|e| audit_format::error::chain(&e)));
            let mut acks = acks::lock(&acks);
            if ack {
                let durable = if closed.is_ok() { u64::MAX } else { trail.durable_sequence() };
                acks.print_durable(durable);
            }
            match closed {
                Ok(()) => eprintln!("audit emit: closed after {name}"),
                Err(e) => eprintln!("audit emit: closing after {name} failed: {e}"),
            }
            std::process::exit(128 + signal);
        })?;
    Ok(())
}
