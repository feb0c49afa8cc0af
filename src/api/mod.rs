//! HTTP handlers, a module per resource.

pub mod envelope;
pub mod extract;
pub mod ops;
pub mod squads;
#[cfg(feature = "test-hooks")]
pub mod test_hooks;
pub mod tokens;
