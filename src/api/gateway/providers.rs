//! `/v1/core`: the account's providers (OpenAI-compatible upstreams) and models.

use std::collections::BTreeMap;

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use squadron_actors::store::{self, entity::model, entity::provider, gateway};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::extract::Json;
use crate::api::openai::{list, List};
use crate::auth::OrgAuth;
use crate::caches::Change;
use crate::error::ApiError;
use crate::gateway::upstream::check_base_url;
use crate::state::AppState;

/// Shows enough of a secret to recognise it, never enough to use it.
pub(crate) fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() <= 12 {
        return "****".into();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}...{tail}")
}

#[derive(Serialize, ToSchema)]
pub struct ProviderView {
    id: Uuid,
    name: String,
    /// Userinfo and query values masked: `http://***@host/v1`.
    base_url: String,
    /// Masked: `sk-...abcd`.
    api_key: Option<String>,
    /// Header names, values masked.
    headers: BTreeMap<String, String>,
    created_at: DateTime<Utc>,
}

impl ProviderView {
    fn new(state: &AppState, p: provider::Model) -> Result<ProviderView, ApiError> {
        let upstream = state.gateway.open(p.clone())?;
        let (key, headers) = (upstream.api_key(), upstream.headers());
        Ok(ProviderView {
            id: p.id,
            name: p.name,
            base_url: crate::outbound::mask_url(&p.base_url),
            api_key: key.map(mask),
            headers: headers.iter().map(|(k, v)| (k.clone(), mask(v))).collect(),
            created_at: p.created_at,
        })
    }
}

/// The account's providers, secrets masked.
#[utoipa::path(get, path = "/v1/core/providers", tag = "gateway",
    responses((status = 200, body = List<ProviderView>), (status = 401)))]
pub async fn index(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
) -> Result<axum::Json<List<ProviderView>>, ApiError> {
    let providers = gateway::providers(state.db(), caller.org_id).await?;
    Ok(list(
        providers
            .into_iter()
            .map(|p| ProviderView::new(&state, p))
            .collect::<Result<_, _>>()?,
    ))
}

pub(crate) fn name(field: &str, raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/".contains(c));
    if !ok {
        return Err(ApiError::Validation(format!(
            "{field} must be 1 to 100 letters, digits or - _ . : /"
        )));
    }
    Ok(name.to_owned())
}

/// The outward policy's refusal of a URL a caller gave: their request is at fault, a 400.
pub(crate) fn refused(err: crate::outbound::Refused) -> ApiError {
    ApiError::Validation(err.to_string())
}

/// 400 unless every name and value is a valid HTTP header.
pub(crate) fn check_headers(headers: &BTreeMap<String, String>) -> Result<(), ApiError> {
    for (header, value) in headers {
        if reqwest::header::HeaderName::from_bytes(header.as_bytes()).is_err()
            || reqwest::header::HeaderValue::from_str(value).is_err()
        {
            return Err(ApiError::Validation(format!(
                "header {header:?} is not a valid HTTP header"
            )));
        }
    }
    Ok(())
}

#[derive(Deserialize, ToSchema)]
pub struct AddProvider {
    #[serde(alias = "providerName")]
    name: String,
    /// The OpenAI-compatible base URL, e.g. `https://api.openai.com/v1`.
    #[serde(alias = "url", alias = "baseUrl")]
    base_url: String,
    #[serde(default, alias = "key", alias = "apiKey")]
    api_key: Option<String>,
    /// Extra headers sent with every request (stored sealed, shown masked).
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// Add a provider. Its key and headers are sealed at rest and masked in every read.
#[utoipa::path(post, path = "/v1/core/add/provider", tag = "gateway", request_body = AddProvider,
    responses((status = 200, body = ProviderView), (status = 400), (status = 401), (status = 409)))]
