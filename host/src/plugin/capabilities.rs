//! The capabilities a plugin exports beside its root module (docs/plugin-abi.md): looked up
//! by symbol, layout-checked one by one.

use std::path::Path;

use abi_stable::StableAbi;
use abi_stable::library::RawLibrary;
use abi_stable::prefix_type::PrefixRefTrait;
use audit_plugin_api::ext::{
    ExtensionExport, ExtensionFn, HEALTH_V1, HealthV1_Ref, READ_V1, REFUSE_V1, ReadV1_Ref,
    RefuseV1_Ref, SEAL_V1, STATS_V1, SealV1_Ref, StatsV1_Ref, VALIDATE_V1, ValidateV1_Ref,
};

use super::library_error;
use audit_format::error::{Error, Result};

/// The capability modules a plugin exports that this host knows (docs/plugin-abi.md).
#[derive(Clone, Copy, Default)]
pub(super) struct Capabilities {
    pub(super) health: Option<HealthV1_Ref>,
    pub(super) validate: Option<ValidateV1_Ref>,
    pub(super) stats: Option<StatsV1_Ref>,
    pub(super) read: Option<ReadV1_Ref>,
    pub(super) refuse: Option<RefuseV1_Ref>,
    pub(super) seal: Option<SealV1_Ref>,
}

impl Capabilities {
    /// As `audit plugin inspect` lists them.
    pub(super) fn names(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.health.is_some() {
            out.push("health/1".to_owned());
        }
        if self.validate.is_some() {
            out.push("validate/1".to_owned());
        }
        if self.read.is_some() {
            out.push("read/1".to_owned());
        }
        if self.stats.is_some() {
            out.push("stats/1".to_owned());
        }
        if self.refuse.is_some() {
            out.push("refuse/1".to_owned());
        }
        if self.seal.is_some() {
            out.push("seal/1".to_owned());
        }
        out
    }
}

/// Looks up, in the library at `path` whose root module has loaded (so its `abi_stable` ABI
/// is checked), the capabilities this host knows. An absent one is `None`; one whose layout
/// does not match this host's refuses the library.
#[expect(
    unsafe_code,
    reason = "a capability symbol is looked up by name and its module checked by abi_stable"
)]
pub(super) fn find_capabilities(path: &Path) -> Result<Capabilities> {
    let lib = RawLibrary::load_at(path).map_err(|e| library_error(path, e))?;
    // SAFETY: `export_health!` builds this export from a `HealthV1_Ref`.
    let health = unsafe { capability::<HealthV1_Ref>(&lib, path, "health", HEALTH_V1) }?;
    // SAFETY: `export_validate!` builds this export from a `ValidateV1_Ref`.
    let validate = unsafe { capability::<ValidateV1_Ref>(&lib, path, "validate", VALIDATE_V1) }?;
    // SAFETY: `export_stats!` builds this export from a `StatsV1_Ref`.
    let stats = unsafe { capability::<StatsV1_Ref>(&lib, path, "stats", STATS_V1) }?;
    // SAFETY: `export_read!` builds this export from a `ReadV1_Ref`.
    let read = unsafe { capability::<ReadV1_Ref>(&lib, path, "read", READ_V1) }?;
    // SAFETY: `export_refuse!` builds this export from a `RefuseV1_Ref`.
    let refuse = unsafe { capability::<RefuseV1_Ref>(&lib, path, "refuse", REFUSE_V1) }?;
    // SAFETY: `export_seal!` builds this export from a `SealV1_Ref`.
    let seal = unsafe { capability::<SealV1_Ref>(&lib, path, "seal", SEAL_V1) }?;
    // Libraries are never unloaded: the modules point into this one.
    std::mem::forget(lib);
    Ok(Capabilities {
        health,
        validate,
        stats,
        read,
        refuse,
        seal,
    })
}

/// The module of capability `name` (symbol `symbol`) of `lib`, loaded from `path`: `None`
/// when the library does not export it; refused when its layout is not `R`'s.
///
/// # Safety
/// `lib`'s root module has loaded (its `abi_stable` ABI is checked), and `symbol`, when
/// exported, is an [`ExtensionFn`] whose export was built from an `R`.
#[expect(
    unsafe_code,
    reason = "a capability symbol is looked up by name and its module checked by abi_stable"
)]
unsafe fn capability<R>(
    lib: &RawLibrary,
    path: &Path,
    name: &str,
    symbol: &str,
) -> Result<Option<R>>
where
    R: PrefixRefTrait + StableAbi,
{
    // SAFETY: the interface reserves `audit_backend_ext_*` for `ExtensionFn`s.
    let Ok(f) = (unsafe { lib.get::<ExtensionFn>(symbol.as_bytes()) }) else {
        return Ok(None);
    };
    let export: ExtensionExport = f();
    // SAFETY: guaranteed by the caller; `into_module` checks the layout against ours.
    unsafe { export.into_module::<R>() }
        .map(Some)
        .map_err(|e| Error::Plugin {
            library: path.to_path_buf(),
            message: format!(
                "its `{name}` capability ({symbol}) does not match this host's (an altered copy of the interface); rebuild the plugin; run with --verbose for abi_stable's layout report"
            ),
            details: Some(e.to_string()),
        })
}
