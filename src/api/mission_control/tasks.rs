//! Tasks: the board's cards, the calling agent's work queue and atomic claims, comments with
//! @mentions, and assignees.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use squadron_actors::domain::{self, Mentions, Priority, TaskStatus};
use squadron_actors::squad::{NewTask, SquadMsg, TaskPatch};
use squadron_actors::store::{self, entity::task, tasks::TaskFilter, Window};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::views::{names, CommentView, TaskView};
use crate::api::envelope::{self, data, list, Data, PageQuery};
use crate::api::extract::{Json, Path, Query};
use crate::auth::{AgentCaller, Caller, SquadCaller};
use crate::error::ApiError;
use crate::state::AppState;

pub const MAX_COMMENT_CHARS: usize = 10_000;
pub const MAX_MENTIONS: usize = 5;

/// The tasks as views, with their assignees, in one query for all of them.
async fn views(state: &AppState, tasks: Vec<task::Model>) -> Result<Vec<TaskView>, ApiError> {
    let ids: Vec<Uuid> = tasks.iter().map(|t| t.id).collect();
    let assignees = store::tasks::assignees(state.db(), &ids).await?;
    Ok(tasks
        .into_iter()
        .map(|t| TaskView::new(t, &assignees))
        .collect())
}

async fn view(state: &AppState, task: task::Model) -> Result<TaskView, ApiError> {
    Ok(views(state, vec![task]).await?.remove(0))
}

async fn live_task(state: &AppState, caller: &Caller, id: Uuid) -> Result<task::Model, ApiError> {
    store::tasks::get(state.db(), caller.squad_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("task"))
}

#[derive(Deserialize, IntoParams)]
pub struct TaskQuery {
    /// inbox, assigned, in_progress, review, done or blocked
    status: Option<String>,
    /// An agent's name.
    assignee: Option<String>,
    /// low, normal, high or urgent
    priority: Option<String>,
}

/// Tasks in a page: 100 by default, at most 500.
const TASK_PAGE: (u64, u64) = (100, 500);
/// Comments in a page: 100 by default, at most 500. A task shows its first page.
const COMMENT_PAGE: (u64, u64) = (100, 500);
/// The most tasks an agent's queue lists.
const QUEUE_MAX: u64 = 500;

/// List the squad's tasks in board order, a page at a time.
#[utoipa::path(get, path = "/api/tasks", tag = "tasks", params(TaskQuery, PageQuery),
    responses((status = 200, body = Data<Vec<TaskView>>), (status = 400), (status = 401)))]
pub async fn index(
    State(state): State<AppState>,
    SquadCaller(caller): SquadCaller,
    Query(query): Query<TaskQuery>,
    Query(page): Query<PageQuery>,
) -> Result<axum::Json<Data<Vec<TaskView>>>, ApiError> {
    let window = page.window(TASK_PAGE.0, TASK_PAGE.1)?;
    let assignee = match &query.assignee {
        Some(name) => Some(
            state
                .directory
                .resolve(state.db(), caller.squad_id, std::slice::from_ref(name))
                .await?[0]
                .id,
        ),
        None => None,
    };
    let filter = TaskFilter {
        status: query
            .status
            .as_deref()
            .map(TaskStatus::parse)
            .transpose()?
            .map(|s| s.as_str().to_owned()),
        priority: query
            .priority
            .as_deref()
            .map(Priority::parse)
            .transpose()?
            .map(|p| p.as_str().to_owned()),
        assignee,
        claimable: false,
    };
    let (tasks, total) = store::tasks::list(state.db(), caller.squad_id, &filter, window).await?;
    Ok(envelope::page(views(&state, tasks).await?, total, window))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    title: String,
    #[serde(default)]
    description: Option<String>,
    /// low, normal (default), high or urgent
    #[serde(default)]
    priority: Option<String>,
    /// Agent names.
    #[serde(default)]
    assignees: Vec<String>,
}

/// Create a task. It starts in `inbox`, with its assignees attached (and notified).
#[utoipa::path(post, path = "/api/tasks", tag = "tasks", request_body = CreateTask,
    responses((status = 201, body = Data<TaskView>), (status = 400), (status = 401)))]
