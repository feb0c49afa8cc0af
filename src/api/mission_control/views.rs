//! What Mission Control responses show of tasks, comments, agents and the rest (seed 002's
//! shapes), built from store rows.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use squadron_actors::store::entity::{
    agent, comment, document, event, notification, task, task_assignee, watch_item,
};
use utoipa::ToSchema;
use uuid::Uuid;

/// An agent by id and name.
#[derive(Serialize, ToSchema, Clone)]
pub struct AgentBrief {
    pub id: Uuid,
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct TaskView {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    pub status: String,
    pub priority: String,
    pub position: i32,
    pub assignees: Vec<AgentBrief>,
    pub claimed_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Only on `GET /api/tasks/{id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comments: Option<Vec<CommentView>>,
}

type Assignees = HashMap<Uuid, Vec<(task_assignee::Model, agent::Model)>>;

impl TaskView {
    pub fn new(task: task::Model, assignees: &Assignees) -> TaskView {
        let assignees = assignees
            .get(&task.id)
            .into_iter()
            .flatten()
            .map(|(_, a)| AgentBrief {
                id: a.id,
                name: a.name.clone(),
            })
            .collect();
        TaskView {
            id: task.id,
            title: task.title,
            description: task.description,
            status: task.status,
            priority: task.priority,
            position: task.position,
            assignees,
            claimed_by: task.claimed_by,
            created_at: task.created_at,
            updated_at: task.updated_at,
            comments: None,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CommentView {
    pub id: Uuid,
    pub task_id: Uuid,
    pub content: String,
    pub from_agent: Option<AgentBrief>,
    pub from_human: bool,
    pub created_at: DateTime<Utc>,
}

impl CommentView {
    /// `names` maps agent ids to names, for the author.
    pub fn new(c: comment::Model, names: &HashMap<Uuid, String>) -> CommentView {
        CommentView {
            id: c.id,
            task_id: c.task_id,
            from_agent: c.from_agent_id.map(|id| AgentBrief {
                id,
                name: names.get(&id).cloned().unwrap_or_default(),
            }),
            from_human: c.from_human,
            content: c.content,
            created_at: c.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct NotificationView {
    pub id: Uuid,
    /// `mention`, `comment` or `assignment`.
    pub kind: String,
    pub content: String,
    pub task_id: Option<Uuid>,
    pub message_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

impl From<notification::Model> for NotificationView {
    fn from(n: notification::Model) -> Self {
        NotificationView {
            id: n.id,
            kind: n.kind,
            content: n.content,
            task_id: n.task_id,
            message_id: n.message_id,
            created_at: n.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DocumentView {
    pub id: Uuid,
    pub title: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub task_id: Option<Uuid>,
    pub created_by: Option<AgentBrief>,
    /// Not in lists; on `GET /api/documents/{id}` and writes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl DocumentView {
    pub fn new(
        d: document::Model,
        names: &HashMap<Uuid, String>,
        with_content: bool,
    ) -> DocumentView {
        DocumentView {
            id: d.id,
            title: d.title,
            kind: d.kind,
            task_id: d.task_id,
            created_by: d.created_by.map(|id| AgentBrief {
                id,
                name: names.get(&id).cloned().unwrap_or_default(),
            }),
            content: with_content.then_some(d.content),
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct WatchItemView {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    /// `watching`, `triggered` or `resolved`.
    pub status: String,
    pub url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<watch_item::Model> for WatchItemView {
    fn from(w: watch_item::Model) -> Self {
        WatchItemView {
            id: w.id,
            title: w.title,
            description: w.description,
            status: w.status,
            url: w.url,
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

/// One entry of the activity feed: a stored event, told for people.
#[derive(Serialize, ToSchema)]
pub struct ActivityView {
    pub id: Uuid,
    pub seq: i64,
    /// The event kind with `_` for `.`, e.g. `task_status_changed`.
    #[serde(rename = "type")]
    pub kind: String,
    #[schema(value_type = Option<Object>)]
    pub agent: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub task: Option<serde_json::Value>,
    pub message: String,
    pub created_at: DateTime<Utc>,
}

impl From<event::Model> for ActivityView {
    fn from(e: event::Model) -> Self {
        let field = |name: &str| e.data.get(name).filter(|v| !v.is_null()).cloned();
        ActivityView {
            id: e.id,
            seq: e.seq,
            kind: e.kind.replace('.', "_"),
            agent: field("by").filter(|by| by.get("name").is_some()),
            task: field("task"),
            message: field("message")
                .and_then(|m| m.as_str().map(str::to_owned))
                .unwrap_or_default(),
            created_at: e.created_at,
        }
    }
}

/// Names of the given agents (for authors), from rows already at hand.
pub fn names(agents: &[agent::Model]) -> HashMap<Uuid, String> {
    agents.iter().map(|a| (a.id, a.name.clone())).collect()
}
