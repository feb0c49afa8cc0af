//! The OpenAI-compatible gateway (`/v1`, seed 000): providers and models of the account, and
//! the calls forwarded to them (chat completions, embeddings).

pub mod agents;
pub mod chat;
pub mod embeddings;
pub mod models;
pub mod providers;
pub mod servers;
pub mod utilities;
pub mod wire;

use serde_json::Value;

use crate::error::ApiError;

/// The body's `model`, as a string: every gateway call needs one.
pub fn requested_model(body: &Value) -> Result<String, ApiError> {
    if !body.is_object() {
        return Err(ApiError::Validation(
            "the request body must be a JSON object".into(),
        ));
    }
    body["model"]
        .as_str()
        .filter(|m| !m.trim().is_empty())
        .map(|m| m.trim().to_owned())
        .ok_or_else(|| ApiError::Validation("model is required".into()))
}
