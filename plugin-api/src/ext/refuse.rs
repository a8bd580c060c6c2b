//! The `refuse` capability, version 1: per-record refusal. A plugin that can tell that some
//! records of a batch can never be stored (too large for the target, a field the store
//! rejects) says so for those records, with a reason, and stores the rest; the host keeps
//! the refused ones in a dead-letter file instead of retrying the whole batch for ever.

use abi_stable::StableAbi;
use abi_stable::std_types::{RResult, RSlice, RString, RVec};

use crate::{BackendBox, PluginError, Record};

/// The symbol of the `refuse` capability, version 1.
pub const REFUSE_V1: &str = "audit_backend_ext_refuse_v1";

/// One record a backend will never store, and why.
///
/// ```
/// use audit_plugin_api::ext::Refusal;
/// let r = Refusal::new(7, "line longer than the SIEM's 64 KiB limit");
/// assert_eq!(r.sequence_number, 7);
/// assert_eq!(r.reason.as_str(), "line longer than the SIEM's 64 KiB limit");
/// ```
#[repr(C)]
#[derive(Debug, Clone, PartialEq, Eq, StableAbi)]
pub struct Refusal {
    /// The refused record's `sequence_number` (one of the batch's).
    pub sequence_number: u64,
    /// Why it can never be stored, for a person: name the limit or field involved. Never
    /// empty.
    pub reason: RString,
}

impl Refusal {
    /// A refusal of record `sequence_number` for `reason`.
    pub fn new(sequence_number: u64, reason: impl Into<String>) -> Self {
        Self {
            sequence_number,
            reason: RString::from(reason.into()),
        }
    }
}

/// The `refuse` capability, version 1. When a plugin exports it, the host calls its
/// `write_batch` instead of the vtable's. Export it with
/// [`export_refuse!`](crate::export_refuse).
#[repr(C)]
#[derive(Debug, StableAbi)]
#[sabi(kind(Prefix(prefix_ref = RefuseV1_Ref)))]
#[sabi(missing_field(panic))]
pub struct RefuseV1 {
    /// Stores `records` (in sequence order) except the ones it pushes onto `refused`.
    /// `Ok`: every record not listed is stored, and the listed ones never will be (the host
    /// puts them in its dead-letter file). `Err`: as the vtable's `write_batch` (nothing
    /// counts as stored; `refused` is ignored).
    #[sabi(last_prefix_field)]
    pub write_batch: extern "C" fn(
        instance: &mut BackendBox,
        records: RSlice<'_, Record<'_>>,
        refused: &mut RVec<Refusal>,
    ) -> RResult<(), PluginError>,
}