pub async fn create(
    State(state): State<AppState>,
    SquadCaller(caller): SquadCaller,
    Json(body): Json<CreateTask>,
) -> Result<(StatusCode, axum::Json<Data<TaskView>>), ApiError> {
    let new = NewTask {
        title: domain::title("title", &body.title, 200)?,
        description: domain::text(
            "description",
            body.description.as_deref().unwrap_or(""),
            5_000,
        )?,
        priority: body
            .priority
            .as_deref()
            .map(Priority::parse)
            .transpose()?
            .unwrap_or(Priority::Normal),
        assignees: state
            .directory
            .resolve(state.db(), caller.squad_id, &body.assignees)
            .await?,
    };
    let by = caller.author.clone();
    let task = state
        .core
        .call_squad(caller.squad_id, |reply| {
            SquadMsg::CreateTask(by.clone(), new.clone(), reply)
        })
        .await??;
    Ok((StatusCode::CREATED, data(view(&state, task).await?)))
}

/// A task with its assignees and comments.
#[utoipa::path(get, path = "/api/tasks/{id}", tag = "tasks", params(("id" = Uuid, Path)),
    responses((status = 200, body = Data<TaskView>), (status = 401), (status = 404)))]
pub async fn show(
    State(state): State<AppState>,
    SquadCaller(caller): SquadCaller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Data<TaskView>>, ApiError> {
    let task = live_task(&state, &caller, id).await?;
    let mut view = view(&state, task).await?;
    let first = PageQuery::default().window(COMMENT_PAGE.0, COMMENT_PAGE.1)?;
    view.comments = Some(comment_views(&state, &caller, id, first).await?.0);
    Ok(data(view))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchTask {
    status: Option<String>,
    priority: Option<String>,
    title: Option<String>,
    description: Option<String>,
    position: Option<i32>,
}

/// Update a task: status (moves the card), priority, title, description, position.
#[utoipa::path(patch, path = "/api/tasks/{id}", tag = "tasks", params(("id" = Uuid, Path)),
    request_body = PatchTask,
    responses((status = 200, body = Data<TaskView>), (status = 400), (status = 401), (status = 404)))]
pub async fn update(
    State(state): State<AppState>,
    SquadCaller(caller): SquadCaller,
    Path(id): Path<Uuid>,
    Json(body): Json<PatchTask>,
) -> Result<axum::Json<Data<TaskView>>, ApiError> {
    let patch = TaskPatch {
        title: body
            .title
            .as_deref()
            .map(|t| domain::title("title", t, 200))
            .transpose()?,
        description: body
            .description
            .as_deref()
            .map(|d| domain::text("description", d, 5_000))
            .transpose()?,
        status: body.status.as_deref().map(TaskStatus::parse).transpose()?,
        priority: body.priority.as_deref().map(Priority::parse).transpose()?,
        position: body.position,
    };
    if let Some(position) = patch.position {
        if position < 0 {
            return Err(ApiError::Validation("position must not be negative".into()));
        }
    }
    let by = caller.author.clone();
    let task = state
        .core
        .call_squad(caller.squad_id, |reply| {
            SquadMsg::UpdateTask(by.clone(), id, patch.clone(), reply)
        })
        .await??;
    Ok(data(view(&state, task).await?))
}

/// Delete a task (soft: it leaves every list; its pending notifications fail).
#[utoipa::path(delete, path = "/api/tasks/{id}", tag = "tasks", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 401), (status = 404)))]
pub async fn delete(
    State(state): State<AppState>,
    SquadCaller(caller): SquadCaller,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    let by = caller.author.clone();
    state
        .core
        .call_squad(caller.squad_id, |reply| {
            SquadMsg::DeleteTask(by.clone(), id, reply)
        })
        .await??;
    Ok(StatusCode::NO_CONTENT)
}

/// The calling agent's work: tasks assigned to it and not yet claimed, most urgent first,
/// then oldest.
#[utoipa::path(get, path = "/api/tasks/queue", tag = "tasks",
    responses((status = 200, body = Data<Vec<TaskView>>), (status = 401), (status = 403)))]
