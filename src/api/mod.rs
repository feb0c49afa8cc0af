//! HTTP handlers, a module per resource.

pub mod envelope;
pub mod extract;
pub mod gateway;
pub mod knowledge;
pub mod mission_control;
pub mod openai;
pub mod ops;
pub mod squados;
#[cfg(feature = "test-hooks")]
pub mod test_hooks;
