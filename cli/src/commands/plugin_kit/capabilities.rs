//! The kit's `capabilities` check: every capability the plugin lists, called once.

use audit_host::plugin::{LoadedPlugin, PluginBackend};

use super::results::Results;

/// Lists the plugin's capabilities and calls each once (`refuse` and `read` have their own
/// checks).
pub(super) async fn check_capabilities(
    plugin: &LoadedPlugin,
    backend: &PluginBackend,
    config: &str,
    r: &mut Results,
) {
    let capabilities = plugin.info().capabilities.clone();
    if capabilities.is_empty() {
        r.skip(
            "capabilities",
            "the plugin exports none (health is reported as unknown; config checks open and close it)",
        );
    } else {
        let mut failures = Vec::new();
        let mut notes = Vec::new();
        for capability in &capabilities {
            match capability.split('/').next() {
                Some("health") => match backend.health().await {
                    Ok(Some(status)) => notes.push(format!("{capability} says `{status}`")),
                    Ok(None) => failures.push(format!("{capability} returned no status")),
                    Err(e) => failures.push(format!(
                        "{capability} failed: {e}",
                        e = audit_format::error::chain(&e)
                    )),
                },
                Some("refuse") => notes.push(format!("{capability} (see `refusal`)")),
                Some("validate") => match plugin.validate(config) {
                    Some(Ok(())) => notes.push(format!("{capability} accepts the config")),
                    Some(Err(e)) => failures.push(format!(
                        "{capability} refuses the config that open accepted: {e}",
                        e = audit_format::error::chain(&e)
                    )),
                    None => failures.push(format!("{capability} is listed but not found")),
                },
                Some("read") => notes.push(format!("{capability} (checked by `read`)")),
                Some("stats") => match backend.statistics().await {
                    Ok(counters) => match bad_counter_names(&counters) {
                        None => {
                            notes.push(format!("{capability} reports {}", counter_list(&counters)))
                        }
                        Some(why) => failures.push(format!("{capability}: {why}")),
                    },
                    Err(e) => failures.push(format!(
                        "{capability} failed: {e}",
                        e = audit_format::error::chain(&e)
                    )),
                },
                _ => notes.push(format!(
                    "{capability} (not called: the kit does not know it)"
                )),
            }
        }
        if failures.is_empty() {
            r.note("capabilities", notes.join("; "));
        } else {
            r.fail("capabilities", failures.join("; "));
        }
    }
}

/// `name=value, ...`, or `no counters`.
fn counter_list(counters: &[(String, u64)]) -> String {
    if counters.is_empty() {
        return "no counters".to_owned();
    }
    let list: Vec<String> = counters.iter().map(|(n, v)| format!("{n}={v}")).collect();
    list.join(", ")
}

/// What is wrong with the counters' names (the `stats` capability asks for unique
/// `snake_case` names), if anything.
fn bad_counter_names(counters: &[(String, u64)]) -> Option<String> {
    for (i, (name, _)) in counters.iter().enumerate() {
        let snake = !name.is_empty()
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !snake {
            return Some(format!("counter name `{name}` is not snake_case"));
        }
        if counters[..i].iter().any(|(n, _)| n == name) {
            return Some(format!("counter name `{name}` appears twice"));
        }
    }
    None
}
