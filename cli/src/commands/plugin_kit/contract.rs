//! The contract the kit runs, check by check, in order: fresh, ordering, flush, reopen,
//! redelivery, fork, read, refusal, capabilities, panic, close.

use audit_host::plugin::{LoadedPlugin, PluginAbi, PluginBackend};
use audit_host::{Batch, StorageBackend};

use super::capabilities::check_capabilities;
use super::chain::Chain;
use super::head::{differs, last_line, reopen};
use super::results::Results;
use super::{read, refusal};

/// Records per batch and batches in the ordering check.
const BATCH: u64 = 100;
const BATCHES: u64 = 3;

const AFTER_ORDERING: [&str; 9] = [
    "flush",
    "reopen",
    "redelivery",
    "fork",
    "read",
    "refusal",
    "capabilities",
    "panic",
    "close",
];

/// What every check may need: the library, the config it was opened with, and the flags.
#[derive(Clone, Copy)]
pub(super) struct Kit<'a> {
    pub(super) plugin: &'a LoadedPlugin,
    pub(super) config: &'a str,
    pub(super) plugin_api: &'a str,
    pub(super) verbose: bool,
    pub(super) write_only: bool,
}

/// Runs every check against `backend` (an instance opened with `kit.config`), in order.
pub(super) async fn contract(kit: Kit<'_>, mut backend: PluginBackend, r: &mut Results) {
    let mut chain = check_fresh(&backend, r).await;
    let Some(mut written) = check_ordering(&backend, &mut chain, r).await else {
        return;
    };
    // What `read` must return: every line written, in order.
    let all_written: Vec<String> = written
        .iter()
        .flat_map(|b| b.iter().map(|rec| rec.line().to_owned()))
        .collect();
    let Some(last_batch) = written.pop() else {
        return;
    };
    let head = last_batch
        .iter()
        .last()
        .map(|rec| rec.line().to_owned())
        .unwrap_or_default();
    let Some((reopened, stored)) = check_reopen(kit, backend, &head, r).await else {
        return;
    };
    backend = reopened;
    check_redelivery(kit, &backend, &last_batch, &stored, r).await;
    let Some(after_fork) = check_fork(kit, backend, &mut chain, &last_batch, &stored, r).await
    else {
        return;
    };
    backend = after_fork;

    // 6. Read back: the store holds what was written, once, and not the fork.
    read::check_read(&backend, &all_written, kit.verbose, r).await;

    // 7. Refusal (the `refuse` capability): only records of the batch, with reasons; the
    // rest stored.
    refusal::check_refusal(kit.plugin, &backend, &mut chain, kit.verbose, r).await;

    // 8. Capabilities: list them and call each once.
    check_capabilities(kit.plugin, &backend, kit.config, r).await;

    check_panic(kit.plugin, kit.plugin_api, r);

    // 6. Close (no call follows: calling a closed instance is not part of the contract).
    match backend.close().await {
        Ok(()) => r.ok("close"),
        Err(e) => r.fail("close", audit_format::error::chain(&e)),
    }
}

/// The `fresh` check: a fresh store has no head; a store that has one is continued.
async fn check_fresh(backend: &PluginBackend, r: &mut Results) -> Chain {
    match last_line(backend).await {
        Ok(None) => {
            r.note("fresh", "last_line of a new store is none");
            Chain::new()
        }
        Ok(Some(line)) => match Chain::after(&line) {
            Ok(c) => {
                r.skip(
                    "fresh",
                    format!(
                        "the store is not fresh (last_line is sequence {}); the kit continues the chain after it",
                        c.next - 1
                    ),
                );
                c
            }
            Err(e) => {
                r.fail("fresh", e);
                Chain::new()
            }
        },
        Err(e) => {
            r.fail("fresh", format!("last_line failed: {e}"));
            Chain::new()
        }
    }
}

/// The `ordering` check: batches in order are accepted. The batches written, or `None`
/// when one was refused (the checks after it are skipped then).
async fn check_ordering(
    backend: &PluginBackend,
    chain: &mut Chain,
    r: &mut Results,
) -> Option<Vec<Batch>> {
    let mut written: Vec<Batch> = Vec::new();
    for i in 1..=BATCHES {
        let batch = Batch::new(chain.batch(BATCH));
        if let Err(e) = backend.write_batch(&batch).await {
            r.fail(
                "ordering",
                format!(
                    "write_batch {i} of {BATCHES} ({BATCH} records) failed: {e}",
                    e = audit_format::error::chain(&e)
                ),
            );
            r.skip_rest(&AFTER_ORDERING, "ordering");
            return None;
        }
        written.push(batch);
    }
    r.note(
        "ordering",
        format!("{BATCHES} batches of {BATCH} records accepted in order"),
    );
    Some(written)
}