pub async fn add(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Json(body): Json<AddProvider>,
) -> Result<axum::Json<ProviderView>, ApiError> {
    let provider_name = name("name", &body.name)?;
    let base_url = body.base_url.trim().trim_end_matches('/').to_owned();
    let parsed = check_base_url(&base_url).map_err(ApiError::Validation)?;
    // A member's provider may reach public addresses only; checked now, and again at every
    // call (see `crate::outbound`).
    let reach = state.outbound.reach_for(caller.role, false);
    state.outbound.vet(&parsed, reach).await.map_err(refused)?;
    if body.headers.len() > 20 {
        return Err(ApiError::Validation("at most 20 extra headers".into()));
    }
    check_headers(&body.headers)?;
    let new = gateway::NewProvider {
        name: provider_name.clone(),
        base_url,
        api_key_sealed: body
            .api_key
            .filter(|k| !k.is_empty())
            .map(|k| state.sealer.seal(&k)),
        headers_sealed: (!body.headers.is_empty()).then(|| {
            state
                .sealer
                .seal(&serde_json::to_string(&body.headers).expect("a map of strings serializes"))
        }),
        allow_private: reach.allows_private(),
    };
    let provider = match gateway::insert_provider(state.db(), caller.org_id, new).await {
        Ok(p) => p,
        Err(err) if store::is_unique_violation(&err) => {
            return Err(ApiError::Conflict(format!(
                "a provider named {provider_name:?} exists"
            )))
        }
        Err(err) => return Err(err.into()),
    };
    Ok(axum::Json(ProviderView::new(&state, provider)?))
}

/// `{"deleted": true, "name"}`: what a `/v1/core/delete/...` route removed.
#[derive(Serialize, ToSchema)]
pub struct Removed {
    deleted: bool,
    name: String,
}

impl Removed {
    pub fn named(name: String) -> axum::Json<Removed> {
        axum::Json(Removed {
            deleted: true,
            name,
        })
    }
}

#[derive(Deserialize, ToSchema)]
pub struct ByName {
    #[serde(alias = "providerName", alias = "modelName", alias = "agentName")]
    name: String,
}

impl ByName {
    pub fn name(&self) -> &str {
        self.name.trim()
    }
}

/// Delete a provider; 409 while models use it.
#[utoipa::path(post, path = "/v1/core/delete/provider", tag = "gateway", request_body = ByName,
    responses((status = 200, body = Removed), (status = 401), (status = 404), (status = 409)))]
pub async fn delete(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Json(body): Json<ByName>,
) -> Result<axum::Json<Removed>, ApiError> {
    let provider = gateway::provider_by_name(state.db(), caller.org_id, body.name.trim())
        .await?
        .ok_or_else(|| ApiError::not_found("provider"))?;
    let used = gateway::models_of_provider(state.db(), provider.id).await?;
    if used > 0 {
        return Err(ApiError::Conflict(format!(
            "provider {:?} is used by {used} model(s); delete them first",
            provider.name
        )));
    }
    gateway::delete_provider(state.db(), provider.id).await?;
    state.caches.invalidate(&Change::Account {
        org_id: caller.org_id,
    });
    Ok(Removed::named(provider.name))
}

#[derive(Deserialize, ToSchema)]
pub struct ProviderModelsQuery {
    #[serde(alias = "providerName")]
    provider: String,
}

/// A model a provider offers, by the provider's id for it.
#[derive(Serialize, ToSchema)]
pub struct UpstreamModel {
    id: String,
    /// Always `model`.
    object: &'static str,
    /// The provider's name.
    owned_by: String,
}

/// What a provider offers upstream (its `/models`): the model ids only, as an OpenAI list,
/// never the rest of what the provider answered.
#[utoipa::path(post, path = "/v1/core/models", tag = "gateway", request_body = ProviderModelsQuery,
    responses((status = 200, body = List<UpstreamModel>), (status = 401), (status = 404), (status = 502), (status = 504)))]
pub async fn upstream_models(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Json(body): Json<ProviderModelsQuery>,
) -> Result<axum::Json<List<UpstreamModel>>, ApiError> {
    let provider = gateway::provider_by_name(state.db(), caller.org_id, body.provider.trim())
        .await?
        .ok_or_else(|| ApiError::not_found("provider"))?;
    let upstream = state.gateway.open(provider)?;
    let response = upstream
        .send(upstream.request(reqwest::Method::GET, "models"))
        .await?;
    let answer = upstream
        .json(response, crate::outbound::MAX_LIST_BYTES)
        .await?;
    let Some(items) = answer["data"].as_array() else {
        return Err(upstream.bad_gateway(format!(
            "provider {} answered with something not a model list",
            upstream.name
        )));
    };
    let data = items
        .iter()
        .filter_map(|m| m["id"].as_str())
        .filter(|id| !id.is_empty() && id.len() <= 200)
        .map(|id| UpstreamModel {
            id: id.to_owned(),
            object: "model",
            owned_by: upstream.name.clone(),
        })
        .collect();
    Ok(list(data))
}

