//! `[[backends]]` entries: each checked on its own, errors naming `backends[N].key` at the
//! key's own line (the entry's header line when the key is not written in the entry).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::locate::{line_of, line_of_entry_key, with_suggestion};
use super::{BackendConfig, Cx, backfill, interpolate};
use crate::delivery::OnRefuse;
use crate::file::DEFAULT_MAX_FILE_BYTES;
use audit_format::error::{Error, Result};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPluginBackend {
    #[allow(dead_code, reason = "the tag, already matched")]
    r#type: String,
    name: Option<String>,
    library: String,
    sha256: Option<String>,
    required: Option<bool>,
    allow_insecure_permissions: Option<bool>,
    call_timeout_ms: Option<u64>,
    open_timeout_ms: Option<u64>,
    spool_max_bytes: Option<u64>,
    spool_dir: Option<PathBuf>,
    retry_initial_ms: Option<u64>,
    retry_max_ms: Option<u64>,
    backfill: Option<toml::Value>,
    refuse: Option<String>,
    config: Option<toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFileBackend {
    #[allow(dead_code, reason = "the tag, already matched")]
    r#type: String,
    name: Option<String>,
    path: Option<PathBuf>,
    max_file_bytes: Option<u64>,
}

/// One `[[backends]]` entry being read: where it is, for errors.
struct Entry<'a> {
    cx: &'a Cx<'a>,
    /// 1-based, as `audit config check` and every message number entries.
    index: usize,
    /// The line of its header.
    line: Option<usize>,
}

impl Entry<'_> {
    /// An error about `key` of this entry, at the key's line.
    fn err(&self, key: &str, message: String) -> Error {
        let line = self
            .line
            .and_then(|l| line_of_entry_key(self.cx.text, l, key))
            .or(self.line);
        self.cx
            .err(line, &format!("backends[{}].{key}", self.index), message)
    }

    /// The entry's keys as a `T`, with serde's errors naming the key they are about.
    /// `minimal` is the least valid entry of this kind: a wrong value is found by trying
    /// each key alone on top of it (serde's message does not name the key).
    fn keys<T: serde::de::DeserializeOwned>(
        &self,
        table: toml::Table,
        kind: &str,
        minimal: &[(&str, &str)],
    ) -> Result<T> {
        let parse = |t: toml::Table| toml::Value::Table(t).try_into::<T>();
        let e = match parse(table.clone()) {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let message = with_suggestion(e.message().trim());
        let named = ["unknown field `", "missing field `"]
            .iter()
            .find_map(|p| message.strip_prefix(p))
            .and_then(|r| r.split('`').next());
        let key = named.map(str::to_owned).or_else(|| {
            table
                .iter()
                .map(|(k, _)| k)
                .find(|k| {
                    let mut probe: toml::Table = minimal
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), toml::Value::String((*v).to_owned())))
                        .collect();
                    probe.insert((*k).clone(), table[k.as_str()].clone());
                    parse(probe).is_err()
                })
                .cloned()
        });
        Err(self.err(
            key.as_deref().unwrap_or("type"),
            format!("{message} (in the [[backends]] entry with type = \"{kind}\")"),
        ))
    }
}

/// Every `[[backends]]` entry, in order. `storage_path` is a file backend's default
/// directory; `plugin_dir` is where bare library names are looked up.
pub(super) fn parse(
    raw: Vec<Spanned<toml::Table>>,
    cx: &Cx<'_>,
    storage_path: &Path,
    plugin_dir: Option<&Path>,
) -> Result<Vec<BackendConfig>> {
    let mut backends = Vec::new();
    // Plugin backends' explicit names, and where they appeared: a name names the
    // backend's statistics and its spool directory.
    let mut plugin_names: Vec<(String, Option<usize>)> = Vec::new();
    for (i, b) in raw.into_iter().enumerate() {
        let entry = Entry {
            cx,
            index: i + 1,
            line: Some(line_of(cx.text, b.span().start)),
        };
        let mut table = b.into_inner();
        interpolate::expand_table(&mut table, &cx.base).map_err(|(k, m)| entry.err(&k, m))?;
        let kind = match table.get("type") {
            Some(toml::Value::String(s)) => s.clone(),
            Some(_) => {
                return Err(entry.err("type", "must be a string: \"file\" or \"plugin\"".into()));
            }
            None => {
                return Err(entry.err(
                    "type",
                    "missing; every [[backends]] entry needs `type = \"file\"` or `type = \"plugin\"`".into(),
                ));
            }
        };
        let backend = match kind.as_str() {
            "file" => file_entry(&entry, table, storage_path)?,
            "plugin" => {
                let pb: RawPluginBackend =
                    entry.keys(table, "plugin", &[("type", "plugin"), ("library", "x")])?;
                if let Some(name) = &pb.name {
                    if let Some((_, first)) = plugin_names.iter().find(|(n, _)| n == name) {
                        return Err(entry.err(
                            "name",
                            format!(
                                "`{name}` is already the name of the backend at line {}; give each plugin backend its own name (it names its statistics and its spool directory)",
                                first.map_or_else(|| "?".to_owned(), |l| l.to_string())
                            ),
                        ));
                    }
                    plugin_names.push((name.clone(), entry.line));
                }
                plugin_entry(&entry, pb, plugin_dir)?
            }
            other => {
                return Err(entry.err(
                    "type",
                    format!("unknown backend type `{other}`; expected \"file\" or \"plugin\""),
                ));
            }
        };
        backends.push(backend);
    }
    Ok(backends)
}

