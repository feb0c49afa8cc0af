//! Documents and watch items of a squad.

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use super::entity::document::{self, Entity as Documents};
use super::entity::watch_item::{self, Entity as WatchItems};

/// A window of the squad's documents, newest first, and how many match in all.
pub async fn documents(
    db: &impl ConnectionTrait,
    squad_id: Uuid,
    kind: Option<&str>,
    task_id: Option<Uuid>,
    window: super::Window,
) -> Result<(Vec<document::Model>, u64), DbErr> {
    let mut query = Documents::find().filter(document::Column::SquadId.eq(squad_id));
    if let Some(kind) = kind {
        query = query.filter(document::Column::Kind.eq(kind));
    }
    if let Some(task_id) = task_id {
        query = query.filter(document::Column::TaskId.eq(task_id));
    }
    let query = query
        .order_by_desc(document::Column::CreatedAt)
        .order_by_desc(document::Column::Id);
    super::paged(db, query, window).await
}

pub async fn document(
    db: &impl ConnectionTrait,
    squad_id: Uuid,
    id: Uuid,
) -> Result<Option<document::Model>, DbErr> {
    Documents::find_by_id(id)
        .filter(document::Column::SquadId.eq(squad_id))
        .one(db)
        .await
}

/// A window of the squad's watch items, newest first, and how many it has in all.
pub async fn watch_items(
    db: &impl ConnectionTrait,
    squad_id: Uuid,
    window: super::Window,
) -> Result<(Vec<watch_item::Model>, u64), DbErr> {
    let query = WatchItems::find()
        .filter(watch_item::Column::SquadId.eq(squad_id))
        .order_by_desc(watch_item::Column::CreatedAt)
        .order_by_desc(watch_item::Column::Id);
    super::paged(db, query, window).await
}

pub async fn watch_item(
    db: &impl ConnectionTrait,
    squad_id: Uuid,
    id: Uuid,
) -> Result<Option<watch_item::Model>, DbErr> {
    WatchItems::find_by_id(id)
        .filter(watch_item::Column::SquadId.eq(squad_id))
        .one(db)
        .await
}