/// The `flush` and `reopen` checks: after flush, close and open, the head is the last line
/// written. The reopened instance and the head after reopen, or `None` when it could not be reopened.
async fn check_reopen(
    kit: Kit<'_>,
    mut backend: PluginBackend,
    head: &str,
    r: &mut Results,
) -> Option<(PluginBackend, Option<String>)> {
    if let Err(e) = backend.flush().await {
        r.fail("flush", audit_format::error::chain(&e));
    } else {
        r.ok("flush");
    }
    backend = match reopen(kit.plugin, backend, kit.config).await {
        Ok(b) => b,
        Err(e) => {
            r.fail("reopen", e);
            r.skip_rest(&AFTER_ORDERING[2..], "reopen");
            return None;
        }
    };
    // What later checks compare with: the head after reopen, so that one wrong head is
    // reported once, by `reopen`.
    let stored = match last_line(&backend).await {
        Ok(None) if kit.write_only => {
            r.skip(
                "reopen",
                "--write-only: the store cannot be read back (last_line is none); close and open worked",
            );
            None
        }
        Ok(Some(l)) if l == head => {
            r.note(
                "reopen",
                "after flush, close and open, last_line is the last line written, byte for byte",
            );
            Some(l)
        }
        Ok(got) => {
            r.fail("reopen", differs(got.as_deref(), Some(head), kit.verbose));
            got
        }
        Err(e) => {
            r.fail("reopen", format!("last_line failed: {e}"));
            Some(head.to_owned())
        }
    };
    Some((backend, stored))
}

/// The `redelivery` check: re-delivery of a stored batch is accepted and ignored.
async fn check_redelivery(
    kit: Kit<'_>,
    backend: &PluginBackend,
    last_batch: &Batch,
    stored: &Option<String>,
    r: &mut Results,
) {
    let unchanged = |got: &Option<String>| got == stored;
    match backend.write_batch(last_batch).await {
        Err(e) => r.fail(
            "redelivery",
            format!("re-delivering the last stored batch was refused: {e}", e = audit_format::error::chain(&e)),
        ),
        Ok(()) => match backend.flush().await {
            Err(e) => r.fail("redelivery", format!("flush failed: {e}", e = audit_format::error::chain(&e))),
            Ok(()) => match last_line(backend).await {
                Ok(got) if unchanged(&got) => r.note(
                    "redelivery",
                    "accepted, last_line unchanged (duplicates in the store are counted by `read`, when the plugin exports it)",
                ),
                Ok(got) => r.fail(
                    "redelivery",
                    format!("the head changed: {}", differs(got.as_deref(), stored.as_deref(), kit.verbose)),
                ),
                Err(e) => r.fail("redelivery", format!("last_line failed: {e}")),
            },
        },
    }
}

/// The `fork` check: a different line under a stored sequence number never becomes the
/// head. The instance to go on with, or `None` when it could not be reopened.
async fn check_fork(
    kit: Kit<'_>,
    mut backend: PluginBackend,
    chain: &mut Chain,
    last_batch: &Batch,
    stored: &Option<String>,
    r: &mut Results,
) -> Option<PluginBackend> {
    let unchanged = |got: &Option<String>| got == stored;
    // The head's own sequence number and previous hash, another message.
    let fork_at = chain.next - 1;
    let fork_prev = last_batch
        .iter()
        .rev()
        .nth(1)
        .and_then(|rec| Chain::after(rec.line()).ok())
        .and_then(|c| c.prev);
    let (fork, _) = chain.make(fork_at, fork_prev.as_ref(), "conformance fork");
    let fork_line = fork.line().to_owned();
    match backend.write_batch(&Batch::new(vec![fork])).await {
        Err(e) => r.note(
            "fork",
            format!("a different line at stored sequence {fork_at} was refused ({e})", e = audit_format::error::chain(&e)),
        ),
        Ok(()) if kit.write_only => r.skip(
            "fork",
            format!("--write-only: accepted; a store that cannot be read back cannot show which line it keeps at sequence {fork_at}"),
        ),
        Ok(()) => {
            let flushed = backend.flush().await;
            backend = match reopen(kit.plugin, backend, kit.config).await {
                Ok(b) => b,
                Err(e) => {
                    r.fail("fork", e);
                    r.skip_rest(&AFTER_ORDERING[4..], "fork");
                    return None;
                }
            };
            match (flushed, last_line(&backend).await) {
                (Err(e), _) => r.fail("fork", format!("flush failed: {e}", e = audit_format::error::chain(&e))),
                (Ok(()), Ok(got)) if unchanged(&got) => r.note(
                    "fork",
                    format!("a different line at stored sequence {fork_at} was ignored: after reopen, last_line is unchanged"),
                ),
                (Ok(()), Ok(got)) if got.as_deref() == Some(fork_line.as_str()) => r.fail(
                    "fork",
                    format!("a different line at stored sequence {fork_at} was accepted and stored as the new head (after reopen, last_line is that line)"),
                ),
                (Ok(()), Ok(got)) => r.fail(
                    "fork",
                    format!(
                        "after a different line at stored sequence {fork_at} was accepted, the head changed: {}",
                        differs(got.as_deref(), stored.as_deref(), kit.verbose)
                    ),
                ),
                (Ok(()), Err(e)) => r.fail("fork", format!("last_line failed: {e}")),
            }
        }
    }
    Some(backend)
}

/// The `panic` check: an arbitrary plugin cannot be made to panic; the guard comes with
/// the API.
fn check_panic(plugin: &LoadedPlugin, plugin_api: &str, r: &mut Results) {
    if plugin.info().abi == PluginAbi::C {
        r.skip(
            "panic",
            "a C plugin catches its own exceptions and panics at the boundary (audit_backend.h rule 6); the kit cannot provoke one",
        );
    } else if plugin_api.starts_with("1.") {
        r.skip(
            "panic",
            "cannot make an arbitrary plugin panic; export_backend! contains panics in every 1.x plugin",
        );
    } else {
        r.skip(
            "panic",
            format!("cannot make an arbitrary plugin panic; built against audit-plugin-api {plugin_api}, whose guard the kit does not know"),
        );
    }
}
