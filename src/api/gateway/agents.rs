//! `/v1/core` agents: agents that answer in the gateway with a model, a system prompt and
//! generation defaults. They join the account's default squad, so they are squad agents too.
//! Their names share one namespace with the account's models.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use squadron_actors::domain::{AgentSpec, LlmSettings};
use squadron_actors::squad::SquadMsg;
use squadron_actors::store::{self, entity::agent, gateway, knowledge as kb, tools as store_tools};
use utoipa::ToSchema;
use uuid::Uuid;

use super::providers::{ByName, Removed};
use crate::api::extract::Json;
use crate::api::knowledge::{store_by_ref, store_id};
use crate::api::openai::{list, List};
use crate::auth::OrgAuth;
use crate::caches::Change;
use crate::error::ApiError;
use crate::state::AppState;

/// Generation settings an agent may default.
const PARAMS: [&str; 6] = [
    "temperature",
    "top_p",
    "max_tokens",
    "presence_penalty",
    "frequency_penalty",
    "stop",
];

#[derive(Deserialize, ToSchema)]
pub struct AddAgent {
    name: String,
    /// The account's chat model it answers with.
    model: String,
    /// Put before every conversation; without one, the agent's SOUL.md is used if it has one.
    #[serde(default, alias = "systemPrompt", alias = "prompt")]
    system_prompt: Option<String>,
    #[serde(default)]
    description: Option<String>,
    /// Knowledge bases (vector store ids or names) searched for each chat turn.
    #[serde(default, alias = "knowledge")]
    knowledge_bases: Vec<String>,
    /// MCP tools it may use: `server` (all its tools) or `server/tool`.
    #[serde(default)]
    tools: Vec<String>,
    /// Defaults for temperature, top_p, max_tokens, presence_penalty, frequency_penalty, stop.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    params: Map<String, Value>,
}

#[derive(Serialize, ToSchema)]
pub struct AgentView {
    id: Uuid,
    name: String,
    model: Option<String>,
    system_prompt: Option<String>,
    #[schema(value_type = Object)]
    params: Value,
    squad_id: Uuid,
    /// The vector stores it consults.
    knowledge_bases: Vec<String>,
    /// The MCP tools it may use: `server` (all its tools) or `server/tool`.
    tools: Vec<String>,
    created_at: DateTime<Utc>,
}

impl AgentView {
    pub fn new(a: agent::Model, model: Option<String>) -> AgentView {
        AgentView {
            knowledge_bases: Vec::new(),
            tools: Vec::new(),
            id: a.id,
            name: a.name,
            model,
            system_prompt: a.system_prompt,
            params: a.params.unwrap_or(Value::Object(Map::new())),
            squad_id: a.squad_id,
            created_at: a.created_at,
        }
    }
}

async fn model_names(
    state: &AppState,
    org_id: Uuid,
) -> Result<std::collections::HashMap<Uuid, String>, ApiError> {
    Ok(gateway::models(state.db(), org_id)
        .await?
        .into_iter()
        .map(|m| (m.id, m.name))
        .collect())
}

/// The account's gateway agents.
#[utoipa::path(get, path = "/v1/core/agents", tag = "gateway",
    responses((status = 200, body = List<AgentView>), (status = 401)))]
pub async fn index(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
) -> Result<axum::Json<List<AgentView>>, ApiError> {
    let names = model_names(&state, caller.org_id).await?;
    let agents = gateway::agents(state.db(), caller.org_id).await?;
    let mut views = Vec::with_capacity(agents.len());
    for a in agents {
        let model = a.model_id.and_then(|id| names.get(&id).cloned());
        let bases = knowledge_of(&state, a.id).await?;
        let tools = tools_of(&state, a.id).await?;
        views.push(AgentView {
            knowledge_bases: bases,
            tools,
            ..AgentView::new(a, model)
        });
    }
    Ok(list(views))
}

/// Add an agent that answers with one of the account's chat models.
#[utoipa::path(post, path = "/v1/core/add/agent", tag = "gateway", request_body = AddAgent,
    responses((status = 200, body = AgentView), (status = 400), (status = 401), (status = 404), (status = 409)))]
