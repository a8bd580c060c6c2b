//! `audit-plugin-api`: the stable ABI between the `audit` host and storage backend plugins.
//!
//! This crate is a placeholder in the first release: the `abi_stable` interface (a
//! `#[sabi_trait]` storage backend, the FFI-safe event record and error, and the root module)
//! lands in the next release. See `docs/extension-guide.md` once it exists.

#![deny(missing_docs)]

/// The version of the plugin interface this crate describes.
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");
