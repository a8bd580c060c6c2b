//! How messages name a configured backend: `backends[N] "NAME" (FILE:LINE)`.

use std::path::PathBuf;

use audit_format::error::Error;

/// Where a backend is configured, as every message about it names it:
/// `backends[N] "NAME" (FILE:LINE)`, `N` counting the `[[backends]]` entries from 1 (as
/// `audit config check` numbers them). The default file backend of a configuration without
/// `[[backends]]` has no line: `backends[1] "file" (FILE, trail.storage_path)`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackendEntry {
    /// 1-based position among the backends.
    pub index: usize,
    /// The backend's name.
    pub name: String,
    /// The configuration file.
    pub file: PathBuf,
    /// The line of the `[[backends]]` header.
    pub line: Option<usize>,
}

impl std::fmt::Display for BackendEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "backends[{}] {:?} ({}",
            self.index,
            self.name,
            self.file.display()
        )?;
        match self.line {
            Some(line) => write!(f, ":{line})"),
            None => write!(f, ", trail.storage_path)"),
        }
    }
}

impl BackendEntry {
    /// `e` naming this entry: a plugin error's message starts with it (`plugin LIBRARY:
    /// backends[2] "sqlite" (audit.toml:14): ...`); other errors are returned as they are.
    pub fn annotate(&self, e: Error) -> Error {
        match e {
            Error::Plugin {
                library,
                message,
                details,
            } => Error::Plugin {
                library,
                message: format!("{self}: {message}"),
                details,
            },
            other => other,
        }
    }
}
