//! The `read` capability: a plugin's store read back in sequence order, so that a host can
//! verify and query what the plugin stored (`audit verify --config FILE --backend NAME`).

use abi_stable::StableAbi;
use abi_stable::std_types::{RResult, RString, RVec};

use crate::{BackendBox, PluginError};

/// The symbol of the `read` capability, version 1.
pub const READ_V1: &str = "audit_backend_ext_read_v1";

/// The `read` capability, version 1: the stored lines, in sequence order, a page at a time.
/// Without it the store cannot be read back through the host. Export it with
/// [`export_read!`](crate::export_read).
#[repr(C)]
#[derive(Debug, StableAbi)]
#[sabi(kind(Prefix(prefix_ref = ReadV1_Ref)))]
#[sabi(missing_field(panic))]
pub struct ReadV1 {
    /// The stored lines whose sequence number is `from_sequence` or higher, in sequence
    /// order, at most `limit` of them, each without its newline; empty when nothing more is
    /// stored. A host reads the whole store by asking again from the last line's sequence
    /// number plus one.
    #[sabi(last_prefix_field)]
    pub read_from: extern "C" fn(
        instance: &mut BackendBox,
        from_sequence: u64,
        limit: u32,
    ) -> RResult<RVec<RString>, PluginError>,
}
