use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notifications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub squad_id: Uuid,
    pub agent_id: Uuid,
    pub task_id: Option<Uuid>,
    /// The comment that caused it, if any.
    pub message_id: Option<Uuid>,
    /// `mention`, `comment` or `assignment`.
    pub kind: String,
    pub content: String,
    pub created_at: DateTimeUtc,
    pub delivered_at: Option<DateTimeUtc>,
    /// Set when it can no longer be delivered (its task was deleted first).
    pub failed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
