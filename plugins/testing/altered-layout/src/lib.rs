//! Test fixture, not shipped: a plugin built against a deliberately changed copy of
//! `audit-plugin-api` 1.0.0. The root module has the same name and version, but `open`
//! returns a record-less, differently shaped error, so the host's layout check must refuse
//! it with a short message (and the full report only behind `--verbose`).
#![allow(
    non_camel_case_types,
    reason = "abi_stable names the prefix reference type"
)]

use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RResult, RStr, RString};
use abi_stable::{
    StableAbi, declare_root_module_statics, export_root_module, prefix_type::PrefixTypeTrait,
    sabi_extern_fn,
};

/// The changed error: the real one is `{ kind: ErrorKind (u8), message: RString }`.
#[repr(C)]
#[derive(Debug, StableAbi)]
pub struct PluginError {
    /// A numeric code where the real interface has a kind.
    pub code: u64,
    /// The message.
    pub message: RString,
}

/// The changed root module (same field names, different `open` signature).
#[repr(C)]
#[derive(Debug, StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModule_Ref)))]
#[sabi(missing_field(panic))]
pub struct PluginModule {
    /// Name.
    pub name: RStr<'static>,
    /// Version.
    pub version: RStr<'static>,
    /// Description.
    pub description: RStr<'static>,
    /// Help.
    pub config_help: RStr<'static>,
    /// Opens nothing.
    #[sabi(last_prefix_field)]
    pub open: extern "C" fn(config_json: RStr<'_>) -> RResult<u64, PluginError>,
}

impl RootModule for PluginModule_Ref {
    declare_root_module_statics! {PluginModule_Ref}
    const BASE_NAME: &'static str = "audit_backend";
    const NAME: &'static str = "audit_backend";
    // Claims the real interface's version, so only the layout check can tell.
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("1.0.0");
}

#[sabi_extern_fn]
fn open(_config_json: RStr<'_>) -> RResult<u64, PluginError> {
    RResult::ROk(0)
}

/// The root module.
#[export_root_module]
pub fn root() -> PluginModule_Ref {
    PluginModule {
        name: RStr::from_str("altered"),
        version: RStr::from_str("1.0.0"),
        description: RStr::from_str("fixture"),
        config_help: RStr::from_str(""),
        open,
    }
    .leak_into_prefix()
}
