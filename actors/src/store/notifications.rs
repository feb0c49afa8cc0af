//! Notifications: who must hear of a mention, a comment or an assignment, until they say
//! they have.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
};
use uuid::Uuid;

use super::entity::notification::{self, Entity as Notifications};

/// The agent's notifications not yet delivered (and still deliverable), oldest first.
pub async fn pending(
    db: &impl ConnectionTrait,
    agent_id: Uuid,
) -> Result<Vec<notification::Model>, DbErr> {
    Notifications::find()
        .filter(notification::Column::AgentId.eq(agent_id))
        .filter(notification::Column::DeliveredAt.is_null())
        .filter(notification::Column::FailedAt.is_null())
        .order_by_asc(notification::Column::CreatedAt)
        .all(db)
        .await
}

pub async fn get(
    db: &impl ConnectionTrait,
    agent_id: Uuid,
    id: Uuid,
) -> Result<Option<notification::Model>, DbErr> {
    Notifications::find_by_id(id)
        .filter(notification::Column::AgentId.eq(agent_id))
        .one(db)
        .await
}

/// Marks it delivered unless it already is; returns whether this call did it.
pub async fn mark_delivered(
    db: &impl ConnectionTrait,
    id: Uuid,
    at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let result = Notifications::update_many()
        .col_expr(notification::Column::DeliveredAt, Expr::value(at))
        .filter(notification::Column::Id.eq(id))
        .filter(notification::Column::DeliveredAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Pending notifications about a task that is gone can never be acted on: they fail.
/// Returns the ones that failed.
pub async fn fail_for_task(
    db: &impl ConnectionTrait,
    task_id: Uuid,
) -> Result<Vec<notification::Model>, DbErr> {
    let pending: Vec<notification::Model> = Notifications::find()
        .filter(notification::Column::TaskId.eq(task_id))
        .filter(notification::Column::DeliveredAt.is_null())
        .filter(notification::Column::FailedAt.is_null())
        .all(db)
        .await?;
    Notifications::update_many()
        .col_expr(notification::Column::FailedAt, Expr::value(Utc::now()))
        .filter(notification::Column::Id.is_in(pending.iter().map(|n| n.id)))
        .exec(db)
        .await?;
    Ok(pending)
}

pub struct Health {
    pub pending: u64,
    pub failed: u64,
    pub oldest_pending: Option<DateTime<Utc>>,
}

/// Queue health for one agent.
pub async fn health(db: &impl ConnectionTrait, agent_id: Uuid) -> Result<Health, DbErr> {
    let mine = || Notifications::find().filter(notification::Column::AgentId.eq(agent_id));
    let pending = mine()
        .filter(notification::Column::DeliveredAt.is_null())
        .filter(notification::Column::FailedAt.is_null());
    let oldest = pending
        .clone()
        .order_by_asc(notification::Column::CreatedAt)
        .one(db)
        .await?;
    Ok(Health {
        pending: pending.count(db).await?,
        failed: mine()
            .filter(notification::Column::FailedAt.is_not_null())
            .count(db)
            .await?,
        oldest_pending: oldest.map(|n| n.created_at),
    })
}
