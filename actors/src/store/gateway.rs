//! Upstream providers and the account's models.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use super::entity::agent::{self, Entity as Agents};
use super::entity::model::{self, Entity as Models};
use super::entity::provider::{self, Entity as Providers};

pub struct NewProvider {
    pub name: String,
    pub base_url: String,
    pub api_key_sealed: Option<String>,
    pub headers_sealed: Option<String>,
    /// May reach private addresses (see the server's outbound policy).
    pub allow_private: bool,
}

pub async fn insert_provider(
    db: &impl ConnectionTrait,
    org_id: Uuid,
    new: NewProvider,
) -> Result<provider::Model, DbErr> {
    provider::ActiveModel {
        id: Set(Uuid::new_v4()),
        org_id: Set(org_id),
        name: Set(new.name),
        base_url: Set(new.base_url),
        api_key_sealed: Set(new.api_key_sealed),
        headers_sealed: Set(new.headers_sealed),
        allow_private: Set(new.allow_private),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await
}

pub async fn providers(
    db: &impl ConnectionTrait,
    org_id: Uuid,
) -> Result<Vec<provider::Model>, DbErr> {
    Providers::find()
        .filter(provider::Column::OrgId.eq(org_id))
        .order_by_asc(provider::Column::Name)
        .all(db)
        .await
}

pub async fn provider_by_name(
    db: &impl ConnectionTrait,
    org_id: Uuid,
    name: &str,
) -> Result<Option<provider::Model>, DbErr> {
    Providers::find()
        .filter(provider::Column::OrgId.eq(org_id))
        .filter(provider::Column::Name.eq(name))
        .one(db)
        .await
}

pub async fn provider(
    db: &impl ConnectionTrait,
    org_id: Uuid,
    id: Uuid,
) -> Result<Option<provider::Model>, DbErr> {
    Providers::find_by_id(id)
        .filter(provider::Column::OrgId.eq(org_id))
        .one(db)
        .await
}

pub async fn delete_provider(db: &impl ConnectionTrait, id: Uuid) -> Result<(), DbErr> {
    Providers::delete_by_id(id).exec(db).await.map(|_| ())
}

/// How many models use the provider.
pub async fn models_of_provider(
    db: &impl ConnectionTrait,
    provider_id: Uuid,
) -> Result<u64, DbErr> {
    Models::find()
        .filter(model::Column::ProviderId.eq(provider_id))
        .count(db)
        .await
}

pub struct NewModel {
    pub name: String,
    pub provider_id: Uuid,
    pub upstream_model: String,
    pub kind: String,
    pub dimensions: Option<i32>,
}

pub async fn insert_model(
    db: &impl ConnectionTrait,
    org_id: Uuid,
    new: NewModel,
) -> Result<model::Model, DbErr> {
    model::ActiveModel {
        id: Set(Uuid::new_v4()),
        org_id: Set(org_id),
        name: Set(new.name),
        provider_id: Set(new.provider_id),
        upstream_model: Set(new.upstream_model),
        kind: Set(new.kind),
        dimensions: Set(new.dimensions),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await
}

pub async fn models(db: &impl ConnectionTrait, org_id: Uuid) -> Result<Vec<model::Model>, DbErr> {
    Models::find()
        .filter(model::Column::OrgId.eq(org_id))
        .order_by_asc(model::Column::Name)
        .all(db)
        .await
}

pub async fn model_by_id(
    db: &impl ConnectionTrait,
    org_id: Uuid,
    id: Uuid,
) -> Result<Option<model::Model>, DbErr> {
    Models::find_by_id(id)
        .filter(model::Column::OrgId.eq(org_id))
        .one(db)
        .await
}

pub async fn model_by_name(
    db: &impl ConnectionTrait,
    org_id: Uuid,
    name: &str,
) -> Result<Option<model::Model>, DbErr> {
    Models::find()
        .filter(model::Column::OrgId.eq(org_id))
        .filter(model::Column::Name.eq(name))
        .one(db)
        .await
}

/// The account's agents that answer in the gateway (they have a model).
pub async fn agents(db: &impl ConnectionTrait, org_id: Uuid) -> Result<Vec<agent::Model>, DbErr> {
    Agents::find()
        .filter(agent::Column::OrgId.eq(org_id))
        .filter(agent::Column::ModelId.is_not_null())
        .order_by_asc(agent::Column::Name)
        .all(db)
        .await
}

pub async fn agent_by_name(
    db: &impl ConnectionTrait,
    org_id: Uuid,
    name: &str,
) -> Result<Option<agent::Model>, DbErr> {
    Agents::find()
        .filter(agent::Column::OrgId.eq(org_id))
        .filter(agent::Column::ModelId.is_not_null())
        .filter(agent::Column::NameKey.eq(name.trim().to_ascii_lowercase()))
        .one(db)
        .await
}

/// How many agents answer with the model.
pub async fn agents_of_model(db: &impl ConnectionTrait, model_id: Uuid) -> Result<u64, DbErr> {
    Agents::find()
        .filter(agent::Column::ModelId.eq(model_id))
        .count(db)
        .await
}

pub async fn delete_model(db: &impl ConnectionTrait, id: Uuid) -> Result<(), DbErr> {
    Models::delete_by_id(id).exec(db).await.map(|_| ())
}