#[derive(Deserialize, ToSchema)]
pub struct AddModel {
    /// The account's name for it: what clients put in `model`.
    name: String,
    /// The provider's name (as added).
    provider: String,
    /// The provider's model id.
    #[serde(alias = "upstream_model")]
    model: String,
    /// `chat` (default) or `embedding`.
    #[serde(default)]
    kind: Option<String>,
    /// Vector size, for embedding models.
    #[serde(default)]
    dimensions: Option<i32>,
}

#[derive(Serialize, ToSchema)]
pub struct ModelView {
    id: Uuid,
    name: String,
    provider: String,
    upstream_model: String,
    kind: String,
    dimensions: Option<i32>,
    created_at: DateTime<Utc>,
}

impl ModelView {
    pub fn new(m: model::Model, provider: &str) -> ModelView {
        ModelView {
            id: m.id,
            name: m.name,
            provider: provider.to_owned(),
            upstream_model: m.upstream_model,
            kind: m.kind,
            dimensions: m.dimensions,
            created_at: m.created_at,
        }
    }
}

/// Add a model: an account-scoped name for a provider's model.
#[utoipa::path(post, path = "/v1/core/add/model", tag = "gateway", request_body = AddModel,
    responses((status = 200, body = ModelView), (status = 400), (status = 401), (status = 404), (status = 409)))]
pub async fn add_model(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Json(body): Json<AddModel>,
) -> Result<axum::Json<ModelView>, ApiError> {
    let model_name = name("name", &body.name)?;
    let upstream_model = body.model.trim();
    if upstream_model.is_empty() || upstream_model.len() > 200 {
        return Err(ApiError::Validation(
            "model must be 1 to 200 characters".into(),
        ));
    }
    let kind = match body.kind.as_deref().unwrap_or("chat") {
        k @ ("chat" | "embedding") => k.to_owned(),
        other => {
            return Err(ApiError::Validation(format!(
                "kind must be chat or embedding, not {other:?}"
            )))
        }
    };
    if let Some(d) = body.dimensions {
        if kind != "embedding" || !(1..=16_000).contains(&d) {
            return Err(ApiError::Validation(
                "dimensions (1 to 16000) are for embedding models".into(),
            ));
        }
    }
    if kind == "embedding" {
        crate::gateway::embeddings::supported(&model_name, upstream_model)?;
    }
    let provider = gateway::provider_by_name(state.db(), caller.org_id, body.provider.trim())
        .await?
        .ok_or_else(|| ApiError::not_found("provider"))?;
    if gateway::agent_by_name(state.db(), caller.org_id, &model_name)
        .await?
        .is_some()
    {
        return Err(ApiError::Conflict(format!(
            "an agent is named {model_name:?}; names of models and agents are shared"
        )));
    }
    let new = gateway::NewModel {
        name: model_name.clone(),
        provider_id: provider.id,
        upstream_model: upstream_model.to_owned(),
        kind,
        dimensions: body.dimensions,
    };
    match gateway::insert_model(state.db(), caller.org_id, new).await {
        Ok(m) => Ok(axum::Json(ModelView::new(m, &provider.name))),
        Err(err) if store::is_unique_violation(&err) => Err(ApiError::Conflict(format!(
            "a model named {model_name:?} exists"
        ))),
        Err(err) => Err(err.into()),
    }
}

/// Delete a model.
#[utoipa::path(post, path = "/v1/core/delete/model", tag = "gateway", request_body = ByName,
    responses((status = 200, body = Removed), (status = 401), (status = 404)))]
pub async fn delete_model(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Json(body): Json<ByName>,
) -> Result<axum::Json<Removed>, ApiError> {
    let model = gateway::model_by_name(state.db(), caller.org_id, body.name.trim())
        .await?
        .ok_or_else(|| ApiError::not_found("model"))?;
    let used = gateway::agents_of_model(state.db(), model.id).await?;
    if used > 0 {
        return Err(ApiError::Conflict(format!(
            "model {:?} is used by {used} agent(s); delete them first",
            model.name
        )));
    }
    gateway::delete_model(state.db(), model.id).await?;
    state.caches.invalidate(&Change::Account {
        org_id: caller.org_id,
    });
    Ok(Removed::named(model.name))
}