fn file_entry(entry: &Entry<'_>, table: toml::Table, storage_path: &Path) -> Result<BackendConfig> {
    let fb: RawFileBackend = entry.keys(table, "file", &[("type", "file")])?;
    Ok(BackendConfig::File {
        name: fb.name.unwrap_or_else(|| "file".to_owned()),
        path: fb
            .path
            .as_deref()
            .map_or_else(|| storage_path.to_path_buf(), |p| entry.cx.resolve(p)),
        max_file_bytes: fb.max_file_bytes.unwrap_or(DEFAULT_MAX_FILE_BYTES),
        line: entry.line,
    })
}

fn plugin_entry(
    entry: &Entry<'_>,
    pb: RawPluginBackend,
    plugin_dir: Option<&Path>,
) -> Result<BackendConfig> {
    let options = plugin_options(entry, &pb)?;
    if let Some(pin) = &pb.sha256
        && (pin.len() != 64 || !pin.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(entry.err(
            "sha256",
            format!(
                "`{pin}` is not a SHA-256 (64 hex digits); compute it with `sha256sum LIBRARY`"
            ),
        ));
    }
    let library = if crate::plugin::is_bare_name(&pb.library) {
        let Some(dir) = plugin_dir else {
            return Err(entry.err(
                "library",
                format!(
                    "`{}` is a bare library name: set [trail] plugin_dir to the directory holding {}, or give a path",
                    pb.library,
                    crate::plugin::library_file_name(&pb.library)
                ),
            ));
        };
        entry
            .cx
            .resolve(dir)
            .join(crate::plugin::library_file_name(&pb.library))
    } else {
        entry.cx.resolve(Path::new(&pb.library))
    };
    let config_json = serde_json::to_string(&pb.config.unwrap_or_default())
        .map_err(|e| entry.err("config", format!("cannot be expressed as JSON: {e}")))?;
    let call_timeout_ms = pb
        .call_timeout_ms
        .unwrap_or(crate::plugin::DEFAULT_CALL_TIMEOUT.as_millis() as u64);
    Ok(BackendConfig::Plugin {
        name: pb.name,
        library,
        sha256: pb.sha256,
        allow_insecure_permissions: pb.allow_insecure_permissions.unwrap_or(false),
        config_json,
        call_timeout_ms,
        open_timeout_ms: pb.open_timeout_ms.unwrap_or(call_timeout_ms),
        options,
        line: entry.line,
    })
}

/// `required`, the spool, the retry delays, `backfill` and `refuse`.
fn plugin_options(entry: &Entry<'_>, pb: &RawPluginBackend) -> Result<crate::BackendOptions> {
    let defaults = crate::BackendOptions::default();
    let retry_initial_ms = pb
        .retry_initial_ms
        .unwrap_or(defaults.retry_initial.as_millis() as u64);
    let retry_max_ms = pb
        .retry_max_ms
        .unwrap_or(defaults.retry_max.as_millis() as u64);
    if retry_initial_ms == 0 {
        return Err(entry.err("retry_initial_ms", "must be at least 1".into()));
    }
    if retry_max_ms < retry_initial_ms {
        return Err(entry.err(
            "retry_max_ms",
            format!(
                "{retry_max_ms} is less than retry_initial_ms ({retry_initial_ms}); the delay doubles from retry_initial_ms up to retry_max_ms"
            ),
        ));
    }
    for (key, value) in [
        ("call_timeout_ms", pb.call_timeout_ms),
        ("open_timeout_ms", pb.open_timeout_ms),
    ] {
        if value == Some(0) {
            return Err(entry.err(key, "must be at least 1".into()));
        }
    }
    let mut options = defaults
        .required(pb.required.unwrap_or(true))
        .spool_max_bytes(pb.spool_max_bytes.unwrap_or(crate::DEFAULT_SPOOL_MAX_BYTES))
        .retry(
            Duration::from_millis(retry_initial_ms),
            Duration::from_millis(retry_max_ms),
        );
    if let Some(dir) = &pb.spool_dir {
        options = options.spool_dir(entry.cx.resolve(dir));
    }
    if let Some(value) = &pb.backfill {
        let choice = backfill::parse(value).map_err(|m| entry.err("backfill", m))?;
        options = options.backfill(choice);
    }
    let on_refuse =
        parse_refuse(pb.refuse.as_deref(), options.required).map_err(|m| entry.err("refuse", m))?;
    Ok(options.on_refuse(on_refuse))
}

/// The `refuse` key of a plugin entry: `"dead-letter"` (default) or `"fail"`, which needs
/// `required = true` (a backend that may degrade has nothing to fail closed).
fn parse_refuse(value: Option<&str>, required: bool) -> std::result::Result<OnRefuse, String> {
    match value {
        None | Some("dead-letter") => Ok(OnRefuse::DeadLetter),
        Some("fail") if required => Ok(OnRefuse::Fail),
        Some("fail") => Err(
            "\"fail\" fails the trail closed on a refused record, which needs required = true; with required = false use \"dead-letter\" (the default)".into(),
        ),
        Some(other) => Err(format!(
            "`{other}` is not a refusal mode; use \"dead-letter\" (refused records go to dead-letter.jsonl in the backend's spool directory) or \"fail\" (with required = true: a refusal fails the trail closed)"
        )),
    }
}
