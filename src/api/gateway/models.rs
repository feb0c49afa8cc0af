//! `GET /v1/models` (OpenAI's list) and `GET /v1/modelmap` (name to provider and upstream model).

use std::collections::HashMap;

use axum::extract::State;
use serde::Serialize;
use squadron_actors::store::gateway;
use utoipa::ToSchema;
use uuid::Uuid;

use super::providers::ModelView;
use crate::api::extract::Path;
use crate::api::openai::{list, List};
use crate::auth::OrgAuth;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct OpenAiModel {
    id: String,
    object: &'static str,
    created: i64,
    owned_by: String,
}

async fn provider_names(state: &AppState, org_id: Uuid) -> Result<HashMap<Uuid, String>, ApiError> {
    Ok(gateway::providers(state.db(), org_id)
        .await?
        .into_iter()
        .map(|p| (p.id, p.name))
        .collect())
}

/// The account's models and agents, as OpenAI lists models.
#[utoipa::path(get, path = "/v1/models", tag = "gateway",
    responses((status = 200, body = List<OpenAiModel>), (status = 401)))]
pub async fn index(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
) -> Result<axum::Json<List<OpenAiModel>>, ApiError> {
    Ok(list(served(&state, caller.org_id).await?))
}

/// One model (or agent) of the account, as OpenAI shows a model.
#[utoipa::path(get, path = "/v1/models/{model}", tag = "gateway", params(("model" = String, Path)),
    responses((status = 200, body = OpenAiModel), (status = 401), (status = 404)))]
pub async fn show(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(model): Path<String>,
) -> Result<axum::Json<OpenAiModel>, ApiError> {
    served(&state, caller.org_id)
        .await?
        .into_iter()
        .find(|m| m.id == model)
        .map(axum::Json)
        .ok_or_else(|| ApiError::NotFound(format!("The model '{model}' does not exist")))
}

/// What `/v1/models` lists: the account's models, then its agents.
async fn served(state: &AppState, org_id: Uuid) -> Result<Vec<OpenAiModel>, ApiError> {
    let providers = provider_names(state, org_id).await?;
    let models = gateway::models(state.db(), org_id).await?;
    let agents = gateway::agents(state.db(), org_id).await?;
    let mut listed: Vec<OpenAiModel> = models
        .into_iter()
        .map(|m| OpenAiModel {
            owned_by: providers.get(&m.provider_id).cloned().unwrap_or_default(),
            id: m.name,
            object: "model",
            created: m.created_at.timestamp(),
        })
        .collect();
    listed.extend(agents.into_iter().map(|a| OpenAiModel {
        id: a.name,
        object: "model",
        created: a.created_at.timestamp(),
        owned_by: "agent".into(),
    }));
    Ok(listed)
}

/// Each model name with its provider, upstream model and kind.
#[utoipa::path(get, path = "/v1/modelmap", tag = "gateway",
    responses((status = 200, body = List<ModelView>), (status = 401)))]
pub async fn map(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
) -> Result<axum::Json<List<ModelView>>, ApiError> {
    let providers = provider_names(&state, caller.org_id).await?;
    let models = gateway::models(state.db(), caller.org_id).await?;
    Ok(list(
        models
            .into_iter()
            .map(|m| {
                let provider = providers.get(&m.provider_id).cloned().unwrap_or_default();
                ModelView::new(m, &provider)
            })
            .collect(),
    ))
}
