//! OpenAI's request and reply bodies for chat completions and embeddings, as the OpenAPI
//! document describes them. The gateway relays these bodies (fields it does not know included)
//! rather than rebuilding them, so these types document the wire; the handlers check the fields
//! marked required and the constraints stated here, and say which is wrong when one is.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A completion's token counts, as the provider reported them.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug, Default)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
}

impl Usage {
    /// The usage in an upstream's answer, if it sent one.
    pub fn of(answer: &Value) -> Option<Usage> {
        serde_json::from_value(answer["usage"].clone()).ok()
    }
}

/// `POST /v1/chat/completions`: OpenAI's request. Other OpenAI fields (`tools`, `temperature`,
/// `response_format`, ...) are passed to the provider as they are.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ChatRequest {
    /// One of the account's models or gateway agents (`GET /v1/models`).
    model: String,
    messages: Vec<ChatMessage>,
    /// SSE chunks (`text/event-stream`) ending with `data: [DONE]`.
    stream: Option<bool>,
    /// `{"include_usage": true}`: a last chunk with the usage.
    #[schema(value_type = Option<Object>)]
    stream_options: Option<Value>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    temperature: Option<f64>,
    #[schema(value_type = Option<Vec<Object>>)]
    tools: Option<Vec<Value>>,
}

/// A message of the conversation.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ChatMessage {
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    role: String,
    /// Text, or an array of content parts.
    content: Option<Value>,
    name: Option<String>,
    tool_call_id: Option<String>,
    #[schema(value_type = Option<Vec<Object>>)]
    tool_calls: Option<Vec<Value>>,
}

/// OpenAI's chat completion, as the provider answered it; an agent's answer adds `sources`,
/// the knowledge excerpts it was given.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ChatCompletion {
    id: String,
    /// `chat.completion`.
    object: String,
    created: i64,
    model: String,
    choices: Vec<ChatChoice>,
    usage: Option<Usage>,
    #[schema(value_type = Option<Vec<Object>>)]
    sources: Option<Vec<Value>>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ChatChoice {
    index: u32,
    #[schema(value_type = Object)]
    message: Value,
    finish_reason: Option<String>,
}

/// `POST /v1/embeddings`: OpenAI's request.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct EmbeddingRequest {
    /// One of the account's embedding models.
    model: String,
    input: EmbeddingInput,
    /// `float` (default) or `base64` (little-endian f32).
    encoding_format: Option<String>,
    /// Fewer dimensions than the model's, where the model allows it.
    #[schema(minimum = 1)]
    dimensions: Option<u64>,
}

/// What to embed: a non-empty string, or an array of 1 to 2,048 inputs (strings or tokens).
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum EmbeddingInput {
    Text(String),
    Batch(Vec<Value>),
}

/// OpenAI's embedding list.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct EmbeddingList {
    /// `list`.
    object: String,
    data: Vec<Embedding>,
    model: String,
    usage: Option<Usage>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Embedding {
    /// `embedding`.
    object: String,
    index: u32,
    /// Floats, or a base64 string when `encoding_format` was `base64`.
    embedding: Value,
}
