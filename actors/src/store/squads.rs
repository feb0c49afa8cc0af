//! Squads and their agents.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set,
};
use uuid::Uuid;

use super::entity::agent::{self, Entity as Agents};
use super::entity::squad::{self, Entity as Squads};
use crate::domain::{AgentSpec, NewSquad};

/// Inserts the squad; `setup` is the setup token's hash and expiry.
pub async fn insert(
    db: &impl ConnectionTrait,
    org_id: Uuid,
    new: &NewSquad,
    setup: (String, DateTime<Utc>),
) -> Result<squad::Model, DbErr> {
    squad::ActiveModel {
        id: Set(Uuid::new_v4()),
        org_id: Set(org_id),
        name: Set(new.name.as_ref().to_owned()),
        description: Set(new.description.clone()),
        workflow: Set(new.workflow.clone()),
        created_at: Set(Utc::now()),
        setup_token_hash: Set(Some(setup.0)),
        setup_expires_at: Set(Some(setup.1)),
        setup_used_at: Set(None),
        is_default: Set(false),
    }
    .insert(db)
    .await
}

pub async fn insert_agent(
    db: &impl ConnectionTrait,
    squad: &squad::Model,
    spec: &AgentSpec,
) -> Result<agent::Model, DbErr> {
    agent::ActiveModel {
        id: Set(Uuid::new_v4()),
        squad_id: Set(squad.id),
        org_id: Set(squad.org_id),
        name: Set(spec.name.as_ref().to_owned()),
        name_key: Set(spec.name.key()),
        role: Set(spec.role.clone()),
        personality: Set(spec.personality.clone()),
        expertise: Set(serde_json::json!(spec.expertise)),
        status: Set("offline".to_owned()),
        heartbeat_interval_secs: Set(spec.heartbeat_interval_secs),
        last_heartbeat_at: Set(None),
        created_at: Set(Utc::now()),
        soul_md: Set(String::new()),
        soul_md_hash: Set(String::new()),
        heartbeat_offset: Set(0),
        current_task_id: Set(None),
        activated_at: Set(None),
        model_id: Set(spec.llm.as_ref().map(|l| l.model_id)),
        system_prompt: Set(spec.llm.as_ref().and_then(|l| l.system_prompt.clone())),
        params: Set(spec.llm.as_ref().map(|l| l.params.clone())),
    }
    .insert(db)
    .await
}

pub async fn list(db: &impl ConnectionTrait, org_id: Uuid) -> Result<Vec<squad::Model>, DbErr> {
    Squads::find()
        .filter(squad::Column::OrgId.eq(org_id))
        .order_by_asc(squad::Column::CreatedAt)
        .all(db)
        .await
}

/// The organization's default squad, if it has one yet.
pub async fn default_of(
    db: &impl ConnectionTrait,
    org_id: Uuid,
) -> Result<Option<squad::Model>, DbErr> {
    Squads::find()
        .filter(squad::Column::OrgId.eq(org_id))
        .filter(squad::Column::IsDefault.eq(true))
        .order_by_asc(squad::Column::CreatedAt)
        .one(db)
        .await
}

/// The squad, if it exists and belongs to `org_id`: the tenancy check for every squad route.
pub async fn get(
    db: &impl ConnectionTrait,
    org_id: Uuid,
    id: Uuid,
) -> Result<Option<squad::Model>, DbErr> {
    Squads::find_by_id(id)
        .filter(squad::Column::OrgId.eq(org_id))
        .one(db)
        .await
}

/// The squad whatever its organization; only for actors, which were reached through `get`.
pub async fn get_any(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<squad::Model>, DbErr> {
    Squads::find_by_id(id).one(db).await
}

pub async fn agents(db: &impl ConnectionTrait, squad_id: Uuid) -> Result<Vec<agent::Model>, DbErr> {
    Agents::find()
        .filter(agent::Column::SquadId.eq(squad_id))
        .order_by_asc(agent::Column::CreatedAt)
        .order_by_asc(agent::Column::NameKey)
        .all(db)
        .await
}

pub async fn agent(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<agent::Model>, DbErr> {
    Agents::find_by_id(id).one(db).await
}

/// The squad's agent called `name` (any case).
pub async fn agent_by_name(
    db: &impl ConnectionTrait,
    squad_id: Uuid,
    name: &str,
) -> Result<Option<agent::Model>, DbErr> {
    Agents::find()
        .filter(agent::Column::SquadId.eq(squad_id))
        .filter(agent::Column::NameKey.eq(name.trim().to_ascii_lowercase()))
        .one(db)
        .await
}
