use sea_orm::entity::prelude::*;

/// A file in a vector store, with its ingest state.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "vector_store_files")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub vector_store_id: Uuid,
    pub file_id: Uuid,
    pub org_id: Uuid,
    /// `in_progress`, `completed`, `failed` or `cancelled`.
    pub status: String,
    pub chunking_strategy: Json,
    pub attributes: Json,
    /// A knowledge base item's title (the file's name unless one was given).
    pub title: String,
    /// `text` (a base item given as text) or `file`.
    pub source: String,
    pub usage_bytes: i64,
    pub chunk_count: i32,
    /// `{code, message}` when it failed.
    pub last_error: Option<Json>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
