//! Tasks of a squad's board, their assignees, comments and thread subscribers.

use std::collections::HashMap;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait,
};
use uuid::Uuid;

use crate::domain::TaskStatus;

use super::entity::agent::{self, Entity as Agents};
use super::entity::comment::{self, Entity as Comments};
use super::entity::task::{self, Entity as Tasks};
use super::entity::task_assignee::{self, Entity as TaskAssignees};
use super::entity::task_subscription::{self, Entity as TaskSubscriptions};

#[derive(Default, Debug, Clone)]
pub struct TaskFilter {
    pub status: Option<String>,
    pub priority: Option<String>,
    /// Only tasks assigned to this agent.
    pub assignee: Option<Uuid>,
    /// Only tasks nobody claimed yet that are still in `inbox` or `assigned`.
    pub claimable: bool,
}

/// A live (not deleted) task of the squad.
pub async fn get(
    db: &impl ConnectionTrait,
    squad_id: Uuid,
    id: Uuid,
) -> Result<Option<task::Model>, DbErr> {
    Tasks::find_by_id(id)
        .filter(task::Column::SquadId.eq(squad_id))
        .filter(task::Column::DeletedAt.is_null())
        .one(db)
        .await
}

/// A window of the squad's live tasks in board order (position, then age), and how many
/// match in all.
pub async fn list(
    db: &impl ConnectionTrait,
    squad_id: Uuid,
    filter: &TaskFilter,
    window: super::Window,
) -> Result<(Vec<task::Model>, u64), DbErr> {
    let mut query = Tasks::find()
        .filter(task::Column::SquadId.eq(squad_id))
        .filter(task::Column::DeletedAt.is_null());
    if let Some(status) = &filter.status {
        query = query.filter(task::Column::Status.eq(status.as_str()));
    }
    if let Some(priority) = &filter.priority {
        query = query.filter(task::Column::Priority.eq(priority.as_str()));
    }
    if filter.claimable {
        query = query.filter(task::Column::ClaimedBy.is_null()).filter(
            task::Column::Status.is_in([TaskStatus::Inbox.as_str(), TaskStatus::Assigned.as_str()]),
        );
    }
    if let Some(agent_id) = filter.assignee {
        let assigned = TaskAssignees::find()
            .select_only()
            .column(task_assignee::Column::TaskId)
            .filter(task_assignee::Column::AgentId.eq(agent_id))
            .into_query();
        query = query.filter(task::Column::Id.in_subquery(assigned));
    }
    let query = query
        .order_by_asc(task::Column::Position)
        .order_by_asc(task::Column::CreatedAt)
        .order_by_asc(task::Column::Id);
    super::paged(db, query, window).await
}

/// The titles of the squad's live tasks among `ids`.
pub async fn titles(
    db: &impl ConnectionTrait,
    squad_id: Uuid,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, String>, DbErr> {
    let rows: Vec<(Uuid, String)> = Tasks::find()
        .select_only()
        .column(task::Column::Id)
        .column(task::Column::Title)
        .filter(task::Column::SquadId.eq(squad_id))
        .filter(task::Column::Id.is_in(ids.iter().copied()))
        .filter(task::Column::DeletedAt.is_null())
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().collect())
}

/// The highest position among the squad's live tasks of `status`, if any.
pub async fn max_position(
    db: &impl ConnectionTrait,
    squad_id: Uuid,
    status: &str,
) -> Result<Option<i32>, DbErr> {
    let max: Option<Option<i32>> = Tasks::find()
        .select_only()
        .column_as(task::Column::Position.max(), "max_position")
        .filter(task::Column::SquadId.eq(squad_id))
        .filter(task::Column::Status.eq(status))
        .filter(task::Column::DeletedAt.is_null())
        .into_tuple()
        .one(db)
        .await?;
    Ok(max.flatten())
}

/// The assignees of each of `task_ids`, oldest assignment first, with their agents.
pub async fn assignees(
    db: &impl ConnectionTrait,
    task_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<(task_assignee::Model, agent::Model)>>, DbErr> {
    let rows = TaskAssignees::find()
        .find_also_related(Agents)
        .filter(task_assignee::Column::TaskId.is_in(task_ids.iter().copied()))
        .order_by_asc(task_assignee::Column::AssignedAt)
        .all(db)
        .await?;
    let mut by_task: HashMap<Uuid, Vec<_>> = HashMap::new();
    for (assignment, agent) in rows {
        if let Some(agent) = agent {
            by_task
                .entry(assignment.task_id)
                .or_default()
                .push((assignment, agent));
        }
    }
    Ok(by_task)
}

/// A window of the task's comments, oldest first, and how many it has in all.
pub async fn comments(
    db: &impl ConnectionTrait,
    task_id: Uuid,
    window: super::Window,
) -> Result<(Vec<comment::Model>, u64), DbErr> {
    let query = Comments::find()
        .filter(comment::Column::TaskId.eq(task_id))
        .order_by_asc(comment::Column::CreatedAt)
        .order_by_asc(comment::Column::Id);
    super::paged(db, query, window).await
}

pub async fn subscribers(db: &impl ConnectionTrait, task_id: Uuid) -> Result<Vec<Uuid>, DbErr> {
    TaskSubscriptions::find()
        .select_only()
        .column(task_subscription::Column::AgentId)
        .filter(task_subscription::Column::TaskId.eq(task_id))
        .into_tuple()
        .all(db)
        .await
}
