//! Embeddings from an account's models: which models may embed, the size check on what a
//! provider returns, and vectors for texts (for search, and for the ingest of files).

use serde_json::Value;
use squadron_actors::store::entity::model;
use uuid::Uuid;

use super::usage::record_usage;
use super::Gateway;
use crate::error::ApiError;
use crate::outbound::MAX_ANSWER_BYTES;

/// Names that work without an account model of that name (the seed's), if mapped.
pub const SUGGESTED: [&str; 2] = ["text-embedding-3-small", "nomic-embed-text-v1.5"];

/// The seed's one unsupported embedding model.
pub const UNSUPPORTED: &str = "text-embedding-3-large";

/// The seed refuses `text-embedding-3-large` for what is served, not for a name: neither as
/// the account's name for a model nor as the upstream model behind another name.
pub fn supported(name: &str, upstream_model: &str) -> Result<(), ApiError> {
    if name == UNSUPPORTED || upstream_model.eq_ignore_ascii_case(UNSUPPORTED) {
        return Err(ApiError::Validation(format!(
            "the embedding model {UNSUPPORTED} is not supported; use one of: {}",
            SUGGESTED.join(", ")
        )));
    }
    Ok(())
}

/// Vectors must have the size the model declares (or the size asked for): a provider that
/// answers otherwise fails the call rather than have its vectors stored or compared. Says why,
/// if they do not.
pub fn wrong_dimensions(
    provider: &str,
    model: &model::Model,
    expected: Option<u64>,
    mut vectors: impl Iterator<Item = usize>,
) -> Option<String> {
    let expected = expected.or(model.dimensions.map(|d| d as u64))?;
    let found = vectors.find(|found| *found as u64 != expected)?;
    Some(format!(
        "provider {provider} returned vectors of {found} dimensions for model {}, which is declared with {expected}",
        model.name
    ))
}

impl Gateway {
    /// Vectors for `texts` from the account's embedding `model`, in the order of `texts` (for
    /// search; usage is recorded like any embeddings call); vectors of the wrong size are a 502.
    pub async fn embed_texts(
        &self,
        org_id: Uuid,
        model: &model::Model,
        texts: Vec<String>,
    ) -> Result<Vec<Vec<f32>>, ApiError> {
        let (provider, vectors) = self.embed_unchecked(org_id, model, texts).await?;
        match wrong_dimensions(&provider, model, None, vectors.iter().map(Vec::len)) {
            Some(why) => Err(ApiError::Upstream {
                status: axum::http::StatusCode::BAD_GATEWAY,
                message: why,
                retry_after: None,
            }),
            None => Ok(vectors),
        }
    }

    /// [`embed_texts`] without the size check, with the provider's name: for the ingest, which
    /// tells a wrong size (a failure of the file) from a failed call (retried).
    pub async fn embed_unchecked(
        &self,
        org_id: Uuid,
        model: &model::Model,
        texts: Vec<String>,
    ) -> Result<(String, Vec<Vec<f32>>), ApiError> {
        supported(&model.name, &model.upstream_model)?;
        let upstream = self.upstream(org_id, model.provider_id).await?;
        let n = texts.len();
        let request = upstream
            .request(reqwest::Method::POST, "embeddings")
            .json(&serde_json::json!({ "model": model.upstream_model, "input": texts, "encoding_format": "float" }));
        let result = upstream
            .json(upstream.send(request).await?, MAX_ANSWER_BYTES)
            .await?;
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
        let vectors = vectors
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                upstream.bad_gateway(format!(
                    "provider {} did not return a vector for every input",
                    upstream.name
                ))
            })?;
        Ok((upstream.name.clone(), vectors))
    }
}
