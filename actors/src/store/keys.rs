//! Squad and agent keys, `mc_{prefix}_{secret}`: shown once at setup, kept as SHA-256 only.

use chrono::Utc;
use rand::RngCore;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};
use uuid::Uuid;

use super::entity::squad_key::{self, Entity as SquadKeys};
use super::tokens::hash;

pub const LEAD: &str = "mc_";

/// Makes a key for the squad, or for one agent of it; returns the secret.
pub async fn create(
    db: &impl ConnectionTrait,
    org_id: Uuid,
    squad_id: Uuid,
    agent_id: Option<Uuid>,
) -> Result<String, DbErr> {
    let mut bytes = [0u8; 29];
    rand::rng().fill_bytes(&mut bytes);
    let hex = hex::encode(bytes);
    let prefix = &hex[..10];
    let secret = format!("{LEAD}{prefix}_{}", &hex[10..]);
    squad_key::ActiveModel {
        id: Set(Uuid::new_v4()),
        org_id: Set(org_id),
        squad_id: Set(squad_id),
        agent_id: Set(agent_id),
        prefix: Set(prefix.to_owned()),
        key_hash: Set(hash(&secret)),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await?;
    Ok(secret)
}

pub async fn find_by_hash(
    db: &impl ConnectionTrait,
    key_hash: &str,
) -> Result<Option<squad_key::Model>, DbErr> {
    SquadKeys::find()
        .filter(squad_key::Column::KeyHash.eq(key_hash))
        .one(db)
        .await
}

/// An agent's own keys (to forget them when the agent goes).
pub async fn of_agent(
    db: &impl ConnectionTrait,
    agent_id: Uuid,
) -> Result<Vec<squad_key::Model>, DbErr> {
    SquadKeys::find()
        .filter(squad_key::Column::AgentId.eq(agent_id))
        .all(db)
        .await
}
