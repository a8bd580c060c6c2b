//! `build`: the settings checked, the file backends opened, each other backend given its
//! lane's settings, then the trail started.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::settings::{AuditTrailBuilder, BackendSpec, setting_error};
use crate::delivery::{BackendOptions, LaneConfig, spool_dir_name};
use crate::file::{DEFAULT_MAX_FILE_BYTES, FileStorageBackend};
use crate::sealing::Sealing;
use crate::trail::AuditTrail;
use crate::trail::start::{OpenedBackend, Setup};
use audit_format::error::Result;

impl AuditTrailBuilder {
    /// Opens the backends, resumes the chain from what is stored, and starts the worker.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for a policy setting the trail cannot honour,
    /// [`Error::Config`] for a zero queue capacity, [`Error::DirectoryLocked`] /
    /// [`Error::Io`] from the file backend, [`Error::Integrity`] when the stored chain was
    /// written with other integrity settings.
    ///
    /// [`Error::Unsupported`]: crate::Error::Unsupported
    /// [`Error::Config`]: crate::Error::Config
    /// [`Error::DirectoryLocked`]: crate::Error::DirectoryLocked
    /// [`Error::Io`]: crate::Error::Io
    /// [`Error::Integrity`]: crate::Error::Integrity
    pub fn build(mut self) -> Result<AuditTrail> {
        self.validate()?;
        let specs = std::mem::take(&mut self.backends);
        let backends = self.open_backends(specs)?;
        let file_dirs = file_dirs(&backends);
        AuditTrail::start(
            Setup {
                policy: self.policy,
                durability: self.durability,
                flush_interval: self.flush_interval,
                shutdown_timeout: self.shutdown_timeout,
                queue_capacity: self.queue_capacity,
                on_full: self.on_full,
                integrity: self.integrity,
                clock: self.clock,
                alert_hook: self.alert_hook,
                file_dirs,
            },
            backends,
        )
    }

    /// Refuses settings the trail cannot run with.
    fn validate(&self) -> Result<()> {
        self.policy.validate()?;
        if self.flush_interval.is_zero() {
            return Err(setting_error(
                "trail.flush_interval_ms",
                "must be at least 1 ms",
            ));
        }
        if self.queue_capacity == 0 {
            return Err(setting_error("trail.queue_capacity", "must be at least 1"));
        }
        Ok(())
    }

    /// Opens the file backends and gives each other backend its lane settings, in
    /// configuration order; with none configured, one file backend at `storage_path`.
    fn open_backends(&self, mut specs: Vec<BackendSpec>) -> Result<Vec<OpenedBackend>> {
        if specs.is_empty() {
            specs.push(BackendSpec::File(
                None,
                self.storage_path.clone(),
                DEFAULT_MAX_FILE_BYTES,
            ));
        }
        let sealing = self.signing_key.as_ref().map(|key| Sealing {
            key: Arc::clone(key),
            interval: self.seal_interval,
            witnesses: specs
                .iter()
                .filter_map(|s| match s {
                    BackendSpec::Ready(b, _) => b.seal_witness(),
                    BackendSpec::File(..) => None,
                })
                .collect(),
        });
        let mut backends: Vec<OpenedBackend> = Vec::with_capacity(specs.len());
        let mut spool_dirs: Vec<PathBuf> = Vec::new();
        for spec in specs {
            match spec {
                BackendSpec::Ready(b, opts) => {
                    let cfg = self.lane_config(b.name(), &opts, &mut spool_dirs)?;
                    backends.push((b, Some(cfg)));
                }
                BackendSpec::File(name, path, max) => {
                    let fb = FileStorageBackend::builder(&path)
                        .name(name)
                        .max_file_bytes(max)
                        .retention_days(Some(self.policy.retention_days))
                        .retention_of_imported(self.policy.retention_applies_to_imported)
                        .integrity(self.integrity.clone())
                        .allow_insecure_permissions(self.allow_insecure_permissions)
                        .file_mode(self.file_mode)
                        .sealing(sealing.clone())
                        .open()?;
                    backends.push((Box::new(fb), None));
                }
            }
        }
        Ok(backends)
    }

    /// The settings of the lane that delivers to backend `name`. `spool_dirs`: the spools
    /// taken so far (two backends must not share one).
    fn lane_config(
        &self,
        name: &str,
        opts: &BackendOptions,
        spool_dirs: &mut Vec<PathBuf>,
    ) -> Result<LaneConfig> {
        // Also without a spool: the dead-letter file lives there.
        let dir = opts
            .spool_dir
            .clone()
            .unwrap_or_else(|| self.storage_path.join(".spool").join(spool_dir_name(name)));
        let spool = if opts.spool_max_bytes == 0 {
            None
        } else {
            if spool_dirs.contains(&dir) {
                return Err(setting_error(
                    "backends.name",
                    format!(
                        "two backends would share the spool {}: give each backend a distinct `name` (or `spool_dir`)",
                        dir.display()
                    ),
                ));
            }
            spool_dirs.push(dir.clone());
            Some((dir.clone(), opts.spool_max_bytes))
        };
        Ok(LaneConfig {
            required: opts.required,
            spool,
            allow_insecure_permissions: self.allow_insecure_permissions,
            retry_initial: opts.retry_initial.max(Duration::from_millis(1)),
            retry_max: opts.retry_max.max(opts.retry_initial),
            // One trail batch can hold the whole queue: room for two.
            memory_limit: self.queue_capacity.saturating_mul(2),
            on_full: self.on_full,
            durability: self.durability,
            flush_interval: self.flush_interval,
            backfill: opts.backfill,
            on_refuse: opts.on_refuse,
            dead_letter_dir: dir,
        })
    }
}

/// The directories of the file backends (those that keep one), without repeats.
fn file_dirs(backends: &[OpenedBackend]) -> Vec<PathBuf> {
    let mut file_dirs: Vec<PathBuf> = Vec::new();
    for (b, _) in backends {
        if let Some(dir) = b.query_dir()
            && !file_dirs.iter().any(|d| d == dir)
        {
            file_dirs.push(dir.to_path_buf());
        }
    }
    file_dirs
}
