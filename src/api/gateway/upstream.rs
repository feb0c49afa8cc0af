//! Calling an account's upstream provider: its base URL, its (unsealed) key and extra headers,
//! and the mapping of its failures onto our errors.

use axum::http::StatusCode;
use squadron_actors::store::entity::provider;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// A provider ready to call.
pub struct Upstream {
    pub name: String,
    base_url: String,
    api_key: Option<String>,
    headers: Vec<(String, String)>,
}

impl Upstream {
    pub fn open(state: &AppState, p: provider::Model) -> Result<Upstream, ApiError> {
        let unseal = |sealed: &Option<String>| -> Result<Option<String>, ApiError> {
            sealed
                .as_deref()
                .map(|s| {
                    state.sealer.open(s).ok_or_else(|| {
                        ApiError::Internal(anyhow::anyhow!(
                            "provider {} secrets do not open with this server's key",
                            p.id
                        ))
                    })
                })
                .transpose()
        };
        let headers = match unseal(&p.headers_sealed)? {
            Some(json) => serde_json::from_str::<std::collections::BTreeMap<String, String>>(&json)
                .map_err(|e| ApiError::Internal(e.into()))?
                .into_iter()
                .collect(),
            None => Vec::new(),
        };
        Ok(Upstream {
            name: p.name.clone(),
            base_url: p.base_url.clone(),
            api_key: unseal(&p.api_key_sealed)?,
            headers,
        })
    }

    /// The account's provider `provider_id` (cached: see [`super::routes`]).
    pub async fn load(
        state: &AppState,
        org_id: Uuid,
        provider_id: Uuid,
    ) -> Result<std::sync::Arc<Upstream>, ApiError> {
        state.routes.upstream(state, org_id, provider_id).await
    }

    pub fn api_key(&self) -> Option<&str> {
        self.api_key.as_deref()
    }

    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    pub fn request(
        &self,
        state: &AppState,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        let url = format!(
            "{}/{}",
            self.base_url.trim_end_matches('/'),
            path.trim_start_matches('/')
        );
        let mut req = state.upstream.request(method, url);
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key);
        }
        for (name, value) in &self.headers {
            req = req.header(name, value);
        }
        req
    }

    /// Sends `req`; a response that is not a success becomes our error.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, ApiError> {
        let response = req.send().await.map_err(|e| self.transport_error(e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(self.status_error(response).await)
    }

    /// A whole (not streamed) chat completion of `body`, its usage recorded.
    pub async fn complete(
        &self,
        state: &AppState,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, ApiError> {
        let request = self
            .request(state, reqwest::Method::POST, "chat/completions")
            .json(body);
        let completion: serde_json::Value = self
            .send(request)
            .await?
            .json()
            .await
            .map_err(|e| self.transport_error(e))?;
        if !completion.is_object() {
            return Err(ApiError::Upstream {
                status: StatusCode::BAD_GATEWAY,
                message: format!(
                    "provider {} answered with something not a completion",
                    self.name
                ),
                retry_after: None,
            });
        }
        super::chat::record_usage(&completion["usage"]);
        Ok(completion)
    }

    /// Why a stream that had begun ended early, for the client's error object.
    pub fn broke_off(provider: &str, err: impl std::fmt::Display) -> String {
        format!("provider {provider} broke off the stream: {err}")
    }

    pub fn transport_error(&self, err: reqwest::Error) -> ApiError {
        if err.is_timeout() {
            ApiError::Upstream {
                status: StatusCode::GATEWAY_TIMEOUT,
                message: format!("provider {} did not answer in time", self.name),
                retry_after: None,
            }
        } else {
            ApiError::Upstream {
                status: StatusCode::BAD_GATEWAY,
                message: format!("provider {} could not be reached: {err}", self.name),
                retry_after: None,
            }
        }
    }

    async fn status_error(&self, response: reqwest::Response) -> ApiError {
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .cloned();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let detail = body["error"]["message"]
            .as_str()
            .unwrap_or("no details")
            .to_owned();
        let message = format!(
            "provider {} answered {}: {detail}",
            self.name,
            status.as_u16()
        );
        let status = if status.is_server_error() {
            StatusCode::BAD_GATEWAY
        } else {
            StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY)
        };
        ApiError::Upstream {
            status,
            message,
            retry_after,
        }
    }
}
