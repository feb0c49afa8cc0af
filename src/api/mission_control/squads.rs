//! Squads and their agents (Mission Control). Writes go through the squad's actor.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use squadron_actors::domain::{self, AgentName, AgentSpec, NewSquad};
use squadron_actors::squad::{AgentPatch, SquadMsg, SquadStats};
use squadron_actors::store;
use squadron_actors::store::entity::{agent, squad};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::envelope::{data, list, Data};
use crate::api::extract::{Json, Path};
use crate::auth::OrgAuth;
use crate::caches::Change;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentSpecInput {
    /// How the agent is @mentioned: a letter, then letters, digits, `_` or `-` (at most 32).
    name: String,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    personality: Option<String>,
    #[serde(default)]
    expertise: Vec<String>,
    /// How often the agent heartbeats (default 60); it is marked offline after 1.5x this.
    #[serde(default)]
    heartbeat_interval_secs: Option<i64>,
}

impl AgentSpecInput {
    fn parse(&self) -> Result<AgentSpec, ApiError> {
        Ok(AgentSpec::parse(
            &self.name,
            self.role.as_deref(),
            self.personality.as_deref(),
            &self.expertise,
            self.heartbeat_interval_secs,
        )?)
    }
}

/// Changes to an agent's spec; fields left out stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentSpecPatch {
    name: Option<String>,
    role: Option<String>,
    personality: Option<String>,
    expertise: Option<Vec<String>>,
    heartbeat_interval_secs: Option<i64>,
}

impl AgentSpecPatch {
    fn parse(self) -> Result<AgentPatch, ApiError> {
        if let Some(expertise) = &self.expertise {
            if expertise.len() > AgentSpec::MAX_EXPERTISE {
                return Err(ApiError::Validation(format!(
                    "expertise may list at most {} items",
                    AgentSpec::MAX_EXPERTISE
                )));
            }
        }
        let interval = match self.heartbeat_interval_secs {
            Some(secs) if !(1..=86_400).contains(&secs) => {
                return Err(ApiError::Validation(
                    "heartbeat_interval_secs must be 1 to 86400".into(),
                ))
            }
            other => other.map(|s| s as i32),
        };
        Ok(AgentPatch {
            name: self.name.as_deref().map(AgentName::parse).transpose()?,
            role: self
                .role
                .map(|r| domain::text("role", r.trim(), 100))
                .transpose()?,
            personality: self
                .personality
                .map(|p| domain::text("personality", p.trim(), 2_000))
                .transpose()?,
            expertise: self
                .expertise
                .map(|items| {
                    items
                        .iter()
                        .map(|e| domain::text("expertise item", e.trim(), 100))
                        .collect()
                })
                .transpose()?,
            heartbeat_interval_secs: interval,
        })
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSquad {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    workflow: Option<String>,
    #[serde(default)]
    agents: Vec<AgentSpecInput>,
}

#[derive(Serialize, ToSchema)]
pub struct AgentView {
    id: Uuid,
    squad_id: Uuid,
    name: String,
    role: String,
    personality: String,
    expertise: Vec<String>,
    status: String,
    heartbeat_interval_secs: i32,
    heartbeat_offset: i32,
    last_heartbeat_at: Option<DateTime<Utc>>,
    current_task_id: Option<Uuid>,
    /// Whether setup has given the agent its SOUL.md and key.
    activated: bool,
    created_at: DateTime<Utc>,
    /// The agent's own key, shown only when it is made (adding an agent after setup).
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key: Option<String>,
}

impl From<agent::Model> for AgentView {
    fn from(a: agent::Model) -> Self {
        AgentView {
            id: a.id,
            squad_id: a.squad_id,
            name: a.name,
            role: a.role,
            personality: a.personality,
            expertise: serde_json::from_value(a.expertise).unwrap_or_default(),
            status: a.status,
            heartbeat_interval_secs: a.heartbeat_interval_secs,
            heartbeat_offset: a.heartbeat_offset,
            last_heartbeat_at: a.last_heartbeat_at,
            current_task_id: a.current_task_id,
            activated: a.activated_at.is_some(),
            created_at: a.created_at,
            api_key: None,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SquadView {
    id: Uuid,
    name: String,
    description: Option<String>,
    workflow: Option<String>,
    /// The organization's default squad: gateway agents join it, and knowledge ingest news
    /// is published on it.
    is_default: bool,
    created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agents: Option<Vec<AgentView>>,
    /// Where an agent runner fetches the squad's configuration, once (only on create).
    #[serde(skip_serializing_if = "Option::is_none")]
    setup_url: Option<String>,
    /// The one-time setup token, for the preferred `x-setup-token` header (only on create).
    #[serde(skip_serializing_if = "Option::is_none")]
    setup_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    setup_expires_at: Option<DateTime<Utc>>,
    /// What the squad's actor holds now (only on `GET /api/squads/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    live: Option<SquadStats>,
}

impl From<squad::Model> for SquadView {
    fn from(s: squad::Model) -> Self {
        SquadView {
            id: s.id,
            name: s.name,
            description: s.description,
            workflow: s.workflow,
            is_default: s.is_default,
            created_at: s.created_at,
            agents: None,
            setup_url: None,
            setup_token: None,
            setup_expires_at: None,
            live: None,
        }
    }
}

/// The squad if it is the caller's organization's; 404 otherwise, whoever's it is.
pub(crate) async fn owned_squad(
    state: &AppState,
    org_id: Uuid,
    id: Uuid,
) -> Result<squad::Model, ApiError> {
    store::squads::get(state.db(), org_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("squad"))
}

/// Create a squad with the specs of its first agents. The reply carries a one-time setup URL
/// from which an agent runner fetches the agents' SOUL.md and keys.
#[utoipa::path(post, path = "/api/squads", tag = "squads", request_body = CreateSquad,
    responses((status = 201, body = Data<SquadView>), (status = 400), (status = 401)))]
pub async fn create(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Json(body): Json<CreateSquad>,
) -> Result<(StatusCode, axum::Json<Data<SquadView>>), ApiError> {
    let specs = body
        .agents
        .iter()
        .map(AgentSpecInput::parse)
        .collect::<Result<_, _>>()?;
    let new = NewSquad::parse(
        &body.name,
        body.description.as_deref(),
        body.workflow.as_deref(),
        specs,
    )?;
    let (squad, agents, setup_token) = state.core.create_squad(caller.org_id, &new).await?;
    let mut view = SquadView::from(squad.clone());
    view.agents = Some(agents.into_iter().map(AgentView::from).collect());
    view.setup_url = Some(format!(
        "{}/api/setup/{}?token={setup_token}",
        state.config.public_url(),
        squad.id
    ));
    view.setup_token = Some(setup_token);
    view.setup_expires_at = squad.setup_expires_at;
    Ok((StatusCode::CREATED, data(view)))
}

/// List the organization's squads.
#[utoipa::path(get, path = "/api/squads", tag = "squads",
    responses((status = 200, body = Data<Vec<SquadView>>), (status = 401)))]
pub async fn index(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
) -> Result<axum::Json<Data<Vec<SquadView>>>, ApiError> {
    let squads = store::squads::list(state.db(), caller.org_id).await?;
    Ok(list(squads.into_iter().map(SquadView::from).collect()))
}

/// A squad, its agents, and what its actor holds.
#[utoipa::path(get, path = "/api/squads/{id}", tag = "squads", params(("id" = Uuid, Path)),
    responses((status = 200, body = Data<SquadView>), (status = 401), (status = 404)))]
