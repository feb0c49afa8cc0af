//! Organizations: the tenants. Every other row belongs to one.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Set,
};
use uuid::Uuid;

use super::entity::organization::{self, Entity as Organizations};

pub async fn find_by_name(
    db: &impl ConnectionTrait,
    name: &str,
) -> Result<Option<organization::Model>, sea_orm::DbErr> {
    Organizations::find()
        .filter(organization::Column::Name.eq(name))
        .one(db)
        .await
}

/// The organization called `name`, created if it does not exist yet.
pub async fn find_or_create(
    db: &impl ConnectionTrait,
    name: &str,
) -> Result<organization::Model, sea_orm::DbErr> {
    if let Some(org) = find_by_name(db, name).await? {
        return Ok(org);
    }
    organization::ActiveModel {
        id: Set(Uuid::new_v4()),
        name: Set(name.to_owned()),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await
}

pub async fn count(db: &impl ConnectionTrait) -> Result<u64, sea_orm::DbErr> {
    Organizations::find().count(db).await
}