pub async fn add(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Json(body): Json<AddAgent>,
) -> Result<axum::Json<AgentView>, ApiError> {
    let unknown: Vec<&String> = body
        .params
        .keys()
        .filter(|k| !PARAMS.contains(&k.as_str()))
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError::Validation(format!(
            "unknown agent settings: {unknown:?}"
        )));
    }
    let system_prompt = body
        .system_prompt
        .map(|p| squadron_actors::domain::text("system_prompt", p.trim(), 20_000))
        .transpose()?;
    let model = state
        .gateway
        .model_of(caller.org_id, body.model.trim(), "chat")
        .await?;
    let mut bases = Vec::new();
    for reference in &body.knowledge_bases {
        let store = store_by_ref(&state, caller.org_id, reference.trim()).await?;
        if !bases.contains(&store.id) {
            bases.push(store.id);
        }
    }
    let tools = grants(&state, caller.org_id, &body.tools).await?;
    let mut spec = AgentSpec::parse(
        &body.name,
        Some("Gateway agent"),
        body.description.as_deref(),
        &[],
        None,
    )?;
    if gateway::model_by_name(state.db(), caller.org_id, spec.name.as_ref())
        .await?
        .is_some()
    {
        return Err(ApiError::Conflict(format!(
            "a model is named {:?}; names of models and agents are shared",
            spec.name.as_ref()
        )));
    }
    if gateway::agent_by_name(state.db(), caller.org_id, spec.name.as_ref())
        .await?
        .is_some()
    {
        return Err(ApiError::Conflict(format!(
            "an agent named {:?} exists",
            spec.name.as_ref()
        )));
    }
    spec.llm = Some(LlmSettings {
        model_id: model.id,
        system_prompt,
        params: Value::Object(body.params),
    });
    let squad = state.core.default_squad(caller.org_id).await?;
    let (agent, _key) = state
        .core
        .call_squad(squad.id, |reply| SquadMsg::AddAgent(spec.clone(), reply))
        .await??;
    kb::set_agent_knowledge(state.db(), agent.id, &bases).await?;
    store_tools::set_agent_tools(state.db(), agent.id, &tools).await?;
    let knowledge_bases = knowledge_of(&state, agent.id).await?;
    Ok(axum::Json(AgentView {
        knowledge_bases,
        tools: tools_of(&state, agent.id).await?,
        ..AgentView::new(agent, Some(model.name.clone()))
    }))
}

async fn knowledge_of(state: &AppState, agent_id: Uuid) -> Result<Vec<String>, ApiError> {
    Ok(kb::agent_knowledge(state.db(), agent_id)
        .await?
        .into_iter()
        .map(|s| store_id(s.id))
        .collect())
}

/// Resolves `server` and `server/tool` against the account's MCP servers. A named tool need
/// not be listed yet (its server may be down); the server must exist.
async fn grants(
    state: &AppState,
    org_id: Uuid,
    refs: &[String],
) -> Result<Vec<(Uuid, String)>, ApiError> {
    if refs.len() > 100 {
        return Err(ApiError::Validation("at most 100 tools".into()));
    }
    let mut grants = Vec::new();
    for reference in refs {
        let (server, tool) = match reference.trim().split_once('/') {
            Some((server, tool)) if !tool.is_empty() => (server, tool),
            _ => (reference.trim(), store_tools::ALL_TOOLS),
        };
        let server = store_tools::server_by_name(state.db(), org_id, server)
            .await?
            .ok_or_else(|| {
                ApiError::Validation(format!(
                    "tools: no MCP server named {server:?} in this account"
                ))
            })?;
        let grant = (server.id, tool.to_owned());
        if !grants.contains(&grant) {
            grants.push(grant);
        }
    }
    Ok(grants)
}

async fn tools_of(state: &AppState, agent_id: Uuid) -> Result<Vec<String>, ApiError> {
    Ok(store_tools::agent_tools(state.db(), agent_id)
        .await?
        .into_iter()
        .map(|(grant, server)| match grant.tool.as_str() {
            store_tools::ALL_TOOLS => server.name,
            tool => format!("{}/{tool}", server.name),
        })
        .collect())
}

/// Delete a gateway agent.
#[utoipa::path(post, path = "/v1/core/delete/agent", tag = "gateway", request_body = ByName,
    responses((status = 200, body = Removed), (status = 401), (status = 404)))]
pub async fn delete(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Json(body): Json<ByName>,
) -> Result<axum::Json<Removed>, ApiError> {
    let agent = gateway::agent_by_name(state.db(), caller.org_id, body.name())
        .await?
        .ok_or_else(|| ApiError::not_found("agent"))?;
    let keys = store::keys::of_agent(state.db(), agent.id).await?;
    let agent_id = agent.id;
    state
        .core
        .call_squad(agent.squad_id, |reply| {
            SquadMsg::DeleteAgent(agent_id, reply)
        })
        .await??;
    for key in keys {
        state.caches.invalidate(&Change::Credential {
            id: key.id,
            hash: key.key_hash,
        });
    }
    state.directory.evict(agent.id);
    Ok(Removed::named(agent.name))
}