pub async fn queue(
    State(state): State<AppState>,
    AgentCaller(caller, agent): AgentCaller,
) -> Result<axum::Json<Data<Vec<TaskView>>>, ApiError> {
    let filter = TaskFilter {
        assignee: Some(agent.id),
        claimable: true,
        ..Default::default()
    };
    let first = Window {
        limit: QUEUE_MAX,
        offset: 0,
    };
    let (mut tasks, _) = store::tasks::list(state.db(), caller.squad_id, &filter, first).await?;
    let urgency = |t: &task::Model| {
        std::cmp::Reverse(Priority::parse(&t.priority).unwrap_or(Priority::Normal))
    };
    tasks.sort_by(|a, b| {
        urgency(a)
            .cmp(&urgency(b))
            .then(a.created_at.cmp(&b.created_at))
    });
    Ok(list(views(&state, tasks).await?))
}

/// Claim a task: it moves to `in_progress` as the caller's. Of agents racing for one task,
/// exactly one wins; the others get 409.
#[utoipa::path(post, path = "/api/tasks/{id}/claim", tag = "tasks", params(("id" = Uuid, Path)),
    responses((status = 200, body = Data<TaskView>), (status = 401), (status = 403), (status = 404), (status = 409)))]
pub async fn claim(
    State(state): State<AppState>,
    AgentCaller(caller, agent): AgentCaller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Data<TaskView>>, ApiError> {
    let task = state
        .core
        .call_squad(caller.squad_id, |reply| {
            SquadMsg::ClaimTask(agent.clone(), id, reply)
        })
        .await??;
    Ok(data(view(&state, task).await?))
}

async fn comment_views(
    state: &AppState,
    caller: &Caller,
    task_id: Uuid,
    window: Window,
) -> Result<(Vec<CommentView>, u64), ApiError> {
    let (comments, total) = store::tasks::comments(state.db(), task_id, window).await?;
    let agents = store::squads::agents(state.db(), caller.squad_id).await?;
    let names: HashMap<Uuid, String> = names(&agents);
    let views = comments
        .into_iter()
        .map(|c| CommentView::new(c, &names))
        .collect();
    Ok((views, total))
}

/// The comments on a task, oldest first, a page at a time.
#[utoipa::path(get, path = "/api/tasks/{id}/comments", tag = "comments", params(("id" = Uuid, Path), PageQuery),
    responses((status = 200, body = Data<Vec<CommentView>>), (status = 401), (status = 404)))]
pub async fn comments(
    State(state): State<AppState>,
    SquadCaller(caller): SquadCaller,
    Path(id): Path<Uuid>,
    Query(page): Query<PageQuery>,
) -> Result<axum::Json<Data<Vec<CommentView>>>, ApiError> {
    let window = page.window(COMMENT_PAGE.0, COMMENT_PAGE.1)?;
    live_task(&state, &caller, id).await?;
    let (views, total) = comment_views(&state, &caller, id, window).await?;
    Ok(envelope::page(views, total, window))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateComment {
    /// At most 10,000 characters and 5 @mentions; HTML is sanitized.
    content: String,
}

/// Comment on a task. `@Name` and `@all` notify (never the author, never on a done task);
/// the thread's subscribers hear of it; the author and the mentioned are subscribed.
#[utoipa::path(post, path = "/api/tasks/{id}/comments", tag = "comments", params(("id" = Uuid, Path)),
    request_body = CreateComment,
    responses((status = 201, body = Data<CommentView>), (status = 400), (status = 401), (status = 404)))]
pub async fn comment(
    State(state): State<AppState>,
    SquadCaller(caller): SquadCaller,
    Path(id): Path<Uuid>,
    Json(body): Json<CreateComment>,
) -> Result<(StatusCode, axum::Json<Data<CommentView>>), ApiError> {
    let chars = body.content.chars().count();
    if chars > MAX_COMMENT_CHARS {
        return Err(ApiError::Validation(format!(
            "content is {chars} characters; at most {MAX_COMMENT_CHARS} are allowed"
        )));
    }
    let content = ammonia::clean(body.content.trim());
    if content.trim().is_empty() {
        return Err(ApiError::Validation("content must not be empty".into()));
    }
    let mentions = Mentions::parse(&content).count();
    if mentions > MAX_MENTIONS {
        return Err(ApiError::Validation(format!(
            "{mentions} @mentions; at most {MAX_MENTIONS} per message are allowed"
        )));
    }
    let by = caller.author.clone();
    let comment = state
        .core
        .call_squad(caller.squad_id, |reply| {
            SquadMsg::Comment(by.clone(), id, content.clone(), reply)
        })
        .await??;
    let mut names = HashMap::new();
    if let squadron_actors::squad::Author::Agent(a) = &caller.author {
        names.insert(a.id, a.name.clone());
    }
    Ok((StatusCode::CREATED, data(CommentView::new(comment, &names))))
}

