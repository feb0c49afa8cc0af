//! SquadOS conversations with agents and their messages.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde_json::Value;
use uuid::Uuid;

use super::entity::conversation::{self, Entity as Conversations};
use super::entity::message::{self, Entity as Messages};

pub async fn create(
    db: &impl ConnectionTrait,
    org_id: Uuid,
    agent_id: Uuid,
    title: &str,
) -> Result<conversation::Model, DbErr> {
    let now = Utc::now();
    conversation::ActiveModel {
        id: Set(Uuid::new_v4()),
        org_id: Set(org_id),
        agent_id: Set(agent_id),
        title: Set(title.to_owned()),
        status: Set("open".into()),
        metadata: Set(Value::Object(Default::default())),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
}

pub async fn get(
    db: &impl ConnectionTrait,
    org_id: Uuid,
    id: Uuid,
) -> Result<Option<conversation::Model>, DbErr> {
    Conversations::find_by_id(id)
        .filter(conversation::Column::OrgId.eq(org_id))
        .one(db)
        .await
}

#[derive(Default)]
pub struct Filter {
    pub agent_id: Option<Uuid>,
    pub status: Option<String>,
}

/// A page of the organization's conversations, most recently active first, and the total.
pub async fn list(
    db: &impl ConnectionTrait,
    org_id: Uuid,
    filter: &Filter,
    window: super::Window,
) -> Result<(Vec<conversation::Model>, u64), DbErr> {
    let mut query = Conversations::find().filter(conversation::Column::OrgId.eq(org_id));
    if let Some(agent_id) = filter.agent_id {
        query = query.filter(conversation::Column::AgentId.eq(agent_id));
    }
    if let Some(status) = &filter.status {
        query = query.filter(conversation::Column::Status.eq(status.as_str()));
    }
    let query = query
        .order_by_desc(conversation::Column::UpdatedAt)
        .order_by_desc(conversation::Column::Id);
    super::paged(db, query, window).await
}

pub async fn add_message(
    db: &impl ConnectionTrait,
    conversation: &conversation::Model,
    role: &str,
    content: &str,
    (usage, steps): (Option<Value>, Option<Value>),
) -> Result<message::Model, DbErr> {
    let now = Utc::now();
    let message = message::ActiveModel {
        id: Set(Uuid::new_v4()),
        conversation_id: Set(conversation.id),
        role: Set(role.to_owned()),
        content: Set(content.to_owned()),
        usage: Set(usage),
        steps: Set(steps),
        created_at: Set(now),
    }
    .insert(db)
    .await?;
    let mut touched: conversation::ActiveModel = conversation.clone().into();
    touched.updated_at = Set(now);
    touched.update(db).await?;
    Ok(message)
}

/// A window of the conversation's messages, oldest first, and how many it has in all.
pub async fn page_of_messages(
    db: &impl ConnectionTrait,
    conversation_id: Uuid,
    window: super::Window,
) -> Result<(Vec<message::Model>, u64), DbErr> {
    let query = Messages::find()
        .filter(message::Column::ConversationId.eq(conversation_id))
        .order_by_asc(message::Column::CreatedAt)
        .order_by_asc(message::Column::Id);
    super::paged(db, query, window).await
}

/// The conversation's messages, oldest first (the last `limit` of them).
pub async fn messages(
    db: &impl ConnectionTrait,
    conversation_id: Uuid,
    limit: u64,
) -> Result<Vec<message::Model>, DbErr> {
    let mut newest = Messages::find()
        .filter(message::Column::ConversationId.eq(conversation_id))
        .order_by_desc(message::Column::CreatedAt)
        .limit(limit)
        .all(db)
        .await?;
    newest.reverse();
    Ok(newest)
}
