//! What the fuzz targets share: the invariant checks of emmer's protocol
//! core. They live in `emmer/src/proto/checks/`, where they are a
//! `cfg(test)` module of emmer that the property tests use; here they are
//! compiled again against emmer's public API, which `crate::proto` and
//! `crate::ErrorCode` name in both places.

pub use emmer::{ErrorCode, proto};

#[path = "../../emmer/src/proto/checks/mod.rs"]
pub mod checks;