#[derive(serde::Serialize, ToSchema)]
pub struct AssigneeView {
    /// The assignment's id.
    id: Uuid,
    agent_id: Uuid,
    #[schema(value_type = Object)]
    agent: serde_json::Value,
    assigned_at: chrono::DateTime<chrono::Utc>,
}

async fn assignee_views(state: &AppState, task_id: Uuid) -> Result<Vec<AssigneeView>, ApiError> {
    let mut by_task = store::tasks::assignees(state.db(), &[task_id]).await?;
    Ok(by_task
        .remove(&task_id)
        .unwrap_or_default()
        .into_iter()
        .map(|(assignment, agent)| AssigneeView {
            id: assignment.id,
            agent_id: agent.id,
            agent: serde_json::json!({ "name": agent.name, "role": agent.role }),
            assigned_at: assignment.assigned_at,
        })
        .collect())
}

/// A task's assignees.
#[utoipa::path(get, path = "/api/tasks/{id}/assignees", tag = "assignees", params(("id" = Uuid, Path)),
    responses((status = 200, body = Data<Vec<AssigneeView>>), (status = 401), (status = 404)))]
pub async fn assignees(
    State(state): State<AppState>,
    SquadCaller(caller): SquadCaller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Data<Vec<AssigneeView>>>, ApiError> {
    live_task(&state, &caller, id).await?;
    Ok(list(assignee_views(&state, id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignInput {
    agent_names: Vec<String>,
}

/// Assign agents to a task (they are notified and subscribed); returns all assignees.
#[utoipa::path(post, path = "/api/tasks/{id}/assignees", tag = "assignees", params(("id" = Uuid, Path)),
    request_body = AssignInput,
    responses((status = 200, body = Data<Vec<AssigneeView>>), (status = 400), (status = 401), (status = 404)))]
pub async fn assign(
    State(state): State<AppState>,
    SquadCaller(caller): SquadCaller,
    Path(id): Path<Uuid>,
    Json(body): Json<AssignInput>,
) -> Result<axum::Json<Data<Vec<AssigneeView>>>, ApiError> {
    if body.agent_names.is_empty() {
        return Err(ApiError::Validation(
            "agent_names must name at least one agent".into(),
        ));
    }
    let agents = state
        .directory
        .resolve(state.db(), caller.squad_id, &body.agent_names)
        .await?;
    let by = caller.author.clone();
    state
        .core
        .call_squad(caller.squad_id, |reply| {
            SquadMsg::Assign(by.clone(), id, agents.clone(), reply)
        })
        .await??;
    Ok(list(assignee_views(&state, id).await?))
}

#[derive(Deserialize, IntoParams)]
pub struct UnassignQuery {
    agent_id: Option<Uuid>,
}

/// Remove an assignee (`?agent_id=`).
#[utoipa::path(delete, path = "/api/tasks/{id}/assignees", tag = "assignees",
    params(("id" = Uuid, Path), UnassignQuery),
    responses((status = 204), (status = 400), (status = 401), (status = 404)))]
pub async fn unassign(
    State(state): State<AppState>,
    SquadCaller(caller): SquadCaller,
    Path(id): Path<Uuid>,
    Query(query): Query<UnassignQuery>,
) -> Result<StatusCode, ApiError> {
    let agent_id = query
        .agent_id
        .ok_or_else(|| ApiError::Validation("agent_id is required".into()))?;
    let by = caller.author.clone();
    state
        .core
        .call_squad(caller.squad_id, |reply| {
            SquadMsg::Unassign(by.clone(), id, agent_id, reply)
        })
        .await??;
    Ok(StatusCode::NO_CONTENT)
}
