use sea_orm::entity::prelude::*;

/// A vector store (a SquadOS knowledge base is the same row): its files' chunks are embedded
/// by one of the account's embedding models.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "vector_stores")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    pub description: String,
    pub model_id: Uuid,
    /// Known once the model has answered (or given by the model's definition).
    pub dimensions: Option<i32>,
    pub metadata: Json,
    pub expires_after: Option<Json>,
    pub expires_at: Option<DateTimeUtc>,
    pub last_active_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
