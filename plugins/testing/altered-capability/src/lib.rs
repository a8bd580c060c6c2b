//! Test fixture, not shipped: a plugin with a correct root module whose `health` capability
//! symbol (`audit_backend_ext_health_v1`) exports a module of another layout, as an altered
//! copy of the interface would. The host must refuse the library, naming the capability.
#![allow(
    non_camel_case_types,
    reason = "abi_stable names the prefix reference type"
)]

use abi_stable::StableAbi;
use abi_stable::prefix_type::PrefixTypeTrait;
use audit_plugin_api::ext::ExtensionExport;
use audit_plugin_api::{Backend, PluginError, Record, export_backend};

/// The changed module: `health` takes a number where the real one takes the instance.
#[repr(C)]
#[derive(Debug, StableAbi)]
#[sabi(kind(Prefix(prefix_ref = HealthV1_Ref)))]
#[sabi(missing_field(panic))]
pub struct HealthV1 {
    /// Not the real signature.
    #[sabi(last_prefix_field)]
    pub health: extern "C" fn(u64) -> u64,
}

extern "C" fn health(x: u64) -> u64 {
    x
}

/// The capability symbol, with the wrong module behind it.
#[unsafe(no_mangle)]
pub extern "C" fn audit_backend_ext_health_v1() -> ExtensionExport {
    ExtensionExport::new(HealthV1 { health }.leak_into_prefix())
}

/// Stores nothing.
#[derive(Debug)]
pub struct Null;

impl Backend for Null {
    fn write_batch(&mut self, _: &[Record<'_>]) -> Result<(), PluginError> {
        Ok(())
    }
    fn flush(&mut self) -> Result<(), PluginError> {
        Ok(())
    }
    fn close(&mut self) -> Result<(), PluginError> {
        Ok(())
    }
}

export_backend! {
    name: "altered-capability",
    description: "fixture",
    config_help: "",
    open: |_: &str| Ok(Null),
}
