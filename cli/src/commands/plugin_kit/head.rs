//! The stored head as the kit reads and compares it, and reopening an instance.

use audit_format::record::ChainFields;
use audit_host::StorageBackend;
use audit_host::plugin::{LoadedPlugin, PluginBackend};

/// The stored head as the host reads it: the plugin's `last_line`.
pub(super) async fn last_line(backend: &PluginBackend) -> Result<Option<String>, String> {
    backend
        .resume()
        .await
        .map(|h| h.map(|h| h.line))
        .map_err(|e| audit_format::error::chain(&e))
}

/// `got` is not `want`: their sequence numbers and checksums; with `verbose`, both lines.
pub(super) fn differs(got: Option<&str>, want: Option<&str>, verbose: bool) -> String {
    let show = |line: Option<&str>| match line {
        None => "none".to_owned(),
        Some(l) if verbose => format!("{} `{l}`", describe(l)),
        Some(l) => describe(l),
    };
    let hint = if verbose {
        ""
    } else {
        " (--verbose shows both lines)"
    };
    format!("last_line is {}, expected {}{hint}", show(got), show(want))
}

/// A line's sequence number and checksum, or that it is not an audit event.
pub(super) fn describe(line: &str) -> String {
    match serde_json::from_str::<ChainFields<'_>>(line) {
        Ok(f) => format!(
            "sequence {} (checksum {})",
            f.sequence_number,
            f.checksum.as_deref().unwrap_or("none")
        ),
        Err(_) => format!("a line that is not an audit event ({} bytes)", line.len()),
    }
}

/// Closes and reopens the instance with the same config.
pub(super) async fn reopen(
    plugin: &LoadedPlugin,
    backend: PluginBackend,
    config: &str,
) -> Result<PluginBackend, String> {
    backend
        .close()
        .await
        .map_err(|e| format!("close failed: {e}", e = audit_format::error::chain(&e)))?;
    plugin
        .open(&plugin.info().name, config)
        .map_err(|e| format!("reopen failed: {e}", e = audit_format::error::chain(&e)))
}
