//! `POST /v1/embeddings`, forwarded to the account's embedding model. `encoding_format:
//! base64` is done here (little-endian f32), so it works with upstreams that only do floats.

use axum::extract::State;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::Value;
use squadron_actors::store::entity::model;
use squadron_actors::store::gateway;
use uuid::Uuid;

use super::chat::{record_usage, requested_model};
use super::upstream::Upstream;
use crate::api::extract::Json;
use crate::auth::OrgAuth;
use crate::error::ApiError;
use crate::state::AppState;

/// Names that work without an account model of that name (the seed's), if mapped.
const SUGGESTED: [&str; 2] = ["text-embedding-3-small", "nomic-embed-text-v1.5"];

/// Create embeddings for a string or an array of inputs.
#[utoipa::path(post, path = "/v1/embeddings", tag = "gateway", request_body = Object,
    responses((status = 200, description = "OpenAI's embedding list"), (status = 400), (status = 401), (status = 502), (status = 504)))]
pub async fn create(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Json(mut body): Json<Value>,
) -> Result<axum::Json<Value>, ApiError> {
    let name = requested_model(&body)?;
    let account_models: Vec<_> = gateway::models(state.db(), caller.org_id)
        .await?
        .into_iter()
        .filter(|m| m.kind == "embedding")
        .collect();
    let Some(model) = account_models.iter().find(|m| m.name == name) else {
        let mut supported: Vec<&str> = SUGGESTED.to_vec();
        supported.extend(
            account_models
                .iter()
                .map(|m| m.name.as_str())
                .filter(|n| !SUGGESTED.contains(n)),
        );
        return Err(ApiError::Validation(format!(
            "the embedding model {name:?} is not supported; use one of: {}{}",
            supported.join(", "),
            if name == "text-embedding-3-large" {
                ""
            } else {
                " (add a model with /v1/core/add/model)"
            }
        )));
    };
    let valid_input = match &body["input"] {
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty() && items.len() <= 2_048,
        _ => false,
    };
    if !valid_input {
        return Err(ApiError::Validation(
            "input must be a non-empty string or array (at most 2048 items)".into(),
        ));
    }
    let base64 = match body["encoding_format"].as_str() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::Validation(format!(
                "encoding_format must be float or base64, not {other:?}"
            )))
        }
    };
    if let Some(dimensions) = body.get("dimensions").filter(|d| !d.is_null()) {
        let requested = dimensions.as_u64().filter(|d| *d > 0);
        let fits = match (requested, model.dimensions) {
            (Some(d), Some(max)) => d <= max as u64,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if !fits {
            return Err(ApiError::Validation(format!(
                "dimensions must be a positive integer no larger than the model's ({})",
                model.dimensions.map_or("unknown".into(), |d| d.to_string())
            )));
        }
    }
    let upstream = Upstream::load(&state, caller.org_id, model.provider_id).await?;
    body["model"] = Value::String(model.upstream_model.clone());
    body["encoding_format"] = Value::String("float".into());
    let request = upstream
        .request(&state, reqwest::Method::POST, "embeddings")
        .json(&body);
    let response = upstream.send(request).await?;
    let mut result: Value = response
        .json()
        .await
        .map_err(|e| upstream.transport_error(e))?;
    record_usage(&result["usage"]);
    if base64 {
        for item in result["data"].as_array_mut().into_iter().flatten() {
            let floats = item["embedding"].as_array().cloned().unwrap_or_default();
            let bytes: Vec<u8> = floats
                .iter()
                .filter_map(Value::as_f64)
                .flat_map(|f| (f as f32).to_le_bytes())
                .collect();
            item["embedding"] = Value::String(B64.encode(bytes));
        }
    }
    result["model"] = Value::String(name);
    Ok(axum::Json(result))
}

/// Vectors for `texts` from the account's embedding `model`, in the order of `texts` (for
/// ingest and search; usage is recorded like any embeddings call).
pub async fn embed_texts(
    state: &AppState,
    org_id: Uuid,
    model: &model::Model,
    texts: Vec<String>,
) -> Result<Vec<Vec<f32>>, ApiError> {
    let upstream = Upstream::load(state, org_id, model.provider_id).await?;
    let n = texts.len();
    let request = upstream
        .request(state, reqwest::Method::POST, "embeddings")
        .json(&serde_json::json!({ "model": model.upstream_model, "input": texts, "encoding_format": "float" }));
    let result: Value = upstream
        .send(request)
        .await?
        .json()
        .await
        .map_err(|e| upstream.transport_error(e))?;
    record_usage(&result["usage"]);
    let mut vectors: Vec<Option<Vec<f32>>> = vec![None; n];
    for item in result["data"].as_array().into_iter().flatten() {
        let index = item["index"].as_u64().unwrap_or(u64::MAX) as usize;
        let vector = item["embedding"].as_array().map(|v| {
            v.iter()
                .filter_map(Value::as_f64)
                .map(|f| f as f32)
                .collect()
        });
        if let Some(slot) = vectors.get_mut(index) {
            *slot = vector;
        }
    }
    vectors
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| ApiError::Upstream {
            status: axum::http::StatusCode::BAD_GATEWAY,
            message: format!(
                "provider {} did not return a vector for every input",
                upstream.name
            ),
            retry_after: None,
        })
}
