//! The per-squad event log: what the live layer publishes, kept so that a subscriber can
//! replay what it missed.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use uuid::Uuid;

use super::entity::event::{self, Entity as Events};

pub async fn append(
    db: &impl ConnectionTrait,
    squad_id: Uuid,
    seq: i64,
    kind: &str,
    data: serde_json::Value,
) -> Result<event::Model, DbErr> {
    event::ActiveModel {
        id: Set(Uuid::new_v4()),
        squad_id: Set(squad_id),
        seq: Set(seq),
        kind: Set(kind.to_owned()),
        data: Set(data),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await
}

/// The highest sequence number used in the squad, 0 when it has none.
pub async fn last_seq(db: &impl ConnectionTrait, squad_id: Uuid) -> Result<i64, DbErr> {
    let max: Option<Option<i64>> = Events::find()
        .select_only()
        .column_as(event::Column::Seq.max(), "max_seq")
        .filter(event::Column::SquadId.eq(squad_id))
        .into_tuple()
        .one(db)
        .await?;
    Ok(max.flatten().unwrap_or(0))
}

/// Up to `limit` events of the squad with `seq > since`, oldest first.
pub async fn after(
    db: &impl ConnectionTrait,
    squad_id: Uuid,
    since: i64,
    limit: u64,
) -> Result<Vec<event::Model>, DbErr> {
    Events::find()
        .filter(event::Column::SquadId.eq(squad_id))
        .filter(event::Column::Seq.gt(since))
        .order_by_asc(event::Column::Seq)
        .limit(limit)
        .all(db)
        .await
}

/// A window of the squad's events newest first, and how many it has in all.
pub async fn recent(
    db: &impl ConnectionTrait,
    squad_id: Uuid,
    window: super::Window,
) -> Result<(Vec<event::Model>, u64), DbErr> {
    let query = Events::find()
        .filter(event::Column::SquadId.eq(squad_id))
        .order_by_desc(event::Column::Seq);
    super::paged(db, query, window).await
}