pub async fn show(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Data<SquadView>>, ApiError> {
    let squad = owned_squad(&state, caller.org_id, id).await?;
    let agents = store::squads::agents(state.db(), id).await?;
    let live = state.core.call_squad(id, SquadMsg::Stats).await?;
    let mut view = SquadView::from(squad);
    view.agents = Some(agents.into_iter().map(AgentView::from).collect());
    view.live = Some(live);
    Ok(data(view))
}

/// List the squad's agents.
#[utoipa::path(get, path = "/api/squads/{id}/agents", tag = "squads", params(("id" = Uuid, Path)),
    responses((status = 200, body = Data<Vec<AgentView>>), (status = 401), (status = 404)))]
pub async fn agents(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Data<Vec<AgentView>>>, ApiError> {
    owned_squad(&state, caller.org_id, id).await?;
    let agents = store::squads::agents(state.db(), id).await?;
    Ok(list(agents.into_iter().map(AgentView::from).collect()))
}

/// Add an agent spec to the squad. After setup the agent is activated at once and the reply
/// carries its key, shown only this once.
#[utoipa::path(post, path = "/api/squads/{id}/agents", tag = "squads", params(("id" = Uuid, Path)),
    request_body = AgentSpecInput,
    responses((status = 201, body = Data<AgentView>), (status = 400), (status = 401), (status = 404), (status = 409)))]
pub async fn add_agent(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(id): Path<Uuid>,
    Json(body): Json<AgentSpecInput>,
) -> Result<(StatusCode, axum::Json<Data<AgentView>>), ApiError> {
    owned_squad(&state, caller.org_id, id).await?;
    let spec = body.parse()?;
    let (agent, key) = state
        .core
        .call_squad(id, |reply| SquadMsg::AddAgent(spec.clone(), reply))
        .await??;
    let mut view = AgentView::from(agent);
    view.api_key = key;
    Ok((StatusCode::CREATED, data(view)))
}

/// Change an agent's spec; its SOUL.md follows.
#[utoipa::path(patch, path = "/api/squads/{id}/agents/{agent_id}", tag = "squads",
    params(("id" = Uuid, Path), ("agent_id" = Uuid, Path)), request_body = AgentSpecPatch,
    responses((status = 200, body = Data<AgentView>), (status = 400), (status = 401), (status = 404), (status = 409)))]
pub async fn update_agent(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path((id, agent_id)): Path<(Uuid, Uuid)>,
    Json(body): Json<AgentSpecPatch>,
) -> Result<axum::Json<Data<AgentView>>, ApiError> {
    owned_squad(&state, caller.org_id, id).await?;
    let patch = body.parse()?;
    let agent = state
        .core
        .call_squad(id, |reply| {
            SquadMsg::UpdateAgent(agent_id, patch.clone(), reply)
        })
        .await??;
    state.directory.evict(agent_id);
    Ok(data(AgentView::from(agent)))
}

/// Remove an agent; its keys stop working at once.
#[utoipa::path(delete, path = "/api/squads/{id}/agents/{agent_id}", tag = "squads",
    params(("id" = Uuid, Path), ("agent_id" = Uuid, Path)),
    responses((status = 204), (status = 401), (status = 404)))]
pub async fn delete_agent(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path((id, agent_id)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    owned_squad(&state, caller.org_id, id).await?;
    let keys = store::keys::of_agent(state.db(), agent_id).await?;
    state
        .core
        .call_squad(id, |reply| SquadMsg::DeleteAgent(agent_id, reply))
        .await??;
    for key in keys {
        state.caches.invalidate(&Change::Credential {
            id: key.id,
            hash: key.key_hash,
        });
    }
    state.directory.evict(agent_id);
    Ok(StatusCode::NO_CONTENT)
}
