//! Squads and their agents (Mission Control). Writes go through the squad's actor.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use squadron_actors::domain::{AgentSpec, NewSquad};
use squadron_actors::squad::{SquadMsg, SquadStats};
use squadron_actors::store;
use squadron_actors::store::entity::{agent, squad};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::envelope::{data, list, Data};
use crate::api::extract::{Json, Path};
use crate::auth::OrgAuth;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
pub struct AgentSpecInput {
    /// How the agent is @mentioned: a letter, then letters, digits, `_` or `-` (at most 32).
    name: String,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    personality: Option<String>,
    #[serde(default)]
    expertise: Vec<String>,
}

impl AgentSpecInput {
    fn parse(&self) -> Result<AgentSpec, ApiError> {
        Ok(AgentSpec::parse(
            &self.name,
            self.role.as_deref(),
            self.personality.as_deref(),
            &self.expertise,
        )?)
    }
}

#[derive(Deserialize, ToSchema)]
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
    last_heartbeat_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
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
            last_heartbeat_at: a.last_heartbeat_at,
            created_at: a.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SquadView {
    id: Uuid,
    name: String,
    description: Option<String>,
    workflow: Option<String>,
    created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agents: Option<Vec<AgentView>>,
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
            created_at: s.created_at,
            agents: None,
            live: None,
        }
    }
}

/// The squad if it is the caller's organization's; 404 otherwise, whoever's it is.
async fn owned_squad(state: &AppState, org_id: Uuid, id: Uuid) -> Result<squad::Model, ApiError> {
    store::squads::get(state.db(), org_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("squad"))
}

/// Create a squad with the specs of its first agents.
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
    let (squad, agents) = state.core.create_squad(caller.org_id, &new).await?;
    let mut view = SquadView::from(squad);
    view.agents = Some(agents.into_iter().map(AgentView::from).collect());
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

/// Add an agent to the squad.
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
    let agent = state
        .core
        .call_squad(id, |reply| SquadMsg::AddAgent(spec.clone(), reply))
        .await??;
    Ok((StatusCode::CREATED, data(AgentView::from(agent))))
}
