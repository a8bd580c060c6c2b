//! The one-line-per-setting summary `audit config check` prints.

use std::fmt::Write as _;

use super::{BackendConfig, IntegrityConfig, TrailConfig};
use crate::settings::{Durability, OnFull};

impl TrailConfig {
    /// A human-readable summary of the resolved configuration (`audit config check`).
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "trail: storage_path={} durability={} flush_interval_ms={} queue_capacity={} on_full={} shutdown_timeout_ms={}",
            self.storage_path.display(),
            match self.durability {
                Durability::Batched => "batched",
                Durability::Sync => "sync",
            },
            self.flush_interval_ms,
            self.queue_capacity,
            match self.on_full {
                OnFull::Block => "block",
                OnFull::Fail => "fail",
            },
            self.shutdown_timeout_ms,
        );
        if self.file_mode != audit_format::store::DEFAULT_FILE_MODE {
            // Shown only when set: audit files are readable by more than their owner.
            s.insert_str(s.len() - 1, &format!(" file_mode={:04o}", self.file_mode));
        }
        if self.allow_insecure_permissions {
            // Shown only when set: the refusal of insecure directories is off.
            s.insert_str(s.len() - 1, " allow_insecure_permissions=true");
        }
        let _ = writeln!(
            s,
            "policy: level={} enabled={} retention_days={}",
            self.policy.level, self.policy.enabled, self.policy.retention_days
        );
        match &self.integrity {
            IntegrityConfig::Sha256 => s.push_str("integrity: sha256\n"),
            IntegrityConfig::HmacKeyFile(p) => {
                let _ = writeln!(s, "integrity: hmac-sha256 key_file={}", p.display());
            }
        }
        if let Some(k) = &self.signing_key_file {
            let _ = writeln!(
                s,
                "seals: signing_key_file={} seal_interval_ms={}",
                k.display(),
                self.seal_interval_ms
            );
        }
        for (i, b) in self.backends.iter().enumerate() {
            match b {
                BackendConfig::File {
                    name,
                    path,
                    max_file_bytes,
                    ..
                } => {
                    let _ = writeln!(
                        s,
                        "backend {}: type=file name={name} path={} max_file_bytes={max_file_bytes}",
                        i + 1,
                        path.display()
                    );
                }
                BackendConfig::Plugin {
                    name,
                    library,
                    sha256,
                    allow_insecure_permissions,
                    call_timeout_ms,
                    open_timeout_ms,
                    options,
                    ..
                } => {
                    let _ = writeln!(
                        s,
                        "backend {}: type=plugin name={} library={} sha256={} allow_insecure_permissions={allow_insecure_permissions} call_timeout_ms={call_timeout_ms} required={} spool_max_bytes={} spool_dir={} retry_initial_ms={} retry_max_ms={} open_timeout_ms={open_timeout_ms} backfill={} refuse={}",
                        i + 1,
                        name.as_deref().unwrap_or("(the plugin's name)"),
                        library.display(),
                        sha256.as_deref().unwrap_or("(not pinned)"),
                        options.required,
                        options.spool_max_bytes,
                        match (&options.spool_dir, options.spool_max_bytes) {
                            (_, 0) => "(none)".to_owned(),
                            (None, _) => "(STORAGE_PATH/.spool/NAME)".to_owned(),
                            (Some(d), _) => d.display().to_string(),
                        },
                        options.retry_initial.as_millis(),
                        options.retry_max.as_millis(),
                        options.backfill,
                        options.on_refuse.as_str(),
                    );
                }
            }
        }
        s
    }
}
