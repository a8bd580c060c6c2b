//! What `audit config check` found, per backend, and how it is printed: as text (the
//! settings and backends on stdout, each problem on stderr) or as one JSON object (`--json`;
//! its keys are documented in docs/configuration.md).

use std::path::{Path, PathBuf};

use audit_host::config::{BackendConfig, BackendEntry, TrailConfig};
use audit_host::plugin::{PluginAbi, PluginInfo};
use audit_host::preflight::Problem;
use serde_json::{Value, json};

use super::super::{full_message, report};

/// The outcome of a plugin's `validate` call.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Validate {
    Passed,
    Failed,
    /// The plugin does not export the `validate` capability.
    NotExported,
}

/// The outcome of opening (and closing) a plugin instance.
pub(super) enum Open {
    /// Opened and closed; its health (`None`: unknown, no `health` capability).
    Opened(Option<String>),
    /// `--no-connect`.
    NotOpened,
    Failed,
}

/// One `[[backends]]` entry and what the checks found about it.
pub(super) struct Backend {
    pub(super) entry: BackendEntry,
    kind: &'static str,
    /// A file backend's directory, or a plugin's library.
    path: PathBuf,
    pub(super) plugin: Option<PluginInfo>,
    pub(super) validate: Option<Validate>,
    pub(super) open: Option<Open>,
}

impl Backend {
    pub(super) fn new(entry: BackendEntry, config: &BackendConfig) -> Self {
        let (kind, path) = match config {
            BackendConfig::File { path, .. } => ("file", path.clone()),
            BackendConfig::Plugin { library, .. } => ("plugin", library.clone()),
            _ => ("other", PathBuf::new()),
        };
        Self {
            entry,
            kind,
            path,
            plugin: None,
            validate: None,
            open: None,
        }
    }
}

/// Everything the checks found.
#[derive(Default)]
pub(super) struct Found {
    pub(super) backends: Vec<Backend>,
    /// Plugin libraries that could not be loaded: the backend's position and the error.
    pub(super) unloaded: Vec<(usize, audit_host::Error)>,
    pub(super) problems: Vec<Problem>,
}

impl Found {
    pub(super) fn failed(&self) -> bool {
        !self.unloaded.is_empty() || !self.problems.is_empty()
    }

    /// Every problem on stderr; when there is none, `config ok: FILE`, the settings, the
    /// plugins and what opening them gave, on stdout.
    pub(super) fn print_text(self, file: &Path, cfg: &TrailConfig, verbose: bool) {
        let failed = self.failed();
        for (i, e) in self.unloaded {
            let e = cfg.entry(i, &cfg.backends[i].configured_name()).annotate(e);
            report("audit config check", &e, verbose);
        }
        for p in &self.problems {
            eprintln!("audit config check: {p}");
        }
        if failed {
            return;
        }
        println!("config ok: {}", file.display());
        print!("{}", cfg.describe());
        for (i, info) in self.backends.iter().enumerate() {
            if let Some(info) = &info.plugin {
                println!(
                    "backend {}: plugin {} {} (plugin_api {}): {}",
                    i + 1,
                    info.name,
                    info.version,
                    info.plugin_api,
                    info.description
                );
            }
        }
        for (i, b) in self.backends.iter().enumerate() {
            let validated = if b.validate == Some(Validate::Passed) {
                "validated, "
            } else {
                ""
            };
            match &b.open {
                Some(Open::NotOpened) => {
                    println!("backend {}: {validated}not opened (--no-connect)", i + 1);
                }
                Some(Open::Opened(health)) => println!(
                    "backend {}: {validated}opened and closed; health: {}",
                    i + 1,
                    health.as_deref().unwrap_or("unknown")
                ),
                Some(Open::Failed) | None => {}
            }
        }
    }

    /// The JSON object `--json` prints.
    pub(super) fn to_json(&self, file: &Path, cfg: &TrailConfig, code: u8) -> Value {
        // Each problem with the backend it is about (1-based), in the order text prints them.
        let mut problems: Vec<(Option<usize>, Value)> = Vec::new();
        for (i, e) in &self.unloaded {
            let b = &self.backends[*i];
            let problem = json!({
                "place": b.entry.to_string(),
                "backend": b.entry.index,
                "key": "library",
                "message": full_message(e),
            });
            problems.push((Some(b.entry.index), problem));
        }
        for p in &self.problems {
            let problem = json!({
                "place": p.entry.to_string(),
                "backend": p.entry.index,
                "key": p.key,
                "message": p.message,
            });
            problems.push((Some(p.entry.index), problem));
        }
        let backends: Vec<Value> = self
            .backends
            .iter()
            .map(|b| {
                let own: Vec<Value> = problems
                    .iter()
                    .filter(|(i, _)| *i == Some(b.entry.index))
                    .map(|(_, p)| json!({ "key": p["key"], "message": p["message"] }))
                    .collect();
                backend_json(b, own)
            })
            .collect();
        json!({
            "ok": code == 0,
            "exit_code": code,
            "config": file.display().to_string(),
            "settings": cfg.describe().lines().collect::<Vec<_>>(),
            "backends": backends,
            "problems": problems.into_iter().map(|(_, p)| p).collect::<Vec<_>>(),
        })
    }
}

fn backend_json(b: &Backend, problems: Vec<Value>) -> Value {
    let plugin = b.plugin.as_ref().map(|info| {
        json!({
            "name": info.name,
            "version": info.version,
            "plugin_api": info.plugin_api,
            "abi": if info.abi == PluginAbi::C { "c" } else { "rust" },
            "description": info.description,
            "capabilities": info.capabilities,
        })
    });
    let validate = b.validate.map(|v| match v {
        Validate::Passed => "passed",
        Validate::Failed => "failed",
        Validate::NotExported => "not exported",
    });
    let (open, health) = match &b.open {
        Some(Open::Opened(h)) => (Some("opened"), Some(h.as_deref().unwrap_or("unknown"))),
        Some(Open::NotOpened) => (Some("not opened"), None),
        Some(Open::Failed) => (Some("failed"), None),
        None => (None, None),
    };
    json!({
        "entry": b.entry.to_string(),
        "index": b.entry.index,
        "name": b.entry.name,
        "type": b.kind,
        "path": b.path.display().to_string(),
        "file": b.entry.file.display().to_string(),
        "line": b.entry.line,
        "plugin": plugin,
        "validate": validate,
        "open": open,
        "health": health,
        "problems": problems,
    })
}

/// The JSON object for a file that could not be loaded (missing, or not a valid
/// configuration): its one problem, at `FILE:LINE` when the line is known.
pub(super) fn unloaded_json(file: &Path, e: &audit_host::Error, code: u8) -> Value {
    let problem = match e {
        audit_host::Error::Config(c) => {
            let place = match c.line {
                Some(l) => format!("{}:{l}", c.file.display()),
                None => c.file.display().to_string(),
            };
            json!({ "place": place, "backend": null, "key": c.key, "message": c.message })
        }
        other => json!({
            "place": file.display().to_string(),
            "backend": null,
            "key": null,
            "message": full_message(other),
        }),
    };
    json!({
        "ok": false,
        "exit_code": code,
        "config": file.display().to_string(),
        "settings": [],
        "backends": [],
        "problems": [problem],
    })
}
