//! Organization API tokens. A token is shown once, when it is made; only its SHA-256 is kept.

use chrono::{DateTime, Utc};
use rand::RngCore;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::entity::api_token::{self, Entity as ApiTokens};

/// How a token is spelled: `pk_<hex>` (SquadOS) or `msq-<hex>` (MissionSquad clients).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenFormat {
    Pk,
    Msq,
}

impl TokenFormat {
    fn lead(self) -> &'static str {
        match self {
            TokenFormat::Pk => "pk_",
            TokenFormat::Msq => "msq-",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Admin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }
}

pub const ACTIVE: &str = "active";
pub const REVOKED: &str = "revoked";

/// Hex characters of the token that the list shows after its lead (`pk_99fa646d`).
const PREFIX_HEX: usize = 8;

/// A freshly made token: the record, and the secret that is never shown again.
pub struct Minted {
    pub record: api_token::Model,
    pub secret: String,
}

/// SHA-256 of a presented token, hex; what `token_hash` holds.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub async fn create(
    db: &impl ConnectionTrait,
    org_id: Uuid,
    name: &str,
    role: Role,
    format: TokenFormat,
) -> Result<Minted, DbErr> {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{}{}", format.lead(), hex::encode(bytes));
    let prefix = secret[..format.lead().len() + PREFIX_HEX].to_owned();
    let record = api_token::ActiveModel {
        id: Set(Uuid::new_v4()),
        org_id: Set(org_id),
        name: Set(name.to_owned()),
        role: Set(role.as_str().to_owned()),
        prefix: Set(prefix),
        token_hash: Set(hash(&secret)),
        status: Set(ACTIVE.to_owned()),
        created_at: Set(Utc::now()),
        revoked_at: Set(None),
        last_used_at: Set(None),
        calls: Set(0),
    }
    .insert(db)
    .await?;
    Ok(Minted { record, secret })
}

pub async fn find_by_hash(
    db: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<api_token::Model>, DbErr> {
    ApiTokens::find()
        .filter(api_token::Column::TokenHash.eq(token_hash))
        .one(db)
        .await
}

pub async fn list(db: &impl ConnectionTrait, org_id: Uuid) -> Result<Vec<api_token::Model>, DbErr> {
    ApiTokens::find()
        .filter(api_token::Column::OrgId.eq(org_id))
        .order_by_asc(api_token::Column::CreatedAt)
        .all(db)
        .await
}

pub async fn get(
    db: &impl ConnectionTrait,
    org_id: Uuid,
    id: Uuid,
) -> Result<Option<api_token::Model>, DbErr> {
    ApiTokens::find_by_id(id)
        .filter(api_token::Column::OrgId.eq(org_id))
        .one(db)
        .await
}

/// Revokes the token for good. Revoking twice is harmless; the first `revoked_at` stays.
pub async fn revoke(
    db: &impl ConnectionTrait,
    org_id: Uuid,
    id: Uuid,
) -> Result<Option<api_token::Model>, DbErr> {
    let Some(token) = get(db, org_id, id).await? else {
        return Ok(None);
    };
    if token.status == REVOKED {
        return Ok(Some(token));
    }
    let mut active: api_token::ActiveModel = token.into();
    active.status = Set(REVOKED.to_owned());
    active.revoked_at = Set(Some(Utc::now()));
    active.update(db).await.map(Some)
}

/// Removes the record; `Ok(None)` when no such token belongs to the organization.
pub async fn delete(
    db: &impl ConnectionTrait,
    org_id: Uuid,
    id: Uuid,
) -> Result<Option<api_token::Model>, DbErr> {
    let Some(token) = get(db, org_id, id).await? else {
        return Ok(None);
    };
    ApiTokens::delete_by_id(id).exec(db).await?;
    Ok(Some(token))
}

/// Adds a batch of counted calls. Additive, so a flush never overwrites another's count.
pub async fn add_usage(
    db: &impl ConnectionTrait,
    id: Uuid,
    calls: i64,
    last_used_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    ApiTokens::update_many()
        .col_expr(
            api_token::Column::Calls,
            Expr::col(api_token::Column::Calls).add(calls),
        )
        .col_expr(api_token::Column::LastUsedAt, Expr::value(last_used_at))
        .filter(api_token::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}
