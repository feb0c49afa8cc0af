//! The calling agent itself: heartbeats and its profile.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use squadron_actors::agent::{AgentMsg, Beat};
use squadron_actors::domain::AgentStatus;
use utoipa::ToSchema;
use uuid::Uuid;

use super::views::NotificationView;
use crate::api::envelope::{data, Data};
use crate::api::extract::{double_option, Json};
use crate::auth::AgentCaller;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatInput {
    /// `active` (default), `idle`, `busy` or `offline`.
    status: Option<String>,
    /// The task being worked on; `null` for none; left out, unchanged.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Uuid>)]
    current_task_id: Option<Option<Uuid>>,
    /// SHA-256 of the agent's local SOUL.md; the reply says whether it is out of date.
    local_soul_md_hash: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct HeartbeatAgent {
    id: Uuid,
    name: String,
    status: String,
}

#[derive(Serialize, ToSchema)]
pub struct HeartbeatView {
    agent: HeartbeatAgent,
    /// Undelivered notifications: handed out until acknowledged with
    /// `PATCH /api/notifications/{id}`, never after.
    notifications: Vec<NotificationView>,
    soul_md_changed: bool,
    /// The current SOUL.md, when `soul_md_changed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    soul_md: Option<String>,
}

/// Report presence; receive undelivered notifications and SOUL.md changes.
#[utoipa::path(post, path = "/api/heartbeat", tag = "agents", request_body = HeartbeatInput,
    params(("X-Agent-Name" = String, Header, description = "the agent, with a squad key")),
    responses((status = 200, body = Data<HeartbeatView>), (status = 400), (status = 401), (status = 403), (status = 429)))]
pub async fn heartbeat(
    State(state): State<AppState>,
    AgentCaller(caller, agent): AgentCaller,
    Json(body): Json<HeartbeatInput>,
) -> Result<axum::Json<Data<HeartbeatView>>, ApiError> {
    let beat = Beat {
        status: body
            .status
            .as_deref()
            .map(AgentStatus::parse)
            .transpose()?
            .unwrap_or(AgentStatus::Active),
        current_task_id: body.current_task_id,
        local_soul_md_hash: body.local_soul_md_hash,
    };
    let reply = state
        .core
        .call_agent(caller.squad_id, agent.id, |reply| {
            AgentMsg::Heartbeat(beat, reply)
        })
        .await??;
    let soul = reply.agent;
    Ok(data(HeartbeatView {
        agent: HeartbeatAgent {
            id: soul.id,
            name: soul.name,
            status: soul.status,
        },
        notifications: reply
            .notifications
            .into_iter()
            .map(NotificationView::from)
            .collect(),
        soul_md_changed: reply.soul_md_changed,
        soul_md: reply.soul_md_changed.then_some(soul.soul_md),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct MeView {
    id: Uuid,
    name: String,
    role: String,
    status: String,
    current_task_id: Option<Uuid>,
    last_heartbeat_at: Option<chrono::DateTime<chrono::Utc>>,
    heartbeat_interval_secs: i32,
    soul_md: String,
    soul_md_hash: String,
}

/// The calling agent's profile, with its SOUL.md.
#[utoipa::path(get, path = "/api/agents/me", tag = "agents",
    params(("X-Agent-Name" = String, Header, description = "the agent, with a squad key")),
    responses((status = 200, body = Data<MeView>), (status = 401), (status = 403)))]
pub async fn me(
    State(state): State<AppState>,
    AgentCaller(caller, agent): AgentCaller,
) -> Result<axum::Json<Data<MeView>>, ApiError> {
    let a = state
        .core
        .call_agent(caller.squad_id, agent.id, AgentMsg::Me)
        .await?;
    Ok(data(MeView {
        id: a.id,
        name: a.name,
        role: a.role,
        status: a.status,
        current_task_id: a.current_task_id,
        last_heartbeat_at: a.last_heartbeat_at,
        heartbeat_interval_secs: a.heartbeat_interval_secs,
        soul_md: a.soul_md,
        soul_md_hash: a.soul_md_hash,
    }))
}
