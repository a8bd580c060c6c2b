//! `AuditTrailBuilder`: settings and backends, from code or from a [`TrailConfig`]; `build`
//! validates them, opens the file backends and starts the trail.
//!
//! `settings.rs` holds the builder and its setters, `open.rs` what `build` does (checking
//! the settings, opening the file backends, each lane's settings), `from_config.rs` the
//! builder a [`TrailConfig`] makes (plugins loaded, checked and opened).

mod from_config;
mod open;
mod settings;

use std::path::{Path, PathBuf};

use crate::backend::StorageBackend;
use crate::config::TrailConfig;
use audit_format::error::Result;
use audit_format::policy::CompliancePolicy;

use super::AuditTrail;
pub use settings::AuditTrailBuilder;

impl AuditTrail {
    /// The Python constructor's counterpart: `AuditTrail(policy, storage_path)`, plus an
    /// optional in-process backend. `None` everywhere gives the default policy and a file
    /// backend in `audit_logs/`.
    ///
    /// # Errors
    /// As [`AuditTrailBuilder::build`].
    pub fn new(
        policy: Option<CompliancePolicy>,
        storage_path: Option<PathBuf>,
        backend: Option<Box<dyn StorageBackend>>,
    ) -> Result<Self> {
        let mut b = Self::builder();
        if let Some(p) = policy {
            b = b.policy(p);
        }
        if let Some(s) = storage_path {
            b = b.storage_path(s);
        }
        if let Some(be) = backend {
            b = b.backend(be);
        }
        b.build()
    }

    /// A builder with every default.
    pub fn builder() -> AuditTrailBuilder {
        AuditTrailBuilder::default()
    }

    /// Builds a trail from a TOML configuration file (see `docs/configuration.md`).
    ///
    /// # Errors
    /// [`Error::Config`] naming the file, line and key of a bad setting, and everything
    /// [`AuditTrailBuilder::build`] returns.
    ///
    /// [`Error::Config`]: crate::Error::Config
    pub fn from_config_file(path: impl AsRef<Path>) -> Result<Self> {
        AuditTrailBuilder::from_config(&TrailConfig::load(path.as_ref())?)?.build()
    }
}
