//! Squad-wide views: the agents with their presence, the Kanban board, the activity feed.

use std::collections::BTreeMap;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use squadron_actors::domain::TaskStatus;
use squadron_actors::store::{self, tasks::TaskFilter};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::views::{ActivityView, TaskView};
use crate::api::envelope::{self, data, list, Data, PageQuery};
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
    current_task: Option<CurrentTask>,
    last_heartbeat_at: Option<chrono::DateTime<chrono::Utc>>,
    heartbeat_interval_secs: i32,
}

/// The task an agent said it works on.
#[derive(Serialize, ToSchema)]
pub struct CurrentTask {
    id: Uuid,
    title: String,
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
    let current: Vec<Uuid> = agents.iter().filter_map(|a| a.current_task_id).collect();
    let titles = store::tasks::titles(state.db(), caller.squad_id, &current).await?;
    let title = |id: Uuid| titles.get(&id).cloned();
    Ok(list(
        agents
            .into_iter()
            .map(|a| SquadAgentView {
                current_task: a
                    .current_task_id
                    .and_then(|id| title(id).map(|title| CurrentTask { id, title })),
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BoardQuery {
    /// Cards per column: 100 by default, at most 500. `meta.totals` says how many each
    /// column holds; `GET /api/tasks?status=` pages through one.
    limit: Option<u64>,
}

/// The Kanban board: one list per status, each in position order, each up to `limit` cards.
#[utoipa::path(get, path = "/api/squad/tasks", tag = "squad", params(BoardQuery),
    responses((status = 200, body = Data<BTreeMap<String, Vec<TaskView>>>), (status = 400), (status = 401)))]
pub async fn tasks(
    State(state): State<AppState>,
    SquadCaller(caller): SquadCaller,
    Query(query): Query<BoardQuery>,
) -> Result<axum::Json<Data<BTreeMap<String, Vec<TaskView>>>>, ApiError> {
    let window = PageQuery {
        limit: query.limit,
        offset: None,
    }
    .window(100, 500)?;
    let mut board = BTreeMap::new();
    let mut totals = BTreeMap::new();
    for status in TaskStatus::ALL {
        let filter = TaskFilter {
            status: Some(status.as_str().to_owned()),
            ..Default::default()
        };
        let (tasks, total) =
            store::tasks::list(state.db(), caller.squad_id, &filter, window).await?;
        let ids: Vec<Uuid> = tasks.iter().map(|t| t.id).collect();
        let assignees = store::tasks::assignees(state.db(), &ids).await?;
        let column: Vec<TaskView> = tasks
            .into_iter()
            .map(|t| TaskView::new(t, &assignees))
            .collect();
        board.insert(status.as_str().to_owned(), column);
        totals.insert(status.as_str().to_owned(), total);
    }
    let axum::Json(mut reply) = data(board);
    reply.meta.totals = Some(totals);
    Ok(axum::Json(reply))
}

/// The squad's recent activity, newest first: 50 a page by default, at most 500.
#[utoipa::path(get, path = "/api/squad/activities", tag = "squad", params(PageQuery),
    responses((status = 200, body = Data<Vec<ActivityView>>), (status = 400), (status = 401)))]
pub async fn activities(
    State(state): State<AppState>,
    SquadCaller(caller): SquadCaller,
    Query(page): Query<PageQuery>,
) -> Result<axum::Json<Data<Vec<ActivityView>>>, ApiError> {
    let window = page.window(50, 500)?;
    let (events, total) = store::events::recent(state.db(), caller.squad_id, window).await?;
    Ok(envelope::page(
        events.into_iter().map(ActivityView::from).collect(),
        total,
        window,
    ))
}
