//! Squad-wide views: the agents with their presence, the Kanban board, the activity feed.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use squadron_actors::domain::TaskStatus;
use squadron_actors::store::{self, tasks::TaskFilter};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::views::{ActivityView, TaskView};
use crate::api::envelope::{data, list, Data};
use crate::api::extract::Query;
use crate::auth::SquadCaller;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct SquadAgentView {
    id: Uuid,
    name: String,
    role: String,
    status: String,
    #[schema(value_type = Option<Object>)]
    current_task: Option<serde_json::Value>,
    last_heartbeat_at: Option<chrono::DateTime<chrono::Utc>>,
    heartbeat_interval_secs: i32,
}

/// The squad's agents, with status, current task and last heartbeat (presence not yet
/// written to the store included).
#[utoipa::path(get, path = "/api/squad/agents", tag = "squad",
    responses((status = 200, body = Data<Vec<SquadAgentView>>), (status = 401)))]
pub async fn agents(
    State(state): State<AppState>,
    SquadCaller(caller): SquadCaller,
) -> Result<axum::Json<Data<Vec<SquadAgentView>>>, ApiError> {
    let mut agents = store::squads::agents(state.db(), caller.squad_id).await?;
    for agent in &mut agents {
        state.core.shared.presence.overlay(agent);
    }
    let tasks = store::tasks::list(state.db(), caller.squad_id, &TaskFilter::default()).await?;
    let title = |id: Uuid| tasks.iter().find(|t| t.id == id).map(|t| t.title.clone());
    Ok(list(
        agents
            .into_iter()
            .map(|a| SquadAgentView {
                current_task: a.current_task_id.and_then(|id| {
                    title(id).map(|title| serde_json::json!({ "id": id, "title": title }))
                }),
                id: a.id,
                name: a.name,
                role: a.role,
                status: a.status,
                last_heartbeat_at: a.last_heartbeat_at,
                heartbeat_interval_secs: a.heartbeat_interval_secs,
            })
            .collect(),
    ))
}

/// The Kanban board: one list per status, each in position order.
#[utoipa::path(get, path = "/api/squad/tasks", tag = "squad",
    responses((status = 200, body = Data<Object>), (status = 401)))]
pub async fn tasks(
    State(state): State<AppState>,
    SquadCaller(caller): SquadCaller,
) -> Result<axum::Json<Data<serde_json::Map<String, serde_json::Value>>>, ApiError> {
    let tasks = store::tasks::list(state.db(), caller.squad_id, &TaskFilter::default()).await?;
    let ids: Vec<Uuid> = tasks.iter().map(|t| t.id).collect();
    let assignees = store::tasks::assignees(state.db(), &ids).await?;
    let mut board = serde_json::Map::new();
    for status in TaskStatus::ALL {
        let column: Vec<TaskView> = tasks
            .iter()
            .filter(|t| t.status == status.as_str())
            .map(|t| TaskView::new(t.clone(), &assignees))
            .collect();
        board.insert(
            status.as_str().to_owned(),
            serde_json::to_value(column).map_err(anyhow::Error::from)?,
        );
    }
    Ok(data(board))
}

#[derive(Deserialize, IntoParams)]
pub struct Page {
    /// Default 50, at most 500.
    limit: Option<u64>,
    offset: Option<u64>,
}

/// The squad's recent activity, newest first.
#[utoipa::path(get, path = "/api/squad/activities", tag = "squad", params(Page),
    responses((status = 200, body = Data<Vec<ActivityView>>), (status = 400), (status = 401)))]
pub async fn activities(
    State(state): State<AppState>,
    SquadCaller(caller): SquadCaller,
    Query(page): Query<Page>,
) -> Result<axum::Json<Data<Vec<ActivityView>>>, ApiError> {
    let limit = page.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::Validation("limit must be 1 to 500".into()));
    }
    let events =
        store::events::recent(state.db(), caller.squad_id, limit, page.offset.unwrap_or(0)).await?;
    Ok(list(events.into_iter().map(ActivityView::from).collect()))
}
