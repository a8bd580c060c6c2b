//! The `seal` capability: a witness. The host hands the plugin every signed seal of its
//! audit directories (docs/file-format.md, "Seals"), so a copy lives outside the host and
//! deleting the whole directory, seals included, stays detectable.

use abi_stable::StableAbi;
use abi_stable::std_types::{RResult, RStr};

use crate::{BackendBox, PluginError};

/// The symbol of the `seal` capability, version 1.
pub const SEAL_V1: &str = "audit_backend_ext_seal_v1";

/// The `seal` capability, version 1: stores one seal line. Without it the plugin is not a
/// witness. Export it with [`export_seal!`](crate::export_seal).
#[repr(C)]
#[derive(Debug, StableAbi)]
#[sabi(kind(Prefix(prefix_ref = SealV1_Ref)))]
#[sabi(missing_field(panic))]
pub struct SealV1 {
    /// Stores `seal_line` (one signed seal, canonical JSON, no newline) durably, exactly as
    /// given, after the seals stored before it.
    #[sabi(last_prefix_field)]
    pub seal:
        extern "C" fn(instance: &mut BackendBox, seal_line: RStr<'_>) -> RResult<(), PluginError>,
}
