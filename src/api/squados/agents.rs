//! SquadOS agents: the organization's agents, in every squad.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use squadron_actors::store::{entity::agent, gateway, squads};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::envelope::{data, list, Data};
use crate::api::extract::Path;
use crate::auth::OrgAuth;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct OrgAgentView {
    id: Uuid,
    name: String,
    role: String,
    squad_id: Uuid,
    status: String,
    /// The model it answers with in chat, if any.
    model: Option<String>,
    system_prompt: Option<String>,
    created_at: DateTime<Utc>,
}

async fn view(
    state: &AppState,
    org_id: Uuid,
    mut agents: Vec<agent::Model>,
) -> Result<Vec<OrgAgentView>, ApiError> {
    let models: std::collections::HashMap<Uuid, String> = gateway::models(state.db(), org_id)
        .await?
        .into_iter()
        .map(|m| (m.id, m.name))
        .collect();
    for a in &mut agents {
        state.core.shared.presence.overlay(a);
    }
    Ok(agents
        .into_iter()
        .map(|a| OrgAgentView {
            model: a.model_id.and_then(|id| models.get(&id).cloned()),
            id: a.id,
            name: a.name,
            role: a.role,
            squad_id: a.squad_id,
            status: a.status,
            system_prompt: a.system_prompt,
            created_at: a.created_at,
        })
        .collect())
}

/// The organization's agents.
#[utoipa::path(get, path = "/api/v1/agents", tag = "agents",
    responses((status = 200, body = Data<Vec<OrgAgentView>>), (status = 401)))]
pub async fn index(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
) -> Result<axum::Json<Data<Vec<OrgAgentView>>>, ApiError> {
    let mut agents = Vec::new();
    for squad in squads::list(state.db(), caller.org_id).await? {
        agents.extend(squads::agents(state.db(), squad.id).await?);
    }
    Ok(list(view(&state, caller.org_id, agents).await?))
}

/// One of the organization's agents.
#[utoipa::path(get, path = "/api/v1/agents/{id}", tag = "agents", params(("id" = Uuid, Path)),
    responses((status = 200, body = Data<OrgAgentView>), (status = 401), (status = 404)))]
pub async fn show(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Data<OrgAgentView>>, ApiError> {
    let agent = squads::agent(state.db(), id)
        .await?
        .filter(|a| a.org_id == caller.org_id)
        .ok_or_else(|| ApiError::not_found("agent"))?;
    Ok(data(
        view(&state, caller.org_id, vec![agent]).await?.remove(0),
    ))
}
