//! The OpenAI-compatible gateway (`/v1`, seed 000): providers and models of the account, and
//! the calls forwarded to them (chat completions, embeddings).

pub mod agents;
pub mod chat;
pub mod embeddings;
pub mod models;
pub mod providers;
pub mod routes;
pub mod servers;
pub mod tool_calls;
pub mod upstream;
pub mod utilities;
pub mod wire;
