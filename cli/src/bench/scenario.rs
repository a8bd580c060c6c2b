//! What one benchmark run measures: the events, the producers, the durability, the backend.

use std::path::PathBuf;

use audit_host::Durability;

/// Where the trail under test stores events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BenchBackend {
    /// The built-in file backend.
    File,
    /// A plugin library, opened with this JSON configuration.
    Plugin {
        /// The library file.
        library: PathBuf,
        /// The `config` handed to its `open`.
        config_json: String,
    },
}

/// One benchmark run.
#[derive(Debug, Clone)]
pub(crate) struct Scenario {
    /// A name for the report.
    pub(crate) name: String,
    /// How many events to log.
    pub(crate) events: usize,
    /// How many concurrent producers (tasks) log them.
    pub(crate) producers: usize,
    /// Durability mode of the trail (and of the baseline).
    pub(crate) durability: Durability,
    /// The backend.
    pub(crate) backend: BenchBackend,
    /// A scratch directory (created; its contents are replaced).
    pub(crate) dir: PathBuf,
    /// Pace producers to this many events per second in total (`None`: as fast as possible).
    pub(crate) rate: Option<f64>,
    /// Skip the baseline (for scenarios compared with another scenario instead).
    pub(crate) skip_baseline: bool,
    /// Split the events into this many rounds, each a trail run and a baseline run in
    /// alternating order; the ratio is then the median of the rounds' ratios (1: one run
    /// each, the plain ratio).
    pub(crate) rounds: usize,
    /// Sign seals of the file backend's directory with this key (`--signing-key`).
    pub(crate) signing_key: Option<PathBuf>,
}
