//! `POST /v1/embeddings`, forwarded to the account's embedding model. `encoding_format:
//! base64` is done here (little-endian f32), so it works with upstreams that only do floats.

use axum::extract::State;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::Value;
use squadron_actors::store::gateway;

use super::requested_model;
use crate::api::extract::Json;
use crate::auth::OrgAuth;
use crate::error::ApiError;
use crate::gateway::embeddings::{supported, wrong_dimensions, SUGGESTED, UNSUPPORTED};
use crate::gateway::usage::record_usage;
use crate::outbound::MAX_ANSWER_BYTES;
use crate::state::AppState;

/// Create embeddings for a string or an array of inputs.
#[utoipa::path(post, path = "/v1/embeddings", tag = "gateway", request_body = super::wire::EmbeddingRequest,
    responses((status = 200, body = super::wire::EmbeddingList), (status = 400), (status = 401), (status = 502), (status = 504)))]
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
    let found = account_models.iter().find(|m| m.name == name);
    let Some(model) = found.filter(|_| name != UNSUPPORTED) else {
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
            if name == UNSUPPORTED {
                ""
            } else {
                " (add a model with /v1/core/add/model)"
            }
        )));
    };
    supported(&model.name, &model.upstream_model)?;
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
    let mut asked = None;
    if let Some(dimensions) = body.get("dimensions").filter(|d| !d.is_null()) {
        let requested = dimensions.as_u64().filter(|d| *d > 0);
        asked = requested;
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
    let upstream = state
        .gateway
        .upstream(caller.org_id, model.provider_id)
        .await?;
    body["model"] = Value::String(model.upstream_model.clone());
    body["encoding_format"] = Value::String("float".into());
    let request = upstream
        .request(reqwest::Method::POST, "embeddings")
        .json(&body);
    let response = upstream.send(request).await?;
    let mut result = upstream.json(response, MAX_ANSWER_BYTES).await?;
    record_usage(&result["usage"]);
    let Some(items) = result["data"].as_array() else {
        return Err(upstream.bad_gateway(format!(
            "provider {} answered with something not an embedding list",
            upstream.name
        )));
    };
    let sizes = items
        .iter()
        .map(|i| i["embedding"].as_array().map_or(0, Vec::len));
    if let Some(why) = wrong_dimensions(&upstream.name, model, asked, sizes) {
        return Err(upstream.bad_gateway(why));
    }
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
