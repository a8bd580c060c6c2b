//! Capabilities: optional extension modules a plugin exports beside its root module, each
//! under its own symbol and layout-checked on its own by the host (see the crate docs'
//! Versioning section). A host looks up only the capabilities it knows; a plugin that does not
//! export one gets that capability's documented default.
//!
//! Each capability version is frozen once released: it grows by a new version under a new
//! symbol (`audit_backend_ext_<name>_v<N>`), never by a new field, because `abi_stable`
//! refuses a module with fewer fields than the host expects.

use std::ffi::c_void;

use abi_stable::StableAbi;
use abi_stable::abi_stability::abi_checking::{AbiInstabilityErrors, check_layout_compatibility};
use abi_stable::prefix_type::{PrefixRef, PrefixRefTrait, WithMetadata_};
use abi_stable::std_types::{RResult, RStr, RString};
use abi_stable::type_layout::TypeLayout;

use crate::{BackendBox, PluginError};

mod read;
mod refuse;
mod seal;
mod stats;

pub use read::{READ_V1, ReadV1, ReadV1_Ref};
pub use refuse::{REFUSE_V1, Refusal, RefuseV1, RefuseV1_Ref};
pub use seal::{SEAL_V1, SealV1, SealV1_Ref};
pub use stats::{Counter, STATS_V1, StatsV1, StatsV1_Ref};

/// What every extension symbol returns: the module, and its type layout as the plugin was
/// built, which the host checks against its own before using the module. Frozen for all of
/// 1.x, like `abi_stable`'s own library header.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ExtensionExport {
    /// `<Module_Ref as StableAbi>::LAYOUT` in the plugin's build.
    pub layout: &'static TypeLayout,
    /// The module: a leaked prefix type, type-erased.
    pub module: *const c_void,
}

/// The type of every extension symbol.
pub type ExtensionFn = extern "C" fn() -> ExtensionExport;

impl ExtensionExport {
    /// Wraps a module (`Module { .. }.leak_into_prefix()`) for export.
    pub fn new<R>(module: R) -> Self
    where
        R: PrefixRefTrait + StableAbi,
    {
        Self {
            layout: R::LAYOUT,
            module: module.to_prefix_ref().to_raw_ptr().cast(),
        }
    }

    /// The module, once its layout is checked against `R`'s (the host's).
    ///
    /// # Errors
    /// `abi_stable`'s report when the plugin's module is not compatible with `R`.
    ///
    /// # Safety
    /// `self` must come from an extension symbol of a library whose root module the host has
    /// loaded (so that its `abi_stable` ABI is checked), and that symbol must have built it
    /// with [`ExtensionExport::new`] from an `R` of the plugin's build.
    pub unsafe fn into_module<R>(self) -> Result<R, AbiInstabilityErrors>
    where
        R: PrefixRefTrait + StableAbi,
    {
        check_layout_compatibility(R::LAYOUT, self.layout)?;
        let ptr = self
            .module
            .cast::<WithMetadata_<R::PrefixFields, R::PrefixFields>>();
        // SAFETY: the caller guarantees `module` is a leaked prefix type of this layout,
        // and `abi_stable` has just checked that layout against `R`'s.
        Ok(R::from_prefix_ref(unsafe { PrefixRef::from_raw(ptr) }))
    }
}

/// The symbol of the `health` capability, version 1.
pub const HEALTH_V1: &str = "audit_backend_ext_health_v1";

/// The `health` capability, version 1: a short, one-line status of an instance.
/// Without it a backend's health is unknown. Export it with
/// [`export_health!`](crate::export_health).
#[repr(C)]
#[derive(Debug, StableAbi)]
#[sabi(kind(Prefix(prefix_ref = HealthV1_Ref)))]
#[sabi(missing_field(panic))]
pub struct HealthV1 {
    /// The instance's status, one line.
    #[sabi(last_prefix_field)]
    pub health: extern "C" fn(instance: &mut BackendBox) -> RResult<RString, PluginError>,
}

/// The symbol of the `validate` capability, version 1.
pub const VALIDATE_V1: &str = "audit_backend_ext_validate_v1";

/// The `validate` capability, version 1: checks a backend's configuration (its `config`
/// table, as JSON) without opening an instance, connecting anywhere or creating anything.
/// Without it a host checks a configuration by opening and closing an instance. Export it with
/// [`export_validate!`](crate::export_validate).
#[repr(C)]
#[derive(Debug, StableAbi)]
#[sabi(kind(Prefix(prefix_ref = ValidateV1_Ref)))]
#[sabi(missing_field(panic))]
pub struct ValidateV1 {
    /// `Ok` when `open` would accept the configuration's keys and values; otherwise an error
    /// (kind `Config`) naming the key.
    #[sabi(last_prefix_field)]
    pub validate: extern "C" fn(config_json: RStr<'_>) -> RResult<(), PluginError>,
}
